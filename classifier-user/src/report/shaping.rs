//! What `classifier status` shows of shaping: the interfaces `shape` steers (the pins under
//! `shaping/`), the side each faces (its steering entry) and the queues of its tree (what
//! `tc` shows of it now).

use std::{fs, path::Path};

use serde::Serialize;

use crate::{
    ClassifierMaps, Error, PinDir,
    load::{Side, netns::link_pin_name, pinned_link::attached_ifindex},
    tc::{
        self,
        layout::{CLASS_BULK, CLASS_NORMAL, ROOT},
    },
};

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
        let here = link_pin_name(&interface) == pin;
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
                .then(|| tc::leaves_of(&interface, netns_name.as_deref(), class).ok())
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
    let mut kinds: Vec<String> = tc::egress_qdiscs(interface, netns)
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
