//! Builds the kernel programs (classifier-ebpf) with nightly for bpfel-unknown-none and leaves
//! the object in OUT_DIR, where src/load/object.rs embeds it.

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("classifier-user has no parent directory"))?
        .join("classifier-ebpf");
    let root = root
        .to_str()
        .ok_or_else(|| anyhow!("path {} is not UTF-8", root.display()))?;
    // The baseline programs go into the object only for the benchmarks and tests (this
    // crate's `bench` feature); the shipped object has just the classifier's.
    let features: &[&str] = if std::env::var_os("CARGO_FEATURE_BENCH").is_some() {
        &["bench"]
    } else {
        &[]
    };
    aya_build::build_ebpf(
        [Package {
            name: "classifier-ebpf",
            root_dir: root,
            features,
            ..Default::default()
        }],
        Toolchain::Nightly,
    )
    .context(
        "building classifier-ebpf (run `cargo xtask setup` if bpf-linker or rust-src is missing)",
    )
}
