//! `shape` on an interface that may carry someone's traffic control: it replaces only the
//! kernel's default root qdisc or classifier's own tree, refuses anything else by name with
//! exit code 2 and nothing changed (unless --force), and `--off` removes only its own. Each
//! HTB class queues in fq_codel where the kernel has it, else pfifo, and `status` says which.
//! With fairness between devices (docs/design.md, 'Fairness between devices') the bulk class
//! has K leaves, shown by `tc` and `status`, changed in place by another `shape`, taken away
//! by `--fair off` (which leaves the tree of before fairness, exactly), and a `tc -batch`
//! that fails half-way leaves nothing behind. Every interface is a veth in a namespace the
//! test creates; what is on it is read back with `tc -j qdisc show` and `tc class show`.

use classifier_testkit as support;

use classifier::control::shape::{self, Leaf};
use classifier_lab::{Netns, veth};
use serde_json::Value;
use support::cli::Cli;

/// A namespace with the veth pair x0–x1.
fn namespace() -> Netns {
    let ns = Netns::create("clst-sh").expect("namespace");
    veth(&ns, "x0", &ns, "x1").expect("veth");
    ns
}

/// The inode of the namespace, as status names it.
fn inode(ns: &Netns) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(ns.path())
        .expect("the namespace's file")
        .ino()
}

fn tc(ns: &Netns, args: &[&str]) {
    ns.exec("tc", args)
        .unwrap_or_else(|error| panic!("tc {args:?}: {error}"));
}

/// The egress qdiscs of `dev`, as `tc -j` lists them.
fn qdiscs(ns: &Netns, dev: &str) -> Vec<Value> {
    let output = ns
        .exec("tc", &["-j", "qdisc", "show", "dev", dev])
        .expect("tc -j qdisc show");
    serde_json::from_slice(&output.stdout).expect("tc's JSON")
}

fn root(qdiscs: &[Value]) -> &Value {
    qdiscs
        .iter()
        .find(|q| q["root"] == true)
        .unwrap_or_else(|| panic!("no root qdisc in {qdiscs:?}"))
}

/// A textbook HTB tree (handle 1:, default class 10, classes 1:1, 1:10, 1:20 and one of its
/// own, 1:30, with a leaf): what a handle-and-shape check alone would take for classifier's.
fn textbook_htb(ns: &Netns) {
    tc(
        ns,
        &[
            "qdisc", "add", "dev", "x0", "root", "handle", "1:", "htb", "default", "10",
        ],
    );
    for (parent, classid) in [
        ("1:", "1:1"),
        ("1:1", "1:10"),
        ("1:1", "1:20"),
        ("1:1", "1:30"),
    ] {
        tc(
            ns,
            &[
                "class", "add", "dev", "x0", "parent", parent, "classid", classid, "htb", "rate",
                "5mbit",
            ],
        );
    }
    tc(
        ns,
        &[
            "qdisc", "add", "dev", "x0", "parent", "1:30", "handle", "30:", "pfifo",
        ],
    );
}

fn tbf(ns: &Netns) {
    tc(
        ns,
        &[
            "qdisc", "add", "dev", "x0", "root", "handle", "1:", "tbf", "rate", "1mbit", "burst",
            "32k", "latency", "400ms",
        ],
    );
}

