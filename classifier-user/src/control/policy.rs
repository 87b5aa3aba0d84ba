//! Changing the policy (`classifier policy set`): new rules, the dry-run switch, or both, in
//! one published configuration. The rules' syntax and their encoding are `load::rules`; what
//! `policy show` prints is `report::policy`.

use classifier_common::{Config, config::CONFIG_DRY_RUN};
use serde::Serialize;

use super::WriterLock;
use crate::{
    ClassifierMaps, Error, MapWriter, PinDir,
    load::{
        ListNames,
        rules::{Rule, encode},
    },
    report::policy::PolicyView,
};

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
