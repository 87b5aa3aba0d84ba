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
//! max_ttl = 3600
//!
//! # Passive learning: answers from this resolver, arriving on these interfaces, to a query
//! # the classifier saw, teach. Nothing else does.
//! [[dns.trusted_resolvers]]
//! address = "192.0.2.53"
//! interfaces = ["wan0"]
//!
//! # Active learning: `run` resolves the lists' host names itself.
//! [dns.lookup]
//! resolver = "192.0.2.53"   # default: the first nameserver of /etc/resolv.conf
//! ```
//!
//! The policy and the lists are applied when `attach` creates the state; later changes go
//! through `classifier policy` and `classifier prefixes`. Like sshd, classifier refuses a
//! file that someone other than root could have written (`trust::read_file`).
//!
//! This is the file as written, and its checks: the syntax of its values (list names, rules,
//! prefixes, resolvers) and the bounds between them, all at `read`, so a bad file fails
//! before anything runs. What each layer makes of it is the layer's own: the initial state
//! is `control::state::InitialState::read`, learning's settings `dns::LearnerSettings::read`
//! and `DomainLists::of`/`HostLists::of`, an analysis's `analyze::Settings::from_file`. It
//! imports none of them (`layers.rs` holds that), only `load`'s list names and rules.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use classifier_common::{control::IFNAME_LEN, dns::MAX_LEARNED};
use serde::Deserialize;

use crate::{
    Error,
    load::{DEFAULT_LIST, rules::Rule, validate_name},
};

pub const DEFAULT_CONFIG_FILE: &str = "/etc/classifier/config.toml";

/// The largest config file read: the prefix lists it may hold inline, and some.
const CONFIG_LIMIT: u64 = 64 << 20;

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
    /// Host names `classifier run` resolves itself, whose addresses join the list (`apple`
    /// also gets the shipped update hosts).
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// `[dns]`: bounds and trust for learning from DNS answers.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// Learned addresses one list holds at most; answers that would add more are refused.
    pub max_learned_per_list: Option<u32>,
    /// Learned addresses live at most this long (seconds), whatever their TTL.
    pub max_ttl: Option<u64>,
    /// Learn private (RFC 1918, 100.64/10) and unique-local (fc00::/7) addresses too.
    pub learn_private: Option<bool>,
    /// Prefixes never learned, whatever an answer says (e.g. the campus's own services).
    #[serde(default)]
    pub never_learn: Vec<String>,
    #[serde(default)]
    pub trusted_resolvers: Vec<TrustedResolverFile>,
    #[serde(default)]
    pub lookup: LookupFile,
}

/// `[[dns.trusted_resolvers]]`: answers from `address` that arrive on one of `interfaces`
/// teach, when they answer a query the classifier saw (`require_query`, the default).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedResolverFile {
    pub address: String,
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// false only for a router that is itself the resolver: its upstream queries leave from
    /// its own stack, which XDP never sees.
    pub require_query: Option<bool>,
}

/// A trusted resolver, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedResolver {
    pub address: IpAddr,
    pub interfaces: Vec<String>,
    pub require_query: bool,
}

/// `[dns.lookup]`: active learning, the router's own lookups of the lists' host names.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupFile {
    /// On unless false.
    pub enabled: Option<bool>,
    /// `ADDRESS` or `ADDRESS:PORT` (`[ADDRESS]:PORT` for IPv6); default: the first
    /// `nameserver` of /etc/resolv.conf.
    pub resolver: Option<String>,
}

/// `[dns.lookup]`, checked: whom `run`'s own lookups ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupResolver {
    /// `enabled = false`: no lookups.
    Off,
    /// No `resolver`: the system's, the first `nameserver` of /etc/resolv.conf.
    System,
    /// `resolver = "ADDRESS"` or `"ADDRESS:PORT"`.
    At(SocketAddr),
}

