//! nftables counters in a namespace, as the tests read them.

use classifier_lab::{Netns, nft::Counters};

/// Loads `rules` (one table `inet verify`) into `ns` and returns a reader of its counters'
/// packet counts, in rule order.
pub fn nft_counters<'a>(ns: &'a Netns, rules: &str) -> impl Fn() -> Vec<u64> + 'a {
    let counters = Counters::load(ns, rules).expect("loading nft rules");
    move || counters.read().expect("reading nft counters")
}
