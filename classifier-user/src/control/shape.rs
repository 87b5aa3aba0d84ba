//! The egress deprioritizer: an HTB tree on an interface (a normal class with most of the
//! rate, a bulk class with a guaranteed floor, both allowed to borrow up to the full rate) and
//! the `deprioritize` tc program that steers the bulk DSCPs into the bulk class.
//!
//! The HTB tree is made with iproute2's `tc`: HTB's class options (rates, ceilings, rate
//! tables) are not covered by a maintained netlink crate, and `tc` is what operators read and
//! debug with anyway. Its errors are passed on with the command that failed.

use std::{fs, process::Command};

use aya::programs::{
    TcAttachType,
    links::{FdLink, PinnedLink},
    tc::SchedClassifierLink,
};
use classifier_common::ShapeConfig;

use super::{netns, policy::parse_dscp, state};
use crate::{
    ClassifierMaps, Egress, Error, PinDir, config_file::ConfigFile, load::WriterLock,
    load::names::MAP_SHAPING, load::restrict,
};

/// HTB handle of the root qdisc and the minor numbers of its classes.
const ROOT: &str = "1:";
const CLASS_NORMAL: u32 = 0x10;
const CLASS_BULK: u32 = 0x20;
const QUANTUM: &str = "1514";

/// The DSCPs that go to the bulk class unless told otherwise: LE (RFC 8622, what the default
/// policy marks) and CS1 (the older "scavenger" class).
pub const DEFAULT_BULK_DSCP: &str = "LE,CS1";
pub const DEFAULT_BULK_FLOOR: u8 = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeSpec {
    /// Bits per second.
    pub rate: u64,
    /// The bulk class's guaranteed share of `rate`, in percent (1..=99).
    pub bulk_floor: u8,
    pub bulk_dscp: Vec<u8>,
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

fn tc(args: &[&str]) -> Result<(), Error> {
    let output = Command::new("tc")
        .args(args)
        .output()
        .map_err(Error::io("running tc (install iproute2)"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let hint = if stderr.contains("Unknown qdisc") || stderr.contains("No such file") {
            " (this kernel may lack sch_htb)"
        } else {
            ""
        };
        return Err(Error::Command {
            command: format!("tc {}", args.join(" ")),
            stderr: format!("{stderr}{hint}"),
        });
    }
    Ok(())
}

/// Builds (or rebuilds) the HTB tree on `interface` and steers `spec.bulk_dscp` into its bulk
/// class. On a failure, what this call set up is removed again.
pub fn shape(
    pin_dir: &PinDir,
    config_file: &ConfigFile,
    interface: &str,
    spec: &ShapeSpec,
) -> Result<(), Error> {
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
    pin_dir.prepare()?;
    let _writer = WriterLock::acquire(pin_dir)?;
    let mut egress = Egress::load_pinned(pin_dir)?;
    let mut maps = state::ensure(pin_dir, &initial)?;

    let steering = ShapeConfig {
        bulk_dscp: spec
            .bulk_dscp
            .iter()
            .fold(0, |mask, dscp| mask | (1u64 << dscp)),
        normal_class: (1 << 16) | CLASS_NORMAL,
        bulk_class: (1 << 16) | CLASS_BULK,
    };
    maps.shaping
        .insert(index, steering, 0)
        .map_err(Error::map(MAP_SHAPING))?;
    let built =
        build_tree(interface, spec).and_then(|()| attach_steering(&mut egress, pin_dir, interface));
    if let Err(error) = built {
        let _ = remove_shaping(pin_dir, interface, index);
        return Err(error);
    }
    Ok(())
}

fn build_tree(interface: &str, spec: &ShapeSpec) -> Result<(), Error> {
    let bits = |rate: u64| format!("{rate}bit");
    let rate = bits(spec.rate);
    let bulk = bits(spec.rate * u64::from(spec.bulk_floor) / 100);
    let normal = bits(spec.rate * u64::from(100 - spec.bulk_floor) / 100);
    let default = format!("{CLASS_NORMAL:x}");
    let (normal_id, bulk_id) = (format!("1:{CLASS_NORMAL:x}"), format!("1:{CLASS_BULK:x}"));
    let dev = ["dev", interface];
    tc(&[
        &["qdisc", "replace"],
        &dev[..],
        &["root", "handle", ROOT, "htb", "default", &default],
    ]
    .concat())?;
    // Every class gets an explicit quantum: HTB derives one from the rate that is too big at
    // these rates (and warns on every change); with one priority per class it does not
    // affect the sharing. The normal class has priority 0: spare capacity goes to it first.
    let classes: [(&str, &str, &str, &[&str]); 3] = [
        (ROOT, "1:1", &rate, &[]),
        ("1:1", &normal_id, &normal, &["prio", "0"]),
        ("1:1", &bulk_id, &bulk, &["prio", "1"]),
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
    Ok(())
}

fn attach_steering(egress: &mut Egress, pin_dir: &PinDir, interface: &str) -> Result<(), Error> {
    let path = pin_dir.shaping().join(netns::link_pin_name(interface));
    let program = egress.program_mut()?;
    let id = match PinnedLink::from_pin(&path) {
        // Already steering: swap in this binary's program through the same link.
        Ok(link) => {
            let link = SchedClassifierLink::try_from(FdLink::from(link)).map_err(|error| {
                Error::io(format!("the egress link of {interface}"))(std::io::Error::other(error))
            })?;
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
        let link = FdLink::try_from(link).map_err(|error| {
            Error::io(format!("the egress link of {interface}"))(std::io::Error::other(error))
        })?;
        link.pin(&path).map_err(|error| {
            Error::io(format!("pinning {}", path.display()))(std::io::Error::other(error))
        })?;
        restrict(&path, 0o600)?;
    }
    Ok(())
}

/// Removes the HTB tree and the steering from `interface`. Parts already gone are fine.
pub fn unshape(pin_dir: &PinDir, interface: &str) -> Result<(), Error> {
    crate::capabilities::require("removing shaping", crate::capabilities::TC)?;
    let index = netns::ifindex(interface)?;
    let _writer = if pin_dir.path().exists() {
        Some(WriterLock::acquire(pin_dir)?)
    } else {
        None
    };
    remove_shaping(pin_dir, interface, index)
}

/// `unshape` under the writer lock its caller holds.
fn remove_shaping(pin_dir: &PinDir, interface: &str, index: u32) -> Result<(), Error> {
    let path = pin_dir.shaping().join(netns::link_pin_name(interface));
    if path.exists() {
        fs::remove_file(&path).map_err(Error::io(format!("removing {}", path.display())))?;
    }
    if let Ok(mut maps) = ClassifierMaps::open_pinned_unchecked(pin_dir) {
        let _ = maps.shaping.remove(&index);
    }
    match tc(&["qdisc", "del", "dev", interface, "root"]) {
        Ok(()) => Ok(()),
        // No root qdisc of ours: nothing to remove.
        Err(Error::Command { stderr, .. })
            if stderr.contains("Cannot delete qdisc with handle of zero")
                || stderr.contains("No such file") =>
        {
            Ok(())
        }
        Err(error) => Err(error),
    }
}
