//! Numbers the wire defines that both sides read: the EtherTypes the kernel parses and the
//! IP protocols with ports (a flow's `protocol`).

/// EtherTypes (host order).
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;

/// IP protocol numbers (IPv4's protocol, IPv6's next header).
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
