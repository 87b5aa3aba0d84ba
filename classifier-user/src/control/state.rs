//! Creating the state on first attach: the lists and policy (the config file's, or the
//! shipped `apple` list and the default policy), generation 1, and the layout stamp.

use std::path::Path;

use classifier_common::config::{CONFIG_DRY_RUN, STATE_LAYOUT};
use ipnet::IpNet;

use super::WriterLock;
use super::{
    prefix_file::{parse_prefix_text, read_prefix_file},
    prefixes::{self, Change},
};
use crate::{
    Classifier, ClassifierMaps, Error, MapWriter, PinDir,
    config_file::{ConfigFile, ListFile},
    load::{
        DEFAULT_LIST, ListNames, Pinned,
        rules::{self, Rule},
    },
};

/// The `apple` list as shipped: Apple's own allocations.
pub const SHIPPED_APPLE_LIST: &str = include_str!("../../data/apple.txt");

/// The default policy: Apple traffic to Lower Effort (RFC 8622), MPTCP counted but left alone
/// (deprioritizing all MPTCP is a choice the operator makes, not the tool).
pub fn default_rules() -> Vec<Rule> {
    vec![
        "list:apple=LE".parse().expect("the default rule parses"),
        "mptcp=keep".parse().expect("the default rule parses"),
    ]
}

/// Whether `maps` were just created (no layout stamp yet).
pub fn is_fresh(maps: &ClassifierMaps) -> Result<bool, Error> {
    Ok(maps.config()?.layout == 0)
}

/// What a new state starts with, read and checked in full before anything is created.
pub struct InitialState {
    /// Lists in order, `apple` first, with their prefixes.
    lists: Vec<(String, Vec<IpNet>)>,
    rules: Vec<Rule>,
    dry_run: bool,
}

impl InitialState {
    /// The config file's lists and policy, or the shipped `apple` list and the default policy.
    /// Every list file is read now, so that a bad one fails before the state exists.
    pub fn read(config_file: &ConfigFile) -> Result<Self, Error> {
        Self::new(
            &config_file.lists,
            config_file.rules()?,
            config_file.dry_run == Some(true),
            &config_file.path,
        )
    }

    /// `lists` with their files, `rules` (None: the default policy) and dry-run; `origin`
    /// names where they came from in messages.
    pub fn new(
        lists_wanted: &[ListFile],
        rules: Option<Vec<Rule>>,
        dry_run: bool,
        origin: &Path,
    ) -> Result<Self, Error> {
        let shipped = || parse_prefix_text(Path::new("data/apple.txt"), SHIPPED_APPLE_LIST);
        let mut lists = vec![(DEFAULT_LIST.to_owned(), shipped()?)];
        for list in lists_wanted {
            let prefixes = match &list.file {
                Some(file) => read_prefix_file(file)?,
                None if list.name == DEFAULT_LIST => shipped()?,
                None => Vec::new(),
            };
            match lists.iter_mut().find(|(name, _)| *name == list.name) {
                Some(entry) => entry.1 = prefixes,
                None => lists.push((list.name.clone(), prefixes)),
            }
        }
        let rules = rules.unwrap_or_else(default_rules);
        for rule in &rules {
            for name in &rule.lists {
                if !lists.iter().any(|(list, _)| list == name) {
                    return Err(Error::ConfigFile {
                        path: origin.to_path_buf(),
                        reason: format!(
                            "policy rule `{rule}` names list `{name}`, which the file does not \
                             define"
                        ),
                    });
                }
            }
        }
        Ok(Self {
            lists,
            rules,
            dry_run,
        })
    }
}

/// Fills freshly created maps with `initial`, and writes the layout stamp last: a state
/// interrupted before it is reported as incomplete, and the next attach starts it again.
pub fn initialize(maps: &mut MapWriter<'_>, initial: &InitialState) -> Result<(), Error> {
    let mut names = ListNames::read(maps)?;
    for (name, prefixes) in &initial.lists {
        let list = names.get_or_create(maps, name)?;
        let change = Change::Replace {
            list,
            prefixes: prefixes.clone(),
        };
        prefixes::apply(maps, &change)?;
    }
    let mut config = maps.config()?;
    rules::encode(&initial.rules, &names, &mut config)?;
    if initial.dry_run {
        config.flags |= CONFIG_DRY_RUN;
    }
    config.layout = STATE_LAYOUT;
    maps.publish(&config).map(drop)
}

/// The pinned maps right after the object was loaded with them: initialized with `initial`
/// when they were just created, else checked for compatibility.
pub fn ensure(
    pin_dir: &PinDir,
    initial: &InitialState,
    lock: &WriterLock,
) -> Result<ClassifierMaps, Error> {
    let mut maps = ClassifierMaps::open_pinned_unchecked(pin_dir)?;
    if is_fresh(&maps)? {
        initialize(&mut MapWriter::under(lock, &mut maps), initial)?;
    }
    drop(maps);
    ClassifierMaps::open_pinned(pin_dir)
}

/// The programs loaded with their maps pinned in `pin_dir` (prepared), the state initialized
/// with `initial` if it is new, under the writer lock; nothing attached. What `attach` does
/// first, for the benchmarks that measure the pinned state.
pub fn load_pinned(pin_dir: &PinDir, initial: &InitialState) -> Result<Classifier<Pinned>, Error> {
    let lock = WriterLock::acquire(pin_dir)?;
    let classifier = Classifier::load_pinned(pin_dir)?;
    ensure(pin_dir, initial, &lock)?;
    Ok(classifier)
}
