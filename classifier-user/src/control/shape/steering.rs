//! The egress program's side of shaping: the steering entry it reads for an interface
//! (`ShapeConfig`: which DSCPs go to the bulk class, the class ids of the tree, the leaves and
//! the side) and its TCX egress link, pinned under `shaping/`.

use aya::programs::{
    TcAttachType,
    links::{FdLink, PinnedLink},
    tc::SchedClassifierLink,
};
use classifier_common::ShapeConfig;

use super::ShapeSpec;
use crate::{
    Error, PinDir, Steer,
    load::{names::PROGRAM_STEER, netns::link_pin_name, restrict},
    tc::layout::{CLASS_BULK, CLASS_NORMAL, FIRST_FLOW_LEAF, FIRST_LEAF, ROOT_MAJOR},
};

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

/// Attaches the `steer` program at `interface`'s egress through a TCX link pinned
/// under `shaping/`, or, when one is pinned already, swaps this binary's program into it.
pub(super) fn attach_steering(
    egress: &mut Steer,
    pin_dir: &PinDir,
    interface: &str,
) -> Result<(), Error> {
    let path = pin_dir.shaping().join(link_pin_name(interface));
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
    let link = program
        .take_link(id)
        .map_err(Error::program(PROGRAM_STEER))?;
    if !path.exists() {
        let link = FdLink::try_from(link)
            .map_err(Error::link(format!("the egress link of {interface}")))?;
        link.pin(&path)
            .map_err(Error::pin(format!("pinning {}", path.display())))?;
        restrict(&path, 0o600)?;
    }
    Ok(())
}
