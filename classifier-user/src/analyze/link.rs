//! Link-layer headers of captured records, turned into the Ethernet frame XDP sees: Ethernet
//! as it is; Linux cooked (SLL, SLL2), raw IP, PPP and BSD loopback (NULL, LOOP) get a
//! synthesised Ethernet header with the EtherType their own header names, and the same IP
//! bytes after it.

use std::fmt;

use classifier_common::protocol::{ETH_P_IP, ETH_P_IPV6};
use pcap_file::DataLink;

/// The EtherTypes of the synthesised Ethernet header, as the frame holds them.
const ETHERTYPE_IPV4: [u8; 2] = ETH_P_IP.to_be_bytes();
const ETHERTYPE_IPV6: [u8; 2] = ETH_P_IPV6.to_be_bytes();

const SLL_HEADER: usize = 16;
const SLL2_HEADER: usize = 20;
/// BSD loopback: a 4-byte address family.
const LOOPBACK_HEADER: usize = 4;
/// DLT_RAW as BSDs write it into pcap files, beside LINKTYPE_RAW (101): 12 on most, 14 on
/// OpenBSD.
const DLT_RAW_BSD: u32 = 12;
const DLT_RAW_OPENBSD: u32 = 14;
/// PPP protocol numbers of IPv4 and IPv6 (RFC 1332, RFC 5072).
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// HDLC-like framing's address and control bytes, which some PPP captures keep.
const PPP_ADDRESS_CONTROL: [u8; 2] = [0xff, 0x03];
/// AF_INET everywhere; AF_INET6 differs: NetBSD/OpenBSD 24, FreeBSD 28, macOS 30.
const LOOPBACK_IPV4: u32 = 2;
const LOOPBACK_IPV6: [u32; 3] = [24, 28, 30];

/// Why a record could not become an Ethernet frame. The record is reported, never fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// A link type analyze does not read (the number from the capture).
    UnsupportedLinkType(u32),
    /// A PPP frame whose protocol is neither IPv4 nor IPv6 (LCP, IPCP...).
    UnsupportedPppProtocol(u16),
    /// A BSD loopback frame whose address family is neither IPv4 nor IPv6.
    UnsupportedLoopbackFamily(u32),
    /// A raw IP record whose version nibble is neither 4 nor 6.
    UnsupportedIpVersion(u8),
    /// Shorter than its link-layer header.
    Truncated,
    /// The file stopped making sense here; the rest is not read.
    Unreadable(String),
}

impl RecordError {
    /// Stable snake_case name, as in analyze's JSON `error`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::UnsupportedLinkType(_) => "unsupported_link_type",
            Self::UnsupportedPppProtocol(_) => "unsupported_ppp_protocol",
            Self::UnsupportedLoopbackFamily(_) => "unsupported_loopback_family",
            Self::UnsupportedIpVersion(_) => "unsupported_ip_version",
            Self::Truncated => "truncated_record",
            Self::Unreadable(_) => "unreadable_record",
        }
    }
}

/// What was found, in words, for the summary.
impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedLinkType(link) => write!(
                f,
                "link type {link}; analyze reads Ethernet, SLL, SLL2, raw IP, PPP and BSD loopback"
            ),
            Self::UnsupportedPppProtocol(protocol) => write!(
                f,
                "PPP protocol {protocol:#06x}, neither IPv4 ({PPP_IPV4:#06x}) nor IPv6 ({PPP_IPV6:#06x})"
            ),
            Self::UnsupportedLoopbackFamily(family) => write!(
                f,
                "BSD loopback address family {family}, neither IPv4 ({LOOPBACK_IPV4}) nor IPv6 \
                 (24, 28, 30)"
            ),
            Self::UnsupportedIpVersion(version) => {
                write!(f, "raw IP record of IP version {version}, neither 4 nor 6")
            }
            Self::Truncated => write!(f, "shorter than its link-layer header"),
            Self::Unreadable(reason) => write!(f, "{reason}"),
        }
    }
}

