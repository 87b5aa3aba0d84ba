//! What is on an interface's tc ingress, as the kernel says: the programs of its TCX links,
//! and the qdiscs `tc` shows.

use aya::programs::{SchedClassifier, TcAttachType};
use classifier_lab::Netns;

/// Ids of the programs attached at `device`'s TCX ingress in `ns`, in the order they run.
pub fn ingress_programs(ns: &Netns, device: &str) -> Vec<u32> {
    ns.enter(|| {
        let (_, programs) = SchedClassifier::query_tcx(device, TcAttachType::Ingress)
            .unwrap_or_else(|error| panic!("querying {device}'s TCX ingress: {error}"));
        programs.iter().map(|program| program.id()).collect()
    })
    .expect("entering the namespace")
}

/// `tc qdisc show dev DEVICE` in `ns`: an ingress or clsact qdisc would show here.
pub fn qdiscs(ns: &Netns, device: &str) -> String {
    let output = ns
        .exec("tc", &["qdisc", "show", "dev", device])
        .expect("tc qdisc show");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