/// `ADDRESS` (port 53) or `ADDRESS:PORT` / `[ADDRESS]:PORT`: a resolver as the file names it
/// (and as /etc/resolv.conf does, without the port).
pub fn parse_resolver(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, classifier_common::dns::DNS_PORT))
    })
}

/// Learned addresses live at most this long when the file does not say: an hour. CDNs
/// answer with TTLs of seconds to minutes; a day-long TTL is an answer to distrust.
pub const DEFAULT_DNS_MAX_TTL: u64 = 3600;

/// The longest `max_ttl` (and so `dns_min_ttl`) a file may set: a day.
pub const LONGEST_DNS_TTL: u64 = 86_400;

/// Learned addresses live at least this long when the file does not say.
pub const DEFAULT_DNS_MIN_TTL: u64 = 60;

/// Learned addresses per list when the file does not say: room for the CDN addresses of a
/// busy campus's updates, far below the `LEARNED` map's capacity shared by all lists.
pub const DEFAULT_MAX_LEARNED_PER_LIST: u32 = 4096;

impl ConfigFile {
    pub fn dns_min_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.dns_min_ttl.unwrap_or(DEFAULT_DNS_MIN_TTL))
    }

    /// `dns.never_learn`, parsed; an error names the entry.
    pub fn never_learn(&self) -> Result<Vec<ipnet::IpNet>, Error> {
        self.dns
            .never_learn
            .iter()
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| Error::ConfigFile {
                        path: self.path.clone(),
                        reason: format!(
                            "[dns] never_learn: `{text}` is not a prefix; write e.g. \
                             \"192.0.2.0/24\" or \"2001:db8::/32\""
                        ),
                    })
            })
            .collect()
    }

    /// `[dns.lookup]`, checked: whether `run` resolves the lists' host names itself, and
    /// through which resolver.
    pub fn lookup_resolver(&self) -> Result<LookupResolver, Error> {
        if self.dns.lookup.enabled == Some(false) {
            return Ok(LookupResolver::Off);
        }
        match &self.dns.lookup.resolver {
            Some(text) => parse_resolver(text).map(LookupResolver::At).ok_or_else(|| {
                Error::ConfigFile {
                    path: self.path.clone(),
                    reason: format!(
                        "[dns.lookup] resolver `{text}` is neither an address nor ADDRESS:PORT; \
                         write e.g. resolver = \"192.0.2.53\""
                    ),
                }
            }),
            None => Ok(LookupResolver::System),
        }
    }

    /// The lists that learn: `apple` (shipped domains and hosts) and every list with domains
    /// or hosts of its own.
    fn learning_lists(&self) -> usize {
        let mut names: Vec<&str> = self
            .lists
            .iter()
            .filter(|list| !list.domains.is_empty() || !list.hosts.is_empty())
            .map(|list| list.name.as_str())
            .collect();
        names.push(DEFAULT_LIST);
        names.sort_unstable();
        names.dedup();
        names.len()
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
                    require_query: resolver.require_query.unwrap_or(true),
                })
            })
            .collect()
    }

    /// Reads `path`; a missing default file is an empty configuration, a missing file that was
    /// asked for (`required`) is an error.
    pub fn read(path: &Path, required: bool) -> Result<Self, Error> {
        let bad = |reason: String| Error::ConfigFile {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = match crate::trust::read_file(path, CONFIG_LIMIT) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default());
            }
            Err(error) => {
                return Err(crate::trust::read_error(error, |error| {
                    bad(error.to_string())
                }));
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".to_owned()))?;
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
        // Every learning list at its cap must fit the shared table: a full table would
        // refuse one list's addresses because of another's.
        let lists = self.learning_lists() as u64;
        let cap = u64::from(self.max_learned_per_list());
        if lists * cap > u64::from(MAX_LEARNED) {
            return Err(Error::ConfigFile {
                path: self.path.clone(),
                reason: format!(
                    "[dns] max_learned_per_list = {cap} for {lists} learning lists needs \
                     {} entries, more than the learned-address table's {MAX_LEARNED}; lower \
                     it to {} at most",
                    lists * cap,
                    u64::from(MAX_LEARNED) / lists
                ),
            });
        }
        let min_ttl = self.dns_min_ttl().as_secs();
        let max_ttl = self.dns.max_ttl.unwrap_or(DEFAULT_DNS_MAX_TTL);
        if max_ttl == 0 || max_ttl < min_ttl || max_ttl > LONGEST_DNS_TTL {
            return Err(Error::ConfigFile {
                path: self.path.clone(),
                reason: format!(
                    "[dns] max_ttl = {max_ttl} must be at least dns_min_ttl ({min_ttl}), above \
                     0 and at most {LONGEST_DNS_TTL} (a day); the default is \
                     {DEFAULT_DNS_MAX_TTL}"
                ),
            });
        }
        self.never_learn()?;
        self.lookup_resolver()?;
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
        assert_eq!(config.max_learned_per_list(), 10);
        assert_eq!(
            config.trusted_resolvers().unwrap(),
            vec![TrustedResolver {
                address: "2001:db8::53".parse().unwrap(),
                interfaces: vec!["wan0".to_owned(), "wan1".to_owned()],
                require_query: true,
            }]
        );
        assert_eq!(
            parse("").unwrap().max_learned_per_list(),
            DEFAULT_MAX_LEARNED_PER_LIST
        );
    }

    #[test]
    fn resolvers_are_addresses_with_an_optional_port() {
        assert_eq!(parse_resolver("192.0.2.53"), "192.0.2.53:53".parse().ok());
        assert_eq!(
            parse_resolver("192.0.2.53:5353"),
            "192.0.2.53:5353".parse().ok()
        );
        assert_eq!(
            parse_resolver("2001:db8::53"),
            "[2001:db8::53]:53".parse().ok()
        );
        assert_eq!(
            parse_resolver("[2001:db8::53]:54"),
            "[2001:db8::53]:54".parse().ok()
        );
        assert_eq!(parse_resolver("dns.example"), None);
        let config = parse("[dns.lookup]\nresolver = \"192.0.2.53:5353\"\n").unwrap();
        assert_eq!(
            config.lookup_resolver().unwrap(),
            LookupResolver::At("192.0.2.53:5353".parse().unwrap())
        );
        let config = parse("[dns.lookup]\nenabled = false\n").unwrap();
        assert_eq!(config.lookup_resolver().unwrap(), LookupResolver::Off);
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

    #[test]
    fn caps_that_cannot_fit_the_shared_table_are_refused_at_start() {
        // One list (apple) may take the whole table; two may not.
        parse("[dns]\nmax_learned_per_list = 65536\n").unwrap();
        let two = "[dns]\nmax_learned_per_list = 65536\n[[lists]]\nname = \"cdn\"\n\
                   domains = [\"cdn.example.net\"]\n";
        let error = parse(two).unwrap_err();
        assert!(
            error.contains("2 learning lists") && error.contains("32768 at most"),
            "{error}"
        );
    }

    #[test]
    fn ttl_bounds_and_never_learn_are_checked() {
        let error = parse("dns_min_ttl = 600\n[dns]\nmax_ttl = 60\n").unwrap_err();
        assert!(error.contains("max_ttl = 60 must be at least"), "{error}");
        let error = parse("dns_min_ttl = 90000\n").unwrap_err();
        assert!(error.contains("at most 86400"), "{error}");
        let error = parse("[dns]\nnever_learn = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(error.contains("`10.0.0.0/33` is not a prefix"), "{error}");
        let error = parse("[dns.lookup]\nresolver = \"dns.example\"\n").unwrap_err();
        assert!(
            error.contains("[dns.lookup] resolver `dns.example`"),
            "{error}"
        );
        let config = parse("[dns]\nnever_learn = [\"192.0.2.0/24\", \"2001:db8::1\"]\n").unwrap();
        assert_eq!(config.never_learn().unwrap().len(), 2);
    }
}
