//! What learning runs under, built from the config file: the learner's bounds and trust
//! (`LearnerSettings::read`), each list's domain suffixes and host names, the `apple` list's
//! shipped ones first (`DomainLists::of`, `HostLists::of`), and the resolver `run`'s own
//! lookups ask (`lookup_resolver`). The file only says what was written; this says what
//! learning makes of it.

use std::{net::SocketAddr, time::Duration};

use super::{
    AddressBounds, DomainLists, HostLists, LearnerSettings, SHIPPED_APPLE_DOMAINS,
    SHIPPED_APPLE_HOSTS, Trust, parse_domains, system_resolver,
};
use crate::{
    Error,
    config_file::{ConfigFile, DEFAULT_DNS_MAX_TTL, ListFile, LookupResolver},
    load::{DEFAULT_LIST, ListNames},
};

impl LearnerSettings {
    /// What `classifier run` (and `analyze` with a config file) learns under: the file's
    /// `[dns]` bounds and its trusted resolvers.
    pub fn read(config: &ConfigFile) -> Result<Self, Error> {
        let trusted = config.trusted_resolvers()?;
        let mut bounds = AddressBounds::new(config.never_learn()?);
        bounds.learn_private = config.dns.learn_private.unwrap_or(false);
        bounds.resolvers = trusted.iter().map(|resolver| resolver.address).collect();
        Ok(Self {
            min_ttl: config.dns_min_ttl(),
            max_ttl: Duration::from_secs(config.dns.max_ttl.unwrap_or(DEFAULT_DNS_MAX_TTL)),
            max_per_list: config.max_learned_per_list(),
            trust: Trust::Named(trusted),
            bounds,
        })
    }
}

impl DomainLists {
    /// The domain suffixes of each of `lists`, plus the shipped ones for `apple`.
    pub fn of(lists: &[ListFile], names: &ListNames) -> Self {
        let mut domains = Self::default();
        per_list(
            lists,
            names,
            SHIPPED_APPLE_DOMAINS,
            |list| &list.domains,
            |bit, suffix| domains.add(bit, suffix),
        );
        domains
    }
}

impl HostLists {
    /// The host names each of `lists` resolves (active learning), plus the shipped ones for
    /// `apple`.
    pub fn of(lists: &[ListFile], names: &ListNames) -> Self {
        let mut hosts = Self::default();
        per_list(
            lists,
            names,
            SHIPPED_APPLE_HOSTS,
            |list| &list.hosts,
            |bit, host| hosts.add(bit, host),
        );
        hosts
    }
}

/// Calls `add` with each list's bit and each name `field` gives it, the `apple` list's
/// `shipped` names first; lists the state does not know are passed over.
fn per_list(
    lists: &[ListFile],
    names: &ListNames,
    shipped: &str,
    field: fn(&ListFile) -> &Vec<String>,
    mut add: impl FnMut(u32, &str),
) {
    if let Some(apple) = names.bit(DEFAULT_LIST) {
        for name in parse_domains(shipped) {
            add(apple, name);
        }
    }
    for list in lists {
        if let Some(bit) = names.bit(&list.name) {
            for name in field(list) {
                add(bit, name);
            }
        }
    }
}

/// Whether `run` resolves the lists' host names itself, and through which resolver: None when
/// `[dns.lookup] enabled = false`, or when it names none and /etc/resolv.conf has none.
pub fn lookup_resolver(config: &ConfigFile) -> Result<Option<SocketAddr>, Error> {
    Ok(match config.lookup_resolver()? {
        LookupResolver::Off => None,
        LookupResolver::System => system_resolver(),
        LookupResolver::At(resolver) => Some(resolver),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config_file::TrustedResolver;

    #[test]
    fn the_learner_trusts_the_named_resolvers_within_the_files_bounds() {
        let mut config: ConfigFile = toml::from_str(
            "[dns]\nmax_learned_per_list = 10\nnever_learn = [\"192.0.2.0/24\"]\n\
             [[dns.trusted_resolvers]]\naddress = \"2001:db8::53\"\n\
             interfaces = [\"wan0\", \"wan1\"]\n",
        )
        .unwrap();
        config.path = PathBuf::from("/etc/classifier/config.toml");
        let settings = LearnerSettings::read(&config).unwrap();
        assert_eq!(settings.max_per_list, 10);
        assert_eq!(settings.max_ttl, Duration::from_secs(DEFAULT_DNS_MAX_TTL));
        assert_eq!(
            settings.trust,
            Trust::Named(vec![TrustedResolver {
                address: "2001:db8::53".parse().unwrap(),
                interfaces: vec!["wan0".to_owned(), "wan1".to_owned()],
                require_query: true,
            }])
        );
        assert_eq!(
            settings.bounds.resolvers,
            vec!["2001:db8::53".parse::<std::net::IpAddr>().unwrap()]
        );
    }
}
