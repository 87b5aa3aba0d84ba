//! The egress deprioritizer: an HTB tree on an interface (a normal class with most of the
//! rate, a bulk class with a guaranteed floor, both allowed to borrow up to the full rate) and
//! the `steer` tc program that steers the bulk DSCPs into the bulk class. This module
//! puts them on an interface and takes them off, in order, under the writer lock, undoing
//! what it did when a step fails; each step is a file:
//!
//! - `spec`: what is asked for (flags, defaults);
//! - `root`: whose root qdisc the interface has, and so whether `shape` may replace it;
//! - `tree`: building the tree with `tc` (the program itself is run by `crate::tc`);
//! - `steering`: the egress program's steering entry and its pinned link.
//!
//! What is shaped now, as `classifier status` shows it, is `report::shaping`.

mod root;
mod spec;
mod steering;
mod tree;

use std::fs;

use self::{root::RootQdisc, steering::attach_steering, tree::build_tree};
pub use self::{
    spec::{
        DEFAULT_BULK_DSCP, DEFAULT_BULK_FLOOR, DEFAULT_FAIR_LEAVES, DEFAULT_FLOW_LEAVES,
        MAX_FAIR_LEAVES, MAX_FLOW_LEAVES, ShapeSpec, parse_dscp_list, parse_fair_leaves,
        parse_flow_leaves, parse_rate,
    },
    steering::steering,
    tree::{FAIR_LEAF_PACKETS, FLOW_LEAF_PACKETS, Leaf, add_leaf},
};
use super::{WriterLock, netns, state};
use crate::{
    ClassifierMaps, Error, MapWriter, PinDir, Steer,
    config_file::ConfigFile,
    load::netns::{describe_current, link_pin_name},
    tc,
};
pub use crate::{
    load::Side,
    tc::layout::{CLASS_BULK, CLASS_NORMAL, FIRST_FLOW_LEAF, ROOT_MAJOR},
};

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
            netns: describe_current(),
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
    let mut egress = Steer::load_pinned(pin_dir)?;
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
            netns: describe_current(),
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
    let path = pin_dir.shaping().join(link_pin_name(interface));
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
        tc::run(&["qdisc", "del", "dev", interface, "root"])?;
        removed = true;
    }
    Ok(if removed {
        UnshapeOutcome::Removed
    } else {
        UnshapeOutcome::NothingToRemove
    })
}
