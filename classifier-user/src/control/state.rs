//! Creating the state on first attach: the layout stamp, the default list and policy (or
//! those of the config file), generation 1.

use std::path::Path;

use classifier_common::config::{CONFIG_DRY_RUN, STATE_LAYOUT};

use super::{
    lists::{DEFAULT_LIST, ListNames},
    policy::{self, Rule},
    prefix_file::{parse_prefix_text, read_prefix_file},
    prefixes::{self, Change},
};
use crate::{ClassifierMaps, Error, config_file::ConfigFile};

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

/// Fills freshly created maps: lists (the config file's, or the shipped `apple`), policy,
/// dry-run, and the layout stamp last, so that a state interrupted before it is seen as fresh.
pub fn initialize(maps: &mut ClassifierMaps, config_file: &ConfigFile) -> Result<(), Error> {
    let mut names = ListNames::read(maps)?;
    let apple = names.get_or_create(maps, DEFAULT_LIST)?;
    let apple_in_file = config_file
        .lists
        .iter()
        .any(|list| list.name == DEFAULT_LIST);
    if !apple_in_file {
        let shipped = parse_prefix_text(Path::new("data/apple.txt"), SHIPPED_APPLE_LIST)?;
        prefixes::apply(
            maps,
            &Change::Replace {
                list: apple,
                prefixes: shipped,
            },
        )?;
    }
    for list in &config_file.lists {
        let bit = names.get_or_create(maps, &list.name)?;
        let prefixes = match &list.file {
            Some(file) => read_prefix_file(file)?,
            None if list.name == DEFAULT_LIST => {
                parse_prefix_text(Path::new("data/apple.txt"), SHIPPED_APPLE_LIST)?
            }
            None => Vec::new(),
        };
        prefixes::apply(
            maps,
            &Change::Replace {
                list: bit,
                prefixes,
            },
        )?;
    }
    let rules = config_file.rules()?.unwrap_or_else(default_rules);
    let mut config = maps.config()?;
    policy::encode(&rules, &names, &mut config)?;
    if config_file.dry_run == Some(true) {
        config.flags |= CONFIG_DRY_RUN;
    }
    config.generation = config.generation.wrapping_add(1);
    config.layout = STATE_LAYOUT;
    maps.set_config(&config)
}
