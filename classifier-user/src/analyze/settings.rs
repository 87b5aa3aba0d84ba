//! What an analysis runs under: the lists, the policy and the DNS learning bounds. From
//! `analyze`'s flags (`Settings::from_args`) or from a config file (`Settings::from_file`).

use std::path::PathBuf;

use crate::{
    Error,
    config_file::{ConfigFile, DEFAULT_DNS_MIN_TTL, ListFile},
    control::state::InitialState,
    dns::{DomainLists, LearnerSettings, Trust},
    load::{DEFAULT_LIST, ListNames, rules::Rule},
};

#[derive(Clone, Debug)]
pub struct Settings {
    /// The lists, with their files and domains; `apple` is the shipped one unless redefined.
    pub lists: Vec<ListFile>,
    /// The policy's rules; None for the default policy.
    pub rules: Option<Vec<Rule>>,
    pub learner: LearnerSettings,
    /// Where these settings came from, for messages: a config file, or "the command line".
    pub origin: PathBuf,
}

impl Settings {
    /// `--prefixes [NAME=]FILE` (a bare FILE replaces `apple`) and `--policy MATCH=ACTION`;
    /// no policy is the default one. A bad rule fails here, before anything is read.
    pub fn from_args(prefixes: &[String], policy: &[String]) -> Result<Self, Error> {
        let origin = PathBuf::from("the command line");
        let lists = prefixes
            .iter()
            .map(|spec| {
                let (name, file) = spec.split_once('=').unwrap_or((DEFAULT_LIST, spec));
                ListFile {
                    name: name.to_owned(),
                    file: Some(file.into()),
                    ..ListFile::default()
                }
            })
            .collect();
        let rules = (!policy.is_empty())
            .then(|| policy.iter().map(|rule| rule.parse()).collect())
            .transpose()
            .map_err(|error: Error| Error::ConfigFile {
                path: origin.clone(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            lists,
            rules,
            learner: LearnerSettings::new(std::time::Duration::from_secs(DEFAULT_DNS_MIN_TTL)),
            origin,
        })
    }

    /// What `analyze` would run under with `config`'s lists, policy and `[dns]` bounds.
    pub fn from_file(config: &ConfigFile) -> Result<Self, Error> {
        let mut learner = LearnerSettings::read(config)?;
        // A capture has no interfaces to hold a named resolver to (dns::Trust).
        learner.trust = Trust::CapturedQueries;
        Ok(Self {
            lists: config.lists.clone(),
            rules: config.rules()?,
            learner,
            origin: config.path.clone(),
        })
    }

    /// The lists and policy the private state starts with, every list file read now.
    pub fn initial_state(&self) -> Result<InitialState, Error> {
        InitialState::new(&self.lists, self.rules.clone(), false, &self.origin)
    }

    /// The domain suffixes of each list.
    pub fn domains(&self, names: &ListNames) -> DomainLists {
        DomainLists::of(&self.lists, names)
    }
}
