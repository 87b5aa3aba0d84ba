//! The pinned state is root-only. An unprivileged user (a throwaway uid, through `setpriv`
//! for the CLI and through a forked child making the syscalls itself, as a program that skips
//! the CLI would) can neither read nor change the maps, the prefixes or the config. The file
//! modes are what stops it: on this kernel `kernel.unprivileged_bpf_disabled` forbids
//! creating BPF objects, not opening pinned ones, and the test shows an unprivileged process
//! reading and writing a map whose pin it may open. So the CLI also refuses a state whose pin
//! directory someone else could change (/sys/fs/bpf is world-writable and sticky: another
//! user can create the directory before root does).

use classifier_testkit as support;

use std::{
    ffi::CString,
    fs,
    os::unix::{ffi::OsStrExt as _, fs::MetadataExt as _},
    path::{Path, PathBuf},
    process::Command,
};

use classifier_common::Config;
use classifier_lab::{Netns, veth};
use support::{
    cli::{Cli, binary},
    faults::{set_mode, throwaway_uid},
};

fn as_user(uid: u32, cli: &Cli, args: &[&str]) -> support::cli::Ran {
    let id = uid.to_string();
    Command::new("setpriv")
        .args(["--reuid", &id, "--regid", &id, "--clear-groups", binary()])
        .args([
            "--config",
            "/dev/null",
            "--pin-dir",
            cli.pin_dir().to_str().unwrap(),
        ])
        .args(args)
        .output()
        .expect("setpriv")
        .into()
}

/// What the syscall probe did.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// BPF_OBJ_GET failed with this errno.
    OpenFailed(i32),
    /// Opened; reading (and, when asked, writing back) element 0 failed with this errno.
    AccessFailed(i32),
    /// Opened and read (and written, when asked).
    Done,
}

/// In a forked child that drops to `uid`: BPF_OBJ_GET on `pin`, then, for a map, a lookup of
/// key 0 (and an update writing back what was read, when `write`). The child makes raw
/// syscalls only, so forking from the threaded test harness is safe.
fn probe_as(uid: u32, pin: &Path, value_size: usize, write: bool) -> Probe {
    let path = CString::new(pin.as_os_str().as_bytes()).unwrap();
    let mut get = [0u64; 4];
    get[0] = path.as_ptr() as u64;
    let key = 0u32;
    let mut value = vec![0u8; value_size.max(8)];
    // union bpf_attr for map element commands: map_fd, (pad), key, value, flags.
    let mut element = [0u64; 4];
    element[1] = &key as *const u32 as u64;
    element[2] = value.as_mut_ptr() as u64;
    // SAFETY: the child only makes raw syscalls into memory allocated before the fork, then
    // _exits; the parent waits for it.
    let child = unsafe { libc::fork() };
    if child == 0 {
        unsafe {
            let id = libc::c_long::from(uid);
            let errno = || *libc::__errno_location();
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<u32>()) != 0
                || libc::syscall(libc::SYS_setresgid, id, id, id) != 0
                || libc::syscall(libc::SYS_setresuid, id, id, id) != 0
            {
                libc::_exit(250);
            }
            let fd = libc::syscall(libc::SYS_bpf, 7, get.as_mut_ptr(), 32);
            if fd < 0 {
                libc::_exit(errno());
            }
            if value_size > 0 {
                element[0] = fd as u64;
                if libc::syscall(libc::SYS_bpf, 1, element.as_mut_ptr(), 32) != 0 {
                    libc::_exit(100 + errno());
                }
                if write && libc::syscall(libc::SYS_bpf, 2, element.as_mut_ptr(), 32) != 0 {
                    libc::_exit(100 + errno());
                }
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    match libc::WEXITSTATUS(status) {
        0 => Probe::Done,
        250 => panic!("the probe could not drop to uid {uid}"),
        code @ 100..=249 => Probe::AccessFailed(code - 100),
        code => Probe::OpenFailed(code),
    }
}

/// Every directory and pin under `dir`, depth first.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            all.extend(walk(&path));
        } else {
            all.push(path);
        }
    }
    all
}

