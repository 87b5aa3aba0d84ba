//! The ordered policy: the first rule whose conditions all hold gives the action.

use classifier_common::{
    Config,
    config::RULE_MATCH_MPTCP,
    flow::{ACTION_NONE, NO_RULE},
};

/// The decision made outside a new flow's insert: again for a flow the table holds (the
/// generation moved, its MPTCP state changed), or for each packet classified by its addresses
/// alone, which is never remembered. `decide` as one BPF-to-BPF subprogram for those call
/// sites, whose stacks cannot spare an inlined copy.
#[inline(never)]
pub fn decide_again(mptcp: bool, lists: u32, config: &Config) -> (u8, u8) {
    decide(mptcp, lists, config)
}

/// Returns (action, rule index), or (`ACTION_NONE`, `NO_RULE`) when no rule matches.
/// Inlined into the flow table's update (`classifier_track`): a flow's first packet makes
/// no call to decide, whose return costs about 9 ns on a host with AMD's "Safe RET".
#[inline(always)]
pub fn decide(mptcp: bool, lists: u32, config: &Config) -> (u8, u8) {
    let rule_count = config.rule_count as usize;
    for (index, rule) in config.rules.iter().enumerate() {
        if index >= rule_count {
            break;
        }
        let mptcp_ok = rule.flags & RULE_MATCH_MPTCP == 0 || mptcp;
        let lists_ok = rule.lists == 0 || rule.lists & lists != 0;
        if mptcp_ok && lists_ok {
            return (rule.action, index as u8);
        }
    }
    (ACTION_NONE, NO_RULE)
}