#[test]
fn a_foreign_root_qdisc_is_refused_by_name_and_left_untouched_unless_forced() {
    let ns = namespace();
    let cli = Cli::new();
    let netns = ns.name().to_owned();
    let shape = |extra: &[&str]| {
        let mut args = vec!["--netns", &netns, "shape", "x0", "--rate", "10mbit"];
        args.extend_from_slice(extra);
        cli.run(&args)
    };

    tbf(&ns);
    let before = qdiscs(&ns, "x0");
    shape(&[]).fails(
        2,
        "its root qdisc is tbf 1:, which classifier did not create",
    );
    assert_eq!(qdiscs(&ns, "x0"), before, "the tbf must be left as it was");
    assert!(!cli.pin_dir().exists(), "a refusal must not make the state");

    // The textbook HTB tree has classifier's handle and default class: refused all the same.
    tc(&ns, &["qdisc", "del", "dev", "x0", "root"]);
    textbook_htb(&ns);
    let before = qdiscs(&ns, "x0");
    shape(&[]).fails(
        2,
        "its root qdisc is htb 1:, which classifier did not create",
    );
    assert_eq!(
        qdiscs(&ns, "x0"),
        before,
        "the HTB tree must be left as it was"
    );

    // --force replaces it whole: none of its classes' leaves is left.
    let ran = shape(&["--force"]).ok();
    assert!(
        ran.stdout
            .contains("x0: replaced the root qdisc htb 1: (--force)"),
        "{}",
        ran.stdout
    );
    let after = qdiscs(&ns, "x0");
    assert_eq!(root(&after)["kind"], "htb");
    assert_ne!(root(&after)["options"]["r2q"], before[0]["options"]["r2q"]);
    assert!(
        after.iter().all(|q| q["parent"] != "1:30"),
        "the foreign tree's leaf survived --force: {after:?}"
    );
    // Now it is classifier's: shaping again changes it without --force.
    shape(&["--bulk-floor", "20"]).ok();
    cli.run(&["--netns", &netns, "shape", "x0", "--off"]).ok();
}

#[test]
fn off_removes_only_classifiers_own_tree() {
    let ns = namespace();
    let cli = Cli::new();
    let netns = ns.name().to_owned();
    let off = || cli.run(&["--netns", &netns, "shape", "x0", "--off"]);

    for foreign in [tbf as fn(&Netns), textbook_htb] {
        foreign(&ns);
        let before = qdiscs(&ns, "x0");
        let kind = root(&before)["kind"].as_str().unwrap().to_owned();
        off()
            .fails(2, &format!("its root qdisc is {kind} 1:"))
            .fails(2, "`--off` removes only classifier's own");
        assert_eq!(qdiscs(&ns, "x0"), before, "--off must leave {kind} alone");
        tc(&ns, &["qdisc", "del", "dev", "x0", "root"]);
    }

    let fresh = qdiscs(&ns, "x0");
    assert_eq!(
        root(&fresh)["handle"],
        "0:",
        "a fresh veth has the kernel's default root"
    );
    cli.run(&["--netns", &netns, "shape", "x0", "--rate", "10mbit"])
        .ok();
    assert_eq!(root(&qdiscs(&ns, "x0"))["kind"], "htb");
    let ran = off().ok();
    assert!(ran.stdout.contains("x0: shaping removed"), "{}", ran.stdout);
    assert_eq!(qdiscs(&ns, "x0"), fresh, "--off must restore the default");
    let ran = off().ok();
    assert!(
        ran.stdout.contains("x0: not shaped by classifier"),
        "{}",
        ran.stdout
    );
}