fn state(cli: &Cli) -> [serde_json::Value; 3] {
    [
        cli.run(&["prefixes", "list", "--json"]).ok().json(),
        cli.run(&["policy", "show", "--json"]).ok().json(),
        cli.run(&["status", "--json"]).ok().json()["interfaces"].clone(),
    ]
}

#[test]
fn an_unprivileged_user_can_neither_read_nor_change_the_state() {
    let ns = Netns::create("clst-sec").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    cli.run(&["--netns", ns.name(), "attach", "a0"]).ok();
    cli.run(&["prefixes", "add", "203.0.113.0/24", "--list", "cdn"])
        .ok();
    cli.run(&["policy", "set", "list:cdn=LE", "list:apple=LE", "mptcp=CS1"])
        .ok();
    let before = state(&cli);

    // Root-only: directories 0700, pins 0600, all owned by root.
    let everything = walk(cli.pin_dir());
    assert!(everything.len() >= 18, "{everything:?}");
    for path in &everything {
        let meta = fs::symlink_metadata(path).unwrap();
        let expected = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (0, 0, expected),
            "{}",
            path.display()
        );
    }

    let uid = throwaway_uid();
    let commands: [&[&str]; 13] = [
        &["status"],
        &["stats"],
        &["flows"],
        &["devices"],
        &["prefixes", "list"],
        &["policy", "show"],
        &["prefixes", "add", "198.51.100.0/24"],
        &["prefixes", "clear"],
        &["policy", "set", "mptcp=LE"],
        &["policy", "set", "--dry-run", "on"],
        &["detach", "--all", "--purge"],
        &["state", "save", "/nonexistent/saved.json"],
        &["--netns", ns.name(), "attach", "b0"],
    ];
    // Without capabilities each command stops at its first check (`--netns` needs
    // CAP_SYS_ADMIN first, every other one CAP_BPF), before it opens anything.
    for args in commands {
        let missing = if args[0] == "--netns" {
            "CAP_SYS_ADMIN is missing"
        } else {
            "CAP_BPF is missing"
        };
        let ran = as_user(uid, &cli, args).fails(1, missing);
        assert!(ran.stdout.is_empty(), "{args:?}: {}", ran.stdout);
    }

    // Skipping the CLI: the directory cannot be listed, no pin opened.
    let id = uid.to_string();
    let listing = Command::new("setpriv")
        .args(["--reuid", &id, "--regid", &id, "--clear-groups", "ls"])
        .arg(cli.pin_dir())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stderr).contains("Permission denied"),
        "{listing:?}"
    );
    let config_size = std::mem::size_of::<Config>();
    for path in everything.iter().filter(|p| !p.is_dir()) {
        let value_size = if path.ends_with("maps/CONFIG") {
            config_size
        } else {
            0
        };
        assert_eq!(
            probe_as(uid, path, value_size, true),
            Probe::OpenFailed(libc::EACCES),
            "{}",
            path.display()
        );
    }
    assert_eq!(state(&cli), before, "nothing changed");

    // The modes are the only barrier: with the pin open to others, the same unprivileged
    // process reads the config and writes it back. The CLI refuses such a state.
    let config = cli.pin_dir().join("maps/CONFIG");
    for dir in [cli.pin_dir().to_path_buf(), cli.pin_dir().join("maps")] {
        set_mode(&dir, 0o711);
    }
    set_mode(&config, 0o666);
    let opened = probe_as(uid, &config, config_size, true);
    let refused = cli.run(&["stats"]);
    set_mode(&config, 0o600);
    for dir in [cli.pin_dir().to_path_buf(), cli.pin_dir().join("maps")] {
        set_mode(&dir, 0o700);
    }
    assert_eq!(opened, Probe::Done, "the kernel itself does not stop it");
    refused.fails(
        1,
        &format!(
            "bad owner or permissions on {}: group and others may write to it (mode 0666); \
             refusing it, as sshd would: only root may be able to change what classifier \
             reads (fix: `chmod go-w {}`)",
            config.display(),
            config.display()
        ),
    );
    assert_eq!(state(&cli), before, "nothing changed");

    // Root with CAP_BPF but no other capability (no CAP_DAC_OVERRIDE) cannot open a pin it
    // has no permission for; the message says so, rather than calling the state
    // "incompatible" and advising a purge that would destroy it.
    let counters = cli.pin_dir().join("maps/COUNTERS");
    set_mode(&counters, 0o000);
    let ran: support::cli::Ran = Command::new("setpriv")
        .args(["--bounding-set=-all,+bpf", "--inh-caps=-all", binary()])
        .args([
            "--config",
            "/dev/null",
            "--pin-dir",
            cli.pin_dir().to_str().unwrap(),
        ])
        .arg("stats")
        .output()
        .unwrap()
        .into();
    set_mode(&counters, 0o600);
    let ran = ran.fails(
        1,
        &format!(
            "{}: Permission denied (os error 13): the classifier's state is root-only",
            counters.display()
        ),
    );
    assert!(!ran.stderr.contains("incompatible"), "{}", ran.stderr);
}

