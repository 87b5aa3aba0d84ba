//! Configuration changes made the way the CLI makes them, at random points of a fuzz run:
//! `policy set` (rules parsed and encoded by the library, then a new generation, as
//! `cli/policy.rs` does) and `prefixes add`, `remove` and `replace` (`control::prefixes::
//! apply`, the CLI's own path), on the loaded program's maps. Nothing is written to a map
//! directly. The model then reads back the configuration the kernel reads.

use std::collections::BTreeMap;

use classifier::{
    ClassifierMaps, MapWriter,
    control::{
        policy,
        prefixes::{self, Change},
    },
    load::{ListNames, rules::Rule as PolicyText},
};
use classifier_common::config::{ACTION_KEEP, RULE_MATCH_MPTCP};
use ipnet::IpNet;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use super::reference::{Action, Rule};

/// The lists, created in this order: bits 0, 1 and 2.
pub const LISTS: [&str; 3] = ["apple", "cdn", "local"];

/// The chance that a configuration change comes before a packet: about one every 1,500.
const CHANGE_CHANCE: f64 = 1.0 / 1_500.0;

/// Prefixes a change picks from: those installed at the start, others around the
/// generator's addresses (`fuzz`), host routes and default routes.
const POOL: [&str; 16] = [
    "17.0.0.0/8",
    "17.253.0.0/16",
    "23.32.0.0/11",
    "2620:149::/32",
    "2620:149:a44::/48",
    "2a02:26f0::/32",
    "fe80::/10",
    "198.51.100.0/24",
    "2001:db8::/32",
    "192.0.2.10/32",
    "10.0.0.0/8",
    "23.64.0.0/10",
    "2001:db8:1::/48",
    "2620:149:a45::1/128",
    "0.0.0.0/0",
    "::/0",
];

/// Policies a change sets, as an operator types them.
const POLICIES: [&[&str]; 5] = [
    &["mptcp+list:cdn=keep", "mptcp=CS1", "list:apple=LE"],
    &["list:apple=LE", "mptcp=CS1", "list:cdn=AF11"],
    &["mptcp=keep", "list:cdn+list:local=EF", "list:apple=7"],
    &["mptcp+list:apple=AF41", "list:local=keep", "list:cdn=CS0"],
    &[],
];

/// Random configuration changes, and how many of each were made.
pub struct ConfigChanges {
    rng: StdRng,
    pub made: BTreeMap<&'static str, u64>,
}

impl ConfigChanges {
    pub fn new(seed: u64) -> Self {
        Self {
            // Its own stream: the packets stay those of the seed whatever changes are made.
            rng: StdRng::seed_from_u64(seed ^ 0xc0f1_6c4a_4e6e),
            made: BTreeMap::new(),
        }
    }

