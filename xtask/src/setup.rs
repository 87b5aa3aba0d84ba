//! Making a fresh machine ready. Every step checks first, so a ready machine takes seconds.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::run::{output, run, run_command};

/// The eBPF crate needs nightly (bpfel-unknown-none is tier 3: `-Z build-std=core`).
pub const NIGHTLY: &str = "nightly";

/// bpf-linker must use the LLVM major of the rustc emitting the bitcode; 0.13.0 with the
/// `llvm-22` feature matches this nightly (README.md, "Toolchain notes").
const BPF_LINKER_VERSION: &str = "0.13.0";
const BPF_LINKER_LLVM_FEATURE: &str = "llvm-22";

/// cargo-deb builds the .deb (`cargo xtask package`); pinned like bpf-linker.
const CARGO_DEB_VERSION: &str = "3.8.0";

/// Debian packages the tests and the lab use. lintian and man-db check the .deb and its man
/// pages; `cli_json.rs` validates every command's `-j` output against `docs/json/` with
/// python3-jsonschema; fonts-dejavu-core is the font of the dashboard picture (`cargo xtask
/// dashboard-png`).
const DEBIAN_PACKAGES: &[&str] = &[
    "bpftool",
    "ethtool",
    "fonts-dejavu-core",
    "iperf3",
    "iproute2",
    "lintian",
    "man-db",
    "mptcpd",
    "nftables",
    "python3-jsonschema",
    "systemd",
    "tcpdump",
    "tshark",
];

/// promtool checks deploy/prometheus/; it comes in Debian's `prometheus` package, which would
/// also install and start a Prometheus server, so only promtool is taken out of it.
const PROMTOOL_PACKAGE: &str = "prometheus";

pub fn setup() -> anyhow::Result<()> {
    ensure_nightly_components()?;
    ensure_bpf_linker()?;
    ensure_cargo_deb()?;
    ensure_debian_packages()?;
    ensure_promtool()?;
    ensure_bpffs()?;
    eprintln!("xtask: setup complete");
    Ok(())
}

fn ensure_nightly_components() -> anyhow::Result<()> {
    let installed = output(
        "rustup",
        &["component", "list", "--toolchain", NIGHTLY, "--installed"],
    )
    .context("rustup has no nightly toolchain; this project needs it for the eBPF crate")?;
    for component in ["rust-src", "clippy", "rustfmt"] {
        if !installed.lines().any(|line| line.starts_with(component)) {
            run(
                "rustup",
                &["component", "add", component, "--toolchain", NIGHTLY],
            )?;
        }
    }
    Ok(())
}

fn ensure_bpf_linker() -> anyhow::Result<()> {
    if let Some(version) = output("bpf-linker", &["--version"])
        && version.contains(BPF_LINKER_VERSION)
    {
        return Ok(());
    }
    // No LLVM 22 on Debian 12 and no prebuilt archives reachable: link bpf-linker against the
    // nightly toolchain's own libLLVM, through a prefix whose lib/ holds symlinks to it.
    let sysroot = output("rustc", &["+nightly", "--print", "sysroot"])
        .context("asking nightly rustc for its sysroot")?;
    let sysroot_lib = Path::new(sysroot.trim()).join("lib");
    let libllvm = fs::read_dir(&sysroot_lib)
        .with_context(|| format!("reading {}", sysroot_lib.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libLLVM.so."))
        })
        .with_context(|| format!("no libLLVM.so.* in {}", sysroot_lib.display()))?;
    let prefix = cargo_home()?.join("bpf-linker-llvm");
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("creating {}", prefix_lib.display()))?;
    // libLLVM.so for the build, and the soname itself so that the installed binary's rpath
    // finds it outside of cargo (which otherwise adds the sysroot to LD_LIBRARY_PATH).
    let soname = libllvm
        .file_name()
        .context("libLLVM path has no file name")?;
    for link in [prefix_lib.join("libLLVM.so"), prefix_lib.join(soname)] {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&libllvm, &link)
            .with_context(|| format!("linking {} to {}", link.display(), libllvm.display()))?;
    }
    run_command(
        Command::new("cargo")
            .args([
                "+nightly",
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
            ])
            .args([
                "--locked",
                "--no-default-features",
                "--features",
                BPF_LINKER_LLVM_FEATURE,
            ])
            .env("LLVM_PREFIX", &prefix),
    )
    .context("installing bpf-linker (about 1.5 minutes on 2 cores)")
}

pub fn ensure_cargo_deb() -> anyhow::Result<()> {
    if output("cargo", &["deb", "--version"]).is_some_and(|v| v.contains(CARGO_DEB_VERSION)) {
        return Ok(());
    }
    run(
        "cargo",
        &[
            "install",
            "cargo-deb",
            "--version",
            CARGO_DEB_VERSION,
            "--locked",
        ],
    )
    .context("installing cargo-deb (about 2 minutes on 2 cores)")
}

/// `apt-get download prometheus`, then only its usr/bin/promtool into cargo's bin directory,
/// beside the other tools xtask installs (on PATH for cargo users).
fn ensure_promtool() -> anyhow::Result<()> {
    if output("promtool", &["--version"]).is_some() {
        return Ok(());
    }
    let bin = cargo_home()?.join("bin");
    let promtool = bin.join("promtool");
    if output(&promtool.to_string_lossy(), &["--version"]).is_some() {
        return Ok(());
    }
    let work = env::temp_dir().join(format!("xtask-promtool-{}", std::process::id()));
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = (|| {
        run_command(
            Command::new("apt-get")
                .args(["download", "-q", PROMTOOL_PACKAGE])
                .current_dir(&work),
        )?;
        let deb = fs::read_dir(&work)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
            .context("apt-get download left no .deb")?;
        let root = work.join("root");
        run_command(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        fs::create_dir_all(&bin)?;
        fs::copy(root.join("usr/bin/promtool"), &promtool)
            .with_context(|| format!("copying promtool to {}", promtool.display()))?;
        anyhow::Ok(())
    })();
    let _ = fs::remove_dir_all(&work);
    result.context("installing promtool from Debian's prometheus package")
}

fn cargo_home() -> anyhow::Result<PathBuf> {
    if let Some(home) = env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

fn ensure_debian_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|package| {
            output("dpkg-query", &["-W", "-f=${Status}", package])
                .is_none_or(|status| !status.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if output("id", &["-u"]).as_deref().map(str::trim) != Some("0") {
        bail!(
            "Debian packages missing: {}. Run `cargo xtask setup` as root, or install them with \
             apt-get.",
            missing.join(" ")
        );
    }
    run("apt-get", &["update", "-q"])?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        // tshark asks whether non-root users may capture; answer with the default, silently.
        .env("DEBIAN_FRONTEND", "noninteractive");
    run_command(&mut install).with_context(|| format!("installing {}", missing.join(" ")))
}

/// bpffs is not mounted at boot here. `classifier attach` mounts it when missing, but tests
/// attach in parallel, and two mounts racing would stack two instances: mount it once, now.
fn ensure_bpffs() -> anyhow::Result<()> {
    let kind = output("stat", &["-f", "-c", "%T", "/sys/fs/bpf"]).unwrap_or_default();
    if kind.trim() == "bpf_fs" {
        return Ok(());
    }
    run("mount", &["-t", "bpf", "bpf", "/sys/fs/bpf"]).context("mounting bpffs on /sys/fs/bpf")
}
