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
//!
//! [dns]
//! max_learned_per_list = 4096
//!
//! # Only for a router that is itself the resolver: answers from this upstream resolver,
//! # arriving on these interfaces, teach without a query the classifier saw.
//! [[dns.trusted_resolvers]]
//! address = "192.0.2.53"
//! interfaces = ["wan0"]
//! ```
//!
//! The policy and the lists are applied when `attach` creates the state; later changes go
//! through `classifier policy` and `classifier prefixes`. Like sshd, classifier refuses a
//! file that someone other than root could have written (`trust::check_file`).

use std::{
    fs,
    path::{Path, PathBuf},
};

use classifier_common::{control::IFNAME_LEN, dns::MAX_LEARNED};
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
    #[serde(default)]
    pub dns: DnsSettings,
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

/// `[dns]`: bounds and trust for learning from DNS answers.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// Learned addresses one list holds at most; answers that would add more are refused.
    pub max_learned_per_list: Option<u32>,
    #[serde(default)]
    pub trusted_resolvers: Vec<TrustedResolverFile>,
}

/// `[[dns.trusted_resolvers]]`: answers from `address` that arrive on one of `interfaces`
/// teach even though the classifier saw no query (the router itself asked).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedResolverFile {
    pub address: String,
    #[serde(default)]
    pub interfaces: Vec<String>,
}

/// A trusted resolver, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedResolver {
    pub address: std::net::IpAddr,
    pub interfaces: Vec<String>,
}

/// Learned addresses live at least this long when the file does not say.
pub const DEFAULT_DNS_MIN_TTL: u64 = 60;

/// Learned addresses per list when the file does not say: room for the CDN addresses of a
/// busy campus's updates, far below the `LEARNED` map's capacity shared by all lists.
pub const DEFAULT_MAX_LEARNED_PER_LIST: u32 = 4096;

/// The domain suffixes of each of `lists`, plus the shipped ones for `apple`.
pub fn list_domains(
    lists: &[ListFile],
    names: &crate::control::lists::ListNames,
) -> crate::dns::DomainLists {
    let mut domains = crate::dns::DomainLists::default();
    if let Some(apple) = names.bit(crate::control::lists::DEFAULT_LIST) {
        for suffix in crate::dns::parse_domains(crate::dns::SHIPPED_APPLE_DOMAINS) {
            domains.add(apple, suffix);
        }
    }
    for list in lists {
        if let Some(bit) = names.bit(&list.name) {
            for suffix in &list.domains {
                domains.add(bit, suffix);
            }
        }
    }
    domains
}

impl ConfigFile {
    /// The domain suffixes of each list: the file's, plus the shipped ones for `apple`.
    pub fn domains(&self, names: &crate::control::lists::ListNames) -> crate::dns::DomainLists {
        list_domains(&self.lists, names)
    }

    /// What `analyze` would run under with this file's lists, policy and `[dns]` bounds.
    pub fn analyze_settings(&self) -> Result<crate::analyze::Settings, Error> {
        Ok(crate::analyze::Settings {
            lists: self.lists.clone(),
            rules: self.rules()?,
            learner: self.learner_settings()?,
            origin: self.path.clone(),
        })
    }