#[test]
fn each_class_queues_in_fq_codel_where_the_kernel_has_it_else_pfifo() {
    let ns = namespace();
    veth(&ns, "y0", &ns, "y1").expect("scratch veth");
    let cli = Cli::new();
    let netns = ns.name().to_owned();

    // What this kernel has, asked directly: does it take an fq_codel qdisc at all?
    let has_fq_codel = ns
        .exec("tc", &["qdisc", "add", "dev", "y1", "root", "fq_codel"])
        .is_ok();
    // What shape will choose: the library function it uses, on a scratch HTB class.
    tc(
        &ns,
        &["qdisc", "add", "dev", "y0", "root", "handle", "1:", "htb"],
    );
    tc(
        &ns,
        &[
            "class", "add", "dev", "y0", "parent", "1:", "classid", "1:1", "htb", "rate", "1mbit",
        ],
    );
    let leaf = ns
        .enter(|| shape::add_leaf("y0", "1:1"))
        .expect("entering the namespace")
        .expect("a leaf qdisc");
    let expected = if has_fq_codel {
        Leaf::FqCodel
    } else {
        Leaf::Pfifo
    };
    assert_eq!(leaf, expected, "fq_codel taken: {has_fq_codel}");
    println!("this kernel's leaf: {}", leaf.kind());

    let ran = cli
        .run(&[
            "--netns", &netns, "shape", "x0", "--rate", "10mbit", "--fair", "off", "--flows", "off",
        ])
        .ok();
    assert!(
        ran.stdout
            .contains(&format!("each class queues in {}", leaf.kind())),
        "{}",
        ran.stdout
    );
    let on_x0 = qdiscs(&ns, "x0");
    for class in ["1:10", "1:20"] {
        let kinds: Vec<&Value> = on_x0
            .iter()
            .filter(|q| q["parent"] == class)
            .map(|q| &q["kind"])
            .collect();
        assert_eq!(kinds, [leaf.kind()], "leaf of {class}: {on_x0:?}");
    }

    // status says so, from inside the namespace and from the host (through /run/netns).
    for args in [vec!["--netns", &netns, "status"], vec!["status"]] {
        let json = cli.run(&[&args[..], &["--json"]].concat()).ok().json();
        let shaped = json["shaped"].as_array().expect("status lists shaped");
        assert_eq!(shaped.len(), 1, "{shaped:?}");
        assert_eq!(shaped[0]["interface"], "x0");
        assert_eq!(shaped[0]["leaf"], leaf.kind(), "{args:?}");
        assert_eq!(shaped[0]["fair_leaves"], Value::Null, "{args:?}");
        let text = cli.run(&args).ok().stdout;
        assert!(
            text.contains(&format!(
                "shaped: x0 (netns {}), classes queue in {}",
                inode(&ns),
                leaf.kind()
            )),
            "{text}"
        );
    }
    cli.run(&["--netns", &netns, "shape", "x0", "--off"]).ok();
}

/// The classes of `dev` as `tc class show` prints them (this iproute2 has no JSON for
/// classes), sorted, with the kernel-chosen handles of their leaf qdiscs left out.
fn classes(ns: &Netns, dev: &str) -> Vec<String> {
    let output = ns
        .exec("tc", &["class", "show", "dev", dev])
        .expect("tc class show");
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let mut kept = Vec::new();
            let mut skip = false;
            for word in words {
                if std::mem::take(&mut skip) {
                    continue;
                }
                if word == "leaf" {
                    skip = true;
                    continue;
                }
                kept.push(word);
            }
            kept.join(" ")
        })
        .collect();
    lines.sort();
    lines
}

/// The fair leaves under the bulk class: classes whose parent is 1:20.
fn fair_leaves(ns: &Netns, dev: &str) -> Vec<String> {
    classes(ns, dev)
        .into_iter()
        .filter(|line| line.contains(" parent 1:20 "))
        .collect()
}

/// The flow leaves under the normal class: classes whose parent is 1:10.
fn flow_leaves(ns: &Netns, dev: &str) -> Vec<String> {
    classes(ns, dev)
        .into_iter()
        .filter(|line| line.contains(" parent 1:10 "))
        .collect()
}

/// The egress qdiscs of `dev` without their kernel-chosen handles or counters, sorted. HTB's
/// `direct_packets_stat` is a counter: a packet the kernel sent in the instant a class was
/// being rebuilt (an IPv6 router solicitation, say) goes by the direct queue and moves it.
fn qdisc_shapes(ns: &Netns, dev: &str) -> Vec<String> {
    let mut shapes: Vec<String> = qdiscs(ns, dev)
        .iter()
        .map(|q| {
            let handle = if q["root"] == true {
                q["handle"].to_string()
            } else {
                String::new()
            };
            let mut options = q["options"].clone();
            if let Some(options) = options.as_object_mut() {
                options.remove("direct_packets_stat");
            }
            format!("{} {handle} {} {options}", q["kind"], q["parent"])
        })
        .collect();
    shapes.sort();
    shapes
}