    /// Before a packet: now and then one change, named in the return value.
    pub fn maybe_change(&mut self, maps: &mut MapWriter<'_>) -> Option<&'static str> {
        if !self.rng.random_bool(CHANGE_CHANCE) {
            return None;
        }
        let list = self.rng.random_range(0..LISTS.len() as u32);
        let what = match self.rng.random_range(0..4) {
            0 => {
                let texts = *POLICIES.choose(&mut self.rng).unwrap();
                set_policy(maps, texts);
                "policy set"
            }
            1 => {
                let prefixes = self.some_prefixes(1..=3);
                apply(maps, &Change::Add { list, prefixes });
                "prefixes add"
            }
            2 => self.remove(maps, list),
            _ => {
                let prefixes = self.some_prefixes(0..=4);
                apply(maps, &Change::Replace { list, prefixes });
                "prefixes replace"
            }
        };
        *self.made.entry(what).or_default() += 1;
        Some(what)
    }

    fn some_prefixes(&mut self, count: std::ops::RangeInclusive<usize>) -> Vec<IpNet> {
        let count = self.rng.random_range(count);
        POOL.choose_multiple(&mut self.rng, count)
            .map(|prefix| prefix.parse().expect("a pool prefix"))
            .collect()
    }

    /// Removes prefixes of one list, or of all (`--list` left out). Now and then one that is
    /// not there: the CLI refuses the whole change, and nothing may change.
    fn remove(&mut self, maps: &mut MapWriter<'_>, list: u32) -> &'static str {
        let all_lists = self.rng.random_bool(0.3);
        let mask = if all_lists { u32::MAX } else { 1 << list };
        let listed: Vec<IpNet> = maps
            .prefixes()
            .expect("reading the prefixes")
            .into_iter()
            .filter(|(_, value)| value.own & mask != 0)
            .map(|(prefix, _)| prefix)
            .collect();
        let list = (!all_lists).then_some(list);
        if listed.is_empty() || self.rng.random_bool(0.1) {
            let absent = self
                .some_prefixes(1..=1)
                .into_iter()
                .find(|prefix| !listed.contains(prefix));
            if let Some(absent) = absent {
                let before = maps.prefixes().expect("reading the prefixes");
                let change = Change::Remove {
                    list,
                    prefixes: vec![absent],
                };
                assert!(
                    prefixes::apply(maps, &change).is_err(),
                    "removing {absent}, which is not listed, must be refused"
                );
                assert_eq!(
                    maps.prefixes().expect("reading the prefixes"),
                    before,
                    "a refused removal changed the prefixes"
                );
                return "prefixes remove (refused)";
            }
        }
        let count = self.rng.random_range(1..=listed.len().clamp(1, 3));
        let prefixes = listed
            .choose_multiple(&mut self.rng, count)
            .copied()
            .collect();
        apply(maps, &Change::Remove { list, prefixes });
        "prefixes remove"
    }
}

/// `classifier prefixes add|remove|replace`: the library's change, the generation bumped by it.
fn apply(maps: &mut MapWriter<'_>, change: &Change) {
    prefixes::apply(maps, change).unwrap_or_else(|error| panic!("{change:?}: {error}"));
}

/// `classifier policy set RULE...`: parsed, then put in force by the library function the CLI
/// calls (`control::policy::set`).
pub fn set_policy(maps: &mut MapWriter<'_>, texts: &[&str]) {
    let rules: Vec<PolicyText> = texts
        .iter()
        .map(|text| text.parse().expect("a valid rule"))
        .collect();
    policy::set(maps, Some(&rules), None).expect("setting the policy");
}

/// Creates the lists in `LISTS` order, so that they get bits 0, 1, 2.
pub fn create_lists(maps: &mut MapWriter<'_>) {
    let mut names = ListNames::read(maps).expect("reading the list names");
    for (bit, name) in (0..).zip(LISTS) {
        let got = names.get_or_create(maps, name).expect("creating a list");
        assert_eq!(got, bit, "list {name} got bit {got}");
    }
}

/// Adds `prefix` to list `name`, as `classifier prefixes add PREFIX --list NAME` does.
pub fn add(maps: &mut MapWriter<'_>, name: &str, prefix: &str) {
    let list = LISTS
        .iter()
        .position(|known| *known == name)
        .expect("a known list") as u32;
    let prefixes = vec![prefix.parse().expect("a valid prefix")];
    apply(maps, &Change::Add { list, prefixes });
}

/// The configuration the kernel reads, for the model: every prefix with its effective lists,
/// and the rules.
pub fn read_back(maps: &ClassifierMaps) -> (Vec<(String, u32)>, Vec<Rule>) {
    let prefixes = maps
        .prefixes()
        .expect("reading the prefixes")
        .into_iter()
        .map(|(prefix, value)| (prefix.to_string(), value.lists))
        .collect();
    let config = maps.config().expect("reading the config");
    let rules = config
        .rules
        .iter()
        .take(config.rule_count as usize)
        .map(|rule| {
            let action = if rule.action == ACTION_KEEP {
                Action::Keep
            } else {
                Action::Dscp(rule.action)
            };
            Rule::new(rule.flags & RULE_MATCH_MPTCP != 0, rule.lists, action)
        })
        .collect();
    (prefixes, rules)
}
