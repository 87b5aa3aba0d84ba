//! Where the time goes, measured: variants of the kernel object built in this run, each with
//! one stage taken out by a cargo feature of classifier-ebpf (`ablate-*`), timed on the same
//! packets as the program. This machine has no hardware performance counters for a profile.

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result, ensure};
use classifier::{
    Classifier,
    config_file::ConfigFile,
    control::state::{InitialState, initialize},
};
use classifier_lab::Baseline;

use crate::{
    packets,
    table::{Table, ns},
    timing::Programs,
};

/// Each variant: its row's name and the feature that builds it (none: the program itself).
const VARIANTS: [(&str, Option<&str>); 4] = [
    ("the program", None),
    ("without the flow cache and tables", Some("ablate-flows")),
    ("without the counters", Some("ablate-counters")),
    ("without the options walk", Some("ablate-options")),
];

/// What the ablation measured: the table, and the plain IPv4 TCP overhead of each variant.
pub struct Ablation {
    pub table: Table,
    /// (row name, overhead of plain IPv4 TCP, ns), in `VARIANTS` order.
    pub plain: Vec<(&'static str, f64)>,
}

/// Builds the variants, then times each on the steady-state cases, overhead over the baseline.
pub fn run() -> Result<Ablation> {
    let cases = [
        ("IPv4 TCP", packets::ipv4_tcp_no_match()),
        ("timestamps", packets::ipv4_tcp_timestamps()),
        ("40 B options, DSS", packets::ipv4_tcp_mptcp_dss()),
        ("IPv6, 2 ext.", packets::ipv6_tcp_two_extensions()),
        ("Apple (LE)", packets::apple_v4()),
        ("UDP", packets::udp()),
        ("malformed", packets::malformed()),
    ];
    let mut headers = vec!["variant"];
    headers.extend(cases.iter().map(|(name, _)| *name));
    let mut table = Table::new(
        "where the time went: overhead, ns per packet (median)",
        &headers,
    );
    let mut plain = Vec::new();
    // All built first: a build running beside the timing would disturb it.
    let mut objects = Vec::new();
    for (name, feature) in VARIANTS {
        objects.push((name, feature.map(build).transpose()?));
    }
    for (name, object) in objects {
        let programs = load(object.as_deref())?;
        let mut cells = vec![name.to_owned()];
        let packets: Vec<&[u8]> = cases.iter().map(|(_, packet)| packet.as_slice()).collect();
        for ((case, _), cost) in cases.iter().zip(programs.repeated_each(&packets)?) {
            if *case == "IPv4 TCP" {
                plain.push((name, cost.overhead()));
            }
            cells.push(ns(cost.overhead()));
        }
        table.row(cells);
    }
    Ok(Ablation { table, plain })
}

/// The classifier from `object` (the product's own object without one), configured as
/// `attach` leaves it, beside the baseline.
pub fn load(object: Option<&[u8]>) -> Result<Programs> {
    let mut classifier = match object {
        Some(object) => Classifier::load_object(object)?,
        None => Classifier::load()?,
    };
    let initial = InitialState::read(&ConfigFile::default())?;
    initialize(&mut classifier.writer(), &initial)?;
    Ok(Programs {
        classifier,
        baseline: Baseline::load()?,
    })
}

/// Builds classifier-ebpf with `feature` as classifier-user's build.rs builds it (aya-build:
/// nightly, build-std, BTF), in a target directory of its own, and returns the object.
pub fn build(feature: &str) -> Result<Vec<u8>> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("classifier-lab has no parent directory")?;
    let target_dir = workspace.join("target").join("ablate").join(feature);
    println!("  building classifier-ebpf --features {feature}");
    let status = Command::new("rustup")
        .args([
            "run",
            "nightly",
            "cargo",
            "build",
            "--package",
            "classifier-ebpf",
        ])
        .args(["--bins", "--release", "--target", "bpfel-unknown-none"])
        .args(["-Z", "build-std=core", "--quiet", "--features", feature])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(workspace.join("classifier-ebpf"))
        // aya-build's flags: the arch cfg aya-ebpf wants, and BTF, which the verifier needs
        // for the global functions.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            format!(
                "--cfg=bpf_target_arch=\"{}\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf",
                std::env::consts::ARCH
            ),
        )
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTFLAGS")
        .status()
        .context("running cargo +nightly to build an ablation variant")?;
    ensure!(
        status.success(),
        "building classifier-ebpf with --features {feature} failed: {status}"
    );
    let object = target_dir.join("bpfel-unknown-none/release/classifier-ebpf");
    std::fs::read(&object).with_context(|| format!("reading {}", object.display()))
}
