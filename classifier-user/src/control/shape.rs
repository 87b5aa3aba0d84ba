//! The egress deprioritizer: an HTB tree on an interface (a normal class with most of the
//! rate, a bulk class with a guaranteed floor, both allowed to borrow up to the full rate) and
//! the `deprioritize` tc program that steers the bulk DSCPs into the bulk class.
//!
//! The HTB tree is made with iproute2's `tc`: HTB's class options (rates, ceilings, rate
//! tables) are not covered by a maintained netlink crate, and `tc` is what operators read and
//! debug with anyway. What `tc` did is judged by its exit status and what is on an interface
//! by its JSON (`tc -j qdisc show`); its English messages are passed on with the command that
//! failed, never interpreted.
//!
//! With fairness between devices on, the bulk class has K leaf classes, one per hash of a
//! device's address, that HTB serves in turn (docs/design.md, 'Fairness between devices').
//! They are made in one `tc -batch`, not K runs of `tc`. With flows in the normal class on,
//! the normal class likewise has N leaf classes, one per hash of a flow, made in the same
//! batch: a flow that sends little gets a nearly empty leaf of its own, which HTB serves after
//! at most one quantum of each busy one (docs/design.md, 'Flows in the normal class').
//!
//! On a router the interface may carry someone's traffic control: `shape` replaces only the
//! kernel's default root qdisc or classifier's own tree (`RootQdisc`), and `--off` removes only
//! classifier's own.

use std::{
    fs,
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
};

use aya::programs::{
    TcAttachType,
    links::{FdLink, PinnedLink},
    tc::SchedClassifierLink,
};
use classifier_common::{
    ShapeConfig,
    control::{SIDE_LAN, SIDE_WAN},
};
use serde::{Deserialize, Serialize};

use super::{WriterLock, netns, state};
use crate::{
    ClassifierMaps, Egress, Error, MapWriter, PinDir,
    config_file::ConfigFile,
    load::{parse_dscp, pinned_link::attached_ifindex, restrict},
};

/// HTB handle of the root qdisc and the minor numbers of its classes.
const ROOT: &str = "1:";
const ROOT_MAJOR: u32 = 1;
/// The root's r2q, which marks the tree as classifier's (`RootQdisc::Ours`). r2q only derives
/// the quantum of a class given none, and every class here is given one, so it has no other
/// effect. 0xc1a5: "class".
const R2Q_MARK: u32 = 0xc1a5;
const CLASS_NORMAL: u32 = 0x10;
const CLASS_BULK: u32 = 0x20;
const QUANTUM: &str = "1514";
/// The minor number of the bulk class's first fair leaf; leaf n is FIRST_LEAF + n, so 256
/// leaves read 1:100 to 1:1ff in `tc class show`, clear of the classes above.
const FIRST_LEAF: u32 = 0x100;
/// Each fair leaf's pfifo, in packets. A leaf holds one device's packets (or those of the
/// few devices that share its hash), and the bulk class's memory is K of them: 64 packets
/// keep a lone device's TCP busy at a campus share while 256 full leaves hold about 24 MB.
pub const FAIR_LEAF_PACKETS: u32 = 64;
/// The minor number of the normal class's first flow leaf: 1:2000 to 1:2fff with 4,096 leaves,
/// clear of the fair leaves (at most 1:100 to 1:10ff).
pub const FIRST_FLOW_LEAF: u32 = 0x2000;
/// Each flow leaf's pfifo, in packets. A leaf holds one flow's packets (or those of the few
/// that share its hash), so this bounds what a sparse flow that shares a busy flow's leaf
/// waits behind (64 full frames: 17 ms at 45 Mbit/s), and N full leaves hold about
/// N × 97 kB. A lone TCP download still fills the link: HTB lets its leaf borrow the whole
/// rate, and 64 packets are more than CoDel's 5 ms target at up to 150 Mbit/s.
pub const FLOW_LEAF_PACKETS: u32 = 64;
/// Leaves for flows in the normal class unless told otherwise. The chance that a sparse flow
/// shares a leaf with one of b busy flows is about b/N: 1.6 % with 4 busy flows in 256
/// leaves (6 % in 64). Idle leaves cost nothing when HTB dequeues (it keeps only the busy
/// ones in its round); making 256 is about 0.3 s of `tc` (docs/design.md, 'Flows in the
/// normal class').
pub const DEFAULT_FLOW_LEAVES: u32 = 256;
/// The most flow leaves: their minor numbers stay in 1:2000 to 1:2fff.
pub const MAX_FLOW_LEAVES: u32 = 4096;
/// The smallest rate HTB takes: it keeps rates in bytes per second, and 0 is refused.
const MIN_LEAF_RATE_BITS: u64 = 8;

