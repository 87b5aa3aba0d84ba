//! Files and links that could let someone other than root steer the classifier. Config and
//! prefix files writable by group or others, owned by another user, or in a directory others
//! can write to are refused the way sshd refuses them, naming the file and its mode. And the
//! CLI never follows a symbolic link in or above the pin directory: a link planted there to
//! another state's map, link or program is refused, and that other state stays untouched.

use classifier_testkit as support;

use std::{
    ffi::CString,
    fs,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::{
            ffi::OsStrExt as _,
            fs::{chown, symlink},
        },
    },
    path::{Path, PathBuf},
    process::Command,
};

use classifier_lab::{Netns, veth};
use support::{
    cli::{Cli, Ran, binary},
    faults::{set_mode, throwaway_uid},
};

/// A root-owned 0755 scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(cli: &Cli) -> Self {
        let dir = std::env::temp_dir().join(cli.pin_dir().file_name().unwrap());
        fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o755);
        Self(dir)
    }

    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, text).unwrap();
        set_mode(&path, mode);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn with_config(cli: &Cli, config: &Path, args: &[&str]) -> Ran {
    Command::new(binary())
        .env("CLASSIFIER_PIN_DIR", cli.pin_dir())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
        .into()
}

fn expect_bad(ran: Ran, path: &Path, reason: &str) {
    let message = format!(
        "bad owner or permissions on {}: {reason}; refusing it, as sshd would",
        path.display()
    );
    ran.fails(1, &message);
}

/// A pin taken out of its place (bpffs does not rename pins), its object kept alive by a
/// descriptor, and pinned there again by `restore`.
struct Held {
    fd: OwnedFd,
    path: PathBuf,
}

/// `union bpf_attr` for BPF_OBJ_GET and BPF_OBJ_PIN: pathname, bpf_fd, file_flags.
fn obj_attr(path: &CString, fd: u32) -> [u64; 4] {
    [path.as_ptr() as u64, u64::from(fd), 0, 0]
}

impl Held {
    fn take(path: &Path) -> Self {
        let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
        let mut attr = obj_attr(&c_path, 0);
        // SAFETY: attr is a valid bpf_attr for BPF_OBJ_GET, c_path outlives the call.
        let fd = unsafe { libc::syscall(libc::SYS_bpf, 7, attr.as_mut_ptr(), 32) };
        assert!(fd >= 0, "BPF_OBJ_GET {}", path.display());
        fs::remove_file(path).unwrap();
        Self {
            // SAFETY: a descriptor the kernel just gave us.
            fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
            path: path.to_path_buf(),
        }
    }

    fn restore(self) {
        let c_path = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        let mut attr = obj_attr(&c_path, self.fd.as_raw_fd() as u32);
        // SAFETY: as in `take`, for BPF_OBJ_PIN.
        let rc = unsafe { libc::syscall(libc::SYS_bpf, 6, attr.as_mut_ptr(), 32) };
        assert_eq!(rc, 0, "BPF_OBJ_PIN {}", self.path.display());
    }
}

#[test]
fn config_and_prefix_files_others_could_write_are_refused() {
    let ns = Netns::create("clst-sf").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    let scratch = Scratch::new(&cli);
    let netns = ns.name().to_owned();
    let attach = ["--netns", netns.as_str(), "attach", "a0"];

    // The config file itself.
    let config = scratch.file("config.toml", "dry_run = true\n", 0o666);
    expect_bad(
        with_config(&cli, &config, &attach),
        &config,
        "group and others may write to it (mode 0666)",
    );
    set_mode(&config, 0o664);
    expect_bad(
        with_config(&cli, &config, &["status"]),
        &config,
        "its group may write to it (mode 0664)",
    );
    set_mode(&config, 0o644);
    chown(&config, Some(throwaway_uid()), None).unwrap();
    expect_bad(
        with_config(&cli, &config, &["status"]),
        &config,
        &format!("it is owned by uid {}, not by root", throwaway_uid()),
    );
    chown(&config, Some(0), None).unwrap();
    // Its directory, when others may replace what is in it.
    set_mode(&scratch.0, 0o757);
    let ran = with_config(&cli, &config, &["status"]);
    set_mode(&scratch.0, 0o755);
    expect_bad(
        ran,
        &scratch.0,
        &format!(
            "others may write to it (mode 0757), so they could replace {}",
            config.display()
        ),
    );
    // A link to a file others may write is judged by that file.
    let open = scratch.file("open.toml", "dry_run = true\n", 0o646);
    let link = scratch.0.join("link.toml");
    symlink(&open, &link).unwrap();
    expect_bad(
        with_config(&cli, &link, &["status"]),
        &link,
        "others may write to it (mode 0646)",
    );
    assert!(
        !cli.pin_dir().exists() && !ns.has_xdp("a0").unwrap(),
        "nothing was created or attached"
    );

    // A list file the config file names: refused before any state exists.
    let list = scratch.file("cdn.txt", "203.0.113.0/24\n", 0o666);
    let config = scratch.file(
        "lists.toml",
        &format!("[[lists]]\nname = \"cdn\"\nfile = \"{}\"\n", list.display()),
        0o600,
    );
    expect_bad(
        with_config(&cli, &config, &attach),
        &list,
        "group and others may write to it (mode 0666)",
    );
    assert!(!cli.pin_dir().exists(), "no state was created");

    // In /tmp itself (sticky, writable by all) a root-owned 0644 file is fine.
    let in_tmp = std::env::temp_dir().join(format!(
        "{}-config.toml",
        cli.pin_dir().file_name().unwrap().to_str().unwrap()
    ));
    fs::write(&in_tmp, "dry_run = true\n").unwrap();
    set_mode(&in_tmp, 0o644);
    set_mode(&list, 0o644);
    let ran = with_config(&cli, &in_tmp, &attach);
    let _ = fs::remove_file(&in_tmp);
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    // Prefix files for `prefixes load` and `replace`.
    let before = cli.run(&["prefixes", "list", "--json"]).ok().json();
    for mode in [0o666, 0o620, 0o602] {
        set_mode(&list, mode);
        for verb in ["load", "replace"] {
            cli.run(&["prefixes", verb, list.to_str().unwrap(), "--list", "cdn"])
                .fails(1, &format!("(mode {mode:04o})"))
                .fails(1, &format!("fix: `chmod go-w {}`", list.display()));
        }
    }
    assert_eq!(
        cli.run(&["prefixes", "list", "--json"]).ok().json(),
        before,
        "nothing applied"
    );
    set_mode(&list, 0o644);
    cli.run(&["prefixes", "load", list.to_str().unwrap(), "--list", "cdn"])
        .ok();
}

