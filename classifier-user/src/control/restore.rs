//! `classifier state restore FILE`: puts back what `state save` kept (docs/design.md,
//! 'Upgrades'): each list in the file gets exactly its saved prefixes (a hitless replace,
//! created if new), then the saved policy and dry-run switch are put in force. Lists not in
//! the file and what DNS taught are left alone.
//!
//! Everything is read and checked before the first write: the file's format, every list name,
//! every rule, the lists the rules name, and that the rules and the new lists fit. Each list's replace is planned against the map
//! sizes and undone if a write fails; a failure names the list, leaves the lists before it
//! restored and the policy as it was, and the same restore can simply be run again.

use std::{collections::BTreeSet, path::Path};

use classifier_common::limits::{MAX_LISTS, MAX_RULES};
use serde::Serialize;

use super::{
    WriterLock, policy,
    prefixes::{self, Applied, Change},
};
use crate::{
    ClassifierMaps, Error, MapWriter, PinDir,
    load::{ListNames, rules::Rule, validate_name},
    report::saved_state::{SAVED_STATE_FORMAT, SavedState},
    trust,
};

/// What a restore did (`state restore -j`, `docs/json/state-restore.schema.json`).
#[derive(Clone, Debug, Serialize)]
pub struct Restored {
    pub lists: Vec<RestoredList>,
    pub rules: usize,
    pub dry_run: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RestoredList {
    pub list: String,
    #[serde(flatten)]
    pub applied: Applied,
}

/// The largest saved state read: 2 M prefixes of 40 bytes of JSON each, and some.
const SAVED_STATE_LIMIT: u64 = 128 << 20;

/// Reads a file `state save` wrote, trusted as a config file is (`trust::read_file`).
pub fn read_saved(path: &Path) -> Result<SavedState, Error> {
    let bad = |reason: String| Error::SavedStateFile {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = trust::read_file(path, SAVED_STATE_LIMIT).map_err(|error| {
        trust::read_error(error, |error| bad(format!("cannot read it: {error}")))
    })?;
    let saved: SavedState =
        serde_json::from_slice(&bytes).map_err(|error| bad(error.to_string()))?;
    if saved.format != SAVED_STATE_FORMAT {
        return Err(bad(format!(
            "format {}, this version reads format {SAVED_STATE_FORMAT}",
            saved.format
        )));
    }
    Ok(saved)
}

/// Restores `saved` into the state in `pin_dir`, as one writer.
pub fn restore(pin_dir: &PinDir, saved: &SavedState) -> Result<Restored, Error> {
    for list in &saved.lists {
        validate_name(&list.name)?;
    }
    let rules: Vec<Rule> = saved
        .rules
        .iter()
        .map(|rule| rule.parse())
        .collect::<Result<_, _>>()?;
    let lock = WriterLock::acquire(pin_dir)?;
    let mut pinned = ClassifierMaps::open_pinned(pin_dir)?;
    let mut maps = MapWriter::under(&lock, &mut pinned);
    let mut names = ListNames::read(&maps)?;
    check_rule_lists(&rules, &names, saved)?;
    check_fits(&rules, &names, saved)?;
    let mut restored = Vec::new();
    for list in &saved.lists {
        let bit = names.get_or_create(&mut maps, &list.name)?;
        let change = Change::Replace {
            list: bit,
            prefixes: list.prefixes.clone(),
        };
        let applied = prefixes::apply(&mut maps, &change)?;
        restored.push(RestoredList {
            list: list.name.clone(),
            applied,
        });
    }
    policy::set(&mut maps, Some(rules.as_slice()), Some(saved.dry_run))?;
    Ok(Restored {
        lists: restored,
        rules: rules.len(),
        dry_run: saved.dry_run,
    })
}

/// The rules and the new lists fit, checked before any write: a policy holds `MAX_RULES`
/// rules, the state `MAX_LISTS` lists. (Whether the prefixes fit the tries is each list's
/// plan's check, made before that list's first write.)
fn check_fits(rules: &[Rule], names: &ListNames, saved: &SavedState) -> Result<(), Error> {
    if let Some(extra) = rules.get(MAX_RULES) {
        return Err(Error::InvalidRule {
            rule: extra.to_string(),
            reason: format!("a policy holds at most {MAX_RULES} rules"),
        });
    }
    let new: BTreeSet<&str> = saved
        .lists
        .iter()
        .map(|list| list.name.as_str())
        .filter(|name| names.bit(name).is_none())
        .collect();
    if names.iter().count() + new.len() > MAX_LISTS as usize {
        return Err(Error::ListsFull { max: MAX_LISTS });
    }
    Ok(())
}

/// Every list a rule names is in the file or in the state already, checked before any write.
fn check_rule_lists(rules: &[Rule], names: &ListNames, saved: &SavedState) -> Result<(), Error> {
    let known: BTreeSet<&str> = saved
        .lists
        .iter()
        .map(|list| list.name.as_str())
        .chain(names.iter().map(|(_, name)| name))
        .collect();
    for rule in rules {
        if let Some(missing) = rule
            .lists
            .iter()
            .find(|name| !known.contains(name.as_str()))
        {
            return Err(Error::UnknownList {
                name: missing.clone(),
                known: known.iter().copied().collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(())
}