/// The DSCPs that go to the bulk class unless told otherwise: LE (RFC 8622, what the default
/// policy marks) and CS1 (the older "scavenger" class).
pub const DEFAULT_BULK_DSCP: &str = "LE,CS1";
pub const DEFAULT_BULK_FLOOR: u8 = 10;
/// Leaves for fairness between devices unless told otherwise: a campus's hundreds of devices
/// mostly get a leaf of their own (docs/design.md, 'Fairness between devices').
pub const DEFAULT_FAIR_LEAVES: u32 = 256;
/// The most leaves: the leaf's minor numbers stay below 0x1100, and the leaf bits of the
/// address fold (`spread` in the kernel's egress.rs) stay within its first 12 bits.
pub const MAX_FAIR_LEAVES: u32 = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeSpec {
    /// Bits per second.
    pub rate: u64,
    /// The bulk class's guaranteed share of `rate`, in percent (1..=99).
    pub bulk_floor: u8,
    pub bulk_dscp: Vec<u8>,
    /// Leaves of the bulk class, one per hash of a device's address; None: no fairness
    /// between devices, the bulk class is one queue (as before fairness existed).
    pub fair_leaves: Option<u32>,
    /// Which side of the router the interface faces: whose address is the device's.
    pub side: Side,
    /// Leaves of the normal class, one per hash of a flow; None: the normal class is one
    /// queue (as before flows in the normal class existed).
    pub flow_leaves: Option<u32>,
}

/// Which side of the router an interface faces. It decides which address of a packet leaving
/// through it is the device's: its destination on the LAN side (downloads), its source on the
/// WAN side (uploads). The kernel cannot tell (a LAN may have public addresses, a WAN private
/// ones), so `shape` is told and writes it into the interface's `ShapeConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Lan,
    Wan,
}

impl Side {
    fn code(self) -> u32 {
        match self {
            Self::Lan => SIDE_LAN,
            Self::Wan => SIDE_WAN,
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        match code {
            SIDE_LAN => Some(Self::Lan),
            SIDE_WAN => Some(Self::Wan),
            _ => None,
        }
    }

    /// The packet's address that is the device's, for messages.
    pub fn device_address(self) -> &'static str {
        match self {
            Self::Lan => "destination",
            Self::Wan => "source",
        }
    }
}

/// "256" → Some(256), "off" → None. K must be a power of two (the kernel picks a leaf with a
/// mask, and every leaf then gets an equal part of the hashes) from 2 to MAX_FAIR_LEAVES.
pub fn parse_fair_leaves(text: &str) -> Result<Option<u32>, String> {
    parse_leaves(text, MAX_FAIR_LEAVES, "leaves of the bulk class")
}

/// `--flows`: as `parse_fair_leaves`, up to MAX_FLOW_LEAVES.
pub fn parse_flow_leaves(text: &str) -> Result<Option<u32>, String> {
    parse_leaves(text, MAX_FLOW_LEAVES, "leaves of the normal class")
}

fn parse_leaves(text: &str, most: u32, what: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let wrong = || format!("`{text}`: give a power of two from 2 to {most} ({what}), or off");
    let leaves: u32 = text.parse().map_err(|_| wrong())?;
    if !(2..=most).contains(&leaves) || !leaves.is_power_of_two() {
        return Err(wrong());
    }
    Ok(Some(leaves))
}

/// "50mbit", "1.5gbit", "800kbit", "100000bit" → bits per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let units = [
        ("tbit", 1e12),
        ("gbit", 1e9),
        ("mbit", 1e6),
        ("kbit", 1e3),
        ("bit", 1.0),
    ];
    for (unit, scale) in units {
        if let Some(number) = lower.strip_suffix(unit) {
            let value: f64 = number
                .parse()
                .map_err(|_| format!("`{text}`: `{number}` is not a number"))?;
            let bits = (value * scale).round();
            if !(1000.0..=1e13).contains(&bits) {
                return Err(format!("`{text}` is out of range (1kbit to 10tbit)"));
            }
            return Ok(bits as u64);
        }
    }
    Err(format!(
        "`{text}` is not a rate: use a number and a unit (bit, kbit, mbit, gbit), e.g. 50mbit"
    ))
}

