//! The two hooks the classifier runs at: XDP, and tc at TCX ingress for interfaces whose
//! driver has no native XDP (docs/design.md, 'The tc hook'), and the modes an interface is
//! attached in, as its pinned `Attachment` records them (`control::attach` writes the code,
//! `report::status` reads it).

use classifier_common::control::{ATTACH_NATIVE, ATTACH_SKB, ATTACH_TC};
use serde::Serialize;

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

/// How an interface is attached; its `Attachment` records it as a code.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachMode {
    /// XDP in the driver.
    Native,
    /// Generic XDP, after the kernel built an skb.
    Skb,
    /// The tc hook, attached at TCX ingress.
    Tcx,
}

impl AttachMode {
    /// The mode of `Attachment::mode`'s code; an unknown code is taken for skb XDP.
    pub fn from_code(code: u32) -> Self {
        match code {
            ATTACH_NATIVE => Self::Native,
            ATTACH_TC => Self::Tcx,
            _ => Self::Skb,
        }
    }

    pub fn code(self) -> u32 {
        match self {
            Self::Native => ATTACH_NATIVE,
            Self::Skb => ATTACH_SKB,
            Self::Tcx => ATTACH_TC,
        }
    }

    /// How the CLI, the log and `status` name it: `native`, `skb` or `tcx`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Skb => "skb",
            Self::Tcx => "tcx",
        }
    }

    pub fn hook(self) -> Hook {
        match self {
            Self::Native | Self::Skb => Hook::Xdp,
            Self::Tcx => Hook::Tc,
        }
    }
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
