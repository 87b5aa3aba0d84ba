//! The policy as an operator writes it: ordered rules `MATCH=ACTION`, first match wins.
//!
//! - MATCH is `mptcp`, `list:NAME`, or both joined by `+` (`mptcp+list:apple`);
//! - ACTION is a DSCP by name (CS0–CS7, AF11–AF43, EF, LE) or number (0–63), or `keep` to count
//!   the traffic and leave its DSCP alone.

use std::fmt;

use classifier_common::{
    Config, PolicyRule,
    config::{ACTION_KEEP, CONFIG_DRY_RUN, DSCP_MAX, RULE_MATCH_MPTCP},
    limits::MAX_RULES,
};

use serde::Serialize;

use super::WriterLock;
use crate::load::ListNames;
use crate::{Error, MapWriter, PinDir, load::ClassifierMaps};

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

const DSCP_NAMES: [(&str, u8); 22] = [
    ("CS0", 0),
    ("LE", 1),
    ("CS1", 8),
    ("AF11", 10),
    ("AF12", 12),
    ("AF13", 14),
    ("CS2", 16),
    ("AF21", 18),
    ("AF22", 20),
    ("AF23", 22),
    ("CS3", 24),
    ("AF31", 26),
    ("AF32", 28),
    ("AF33", 30),
    ("CS4", 32),
    ("AF41", 34),
    ("AF42", 36),
    ("AF43", 38),
    ("CS5", 40),
    ("EF", 46),
    ("CS6", 48),
    ("CS7", 56),
];

/// A DSCP from its name (any case) or number.
pub fn parse_dscp(text: &str) -> Result<u8, String> {
    if let Some((_, value)) = DSCP_NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
    {
        return Ok(*value);
    }
    match text.parse::<u8>() {
        Ok(value) if value <= DSCP_MAX => Ok(value),
        _ => Err(format!(
            "`{text}` is not a DSCP: use a name (CS0-CS7, AF11-AF43, EF, LE), a number 0-63, \
             or `keep`"
        )),
    }
}

/// The DSCP's name when it has one, else its number.
pub fn dscp_name(value: u8) -> String {
    DSCP_NAMES
        .iter()
        .find(|(_, v)| *v == value)
        .map_or_else(|| value.to_string(), |(name, _)| (*name).to_owned())
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
                crate::load::validate_name(name).map_err(|e| invalid(e.to_string()))?;
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

/// The policy as `classifier policy` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyView {
    pub rules: Vec<String>,
    pub dry_run: bool,
}

impl PolicyView {
    pub fn of(config: &Config, names: &ListNames) -> Self {
        Self {
            rules: decode(config, names)
                .iter()
                .map(ToString::to_string)
                .collect(),
            dry_run: config.flags & CONFIG_DRY_RUN != 0,
        }
    }
}

/// The policy in force in the state in `pin_dir`.
pub fn show(pin_dir: &PinDir) -> Result<PolicyView, Error> {
    let maps = ClassifierMaps::open_pinned(pin_dir)?;
    let names = ListNames::read(&maps)?;
    Ok(PolicyView::of(&maps.config()?, &names))
}

/// What `policy set` did: the policy now in force and the one it replaced (`policy set -j`
/// prints the first's keys and `previous`).
#[derive(Clone, Debug, Serialize)]
pub struct PolicyChange {
    #[serde(flatten)]
    pub now: PolicyView,
    pub previous: PolicyView,
}

/// `classifier policy set` on the state in `pin_dir`, as one writer: `rules` as typed (none:
/// the rules stay) and the dry-run switch (None: it stays).
pub fn change(
    pin_dir: &PinDir,
    rules: &[String],
    dry_run: Option<bool>,
) -> Result<PolicyChange, Error> {
    let lock = WriterLock::acquire(pin_dir)?;
    let mut pinned = ClassifierMaps::open_pinned(pin_dir)?;
    let mut maps = MapWriter::under(&lock, &mut pinned);
    let names = ListNames::read(&maps)?;
    let previous = PolicyView::of(&maps.config()?, &names);
    let rules: Vec<Rule> = rules
        .iter()
        .map(|rule| rule.parse())
        .collect::<Result<_, _>>()?;
    let rules = (!rules.is_empty()).then_some(&rules[..]);
    let config = set(&mut maps, rules, dry_run)?;
    Ok(PolicyChange {
        now: PolicyView::of(&config, &names),
        previous,
    })
}

/// `classifier policy set`: puts `rules` (unless `None`: the rules stay) and the dry-run
/// switch (unless `None`) in force in one published configuration, and returns it. The
/// caller holds the writer lock.
pub fn set(
    maps: &mut MapWriter<'_>,
    rules: Option<&[Rule]>,
    dry_run: Option<bool>,
) -> Result<Config, Error> {
    let names = ListNames::read(maps)?;
    let mut config = maps.config()?;
    if let Some(rules) = rules {
        encode(rules, &names, &mut config)?;
    }
    match dry_run {
        Some(true) => config.flags |= CONFIG_DRY_RUN,
        Some(false) => config.flags &= !CONFIG_DRY_RUN,
        None => {}
    }
    maps.publish(&config)?;
    maps.config()
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
