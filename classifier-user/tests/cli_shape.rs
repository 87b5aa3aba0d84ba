//! `shape` on an interface that may carry someone's traffic control: it replaces only the
//! kernel's default root qdisc or classifier's own tree, refuses anything else by name with
//! exit code 2 and nothing changed (unless --force), and `--off` removes only its own. Each
//! HTB class queues in fq_codel where the kernel has it, else pfifo, and `status` says which.
//! Every interface is a veth in a namespace the test creates; what is on it is read back with
//! `tc -j qdisc show`.

mod support;

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
        .run(&["--netns", &netns, "shape", "x0", "--rate", "10mbit"])
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
