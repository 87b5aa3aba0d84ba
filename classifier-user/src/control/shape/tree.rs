//! Building classifier's HTB tree with `tc`: a root with the full rate, a normal class with
//! most of it and a bulk class with a guaranteed floor, both allowed to borrow up to the full
//! rate, the normal class first; under each, its leaves or its one queue.
//!
//! With fairness between devices on, the bulk class has K leaf classes, one per hash of a
//! device's address, that HTB serves in turn (docs/design.md, 'Fairness between devices').
//! With flows in the normal class on, the normal class likewise has N leaf classes, one per
//! hash of a flow: a flow that sends little gets a nearly empty leaf of its own, which HTB
//! serves after at most one quantum of each busy one (docs/design.md, 'Flows in the normal
//! class'). Both sets are made in one `tc -batch`, not one run of `tc` per class.

use serde::Serialize;

use super::{ShapeSpec, root::RootQdisc};
use crate::{
    Error,
    tc::{
        self,
        layout::{CLASS_BULK, CLASS_NORMAL, FIRST_FLOW_LEAF, FIRST_LEAF, R2Q_MARK, ROOT},
    },
};

/// Every class's quantum, one full frame (`build_tree` says why each class is given one).
const QUANTUM: &str = "1514";
/// Each fair leaf's pfifo, in packets. A leaf holds one device's packets (or those of the
/// few devices that share its hash), and the bulk class's memory is K of them: 64 packets
/// keep a lone device's TCP busy at a campus share while 256 full leaves hold about 24 MB.
pub const FAIR_LEAF_PACKETS: u32 = 64;
/// Each flow leaf's pfifo, in packets. A leaf holds one flow's packets (or those of the few
/// that share its hash), so this bounds what a sparse flow that shares a busy flow's leaf
/// waits behind (64 full frames: 17 ms at 45 Mbit/s), and N full leaves hold about
/// N × 97 kB. A lone TCP download still fills the link: HTB lets its leaf borrow the whole
/// rate, and 64 packets are more than CoDel's 5 ms target at up to 150 Mbit/s.
pub const FLOW_LEAF_PACKETS: u32 = 64;
/// The smallest rate HTB takes: it keeps rates in bytes per second, and 0 is refused.
const MIN_LEAF_RATE_BITS: u64 = 8;

/// The qdisc under each HTB class, where the packets of a class wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Leaf {
    /// Flow queueing with CoDel: one flow cannot fill the class's queue for the others, and
    /// standing queues are kept short. What a router kernel usually has.
    FqCodel,
    /// A plain FIFO of packets, which every kernel has (this project's test kernel does not
    /// build sch_fq_codel).
    Pfifo,
}

impl Leaf {
    /// The qdisc kind, as `tc` names it.
    pub fn kind(self) -> &'static str {
        match self {
            Self::FqCodel => "fq_codel",
            Self::Pfifo => "pfifo",
        }
    }
}

/// Builds classifier's tree on `interface` as `spec` asks, over `root` (already judged
/// replaceable): the root and its two classes, the leaves of each (in one `tc -batch`), and
/// the queue of a class without leaves. Returns that queue's kind.
pub(super) fn build_tree(
    interface: &str,
    spec: &ShapeSpec,
    root: &RootQdisc,
) -> Result<Leaf, Error> {
    let bits = |rate: u64| format!("{rate}bit");
    let rate = bits(spec.rate);
    let bulk = bits(spec.rate * u64::from(spec.bulk_floor) / 100);
    let normal = bits(spec.rate * u64::from(100 - spec.bulk_floor) / 100);
    let default = format!("{CLASS_NORMAL:x}");
    let (normal_id, bulk_id) = (
        format!("{ROOT}{CLASS_NORMAL:x}"),
        format!("{ROOT}{CLASS_BULK:x}"),
    );
    let dev = ["dev", interface];
    let r2q = R2Q_MARK.to_string();
    let htb = [
        "root", "handle", ROOT, "htb", "default", &default, "r2q", &r2q,
    ];
    match root {
        // Ours already has this root (HTB cannot change one in place anyway); its classes are
        // changed in place below, keeping their queues and counters.
        RootQdisc::Ours => {}
        // A foreign root is deleted first: `replace` would keep its classes and filters when
        // it is an HTB with the same handle. Then `add`, not `replace`: it succeeds only over
        // the kernel's default, so a qdisc someone added meanwhile is not replaced.
        RootQdisc::Foreign(_) | RootQdisc::KernelDefault => {
            if matches!(root, RootQdisc::Foreign(_)) {
                // A default mq root (handle 0:) cannot be deleted, and `add` replaces it.
                let _ = tc::run(&[&["qdisc", "del"][..], &dev, &["root"]].concat());
            }
            tc::run(&[&["qdisc", "add"][..], &dev, &htb].concat())?;
        }
    }
    // Every class gets an explicit quantum: HTB derives one from the rate that is too big at
    // these rates (and warns on every change); with one priority per class it does not
    // affect the sharing. The normal class has priority 0: spare capacity goes to it first.
    let top = format!("{ROOT}1");
    let classes: [(&str, &str, &str, &[&str]); 3] = [
        (ROOT, &top, &rate, &[]),
        (&top, &normal_id, &normal, &["prio", "0"]),
        (&top, &bulk_id, &bulk, &["prio", "1"]),
    ];
    for (parent, classid, class_rate, prio) in classes {
        let args = [
            &["class", "replace"][..],
            &dev,
            &[
                "parent", parent, "classid", classid, "htb", "rate", class_rate, "ceil", &rate,
            ],
            prio,
            &["quantum", QUANTUM],
        ]
        .concat();
        tc::run(&args)?;
    }
    let (flows, fair) = match root {
        RootQdisc::Ours => (
            tc::leaves_of(interface, None, CLASS_NORMAL)?,
            tc::leaves_of(interface, None, CLASS_BULK)?,
        ),
        RootQdisc::Foreign(_) | RootQdisc::KernelDefault => (Vec::new(), Vec::new()),
    };
    tc::batch(
        &(flow_leaf_commands(interface, spec, &flows)
            + &fair_leaf_commands(interface, spec, &fair)),
    )?;
    // A class without leaves is a leaf again (HTB gave it a default pfifo when its last child
    // went), and gets the queue it had before leaves existed: the same kind for both.
    let mut leaf: Option<Leaf> = None;
    for (leaves, class) in [(spec.flow_leaves, &normal_id), (spec.fair_leaves, &bulk_id)] {
        if leaves.is_some() {
            continue;
        }
        leaf = Some(match leaf {
            None => add_leaf(interface, class)?,
            Some(kind) => {
                tc::run(
                    &[
                        &["qdisc", "replace"][..],
                        &dev,
                        &["parent", class, kind.kind()],
                    ]
                    .concat(),
                )?;
                kind
            }
        });
    }
    Ok(leaf.unwrap_or(Leaf::Pfifo))
}