#[test]
fn fair_leaves_are_built_shown_changed_in_place_and_taken_away() {
    let ns = namespace();
    veth(&ns, "y0", &ns, "y1").expect("second veth");
    let cli = Cli::new();
    let netns = ns.name().to_owned();
    let shape = |dev: &str, extra: &[&str]| {
        let mut args = vec!["--netns", &netns, "shape", dev, "--rate", "10mbit"];
        args.extend_from_slice(extra);
        cli.run(&args)
    };
    let status = || {
        let json = cli
            .run(&["--netns", &netns, "status", "--json"])
            .ok()
            .json();
        let text = cli.run(&["--netns", &netns, "status"]).ok().stdout;
        (json["shaped"][0].clone(), text)
    };

    // The default: 256 leaves, 1:100 to 1:1ff, each with a pfifo of 64 packets.
    let ran = shape("x0", &[]).ok();
    assert!(
        ran.stdout.contains(
            "bulk is shared between devices (by destination address, LAN side) in 256 leaves"
        ),
        "{}",
        ran.stdout
    );
    let leaves = fair_leaves(&ns, "x0");
    assert_eq!(leaves.len(), 256, "{leaves:?}");
    let on_x0 = qdiscs(&ns, "x0");
    for minor in 0x100..0x200 {
        let parent = format!("1:{minor:x}");
        let leaf: Vec<&Value> = on_x0.iter().filter(|q| q["parent"] == parent).collect();
        assert_eq!(leaf.len(), 1, "leaf qdisc of {parent}: {leaf:?}");
        assert_eq!(leaf[0]["kind"], "pfifo");
        assert_eq!(leaf[0]["options"]["limit"], 64);
    }
    assert!(
        on_x0.iter().all(|q| q["parent"] != "1:20"),
        "the bulk class is an inner class now: {on_x0:?}"
    );
    let (json, text) = status();
    assert_eq!(json["fair_leaves"], 256, "{json}");
    assert_eq!(json["side"], "lan", "{json}");
    assert!(
        text.contains("bulk fair between devices in 256 leaves, by destination address"),
        "{text}"
    );

    // Fewer leaves and the WAN side, changed in place: the leaves beyond 16 are gone.
    shape("x0", &["--fair", "16", "--side", "wan"]).ok();
    let leaves = fair_leaves(&ns, "x0");
    assert_eq!(leaves.len(), 16, "{leaves:?}");
    assert!(
        leaves.iter().all(|l| {
            let minor = l
                .split_whitespace()
                .nth(2)
                .unwrap()
                .trim_start_matches("1:");
            (0x100..0x110).contains(&u32::from_str_radix(minor, 16).unwrap())
        }),
        "{leaves:?}"
    );
    let (json, text) = status();
    assert_eq!(
        (json["fair_leaves"].clone(), json["side"].clone()),
        (16.into(), "wan".into())
    );
    assert!(text.contains("in 16 leaves, by source address"), "{text}");

    // Bad K: refused by name, nothing changed.
    let before = (classes(&ns, "x0"), qdiscs(&ns, "x0"));
    for bad in ["300", "1", "8192", "0", "lots"] {
        shape("x0", &["--fair", bad])
            .fails(2, &format!("`{bad}`: give a power of two from 2 to 4096"));
    }
    assert_eq!((classes(&ns, "x0"), qdiscs(&ns, "x0")), before);

    // --fair off: the tree of before fairness, exactly as a fresh `--fair off` builds it.
    shape("x0", &["--fair", "off"]).ok();
    shape("y0", &["--fair", "off"]).ok();
    assert_eq!(fair_leaves(&ns, "x0"), Vec::<String>::new());
    assert_eq!(classes(&ns, "x0"), classes(&ns, "y0"));
    assert_eq!(qdisc_shapes(&ns, "x0"), qdisc_shapes(&ns, "y0"));
    let json = cli
        .run(&["--netns", &netns, "status", "--json"])
        .ok()
        .json();
    assert!(
        json["shaped"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["fair_leaves"].is_null()),
        "{json}"
    );
    for dev in ["x0", "y0"] {
        cli.run(&["--netns", &netns, "shape", dev, "--off"]).ok();
    }
}

