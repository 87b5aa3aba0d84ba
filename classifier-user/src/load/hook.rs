//! The two hooks the classifier runs at: XDP, and tc at TCX ingress for interfaces whose
//! driver has no native XDP (docs/design.md, 'The tc hook').

use super::names::{PROGRAM_CLASSIFY, PROGRAM_CLASSIFY_TC};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Xdp,
    Tc,
}

impl Hook {
    pub const ALL: [Hook; 2] = [Hook::Xdp, Hook::Tc];

    /// How the CLI, `status` and the tests name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Xdp => "xdp",
            Self::Tc => "tc",
        }
    }

    /// The program in the kernel object that runs the pipeline at this hook.
    pub fn program(self) -> &'static str {
        match self {
            Self::Xdp => PROGRAM_CLASSIFY,
            Self::Tc => PROGRAM_CLASSIFY_TC,
        }
    }

    /// What the program returns for "pass the packet on": XDP_PASS, TC_ACT_OK.
    pub fn pass_verdict(self) -> u32 {
        match self {
            Self::Xdp => 2,
            Self::Tc => 0,
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