#[test]
fn the_cli_never_follows_a_symlink_in_or_above_the_pin_dir() {
    let ns = Netns::create("clst-sf").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    veth(&ns, "c0", &ns, "d0").expect("veth");
    let netns = ns.name().to_owned();
    let (ours, other) = (Cli::new(), Cli::new());
    ours.run(&["--netns", &netns, "attach", "a0"]).ok();
    other.run(&["--netns", &netns, "attach", "c0"]).ok();
    let other_before = (
        other.run(&["policy", "show", "--json"]).ok().json(),
        other.run(&["prefixes", "list", "--json"]).ok().json(),
        other.run(&["status", "--json"]).ok().json()["interfaces"].clone(),
    );
    let refused = |args: &[&str], link: &Path| {
        let message = format!(
            "{} is a symbolic link; refusing to follow it out of the pin directory",
            link.display()
        );
        ours.run(args).fails(1, &message);
    };
    let writes: [&[&str]; 4] = [
        &["policy", "set", "mptcp=CS1"],
        &["prefixes", "add", "198.51.100.0/24"],
        &["stats"],
        &["status"],
    ];

    // Each kind of pin replaced by a link into the other state.
    let a_link = fs::read_dir(ours.pin_dir().join("links"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let c_link = fs::read_dir(other.pin_dir().join("links"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for (ours_path, target) in [
        (
            ours.pin_dir().join("maps/CONFIG"),
            other.pin_dir().join("maps/CONFIG"),
        ),
        (
            ours.pin_dir().join("maps/PREFIXES_V4"),
            other.pin_dir().join("maps/PREFIXES_V4"),
        ),
        (
            ours.pin_dir().join("program"),
            other.pin_dir().join("program"),
        ),
        (a_link.clone(), c_link.clone()),
    ] {
        let held = Held::take(&ours_path);
        symlink(&target, &ours_path).unwrap();
        for args in writes {
            refused(args, &ours_path);
        }
        refused(&["detach", "--all"], &ours_path);
        refused(&["--netns", &netns, "attach", "b0"], &ours_path);
        fs::remove_file(&ours_path).unwrap();
        held.restore();
    }
    // A directory of the state a link to the other state's (bpffs renames only empty ones).
    let shaping = ours.pin_dir().join("shaping");
    fs::remove_dir(&shaping).unwrap();
    symlink(other.pin_dir().join("shaping"), &shaping).unwrap();
    refused(&["policy", "set", "mptcp=CS1"], &shaping);
    fs::remove_file(&shaping).unwrap();
    fs::create_dir(&shaping).unwrap();
    set_mode(&shaping, 0o700);

    // A link above the pin directory.
    let above = PathBuf::from(format!("{}-above", ours.pin_dir().display()));
    symlink("/sys/fs/bpf", &above).unwrap();
    let via = Cli {
        pin_dir: above.join(other.pin_dir().file_name().unwrap()),
    };
    let ran = via.run(&["policy", "set", "mptcp=CS1"]);
    fs::remove_file(&above).unwrap();
    ran.fails(1, &format!("{} is a symbolic link", above.display()));
    std::mem::forget(via); // its Drop would purge the other state through the link

    let other_after = (
        other.run(&["policy", "show", "--json"]).ok().json(),
        other.run(&["prefixes", "list", "--json"]).ok().json(),
        other.run(&["status", "--json"]).ok().json()["interfaces"].clone(),
    );
    assert_eq!(
        other_after, other_before,
        "the other state was never touched"
    );
    // Ours works again as it was.
    ours.run(&["policy", "set", "list:apple=LE", "mptcp=keep"])
        .ok();
    assert!(ns.has_xdp("a0").unwrap() && ns.has_xdp("c0").unwrap());
}
