//! The two prefix tries (IPv4, IPv6): each entry carries its own lists and the effective
//! lists it inherits.

use std::net::IpAddr;

use aya::maps::{MapError, lpm_trie::Key};
use classifier_common::PrefixValue;
use ipnet::IpNet;

use super::{ClassifierMaps, MapWriter};
use crate::{
    Error,
    load::names::{MAP_PREFIXES_V4, MAP_PREFIXES_V6},
};

impl ClassifierMaps {
    /// Every prefix in both tries with its value.
    pub fn prefixes(&self) -> Result<Vec<(IpNet, PrefixValue)>, Error> {
        let mut all = Vec::new();
        for entry in self.prefixes_v4.iter() {
            let (key, value) = entry.map_err(Error::map(MAP_PREFIXES_V4))?;
            let net = ipnet::Ipv4Net::new(key.data().into(), key.prefix_len() as u8)
                .expect("the kernel keeps prefix lengths within 32");
            all.push((IpNet::V4(net), value));
        }
        for entry in self.prefixes_v6.iter() {
            let (key, value) = entry.map_err(Error::map(MAP_PREFIXES_V6))?;
            let net = ipnet::Ipv6Net::new(key.data().into(), key.prefix_len() as u8)
                .expect("the kernel keeps prefix lengths within 128");
            all.push((IpNet::V6(net), value));
        }
        Ok(all)
    }

    /// The value of the longest prefix covering `prefix` (itself included), if any.
    pub fn longest_match(&self, prefix: IpNet) -> Result<Option<PrefixValue>, Error> {
        let len = u32::from(prefix.prefix_len());
        let found = match prefix.trunc().addr() {
            IpAddr::V4(addr) => self.prefixes_v4.get(&Key::new(len, addr.octets()), 0),
            IpAddr::V6(addr) => self.prefixes_v6.get(&Key::new(len, addr.octets()), 0),
        };
        match found {
            Ok(value) => Ok(Some(value)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(error) => Err(Error::map(MAP_PREFIXES_V4)(error)),
        }
    }

    /// The value of exactly `prefix`, if it is an entry.
    pub fn exact_prefix(&self, prefix: IpNet) -> Result<Option<PrefixValue>, Error> {
        Ok(self
            .longest_match(prefix)?
            .filter(|value| value.prefix_len == u32::from(prefix.prefix_len())))
    }

    /// The effective lists of the longest prefix strictly containing `prefix`.
    pub fn covering_lists(&self, prefix: IpNet) -> Result<u32, Error> {
        let Some(parent) = prefix.supernet() else {
            return Ok(0);
        };
        Ok(self.longest_match(parent)?.map_or(0, |value| value.lists))
    }
}

impl MapWriter<'_> {
    /// Sets the value of one prefix (the network address, host bits cleared).
    pub fn set_prefix(&mut self, prefix: IpNet, value: PrefixValue) -> Result<(), Error> {
        let len = u32::from(prefix.prefix_len());
        match prefix.trunc().addr() {
            IpAddr::V4(addr) => self
                .maps
                .prefixes_v4
                .insert(&Key::new(len, addr.octets()), value, 0)
                .map_err(Error::map(MAP_PREFIXES_V4)),
            IpAddr::V6(addr) => self
                .maps
                .prefixes_v6
                .insert(&Key::new(len, addr.octets()), value, 0)
                .map_err(Error::map(MAP_PREFIXES_V6)),
        }
    }

    pub fn remove_prefix(&mut self, prefix: IpNet) -> Result<(), Error> {
        let len = u32::from(prefix.prefix_len());
        match prefix.trunc().addr() {
            IpAddr::V4(addr) => self
                .maps
                .prefixes_v4
                .remove(&Key::new(len, addr.octets()))
                .map_err(Error::map(MAP_PREFIXES_V4)),
            IpAddr::V6(addr) => self
                .maps
                .prefixes_v6
                .remove(&Key::new(len, addr.octets()))
                .map_err(Error::map(MAP_PREFIXES_V6)),
        }
    }
}