#[test]
fn a_pin_directory_another_user_could_change_is_refused() {
    let ns = Netns::create("clst-sec").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let uid = throwaway_uid();
    let attach = |cli: &Cli| cli.run(&["--netns", ns.name(), "attach", "a0"]);
    let expect_refused = |cli: &Cli, path: &Path, reason: &str| {
        let message = format!("bad owner or permissions on {}: {reason}", path.display());
        attach(cli).fails(1, &message);
        assert!(!ns.has_xdp("a0").unwrap(), "nothing attached");
    };

    // Made first by another user (possible: /sys/fs/bpf is 1777).
    let cli = Cli::new();
    fs::create_dir(cli.pin_dir()).unwrap();
    std::os::unix::fs::chown(cli.pin_dir(), Some(uid), Some(uid)).unwrap();
    expect_refused(
        &cli,
        cli.pin_dir(),
        &format!("it is owned by uid {uid}, not by root"),
    );
    assert_eq!(
        fs::read_dir(cli.pin_dir()).unwrap().count(),
        0,
        "nothing pinned"
    );

    // Root's, but writable by all.
    std::os::unix::fs::chown(cli.pin_dir(), Some(0), Some(0)).unwrap();
    set_mode(cli.pin_dir(), 0o777);
    expect_refused(
        &cli,
        cli.pin_dir(),
        "group and others may write to it (mode 0777)",
    );

    // Inside a directory of another user's.
    let theirs = PathBuf::from(format!("{}-theirs", cli.pin_dir().display()));
    fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(uid), Some(uid)).unwrap();
    let nested = Cli {
        pin_dir: theirs.join("classifier"),
    };
    expect_refused(
        &nested,
        &theirs,
        &format!("it is owned by uid {uid}, not by root"),
    );
    assert!(!nested.pin_dir().exists(), "nothing created");
    fs::remove_dir(&theirs).unwrap();

    // A good state whose maps/ someone else came to own.
    set_mode(cli.pin_dir(), 0o700);
    attach(&cli);
    assert!(ns.has_xdp("a0").unwrap());
    let maps = cli.pin_dir().join("maps");
    std::os::unix::fs::chown(&maps, Some(uid), None).unwrap();
    let ran = cli.run(&["stats"]);
    std::os::unix::fs::chown(&maps, Some(0), None).unwrap();
    ran.fails(
        1,
        &format!(
            "bad owner or permissions on {}: it is owned by uid {uid}",
            maps.display()
        ),
    );
    cli.run(&["stats"]).ok();
}
