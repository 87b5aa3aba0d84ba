//! Re-encapsulating a capture: each record's link-layer header replaced by another link
//! type's, the IP bytes after it and the timestamps unchanged. It gives public captures in
//! link types no public MPTCP capture was found in (BSD loopback, HDLC-framed PPP, raw IP
//! under the BSD DLT numbers); the README beside the captures says which.

use std::{fs::File, path::Path};

use pcap_file::{
    DataLink,
    pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter},
};

/// The link type to write, with how its header is made from the IP version.
#[derive(Copy, Clone, Debug)]
pub enum Relink {
    /// BSD loopback NULL, the family in little-endian order as macOS writes it on x86 and
    /// ARM (`tcpdump -i lo0`): 2 for IPv4, 30 (Darwin's AF_INET6) for IPv6.
    NullLittleEndian,
    /// BSD loopback LOOP, the family in network order (OpenBSD): 2, and 24 for IPv6.
    Loop,
    /// PPP with the HDLC-like address and control bytes FF 03 before the protocol.
    PppHdlc,
    /// Raw IP under a DLT number (12 on most BSDs, 14 on OpenBSD).
    RawDlt(u32),
}

impl Relink {
    fn link(self) -> DataLink {
        match self {
            Self::NullLittleEndian => DataLink::NULL,
            Self::Loop => DataLink::LOOP,
            Self::PppHdlc => DataLink::PPP,
            Self::RawDlt(number) => DataLink::Unknown(number),
        }
    }

    fn header(self, ipv6: bool) -> Vec<u8> {
        match (self, ipv6) {
            (Self::NullLittleEndian, false) => 2u32.to_le_bytes().to_vec(),
            (Self::NullLittleEndian, true) => 30u32.to_le_bytes().to_vec(),
            (Self::Loop, false) => 2u32.to_be_bytes().to_vec(),
            (Self::Loop, true) => 24u32.to_be_bytes().to_vec(),
            (Self::PppHdlc, false) => vec![0xff, 0x03, 0x00, 0x21],
            (Self::PppHdlc, true) => vec![0xff, 0x03, 0x00, 0x57],
            (Self::RawDlt(_), _) => Vec::new(),
        }
    }
}

/// The IP packet of a record of link type `link`; panics on anything but IP, since a
/// re-encapsulated capture must hold the same packets as its source.
fn ip_bytes(link: DataLink, record: &[u8]) -> &[u8] {
    let (ethertype, ip) = match link {
        DataLink::ETHERNET => ([record[12], record[13]], &record[14..]),
        DataLink::LINUX_SLL => ([record[14], record[15]], &record[16..]),
        DataLink::PPP => match [record[0], record[1]] {
            [0x00, 0x21] => ([0x08, 0x00], &record[2..]),
            [0x00, 0x57] => ([0x86, 0xdd], &record[2..]),
            other => panic!("PPP protocol {other:02x?} is not IP"),
        },
        DataLink::RAW => match record[0] >> 4 {
            4 => ([0x08, 0x00], record),
            6 => ([0x86, 0xdd], record),
            other => panic!("raw IP record of version {other}"),
        },
        other => panic!("no re-encapsulation from {other:?}"),
    };
    assert!(
        ethertype == [0x08, 0x00] || ethertype == [0x86, 0xdd],
        "a record that is not IP (EtherType {ethertype:02x?}) cannot be re-encapsulated"
    );
    ip
}

/// Writes `source` (pcap) to `target` with every record re-encapsulated as `relink`.
pub fn relink(source: &Path, target: &Path, relink: Relink) {
    let mut reader = PcapReader::new(File::open(source).unwrap()).unwrap();
    let header = reader.header();
    let mut writer = PcapWriter::with_header(
        File::create(target).unwrap(),
        PcapHeader {
            datalink: relink.link(),
            ..header
        },
    )
    .unwrap();
    while let Some(packet) = reader.next_raw_packet() {
        let packet = packet.unwrap();
        let ip = ip_bytes(header.datalink, &packet.data);
        let data = [relink.header(ip[0] >> 4 == 6), ip.to_vec()].concat();
        let dropped = packet.orig_len as usize - packet.data.len();
        let timestamp = std::time::Duration::new(
            u64::from(packet.ts_sec),
            if header.ts_resolution == pcap_file::TsResolution::NanoSecond {
                packet.ts_frac
            } else {
                packet.ts_frac * 1000
            },
        );
        let orig_len = (data.len() + dropped) as u32;
        writer
            .write_packet(&PcapPacket::new(timestamp, orig_len, &data))
            .unwrap();
    }
}
