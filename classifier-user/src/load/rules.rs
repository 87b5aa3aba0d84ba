//! The policy's rules, in the operator's words and in `CONFIG`: ordered rules `MATCH=ACTION`,
//! first match wins.
//!
//! - MATCH is `mptcp`, `list:NAME`, or both joined by `+` (`mptcp+list:apple`);
//! - ACTION is a DSCP by name (CS0–CS7, AF11–AF43, EF, LE) or number (0–63), or `keep` to count
//!   the traffic and leave its DSCP alone.
//!
//! Parsing, printing, and the translation to and from `Config::rules` (list names to bits and
//! back) touch no map: the config file checks its policy with them, `control::policy` writes
//! what they encode, `report::policy` shows what they decode.

use std::fmt;

use classifier_common::{
    Config, PolicyRule,
    config::{ACTION_KEEP, DSCP_MAX, RULE_MATCH_MPTCP},
    limits::MAX_RULES,
};

use super::{ListNames, dscp_name, parse_dscp, validate_name};
use crate::Error;

/// What a rule does with matching traffic.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Dscp(u8),
    Keep,
}

/// One rule as text-level values (list names, not bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub mptcp: bool,
    pub lists: Vec<String>,
    pub action: Action,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dscp(value) => f.write_str(&dscp_name(*value)),
            Self::Keep => f.write_str("keep"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.mptcp {
            parts.push("mptcp".to_owned());
        }
        parts.extend(self.lists.iter().map(|name| format!("list:{name}")));
        write!(f, "{}={}", parts.join("+"), self.action)
    }
}

impl std::str::FromStr for Rule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidRule {
            rule: text.to_owned(),
            reason,
        };
        let (matches, action) = text
            .split_once('=')
            .ok_or_else(|| invalid("expected MATCH=ACTION, e.g. list:apple=LE".to_owned()))?;
        let action = if action.eq_ignore_ascii_case("keep") {
            Action::Keep
        } else {
            Action::Dscp(parse_dscp(action).map_err(invalid)?)
        };
        let mut rule = Rule {
            mptcp: false,
            lists: Vec::new(),
            action,
        };
        for part in matches.split('+') {
            if part == "mptcp" {
                rule.mptcp = true;
            } else if let Some(name) = part.strip_prefix("list:") {
                validate_name(name).map_err(|e| invalid(e.to_string()))?;
                rule.lists.push(name.to_owned());
            } else {
                return Err(invalid(format!(
                    "`{part}` is not a match: use `mptcp` or `list:NAME`"
                )));
            }
        }
        Ok(rule)
    }
}

/// Writes `rules` into `config`, resolving list names to bits.
pub fn encode(rules: &[Rule], names: &ListNames, config: &mut Config) -> Result<(), Error> {
    if rules.len() > MAX_RULES {
        return Err(Error::InvalidRule {
            rule: rules[MAX_RULES].to_string(),
            reason: format!("a policy holds at most {MAX_RULES} rules"),
        });
    }
    let mut encoded = [PolicyRule::default(); MAX_RULES];
    for (slot, rule) in encoded.iter_mut().zip(rules) {
        for name in &rule.lists {
            slot.lists |= 1 << names.require(name)?;
        }
        slot.flags = if rule.mptcp { RULE_MATCH_MPTCP } else { 0 };
        slot.action = match rule.action {
            Action::Dscp(value) => value,
            Action::Keep => ACTION_KEEP,
        };
    }
    config.rules = encoded;
    config.rule_count = rules.len() as u32;
    Ok(())
}

/// The rules in `config`, with list names.
pub fn decode(config: &Config, names: &ListNames) -> Vec<Rule> {
    config
        .rules
        .iter()
        .take((config.rule_count as usize).min(MAX_RULES))
        .map(|rule| Rule {
            mptcp: rule.flags & RULE_MATCH_MPTCP != 0,
            lists: names.names_in(rule.lists),
            action: if rule.action == ACTION_KEEP {
                Action::Keep
            } else {
                Action::Dscp(rule.action & DSCP_MAX)
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_and_print_the_same() {
        for text in [
            "list:apple=LE",
            "mptcp=keep",
            "mptcp+list:apple=AF11",
            "list:cdn=7",
        ] {
            let rule: Rule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
        assert_eq!("mptcp=ef".parse::<Rule>().unwrap().action, Action::Dscp(46));
    }

    #[test]
    fn bad_rules_say_why() {
        for (text, hint) in [
            ("apple=LE", "is not a match"),
            ("list:apple", "expected MATCH=ACTION"),
            ("list:apple=64", "is not a DSCP"),
            ("list:Apple=LE", "not a valid list name"),
        ] {
            let message = text.parse::<Rule>().unwrap_err().to_string();
            assert!(message.contains(hint), "{text}: {message}");
        }
    }
}
