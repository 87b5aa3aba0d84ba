//! What `tc` shows of an interface's egress: its qdiscs, from `tc -j qdisc show`, and the
//! leaves of a class of classifier's tree, from the lines of `tc class show`.

use serde::Deserialize;

use super::{layout::ROOT, output};
use crate::Error;

/// One qdisc as `tc -j qdisc show` describes it.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Qdisc {
    pub(crate) kind: String,
    /// "1:", or "0:" for a qdisc the kernel attached by itself.
    pub(crate) handle: String,
    #[serde(default)]
    pub(crate) root: bool,
    pub(crate) parent: Option<String>,
    #[serde(default)]
    pub(crate) options: serde_json::Value,
}

/// The parent of the ingress and clsact qdiscs: they hold no egress queue, so they are not
/// part of what `shape` replaces (and the steering is a TCX link, not a clsact filter).
const PARENT_INGRESS: &str = "ffff:fff1";
/// The handle the kernel gives the qdiscs it attaches itself; `tc` never makes one with it.
pub(crate) const HANDLE_KERNEL: &str = "0:";

impl Qdisc {
    /// "kind handle", as messages name it.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.kind, self.handle)
    }
}

/// The egress qdiscs of `interface` (in network namespace `netns`, a name under /run/netns,
/// or the current one), as `tc -j` lists them.
pub(crate) fn egress_qdiscs(interface: &str, netns: Option<&str>) -> Result<Vec<Qdisc>, Error> {
    let mut args = Vec::new();
    if let Some(name) = netns {
        args.extend(["-n", name]);
    }
    args.extend(["-j", "qdisc", "show", "dev", interface]);
    let json = output(&args)?;
    let qdiscs: Vec<Qdisc> = serde_json::from_slice(&json).map_err(|error| Error::Command {
        command: format!("tc {}", args.join(" ")),
        stderr: format!("unexpected JSON: {error}"),
    })?;
    Ok(qdiscs
        .into_iter()
        .filter(|q| q.parent.as_deref() != Some(PARENT_INGRESS))
        .collect())
}

/// The minor numbers of the leaves under classifier's class `class` (the normal or the bulk
/// one) on `interface` (in network namespace `netns`, or the current one). This iproute2 has
/// no JSON for classes (`tc -j class show` prints text), so its lines are read: `class htb
/// 1:100 parent 1:20 ...`.
pub(crate) fn leaves_of(
    interface: &str,
    netns: Option<&str>,
    class: u32,
) -> Result<Vec<u32>, Error> {
    let mut args = Vec::new();
    if let Some(name) = netns {
        args.extend(["-n", name]);
    }
    args.extend(["class", "show", "dev", interface]);
    let text = output(&args)?;
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