/// "LE,CS1,8" → DSCP values.
pub fn parse_dscp_list(text: &str) -> Result<Vec<u8>, String> {
    text.split(',')
        .map(|item| parse_dscp(item.trim()))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|list| {
            if list.is_empty() {
                Err("the bulk DSCP list is empty".to_owned())
            } else {
                Ok(list)
            }
        })
}

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

/// What `shape` did.
#[derive(Clone, Debug)]
pub struct ShapeOutcome {
    /// The leaf qdisc of the normal class when it has no flow leaves, and of the bulk class
    /// when it has no fair leaves; pfifo when both have leaves (those are all pfifo).
    pub leaf: Leaf,
    /// The foreign root qdisc `--force` replaced ("tbf 1:"), if any.
    pub replaced: Option<String>,
}

/// What `unshape` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnshapeOutcome {
    /// classifier's tree and steering were there and are gone.
    Removed,
    /// Nothing of classifier's was on the interface; its root qdisc is the kernel's default.
    NothingToRemove,
}

/// One qdisc as `tc -j qdisc show` describes it.
#[derive(Clone, Debug, Deserialize)]
struct Qdisc {
    kind: String,
    /// "1:", or "0:" for a qdisc the kernel attached by itself.
    handle: String,
    #[serde(default)]
    root: bool,
    parent: Option<String>,
    #[serde(default)]
    options: serde_json::Value,
}

/// The parent of the ingress and clsact qdiscs: they hold no egress queue, so they are not
/// part of what `shape` replaces (and the steering is a TCX link, not a clsact filter).
const PARENT_INGRESS: &str = "ffff:fff1";
/// The handle the kernel gives the qdiscs it attaches itself; `tc` never makes one with it.
const HANDLE_KERNEL: &str = "0:";

impl Qdisc {
    fn describe(&self) -> String {
        format!("{} {}", self.kind, self.handle)
    }
}

/// Who owns the root of an interface's egress queue.
#[derive(Clone, Debug)]
enum RootQdisc {
    /// The kernel's own: every egress qdisc has handle 0:, which only the kernel gives (when
    /// it activates a device it attaches, as root, `noqueue` to queueless virtual devices such
    /// as veth, `mq` with one default qdisc per queue to multi-queue devices, and otherwise
    /// net.core.default_qdisc: pfifo_fast, fq_codel, fq, ...). Whatever the kind, nobody has
    /// configured anything there, so replacing it loses nothing. A qdisc made with `tc`, even a
    /// `noqueue`, always has a handle other than 0: (8001: and up when none is given).
    KernelDefault,
    /// classifier's tree: an HTB root with classifier's handle, default class and `r2q`
    /// mark, all three in what `tc -j` shows of the qdisc. The mark is what tells: `1:` with
    /// default class 10 is the textbook HTB layout, so someone's own tree may well look the
    /// same, but no one picks r2q R2Q_MARK. It travels with the qdisc, so it stays true when
    /// the pinned state does not: a `detach --purge`, a bpffs remounted, another pin
    /// directory. (A steering entry in the pinned SHAPING map would not: it outlives someone
    /// replacing the tree, and is gone when the state is purged while the tree stays.)
    Ours,
    /// Anything else: someone's traffic control, described as "kind handle".
    Foreign(String),
}

impl RootQdisc {
    fn of(interface: &str) -> Result<Self, Error> {
        let qdiscs: Vec<Qdisc> = egress_qdiscs(interface, None)?;
        let Some(root) = qdiscs.iter().find(|q| q.root) else {
            return Ok(Self::KernelDefault);
        };
        let option = |name: &str| root.options.get(name);
        if root.kind == "htb"
            && root.handle == ROOT
            && option("default").and_then(|d| d.as_str())
                == Some(format!("{CLASS_NORMAL:#x}").as_str())
            && option("r2q").and_then(|r| r.as_u64()) == Some(u64::from(R2Q_MARK))
        {
            return Ok(Self::Ours);
        }
        if root.handle != HANDLE_KERNEL {
            return Ok(Self::Foreign(root.describe()));
        }
        // A default root (mq) whose queues someone gave qdiscs of their own.
        Ok(match qdiscs.iter().find(|q| q.handle != HANDLE_KERNEL) {
            None => Self::KernelDefault,
            Some(child) => Self::Foreign(format!(
                "{} with {} under {}",
                root.describe(),
                child.describe(),
                child.parent.as_deref().unwrap_or("?")
            )),
        })
    }
}