    pub fn dns_min_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.dns_min_ttl.unwrap_or(DEFAULT_DNS_MIN_TTL))
    }

    /// What `classifier run` (and `analyze`) learn under.
    pub fn learner_settings(&self) -> Result<crate::dns::LearnerSettings, Error> {
        Ok(crate::dns::LearnerSettings {
            min_ttl: self.dns_min_ttl(),
            max_per_list: self.max_learned_per_list(),
            trusted: self.trusted_resolvers()?,
        })
    }

    pub fn max_learned_per_list(&self) -> u32 {
        self.dns
            .max_learned_per_list
            .unwrap_or(DEFAULT_MAX_LEARNED_PER_LIST)
    }

    /// The trusted resolvers, checked; an error names the entry and says what to write.
    pub fn trusted_resolvers(&self) -> Result<Vec<TrustedResolver>, Error> {
        let error = |index: usize, reason: String| Error::ConfigFile {
            path: self.path.clone(),
            reason: format!("[[dns.trusted_resolvers]] entry {}: {reason}", index + 1),
        };
        self.dns
            .trusted_resolvers
            .iter()
            .enumerate()
            .map(|(index, resolver)| {
                let address = resolver.address.parse().map_err(|_| {
                    error(
                        index,
                        format!(
                            "address `{}` is not an IP address; write the resolver's address, \
                             e.g. address = \"192.0.2.53\"",
                            resolver.address
                        ),
                    )
                })?;
                if resolver.interfaces.is_empty() {
                    return Err(error(
                        index,
                        format!(
                            "no interfaces for {address}: name those its answers arrive on, \
                             e.g. interfaces = [\"wan0\"] (an answer on any other interface \
                             could be forged from the LAN)"
                        ),
                    ));
                }
                if let Some(bad) = resolver
                    .interfaces
                    .iter()
                    .find(|name| name.is_empty() || name.len() >= IFNAME_LEN)
                {
                    return Err(error(
                        index,
                        format!("`{bad}` is not an interface name (1 to 15 bytes)"),
                    ));
                }
                Ok(TrustedResolver {
                    address,
                    interfaces: resolver.interfaces.clone(),
                })
            })
            .collect()
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
        if self.dns.max_learned_per_list == Some(0)
            || self.dns.max_learned_per_list > Some(MAX_LEARNED)
        {
            return Err(Error::ConfigFile {
                path: self.path.clone(),
                reason: format!(
                    "[dns] max_learned_per_list must be between 1 and {MAX_LEARNED} (the \
                     learned-address table's size); the default is \
                     {DEFAULT_MAX_LEARNED_PER_LIST}"
                ),
            });
        }
        self.trusted_resolvers()?;
        self.rules().map(|_| ())
    }
}

#[cfg(test)]
mod dns_tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, String> {
        let mut config: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        config.path = PathBuf::from("/etc/classifier/config.toml");
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn trusted_resolvers_name_their_interfaces() {
        let config = parse(
            "[dns]\nmax_learned_per_list = 10\n[[dns.trusted_resolvers]]\n\
             address = \"2001:db8::53\"\ninterfaces = [\"wan0\", \"wan1\"]\n",
        )
        .unwrap();
        let settings = config.learner_settings().unwrap();
        assert_eq!(settings.max_per_list, 10);
        assert_eq!(
            settings.trusted,
            vec![TrustedResolver {
                address: "2001:db8::53".parse().unwrap(),
                interfaces: vec!["wan0".to_owned(), "wan1".to_owned()],
            }]
        );
        assert_eq!(
            parse("").unwrap().max_learned_per_list(),
            DEFAULT_MAX_LEARNED_PER_LIST
        );
    }

    #[test]
    fn a_bad_trusted_resolver_or_cap_says_what_and_where() {
        let error = parse("[[dns.trusted_resolvers]]\naddress = \"192.0.2.53\"\n").unwrap_err();
        assert!(
            error.contains("/etc/classifier/config.toml")
                && error.contains("[[dns.trusted_resolvers]] entry 1")
                && error.contains("interfaces = [\"wan0\"]"),
            "{error}"
        );
        let error = parse(
            "[[dns.trusted_resolvers]]\naddress = \"192.0.2.53\"\ninterfaces = [\"r2\"]\n\
             [[dns.trusted_resolvers]]\naddress = \"resolver\"\ninterfaces = [\"r2\"]\n",
        )
        .unwrap_err();
        assert!(
            error.contains("entry 2") && error.contains("`resolver` is not an IP address"),
            "{error}"
        );
        let error = parse("[dns]\nmax_learned_per_list = 0\n").unwrap_err();
        assert!(
            error.contains("max_learned_per_list must be between 1"),
            "{error}"
        );
    }
}
