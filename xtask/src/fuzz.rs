//! `cargo xtask fuzz`: the differential fuzzer's long run. It is the CI test
//! `fuzz_differential` (kernel program against the host's reference model), built in release
//! mode and run over a million packets unless told otherwise, at both hooks (XDP, then tc)
//! unless `--hook` picks one; the test prints the totals.

use std::{
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;

use crate::{run::run_command, setup::setup};

/// `--seed`: decimal or 0x hex, as the fuzzer prints it.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.replace('_', "").parse(),
    };
    parsed.map_err(|error| format!("{text}: not a seed ({error}); give a number, e.g. 0x3039"))
}

/// `--hook`: which of the classifier's programs to fuzz.
#[derive(Copy, Clone, Debug, clap::ValueEnum)]
pub enum FuzzHook {
    Xdp,
    Tc,
    Both,
}

impl FuzzHook {
    fn name(self) -> &'static str {
        match self {
            Self::Xdp => "xdp",
            Self::Tc => "tc",
            Self::Both => "both",
        }
    }
}

pub fn fuzz(packets: u64, seed: Option<u64>, hook: FuzzHook) -> anyhow::Result<()> {
    setup()?;
    // Without a seed, a new one each run: a long run should cover ground CI's fixed seed has
    // not. The test prints it, and so does this, so any run can be repeated.
    let seed = match seed {
        Some(seed) => seed,
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .context("reading the clock for a seed")?;
            now.as_secs() ^ u64::from(now.subsec_nanos()).rotate_left(32)
        }
    };
    eprintln!(
        "xtask: fuzzing {packets} packets with seed {seed:#x} at hook {hook} \
         (repeat: cargo xtask fuzz --packets {packets} --seed {seed:#x} --hook {hook})",
        hook = hook.name()
    );
    run_command(
        Command::new("cargo")
            .args([
                "test",
                "--release",
                "--package",
                "classifier-user",
                "--test",
                "fuzz_differential",
                "--",
                "--exact",
                "kernel_agrees_with_the_reference_on_random_packets",
                "--nocapture",
            ])
            .env("CLASSIFIER_FUZZ_PACKETS", packets.to_string())
            .env("CLASSIFIER_FUZZ_SEED", format!("{seed:#x}"))
            .env("CLASSIFIER_FUZZ_HOOK", hook.name()),
    )
}
