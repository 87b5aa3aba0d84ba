//! `classifier policy show`: the rules in force, in the operator's words, and the dry-run
//! switch.

use classifier_common::{Config, config::CONFIG_DRY_RUN};
use serde::Serialize;

use crate::{
    ClassifierMaps, Error, PinDir,
    load::{ListNames, rules::decode},
};

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
pub fn read(pin_dir: &PinDir) -> Result<PolicyView, Error> {
    let maps = ClassifierMaps::open_pinned(pin_dir)?;
    let names = ListNames::read(&maps)?;
    Ok(PolicyView::of(&maps.config()?, &names))
}