/// A directory holding a `tc` that runs the first `commands` lines of a batch with the real
/// tc and then one that fails, as a kernel out of memory half-way through would; any other
/// use of tc goes to the real one.
fn tc_failing_after(commands: usize) -> tempdir::TempDir {
    let dir = tempdir::TempDir::new();
    let real = ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .expect("iproute2's tc");
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = \"-batch\" ]; then\n\
         \x20 {{ head -n {commands}; echo 'class add dev no-such-device parent 1: classid 1:2 htb rate 1mbit'; }} | {real} \"$@\"\n\
         \x20 exit $?\n\
         fi\n\
         exec {real} \"$@\"\n"
    );
    let path = dir.path().join("tc");
    std::fs::write(&path, script).expect("writing the tc wrapper");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

mod tempdir {
    /// A directory of this test's own under the system's temporary directory, removed on drop.
    pub struct TempDir(std::path::PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("clst-tc-{}", std::process::id()));
            std::fs::create_dir_all(&path).expect("temporary directory");
            Self(path)
        }

        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn a_batch_that_fails_half_way_leaves_the_interface_as_it_was() {
    let ns = namespace();
    let cli = Cli::new();
    let netns = ns.name().to_owned();
    let fresh = qdiscs(&ns, "x0");
    let failing = tc_failing_after(100);
    let path = format!(
        "{}:{}",
        failing.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran: support::cli::Ran = cli
        .command()
        .env("PATH", &path)
        .args(["--netns", &netns, "shape", "x0", "--rate", "10mbit"])
        .output()
        .expect("running the classifier binary")
        .into();
    // 1,024 commands: the 256 flow leaves' 512 first, so the 101st fails among them.
    let ran = ran.fails(1, "tc -batch - (1024 commands");
    println!("{}", ran.stderr);
    assert_eq!(
        qdiscs(&ns, "x0"),
        fresh,
        "the half-built tree must be gone: the kernel's default root again"
    );
    assert_eq!(classes(&ns, "x0"), Vec::<String>::new());
    let json = cli
        .run(&["--netns", &netns, "status", "--json"])
        .ok()
        .json();
    assert_eq!(json["shaped"], serde_json::json!([]), "{json}");
}

#[test]
fn flow_leaves_are_built_shown_changed_in_place_and_taken_away() {
    let ns = namespace();
    veth(&ns, "y0", &ns, "y1").expect("second veth");
    let cli = Cli::new();
    let netns = ns.name().to_owned();
    let shape = |dev: &str, extra: &[&str]| {
        let mut args = vec!["--netns", &netns, "shape", dev, "--rate", "10mbit"];
        args.extend_from_slice(extra);
        cli.run(&args)
    };
    let status = || {
        let json = cli
            .run(&["--netns", &netns, "status", "--json"])
            .ok()
            .json();
        let text = cli.run(&["--netns", &netns, "status"]).ok().stdout;
        (json["shaped"][0].clone(), text)
    };

    // The default: 256 leaves, 1:2000 to 1:20ff, each guaranteed 9 Mbit/s / 256 (tc shows
    // 35152bit, its rounding of 35156), allowed the full rate, priority 0 (as the normal
    // class), with a pfifo of 64 packets.
    let ran = shape("x0", &[]).ok();
    assert!(
        ran.stdout
            .contains("the normal class is shared between flows in 256 leaves of a pfifo of 64"),
        "{}",
        ran.stdout
    );
    let json = shape("x0", &["--json"]).ok().json();
    assert_eq!(json["flow_leaves"], 256, "{json}");
    let leaves = flow_leaves(&ns, "x0");
    assert_eq!(leaves.len(), 256, "{leaves:?}");
    for leaf in &leaves {
        assert!(
            leaf.contains(" prio 0 ")
                && leaf.contains(" rate 3515")
                && leaf.contains(" ceil 10Mbit "),
            "{leaf}"
        );
    }
    let on_x0 = qdiscs(&ns, "x0");
    for minor in 0x2000..0x2100 {
        let parent = format!("1:{minor:x}");
        let leaf: Vec<&Value> = on_x0.iter().filter(|q| q["parent"] == parent).collect();
        assert_eq!(leaf.len(), 1, "leaf qdisc of {parent}: {leaf:?}");
        assert_eq!(leaf[0]["kind"], "pfifo");
        assert_eq!(leaf[0]["options"]["limit"], 64);
    }
    assert!(
        on_x0.iter().all(|q| q["parent"] != "1:10"),
        "the normal class is an inner class now: {on_x0:?}"
    );
    let (json, text) = status();
    assert_eq!(json["flow_leaves"], 256, "{json}");
    assert!(
        text.contains("normal shared between flows in 256 leaves"),
        "{text}"
    );

    // Fewer leaves, changed in place: those beyond 16 are gone, the fair leaves untouched.
    let fair = fair_leaves(&ns, "x0");
    shape("x0", &["--flows", "16"]).ok();
    let leaves = flow_leaves(&ns, "x0");
    assert_eq!(leaves.len(), 16, "{leaves:?}");
    assert!(
        leaves.iter().all(|l| {
            let minor = l
                .split_whitespace()
                .nth(2)
                .unwrap()
                .trim_start_matches("1:");
            (0x2000..0x2010).contains(&u32::from_str_radix(minor, 16).unwrap())
        }),
        "{leaves:?}"
    );
    assert_eq!(fair_leaves(&ns, "x0"), fair);
    assert_eq!(status().0["flow_leaves"], 16);

    // Bad N: refused by name, nothing changed.
    let before = (classes(&ns, "x0"), qdiscs(&ns, "x0"));
    for bad in ["100", "1", "8192", "0", "many"] {
        shape("x0", &["--flows", bad])
            .fails(2, &format!("`{bad}`: give a power of two from 2 to 4096"));
    }
    assert_eq!((classes(&ns, "x0"), qdiscs(&ns, "x0")), before);

    // --flows off: the normal class is one queue again, exactly as a fresh `--flows off`
    // builds it; with --fair off as well, the tree of before either existed.
    for extra in [
        &["--flows", "off"][..],
        &["--flows", "off", "--fair", "off"],
    ] {
        shape("x0", extra).ok();
        shape("y0", extra).ok();
        assert_eq!(flow_leaves(&ns, "x0"), Vec::<String>::new());
        assert_eq!(classes(&ns, "x0"), classes(&ns, "y0"), "{extra:?}");
        assert_eq!(
            qdisc_shapes(&ns, "x0"),
            qdisc_shapes(&ns, "y0"),
            "{extra:?}"
        );
        assert!(
            qdiscs(&ns, "x0").iter().any(|q| q["parent"] == "1:10"),
            "the normal class has its own queue again"
        );
        // A fresh y0 each time, so that what is compared is a fresh build.
        cli.run(&["--netns", &netns, "shape", "y0", "--off"]).ok();
    }
    let json = cli
        .run(&["--netns", &netns, "status", "--json"])
        .ok()
        .json();
    assert!(json["shaped"][0]["flow_leaves"].is_null(), "{json}");
    cli.run(&["--netns", &netns, "shape", "x0", "--off"]).ok();
}