/// The `tc -batch` lines that give the normal class `spec.flow_leaves` leaves, from the leaves
/// it has now (`existing`, minor numbers), as `fair_leaf_commands` does for the bulk class:
/// each leaf guaranteed its part of the normal class's rate, allowed the full rate, priority 0
/// as the normal class had (HTB reads only leaves' priorities), a pfifo of FLOW_LEAF_PACKETS.
/// A leaf that sends below its part is served before those that borrow: a sparse flow's
/// packet goes out ahead of the bulk flows' queues.
fn flow_leaf_commands(interface: &str, spec: &ShapeSpec, existing: &[u32]) -> String {
    let leaves = spec.flow_leaves.unwrap_or(0);
    let wanted = FIRST_FLOW_LEAF..FIRST_FLOW_LEAF + leaves;
    let mut lines = String::new();
    for minor in existing.iter().filter(|minor| !wanted.contains(minor)) {
        lines += &format!("class del dev {interface} classid {ROOT}{minor:x}\n");
    }
    let normal = spec.rate * u64::from(100 - spec.bulk_floor) / 100;
    let leaf_rate = (normal / u64::from(leaves.max(1))).max(MIN_LEAF_RATE_BITS);
    for minor in wanted {
        lines += &format!(
            "class replace dev {interface} parent {ROOT}{CLASS_NORMAL:x} classid {ROOT}{minor:x} \
             htb rate {leaf_rate}bit ceil {}bit prio 0 quantum {QUANTUM}\n\
             qdisc replace dev {interface} parent {ROOT}{minor:x} handle {minor:x}: pfifo \
             limit {FLOW_LEAF_PACKETS}\n",
            spec.rate
        );
    }
    lines
}

/// The `tc -batch` lines that give the bulk class `spec.fair_leaves` leaves, from the leaves
/// it has now (`existing`, minor numbers): those beyond K are deleted, the others made or
/// changed in place (their queues and counters kept), each with a pfifo of FAIR_LEAF_PACKETS.
/// With fairness off, every leaf is deleted.
fn fair_leaf_commands(interface: &str, spec: &ShapeSpec, existing: &[u32]) -> String {
    let leaves = spec.fair_leaves.unwrap_or(0);
    let wanted = FIRST_LEAF..FIRST_LEAF + leaves;
    let mut lines = String::new();
    for minor in existing.iter().filter(|minor| !wanted.contains(minor)) {
        lines += &format!("class del dev {interface} classid {ROOT}{minor:x}\n");
    }
    if leaves == 0 {
        return lines;
    }
    // Each leaf is guaranteed its part of the floor and may borrow up to the full rate, like
    // the bulk class: what the classes above leave is shared by HTB's round robin between
    // these equal siblings (same priority, same quantum), so between devices.
    let floor = spec.rate * u64::from(spec.bulk_floor) / 100;
    let leaf_rate = (floor / u64::from(leaves)).max(MIN_LEAF_RATE_BITS);
    for minor in wanted {
        lines += &format!(
            "class replace dev {interface} parent {ROOT}{CLASS_BULK:x} classid {ROOT}{minor:x} \
             htb rate {leaf_rate}bit ceil {}bit quantum {QUANTUM}\n\
             qdisc replace dev {interface} parent {ROOT}{minor:x} handle {minor:x}: pfifo \
             limit {FAIR_LEAF_PACKETS}\n",
            spec.rate
        );
    }
    lines
}

/// Gives HTB class `class` of `interface` its leaf qdisc: fq_codel if this kernel has it,
/// else pfifo. Whether it has it is learned by trying, from tc's exit status: a kernel
/// without sch_fq_codel (built in or as a module tc can load) refuses the kind. `shape`
/// calls this for the first of its two classes that has no leaves and gives the other the
/// same kind; tests call it to learn which leaf `shape` will choose.
pub fn add_leaf(interface: &str, class: &str) -> Result<Leaf, Error> {
    // No handle: the kernel picks one, so a leaf of another kind is replaced, not refused.
    let leaf = |leaf: Leaf| {
        tc::run(&[
            "qdisc",
            "replace",
            "dev",
            interface,
            "parent",
            class,
            leaf.kind(),
        ])
        .map(|()| leaf)
    };
    leaf(Leaf::FqCodel).or_else(|_| leaf(Leaf::Pfifo))
}
