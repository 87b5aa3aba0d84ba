//! The ordered policy: the first rule whose conditions all hold gives the action.

use classifier_common::{
    Config,
    config::RULE_MATCH_MPTCP,
    flow::{ACTION_NONE, NO_RULE},
};

/// Returns (action, rule index), or (`ACTION_NONE`, `NO_RULE`) when no rule matches.
/// Not inlined: it runs only when a flow's decision is (re)computed.
#[inline(never)]
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