/// An Ethernet frame carrying `payload` as `ethertype`, from `source` (a link-layer address,
/// cut or zero-padded to 6 bytes) to the zero address.
fn ethernet(ethertype: [u8; 2], source: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.extend_from_slice(&[0; 6]);
    let mut mac = [0u8; 6];
    let n = source.len().min(6);
    mac[..n].copy_from_slice(&source[..n]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ethertype);
    frame.extend_from_slice(payload);
    frame
}

fn raw_ip(data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let version = data.first().ok_or(RecordError::Truncated)? >> 4;
    match version {
        4 => Ok(ethernet(ETHERTYPE_IPV4, &[], data)),
        6 => Ok(ethernet(ETHERTYPE_IPV6, &[], data)),
        other => Err(RecordError::UnsupportedIpVersion(other)),
    }
}

fn ppp(data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let data = data.strip_prefix(&PPP_ADDRESS_CONTROL).unwrap_or(data);
    if data.len() < 2 {
        return Err(RecordError::Truncated);
    }
    match u16::from_be_bytes([data[0], data[1]]) {
        PPP_IPV4 => Ok(ethernet(ETHERTYPE_IPV4, &[], &data[2..])),
        PPP_IPV6 => Ok(ethernet(ETHERTYPE_IPV6, &[], &data[2..])),
        other => Err(RecordError::UnsupportedPppProtocol(other)),
    }
}

/// `family` as the capturing host wrote it (NULL: its own byte order; LOOP: network order).
fn loopback(family: u32, data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let payload = &data[LOOPBACK_HEADER..];
    match family {
        LOOPBACK_IPV4 => Ok(ethernet(ETHERTYPE_IPV4, &[], payload)),
        family if LOOPBACK_IPV6.contains(&family) => Ok(ethernet(ETHERTYPE_IPV6, &[], payload)),
        other => Err(RecordError::UnsupportedLoopbackFamily(other)),
    }
}

/// NULL's family is in the byte order of the host that captured, which need not be the
/// file's (files get rewritten elsewhere). Families are small numbers, so read it either way
/// and take the one below 2^16, as Wireshark and libpcap do.
fn null_family(header: [u8; 4]) -> u32 {
    let little = u32::from_le_bytes(header);
    if little > 0xffff {
        u32::from_be_bytes(header)
    } else {
        little
    }
}

