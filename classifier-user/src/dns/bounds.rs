//! Addresses no answer may teach, whoever sent it: a trusted resolver can still be wrong,
//! misconfigured or poisoned upstream, and an address in a list moves everyone's traffic to
//! it. The bounds keep learning to addresses a CDN could really serve from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// What is never learned (docs/design.md, 'DNS learning').
#[derive(Clone, Debug, Default)]
pub struct AddressBounds {
    /// `dns.never_learn`: the operator's own exclusions.
    pub never_learn: Vec<IpNet>,
    /// Private (RFC 1918, 100.64.0.0/10) and unique-local (fc00::/7) addresses: only when
    /// the operator opts in (a campus CDN cache on a private address).
    pub learn_private: bool,
    /// The resolvers' own addresses: an answer naming its resolver would deprioritise DNS.
    pub resolvers: Vec<IpAddr>,
    /// The router's own addresses and the subnets it is connected to (refreshed by `run`):
    /// its own traffic and its neighbours', the LAN's clients among them, stay out of lists.
    pub own: Vec<IpNet>,
}

impl AddressBounds {
    pub fn new(never_learn: Vec<IpNet>) -> Self {
        Self {
            never_learn,
            ..Self::default()
        }
    }

    /// Whether `addr` may be learned.
    pub fn allows(&self, addr: IpAddr) -> bool {
        let judged = |addr: IpAddr| {
            !special(addr)
                && (self.learn_private || !private(addr))
                && !self.resolvers.contains(&addr)
                && !self.own.iter().any(|own| own.contains(&addr))
                && !self.never_learn.iter().any(|prefix| prefix.contains(&addr))
        };
        // An IPv6 address that carries an IPv4 one (NAT64, 6to4) is judged as both: it
        // would otherwise carry a private or loopback address past the bounds.
        judged(addr) && embedded_v4(addr).is_none_or(|v4| judged(IpAddr::V4(v4)))
    }
}

/// The IPv4 address inside a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address.
fn embedded_v4(addr: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = addr else {
        return None;
    };
    let octets = v6.octets();
    if in_v6(v6, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return Some(Ipv4Addr::new(
            octets[12], octets[13], octets[14], octets[15],
        ));
    }
    if in_v6(v6, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    None
}

/// Unspecified, loopback, link-local, multicast, broadcast, "this network", IETF protocol
/// assignments (192.0.0.0/24), reserved space, and IPv6 forms no packet carries as an
/// address (IPv4-mapped, IPv4-compatible): never a server on the internet.
fn special(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.octets()[0] == 0
                || v4.octets()[0] >= 240
                || in_v4(v4, Ipv4Addr::new(192, 0, 0, 0), 24)
        }
        IpAddr::V6(v6) => {
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unicast_link_local()
                || in_v6(v6, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96)
                || in_v6(v6, Ipv6Addr::UNSPECIFIED, 96)
        }
    }
}

fn private(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.is_private() || in_v4(v4, Ipv4Addr::new(100, 64, 0, 0), 10),
        // Unique-local, and the deprecated site-local fec0::/10.
        IpAddr::V6(v6) => {
            v6.is_unique_local() || in_v6(v6, Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10)
        }
    }
}

fn in_v4(addr: Ipv4Addr, net: Ipv4Addr, len: u32) -> bool {
    u32::from(addr) >> (32 - len) == u32::from(net) >> (32 - len)
}

fn in_v6(addr: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    u128::from(addr) >> (128 - len) == u128::from(net) >> (128 - len)
}

/// The addresses of this network namespace's interfaces (the router's own) with their
/// subnets, from getifaddrs(3); empty if it fails (nothing else is refused then, and `run`
/// goes on).
pub fn router_addresses() -> Vec<IpNet> {
    let mut addresses = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that freeifaddrs releases; every
    // pointer read below comes from that list and is checked for null first, and each
    // sockaddr is read as the type its family says.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return addresses;
        }
        let mut entry = list;
        while !entry.is_null() {
            let (address, mask) = ((*entry).ifa_addr, (*entry).ifa_netmask);
            if !address.is_null() {
                let family = i32::from((*address).sa_family);
                let ip = match family {
                    libc::AF_INET => {
                        let v4 = &*(address as *const libc::sockaddr_in);
                        Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(address as *const libc::sockaddr_in6);
                        Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
                    }
                    _ => None,
                };
                // The subnet's length from the netmask (the family's full length without).
                let len = match family {
                    libc::AF_INET if !mask.is_null() => {
                        let m = &*(mask as *const libc::sockaddr_in);
                        u32::from_be(m.sin_addr.s_addr).count_ones() as u8
                    }
                    libc::AF_INET6 if !mask.is_null() => {
                        let m = &*(mask as *const libc::sockaddr_in6);
                        u128::from_be_bytes(m.sin6_addr.s6_addr).count_ones() as u8
                    }
                    libc::AF_INET => 32,
                    _ => 128,
                };
                if let Some(net) = ip.and_then(|ip| IpNet::new(ip, len).ok()) {
                    addresses.push(net.trunc());
                    addresses.push(IpNet::from(net.addr()));
                }
            }
            entry = (*entry).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    addresses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(bounds: &AddressBounds, addr: &str) -> bool {
        bounds.allows(addr.parse().unwrap())
    }

    #[test]
    fn special_addresses_are_never_learned() {
        let bounds = AddressBounds::default();
        for addr in [
            "0.0.0.0",
            "127.0.0.1",
            "169.254.1.1",
            "224.0.0.251",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "ff02::fb",
            "::ffff:127.0.0.1",
            "::ffff:17.253.0.10",
            "::17.253.0.10",
            "192.0.0.8",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
        ] {
            assert!(!allowed(&bounds, addr), "{addr} was allowed");
        }
        assert!(allowed(&bounds, "17.253.4.125"));
        assert!(allowed(&bounds, "2620:149:a44::1"));
        assert!(
            allowed(&bounds, "64:ff9b::11fd:40a"),
            "NAT64 of a public address"
        );
    }

    #[test]
    fn private_only_by_opt_in() {
        let mut bounds = AddressBounds::default();
        for addr in [
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert!(!allowed(&bounds, addr), "{addr}");
        }
        bounds.learn_private = true;
        assert!(allowed(&bounds, "10.1.2.3") && allowed(&bounds, "fd00::1"));
        assert!(allowed(&bounds, "64:ff9b::a01:203"));
    }

    #[test]
    fn the_operator_s_the_router_s_and_the_resolvers_addresses_are_not_learned() {
        let mut bounds = AddressBounds::new(vec!["198.51.100.0/24".parse().unwrap()]);
        bounds.resolvers = vec!["203.0.113.53".parse().unwrap()];
        bounds.own = vec!["192.0.2.0/25".parse().unwrap()];
        assert!(!allowed(&bounds, "198.51.100.7"));
        assert!(!allowed(&bounds, "203.0.113.53"));
        assert!(!allowed(&bounds, "192.0.2.1"), "the router's own");
        assert!(!allowed(&bounds, "192.0.2.77"), "a neighbour on its subnet");
        assert!(allowed(&bounds, "192.0.2.200"));
    }
}