/// The egress qdiscs of `interface` (in network namespace `netns`, a name under /run/netns,
/// or the current one), as `tc -j` lists them.
fn egress_qdiscs(interface: &str, netns: Option<&str>) -> Result<Vec<Qdisc>, Error> {
    let mut args = Vec::new();
    if let Some(name) = netns {
        args.extend(["-n", name]);
    }
    args.extend(["-j", "qdisc", "show", "dev", interface]);
    let json = tc_output(&args)?;
    let qdiscs: Vec<Qdisc> = serde_json::from_slice(&json).map_err(|error| Error::Command {
        command: format!("tc {}", args.join(" ")),
        stderr: format!("unexpected JSON: {error}"),
    })?;
    Ok(qdiscs
        .into_iter()
        .filter(|q| q.parent.as_deref() != Some(PARENT_INGRESS))
        .collect())
}

/// Runs `tc` and returns what it printed. A failure is known by the exit status alone; the
/// stderr goes into the error for the operator to read.
fn tc_output(args: &[&str]) -> Result<Vec<u8>, Error> {
    let output = Command::new("tc")
        .args(args)
        .output()
        .map_err(Error::io("running tc (install iproute2)"))?;
    if !output.status.success() {
        return Err(Error::Command {
            command: format!("tc {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output.stdout)
}

fn tc(args: &[&str]) -> Result<(), Error> {
    tc_output(args).map(drop)
}

/// Builds (or rebuilds) the HTB tree on `interface` and steers `spec.bulk_dscp` into its bulk
/// class. A root qdisc that is neither the kernel's default nor classifier's own is refused,
/// naming it and changing nothing (`Error::ForeignQdisc`). On a failure after that, what this
/// call set up is removed again.
pub fn shape(
    pin_dir: &PinDir,
    config_file: &ConfigFile,
    interface: &str,
    spec: &ShapeSpec,
) -> Result<ShapeOutcome, Error> {
    shape_on(pin_dir, config_file, interface, spec, false)
}

/// `shape`, replacing whatever root qdisc `interface` has (`--force`).
pub fn shape_forced(
    pin_dir: &PinDir,
    config_file: &ConfigFile,
    interface: &str,
    spec: &ShapeSpec,
) -> Result<ShapeOutcome, Error> {
    shape_on(pin_dir, config_file, interface, spec, true)
}

fn shape_on(
    pin_dir: &PinDir,
    config_file: &ConfigFile,
    interface: &str,
    spec: &ShapeSpec,
    force: bool,
) -> Result<ShapeOutcome, Error> {
    crate::capabilities::require("shaping (it loads a tc program)", crate::capabilities::LOAD)?;
    let tcx = aya::util::KernelVersion::new(6, 6, 0);
    if aya::util::KernelVersion::current().is_ok_and(|current| current < tcx) {
        return Err(Error::KernelTooOld {
            feature: "the egress deprioritizer (a tc program attached through a TCX link)",
            needs: "6.6",
        });
    }
    let index = netns::ifindex(interface)?;
    let initial = state::InitialState::read(config_file)?;
    let refuse_foreign = |root: RootQdisc| match root {
        RootQdisc::Foreign(qdisc) if !force => Err(Error::ForeignQdisc {
            interface: interface.to_owned(),
            netns: netns::describe_current(),
            qdisc,
            advice: format!(
                "`classifier shape {interface} --force` replaces it, and all it carries"
            ),
        }),
        root => Ok(root),
    };
    // Refused before the pin directory is made, so that a refusal changes nothing; judged
    // again under the writer lock, which another `shape` of this interface may have held.
    refuse_foreign(RootQdisc::of(interface)?)?;
    pin_dir.prepare()?;
    let lock = WriterLock::acquire(pin_dir)?;
    let root = refuse_foreign(RootQdisc::of(interface)?)?;
    let mut egress = Egress::load_pinned(pin_dir)?;
    let mut pinned = state::ensure(pin_dir, &initial, &lock)?;
    let mut maps = MapWriter::under(&lock, &mut pinned);

    let steering = steering(spec);
    // The tree first, then the steering into it: until the leaves exist, a packet steered to
    // one would fall to HTB's default class, the normal one.
    let built = build_tree(interface, spec, &root)
        .and_then(|leaf| maps.set_shaping(index, steering).map(|()| leaf))
        .and_then(|leaf| attach_steering(&mut egress, pin_dir, interface).map(|()| leaf));
    drop(pinned);
    match built {
        Ok(leaf) => Ok(ShapeOutcome {
            leaf,
            replaced: match root {
                RootQdisc::Foreign(qdisc) => Some(qdisc),
                RootQdisc::KernelDefault | RootQdisc::Ours => None,
            },
        }),
        Err(error) => {
            let _ = RootQdisc::of(interface)
                .and_then(|root| remove_shaping(pin_dir, Some(&lock), interface, index, &root));
            Err(error)
        }
    }
}

/// How the egress program steers an interface shaped by `spec`: the class ids of the tree
/// `shape` builds, the bulk DSCPs, the fair leaves and side, and the flow leaves.
pub fn steering(spec: &ShapeSpec) -> ShapeConfig {
    ShapeConfig {
        bulk_dscp: spec
            .bulk_dscp
            .iter()
            .fold(0, |mask, dscp| mask | (1u64 << dscp)),
        normal_class: (ROOT_MAJOR << 16) | CLASS_NORMAL,
        bulk_class: (ROOT_MAJOR << 16) | CLASS_BULK,
        fair_leaves: spec.fair_leaves.unwrap_or(0),
        first_leaf: (ROOT_MAJOR << 16) | FIRST_LEAF,
        side: spec.side.code(),
        flow_leaves: spec.flow_leaves.unwrap_or(0),
        first_flow_leaf: (ROOT_MAJOR << 16) | FIRST_FLOW_LEAF,
        _padding: 0,
    }
}

fn build_tree(interface: &str, spec: &ShapeSpec, root: &RootQdisc) -> Result<Leaf, Error> {
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
                let _ = tc(&[&["qdisc", "del"][..], &dev, &["root"]].concat());
            }
            tc(&[&["qdisc", "add"][..], &dev, &htb].concat())?;
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
        tc(&args)?;
    }
    let (flows, fair) = match root {
        RootQdisc::Ours => (
            leaves_of(interface, None, CLASS_NORMAL)?,
            leaves_of(interface, None, CLASS_BULK)?,
        ),
        RootQdisc::Foreign(_) | RootQdisc::KernelDefault => (Vec::new(), Vec::new()),
    };
    tc_batch(
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
                tc(&[
                    &["qdisc", "replace"][..],
                    &dev,
                    &["parent", class, kind.kind()],
                ]
                .concat())?;
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

/// The minor numbers of the leaves under classifier's class `class` (the normal or the bulk
/// one) on `interface` (in network namespace `netns`, or the current one). This iproute2 has
/// no JSON for classes (`tc -j class show` prints text), so its lines are read: `class htb
/// 1:100 parent 1:20 ...`.
fn leaves_of(interface: &str, netns: Option<&str>, class: u32) -> Result<Vec<u32>, Error> {
    let mut args = Vec::new();
    if let Some(name) = netns {
        args.extend(["-n", name]);
    }
    args.extend(["class", "show", "dev", interface]);
    let text = tc_output(&args)?;
    let parent_id = format!("{ROOT}{class:x}");
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["class", "htb", id, "parent", parent, ..] if *parent == parent_id => id
                    .strip_prefix(ROOT)
                    .and_then(|minor| u32::from_str_radix(minor, 16).ok()),
                _ => None,
            }
        })
        .collect())
}