/// Turns a record of link type `link` into an Ethernet frame.
pub fn to_ethernet(link: DataLink, data: &[u8]) -> Result<Vec<u8>, RecordError> {
    match link {
        DataLink::ETHERNET if data.len() >= 14 => Ok(data.to_vec()),
        // SLL: packet type, ARPHRD, address length, address (8), protocol.
        DataLink::LINUX_SLL if data.len() >= SLL_HEADER => {
            let addr_len = usize::from(u16::from_be_bytes([data[4], data[5]])).min(8);
            Ok(ethernet(
                [data[14], data[15]],
                &data[6..6 + addr_len],
                &data[SLL_HEADER..],
            ))
        }
        // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address (8).
        DataLink::LINUX_SLL2 if data.len() >= SLL2_HEADER => {
            let addr_len = usize::from(data[11]).min(8);
            Ok(ethernet(
                [data[0], data[1]],
                &data[12..12 + addr_len],
                &data[SLL2_HEADER..],
            ))
        }
        DataLink::ETHERNET | DataLink::LINUX_SLL | DataLink::LINUX_SLL2 => {
            Err(RecordError::Truncated)
        }
        DataLink::RAW | DataLink::Unknown(DLT_RAW_BSD | DLT_RAW_OPENBSD) => raw_ip(data),
        DataLink::PPP => ppp(data),
        DataLink::NULL | DataLink::LOOP if data.len() < LOOPBACK_HEADER => {
            Err(RecordError::Truncated)
        }
        DataLink::NULL => loopback(null_family([data[0], data[1], data[2], data[3]]), data),
        DataLink::LOOP => loopback(
            u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
            data,
        ),
        other => Err(RecordError::UnsupportedLinkType(u32::from(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header's first bytes and an IPv6 header's: enough to see where they land.
    const IPV4: &[u8] = &[0x45, 0, 0, 20];
    const IPV6: &[u8] = &[0x60, 0, 0, 0];

    fn frame(ethertype: [u8; 2], ip: &[u8]) -> Vec<u8> {
        [&[0u8; 12][..], &ethertype, ip].concat()
    }

    #[test]
    fn raw_ip_by_its_version_nibble_under_every_number_it_is_written_with() {
        for link in [
            DataLink::RAW,
            DataLink::Unknown(DLT_RAW_BSD),
            DataLink::Unknown(DLT_RAW_OPENBSD),
        ] {
            assert_eq!(to_ethernet(link, IPV4), Ok(frame(ETHERTYPE_IPV4, IPV4)));
            assert_eq!(to_ethernet(link, IPV6), Ok(frame(ETHERTYPE_IPV6, IPV6)));
            assert_eq!(
                to_ethernet(link, &[0x55, 0]),
                Err(RecordError::UnsupportedIpVersion(5))
            );
            assert_eq!(to_ethernet(link, &[]), Err(RecordError::Truncated));
        }
    }

    #[test]
    fn ppp_with_and_without_address_and_control() {
        for prefix in [&[][..], &PPP_ADDRESS_CONTROL] {
            let record = |protocol: &[u8], ip: &[u8]| [prefix, protocol, ip].concat();
            assert_eq!(
                to_ethernet(DataLink::PPP, &record(&[0x00, 0x21], IPV4)),
                Ok(frame(ETHERTYPE_IPV4, IPV4))
            );
            assert_eq!(
                to_ethernet(DataLink::PPP, &record(&[0x00, 0x57], IPV6)),
                Ok(frame(ETHERTYPE_IPV6, IPV6))
            );
            // LCP: a PPP frame, but not IP.
            assert_eq!(
                to_ethernet(DataLink::PPP, &record(&[0xc0, 0x21], &[1, 1, 0, 4])),
                Err(RecordError::UnsupportedPppProtocol(0xc021))
            );
            assert_eq!(
                to_ethernet(DataLink::PPP, &record(&[0x00], &[])),
                Err(RecordError::Truncated)
            );
        }
    }

    #[test]
    fn bsd_loopback_families_in_either_byte_order() {
        for (family, ethertype) in [
            (2, ETHERTYPE_IPV4),
            (24, ETHERTYPE_IPV6),
            (28, ETHERTYPE_IPV6),
            (30, ETHERTYPE_IPV6),
        ] {
            let ip = if ethertype == ETHERTYPE_IPV4 {
                IPV4
            } else {
                IPV6
            };
            let expected = Ok(frame(ethertype, ip));
            let le = [&u32::to_le_bytes(family)[..], ip].concat();
            let be = [&u32::to_be_bytes(family)[..], ip].concat();
            assert_eq!(to_ethernet(DataLink::NULL, &le), expected);
            assert_eq!(to_ethernet(DataLink::NULL, &be), expected);
            assert_eq!(to_ethernet(DataLink::LOOP, &be), expected);
        }
        // LOOP is network order only: a little-endian family is not guessed at.
        assert_eq!(
            to_ethernet(DataLink::LOOP, &[2, 0, 0, 0, 0x45]),
            Err(RecordError::UnsupportedLoopbackFamily(0x0200_0000))
        );
        // AF_APPLETALK (16): a loopback frame, but not IP.
        assert_eq!(
            to_ethernet(DataLink::NULL, &[16, 0, 0, 0, 0]),
            Err(RecordError::UnsupportedLoopbackFamily(16))
        );
        assert_eq!(
            to_ethernet(DataLink::NULL, &[2, 0, 0]),
            Err(RecordError::Truncated)
        );
    }

    #[test]
    fn the_summary_says_what_was_found() {
        assert_eq!(
            RecordError::UnsupportedPppProtocol(0xc021).to_string(),
            "PPP protocol 0xc021, neither IPv4 (0x0021) nor IPv6 (0x0057)"
        );
        assert!(
            RecordError::UnsupportedLoopbackFamily(17)
                .to_string()
                .starts_with("BSD loopback address family 17")
        );
    }
}
