//! `/etc/classifier/config.toml`: the pin directory, the policy, and the lists with their
//! files. Command-line flags override it. Example:
//!
//! ```toml
//! pin_dir = "/sys/fs/bpf/classifier"
//! dry_run = false
//! policy = ["list:apple=LE", "mptcp=keep"]
//!
//! [[lists]]
//! name = "apple"
//! file = "/etc/classifier/apple.txt"
//! domains = ["apple.com"]   # learned from DNS answers, besides the shipped ones
//! ```
//!
//! The policy and the lists are applied when `attach` creates the state; later changes go
//! through `classifier policy` and `classifier prefixes`. Like sshd, classifier refuses a
//! file that someone other than root could have written (`trust::check_file`).

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::{
    Error,
    control::{lists::validate_name, policy::Rule},
};

pub const DEFAULT_CONFIG_FILE: &str = "/etc/classifier/config.toml";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub pin_dir: Option<PathBuf>,
    pub dry_run: Option<bool>,
    pub policy: Option<Vec<String>>,
    /// Learned addresses live at least this long (seconds), whatever their TTL.
    pub dns_min_ttl: Option<u64>,
    #[serde(default)]
    pub lists: Vec<ListFile>,
    /// Where it was read from, for messages.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFile {
    pub name: String,
    pub file: Option<PathBuf>,
    /// Domain suffixes whose DNS answers add their addresses to the list (`apple` also gets
    /// the shipped ones).
    #[serde(default)]
    pub domains: Vec<String>,
}

/// Learned addresses live at least this long when the file does not say.
pub const DEFAULT_DNS_MIN_TTL: u64 = 60;

impl ConfigFile {
    /// The domain suffixes of each list: the file's, plus the shipped ones for `apple`.
    pub fn domains(&self, names: &crate::control::lists::ListNames) -> crate::dns::DomainLists {
        let mut domains = crate::dns::DomainLists::default();
        if let Some(apple) = names.bit(crate::control::lists::DEFAULT_LIST) {
            for suffix in crate::dns::parse_domains(crate::dns::SHIPPED_APPLE_DOMAINS) {
                domains.add(apple, suffix);
            }
        }
        for list in &self.lists {
            if let Some(bit) = names.bit(&list.name) {
                for suffix in &list.domains {
                    domains.add(bit, suffix);
                }
            }
        }
        domains
    }

    pub fn dns_min_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.dns_min_ttl.unwrap_or(DEFAULT_DNS_MIN_TTL))
    }

    /// Reads `path`; a missing default file is an empty configuration, a missing file that was
    /// asked for (`required`) is an error.
    pub fn read(path: &Path, required: bool) -> Result<Self, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default());
            }
            Err(error) => {
                return Err(Error::ConfigFile {
                    path: path.to_path_buf(),
                    reason: error.to_string(),
                });
            }
        };
        crate::trust::check_file(path)?;
        let mut config: Self = toml::from_str(&text).map_err(|error| Error::ConfigFile {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        config.path = path.to_path_buf();
        config.validate()?;
        Ok(config)
    }

    /// The policy's rules, parsed.
    pub fn rules(&self) -> Result<Option<Vec<Rule>>, Error> {
        self.policy
            .as_ref()
            .map(|rules| rules.iter().map(|rule| rule.parse()).collect())
            .transpose()
            .map_err(|error: Error| Error::ConfigFile {
                path: self.path.clone(),
                reason: error.to_string(),
            })
    }

    fn validate(&self) -> Result<(), Error> {
        for list in &self.lists {
            validate_name(&list.name).map_err(|error| Error::ConfigFile {
                path: self.path.clone(),
                reason: error.to_string(),
            })?;
        }
        self.rules().map(|_| ())
    }
}
