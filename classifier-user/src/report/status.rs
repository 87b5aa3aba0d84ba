//! `classifier status`: what is attached where, how full the maps are, and the policy.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aya::programs::{
    ProgramInfo,
    links::{FdLink, LinkType, PinnedLink},
};
use classifier_common::limits::FLOW_ENTRIES_TOTAL;
use serde::Serialize;

use crate::{
    ClassifierMaps, Error, Hook, PinDir,
    load::{AttachMode, ListNames, pinned_link::attached_ifindex},
    padded_name,
    report::{
        policy::PolicyView,
        shaping::{ShapedInterface, shaped_interfaces},
    },
};

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub pin_dir: String,
    /// The pinned XDP program (`classify`).
    pub program: Option<ProgramStatus>,
    /// The pinned tc program (`classify_tc`).
    pub program_tc: Option<ProgramStatus>,
    pub interfaces: Vec<InterfaceStatus>,
    /// The interfaces `shape` steers, and the leaf qdisc their classes queue in.
    pub shaped: Vec<ShapedInterface>,
    pub prefixes: PrefixCounts,
    pub flows: FlowFill,
    pub policy: PolicyStatus,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProgramStatus {
    pub id: u32,
    /// RFC 3339, UTC.
    pub loaded_at: Option<String>,
    pub instructions: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InterfaceStatus {
    pub interface: String,
    /// Inode of the network namespace, when not the host's.
    pub netns: Option<u32>,
    /// "xdp" or "tc".
    pub hook: &'static str,
    /// "native" or "skb" (XDP), "tcx" (tc).
    pub mode: &'static str,
    pub link_id: u32,
    pub program_id: u32,
    pub attached_at: Option<String>,
    /// The interface was deleted while attached: the link is defunct, attached to nothing,
    /// until `detach` removes it or `attach` replaces it.
    pub interface_gone: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PrefixCounts {
    pub ipv4: usize,
    pub ipv6: usize,
    /// Prefixes each list holds itself (not counting what it inherits).
    pub lists: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FlowFill {
    pub used: usize,
    pub max: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyStatus {
    pub rules: Vec<String>,
    pub dry_run: bool,
    /// Bumped by every change of prefixes or policy.
    pub generation: u32,
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The status of the state in `pin_dir`.
pub fn read(pin_dir: &PinDir) -> Result<Status, Error> {
    let maps = ClassifierMaps::open_pinned(pin_dir)?;
    status(pin_dir, &maps)
}

pub fn status(pin_dir: &PinDir, maps: &ClassifierMaps) -> Result<Status, Error> {
    let program_of = |hook: Hook| {
        ProgramInfo::from_pin(pin_dir.program_of(hook))
            .ok()
            .map(|info| ProgramStatus {
                id: info.id(),
                loaded_at: info.loaded_at().map(rfc3339),
                instructions: info.size_translated().map(|bytes| bytes / 8),
            })
    };
    let mut interfaces = Vec::new();
    for pin in pin_dir.link_pins()? {
        let Ok(link) = PinnedLink::from_pin(pin_dir.link(&pin)) else {
            continue;
        };
        let Ok(info) = FdLink::from(link).info() else {
            continue;
        };
        let attachment = maps.attachment(info.id())?;
        let name = attachment.map_or_else(
            || pin.split('@').next().unwrap_or(&pin).to_owned(),
            |a| padded_name(&a.name),
        );
        interfaces.push(InterfaceStatus {
            interface: name,
            netns: attachment.and_then(|a| (a.netns_inode != 0).then_some(a.netns_inode)),
            hook: attachment.map_or(
                if info.link_type().ok() == Some(LinkType::Tcx) {
                    "tc"
                } else {
                    "xdp"
                },
                |a| AttachMode::from_code(a.mode).hook().name(),
            ),
            mode: attachment.map_or("unknown", |a| AttachMode::from_code(a.mode).name()),
            link_id: info.id(),
            program_id: info.program_id(),
            attached_at: attachment
                .map(|a| rfc3339(UNIX_EPOCH + Duration::from_secs(a.attached_at))),
            interface_gone: matches!(attached_ifindex(&pin_dir.link(&pin)), Ok(None)),
        });
    }
    let names = ListNames::read(maps)?;
    let prefixes = maps.prefixes()?;
    let mut lists: BTreeMap<String, usize> =
        names.iter().map(|(_, name)| (name.to_owned(), 0)).collect();
    for (_, value) in &prefixes {
        for name in names.names_in(value.own) {
            *lists.entry(name).or_default() += 1;
        }
    }
    let used = maps.flow_count();
    let policy = PolicyView::of(&maps.config()?, &names);
    Ok(Status {
        pin_dir: pin_dir.path().display().to_string(),
        program: program_of(Hook::Xdp),
        program_tc: program_of(Hook::Tc),
        interfaces,
        shaped: shaped_interfaces(pin_dir, maps)?,
        prefixes: PrefixCounts {
            ipv4: prefixes
                .iter()
                .filter(|(p, _)| matches!(p, ipnet::IpNet::V4(_)))
                .count(),
            ipv6: prefixes
                .iter()
                .filter(|(p, _)| matches!(p, ipnet::IpNet::V6(_)))
                .count(),
            lists,
        },
        flows: FlowFill {
            used,
            max: FLOW_ENTRIES_TOTAL,
        },
        policy: PolicyStatus {
            rules: policy.rules,
            dry_run: policy.dry_run,
            generation: maps.generation()?,
        },
    })
}