/// Runs `tc -batch -` over `commands`, one per line. tc stops at the first that fails and
/// exits non-zero; what ran before it stays, and the caller undoes it.
fn tc_batch(commands: &str) -> Result<(), Error> {
    if commands.is_empty() {
        return Ok(());
    }
    let failed = |stderr: String| Error::Command {
        command: format!(
            "tc -batch - ({} commands, the first: {})",
            commands.lines().count(),
            commands.lines().next().unwrap_or_default()
        ),
        stderr,
    };
    let mut child = Command::new("tc")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io("running tc (install iproute2)"))?;
    let written = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(commands.as_bytes());
    let output = child
        .wait_with_output()
        .map_err(Error::io("running tc -batch"))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    written.map_err(|error| failed(format!("writing the commands: {error}")))
}

/// Gives HTB class `class` of `interface` its leaf qdisc: fq_codel if this kernel has it,
/// else pfifo. Whether it has it is learned by trying, from tc's exit status: a kernel
/// without sch_fq_codel (built in or as a module tc can load) refuses the kind. `shape`
/// calls this for the first of its two classes that has no leaves and gives the other the
/// same kind; tests call it to learn which leaf `shape` will choose.
pub fn add_leaf(interface: &str, class: &str) -> Result<Leaf, Error> {
    // No handle: the kernel picks one, so a leaf of another kind is replaced, not refused.
    let leaf = |leaf: Leaf| {
        tc(&[
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
fn attach_steering(egress: &mut Egress, pin_dir: &PinDir, interface: &str) -> Result<(), Error> {
    let path = pin_dir.shaping().join(netns::link_pin_name(interface));
    let program = egress.program_mut()?;
    let id = match PinnedLink::from_pin(&path) {
        // Already steering: swap in this binary's program through the same link.
        Ok(link) => {
            let link = SchedClassifierLink::try_from(FdLink::from(link))
                .map_err(Error::link(format!("the egress link of {interface}")))?;
            program.attach_to_link(link)
        }
        Err(_) => program.attach(interface, TcAttachType::Egress),
    }
    .map_err(|source| Error::Attach {
        interface: interface.to_owned(),
        mode: "tc egress",
        source,
    })?;
    let link = program.take_link(id).map_err(crate::Error::program(
        crate::load::names::PROGRAM_DEPRIORITIZE,
    ))?;
    if !path.exists() {
        let link = FdLink::try_from(link)
            .map_err(Error::link(format!("the egress link of {interface}")))?;
        link.pin(&path)
            .map_err(Error::pin(format!("pinning {}", path.display())))?;
        restrict(&path, 0o600)?;
    }
    Ok(())
}

/// Removes classifier's HTB tree and steering from `interface`. A root qdisc classifier did
/// not create is refused, naming it and changing nothing: `--off` removes only its own.
pub fn unshape(pin_dir: &PinDir, interface: &str) -> Result<UnshapeOutcome, Error> {
    crate::capabilities::require("removing shaping", crate::capabilities::TC)?;
    let index = netns::ifindex(interface)?;
    let lock = if pin_dir.path().exists() {
        Some(WriterLock::acquire(pin_dir)?)
    } else {
        None
    };
    let root = RootQdisc::of(interface)?;
    if let RootQdisc::Foreign(qdisc) = root {
        return Err(Error::ForeignQdisc {
            interface: interface.to_owned(),
            netns: netns::describe_current(),
            qdisc,
            advice: format!(
                "`--off` removes only classifier's own; `tc qdisc del dev {interface} root` \
                 removes it, if that is what you mean"
            ),
        });
    }
    remove_shaping(pin_dir, lock.as_ref(), interface, index, &root)
}

/// Removes the steering of `interface`, and its root qdisc if that is ours (`root`), under the
/// writer lock (none without a pin directory: no steering to remove).
fn remove_shaping(
    pin_dir: &PinDir,
    lock: Option<&WriterLock>,
    interface: &str,
    index: u32,
    root: &RootQdisc,
) -> Result<UnshapeOutcome, Error> {
    let path = pin_dir.shaping().join(netns::link_pin_name(interface));
    let mut removed = false;
    if path.exists() {
        fs::remove_file(&path).map_err(Error::io(format!("removing {}", path.display())))?;
        removed = true;
    }
    if pin_dir.has_state()
        && let Some(lock) = lock
        && let Ok(mut maps) = ClassifierMaps::open_pinned_unchecked(pin_dir)
    {
        removed |= MapWriter::under(lock, &mut maps)
            .remove_shaping(index)
            .unwrap_or(false);
    }
    if let RootQdisc::Ours = root {
        tc(&["qdisc", "del", "dev", interface, "root"])?;
        removed = true;
    }
    Ok(if removed {
        UnshapeOutcome::Removed
    } else {
        UnshapeOutcome::NothingToRemove
    })
}

/// An interface `shape` steers, as its pin under `shaping/` names it, and the leaf qdiscs
/// its HTB classes have now.
#[derive(Clone, Debug, Serialize)]
pub struct ShapedInterface {
    pub interface: String,
    /// Inode of the network namespace, when not the host's.
    pub netns: Option<u64>,
    /// The kind of the leaf qdiscs ("fq_codel" or "pfifo"), as `tc -j` reports them; None
    /// when they cannot be read (a namespace with no name under /run/netns, an interface
    /// gone) or the classes have none (both split into leaves). Two kinds read
    /// "fq_codel,pfifo". The fair and flow leaves are not counted here: they are always pfifo.
    pub leaf: Option<String>,
    /// How many leaf classes share the bulk class between devices, as `tc` lists them; None
    /// when there are none (fairness off) or they cannot be read.
    pub fair_leaves: Option<u32>,
    /// How many leaf classes share the normal class between flows, as `tc` lists them; None
    /// when there are none (`--flows off`) or they cannot be read.
    pub flow_leaves: Option<u32>,
    /// The side the interface faces, as its steering entry says: "lan" (devices are the
    /// destinations) or "wan" (the sources); None when the entry cannot be found.
    pub side: Option<Side>,
}

/// The interfaces this pin directory shapes, with the leaf qdiscs they use. `maps` gives
/// each one's side, found by the interface index its egress link is attached to.
pub fn shaped_interfaces(
    pin_dir: &PinDir,
    maps: &ClassifierMaps,
) -> Result<Vec<ShapedInterface>, Error> {
    let dir = pin_dir.shaping();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut shaped = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::io(format!("reading {}", dir.display())))?;
        let pin = entry.file_name().to_string_lossy().into_owned();
        let (interface, netns) = match pin.split_once("@netns-") {
            Some((interface, inode)) => (interface.to_owned(), inode.parse().ok()),
            None => (pin.clone(), None),
        };
        let here = netns::link_pin_name(&interface) == pin;
        let netns_name = if here {
            None
        } else {
            netns.and_then(netns_named)
        };
        let readable = here || netns_name.is_some();
        let leaf = readable
            .then(|| leaf_kinds(&interface, netns_name.as_deref()))
            .flatten();
        let count = |class: u32| {
            readable
                .then(|| leaves_of(&interface, netns_name.as_deref(), class).ok())
                .flatten()
                .and_then(|leaves| u32::try_from(leaves.len()).ok())
                .filter(|&count| count > 0)
        };
        let (fair_leaves, flow_leaves) = (count(CLASS_BULK), count(CLASS_NORMAL));
        let side = attached_ifindex(&entry.path())
            .ok()
            .flatten()
            .and_then(|ifindex| maps.shaping(ifindex).ok().flatten())
            .and_then(|steering| Side::from_code(steering.side));
        shaped.push(ShapedInterface {
            interface,
            netns,
            leaf,
            fair_leaves,
            flow_leaves,
            side,
        });
    }
    shaped.sort_by(|a, b| (&a.interface, a.netns).cmp(&(&b.interface, b.netns)));
    Ok(shaped)
}

/// The kinds of the qdiscs under classifier's two HTB classes, joined by commas.
fn leaf_kinds(interface: &str, netns: Option<&str>) -> Option<String> {
    let classes = [
        format!("{ROOT}{CLASS_NORMAL:x}"),
        format!("{ROOT}{CLASS_BULK:x}"),
    ];
    let mut kinds: Vec<String> = egress_qdiscs(interface, netns)
        .ok()?
        .into_iter()
        .filter(|q| q.parent.as_ref().is_some_and(|p| classes.contains(p)))
        .map(|q| q.kind)
        .collect();
    kinds.sort();
    kinds.dedup();
    (!kinds.is_empty()).then(|| kinds.join(","))
}

/// The name under /run/netns of the network namespace with inode `inode`, for `tc -n`.
fn netns_named(inode: u64) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    fs::read_dir(Path::new("/run/netns"))
        .ok()?
        .flatten()
        .find(|entry| fs::metadata(entry.path()).is_ok_and(|meta| meta.ino() == inode))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
}
