//! bpffs unmounted under the classifier and mounted again. The pins hold the only references
//! to the links, so the unmount detaches the program and the kernel frees links, program and
//! maps: the state is gone. The CLI must say so (not "attach an interface first", which then
//! fails), and `attach` must start afresh once bpffs is back.
//!
//! The host's /sys/fs/bpf is never unmounted: other tests and developers use it. The first
//! test mounts a bpffs instance of its own (each mount of bpffs is a new, empty instance);
//! the second unmounts /sys/fs/bpf only inside a private mount namespace (`unshare -m`).

use classifier_testkit as support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use classifier_lab::{Netns, veth};
use support::{
    cli::{Cli, binary},
    faults::{assert_freed, link_ids},
    wait::wait_until,
};

/// A bpffs instance mounted on a directory of the test's own, unmounted and removed on drop.
struct PrivateBpffs(PathBuf);

impl PrivateBpffs {
    fn mount() -> Self {
        let dir = std::env::temp_dir().join(format!("clst-bpffs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bpffs = Self(dir);
        bpffs.remount();
        bpffs
    }

    fn remount(&self) {
        mount(&["-t", "bpf", "bpf", self.0.to_str().unwrap()]);
    }

    fn unmount(&self) {
        Command::new("umount").arg(&self.0).status().unwrap();
    }
}

fn mount(args: &[&str]) {
    let status = Command::new("mount").args(args).status().unwrap();
    assert!(status.success(), "mount {args:?}");
}

impl Drop for PrivateBpffs {
    fn drop(&mut self) {
        // Whatever is pinned in it goes with it.
        while Command::new("mountpoint")
            .args(["-q", self.0.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success())
        {
            if !Command::new("umount")
                .arg(&self.0)
                .status()
                .is_ok_and(|s| s.success())
            {
                break;
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn run_in(pin_dir: &Path, args: &[&str]) -> support::cli::Ran {
    Command::new(binary())
        .args([
            "--config",
            "/dev/null",
            "--pin-dir",
            pin_dir.to_str().unwrap(),
        ])
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn an_unmounted_bpffs_detaches_and_the_cli_says_so_then_attach_starts_afresh() {
    support::require_root();
    let bpffs = PrivateBpffs::mount();
    let pin_dir = bpffs.0.join("classifier");
    let ns = Netns::create("clst-fs").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let netns = ns.name().to_owned();
    let cli = Cli {
        pin_dir: pin_dir.clone(),
    };
    cli.run(&["--netns", &netns, "attach", "a0"]).ok();
    cli.run(&["prefixes", "add", "203.0.113.0/24", "--list", "cdn"])
        .ok();
    let (links, program) = link_ids(&cli);
    let link = links[0].1;
    assert!(ns.has_xdp("a0").unwrap());

    bpffs.unmount();
    wait_until(Duration::from_secs(5), "the unmount to detach a0", || {
        !ns.has_xdp("a0").unwrap()
    });
    assert_freed("link", link, "the link pinned in the unmounted bpffs");
    assert_freed("prog", program, "the program pinned in the unmounted bpffs");

    for args in [&["status"][..], &["stats"], &["prefixes", "list"]] {
        let ran = run_in(&pin_dir, args);
        assert_eq!(ran.code, 1, "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(&format!(
                "no BPF filesystem is mounted on {}, so there is no state in {}",
                bpffs.0.display(),
                pin_dir.display()
            )) && ran.stderr.contains("the state pinned in it is gone")
                && ran.stderr.contains(&format!(
                    "mount one (`mount -t bpf bpf {}`) and attach again",
                    bpffs.0.display()
                )),
            "{args:?}: {}",
            ran.stderr
        );
    }
    let ran = run_in(&pin_dir, &["--netns", &netns, "attach", "a0"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("is not on a BPF filesystem"),
        "{}",
        ran.stderr
    );
    assert!(!ns.has_xdp("a0").unwrap(), "nothing attached without bpffs");

    bpffs.remount();
    let ran = run_in(&pin_dir, &["status"]);
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains("no classifier state in") && ran.stderr.contains("attach"),
        "{}",
        ran.stderr
    );
    cli.run(&["--netns", &netns, "attach", "a0"]).ok();
    assert!(ns.has_xdp("a0").unwrap(), "attached afresh");
    let status = cli.run(&["status", "--json"]).ok().json();
    assert_eq!(
        status["prefixes"]["lists"],
        serde_json::json!({"apple": 4}),
        "a fresh state: the cdn list went with the old one"
    );
    // The counters are readable and consistent. Not necessarily zero: the kernel's own IPv6
    // router solicitations and DAD may cross the veth as soon as the program is attached.
    let stats = cli.run(&["stats", "--json"]).ok().json();
    let classes: u64 = ["non_ip", "malformed", "mptcp", "listed", "normal"]
        .iter()
        .map(|class| stats["classes"][class]["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(stats["total"]["packets"].as_u64(), Some(classes));
    drop(cli);
    drop(ns);
}

/// The default location: with /sys/fs/bpf unmounted (in a private mount namespace), the CLI
/// says bpffs is missing and that `attach` mounts it; `attach` does, and the program stays
/// attached exactly as long as that bpffs instance lives (here: the mount namespace).
#[test]
fn with_sys_fs_bpf_unmounted_attach_mounts_it_again() {
    support::require_root();
    let ns = Netns::create("clst-fs").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let pin_dir = format!(
        "/sys/fs/bpf/classifier-test-{}-unmounted",
        std::process::id()
    );
    let script = format!(
        "set -u
         while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf || exit 9; done
         C='{binary} --config /dev/null --pin-dir {pin_dir}'
         $C status; echo \"status exit $?\"
         $C --netns {netns} attach a0 || exit 8
         $C status --pretty | grep -c '\"interface\": \"a0\"'
         ip -n {netns} -d link show a0 | grep -c 'prog/xdp'",
        binary = binary(),
        netns = ns.name()
    );
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("status exit 1"), "{stdout}");
    assert!(
        stderr.contains("no BPF filesystem is mounted on /sys/fs/bpf")
            && stderr.contains("`classifier attach` mounts it again and starts afresh"),
        "{stderr}"
    );
    assert_eq!(
        stdout.lines().skip(1).collect::<Vec<_>>(),
        ["attached to a0 (xdp native)", "1", "1"],
        "attached inside: {stdout}"
    );
    // The private namespace is gone, and its bpffs instance with the only reference to the
    // link: a0 is detached, and the host's /sys/fs/bpf never saw any of it.
    wait_until(
        Duration::from_secs(5),
        "a0 to be detached with its bpffs",
        || !ns.has_xdp("a0").unwrap(),
    );
    assert!(!Path::new(&pin_dir).exists());
}
