//! Reading captures: pcap and pcapng (any number of interfaces), Ethernet or Linux cooked
//! (SLL, SLL2) link types. Cooked records become Ethernet frames, since that is what XDP sees.
//! A record that cannot be turned into a frame is reported, never fatal.

use std::{
    fs::File,
    io::{BufReader, Read},
    path::Path,
    time::Duration,
};

use pcap_file::{
    DataLink, TsResolution,
    pcap::PcapReader,
    pcapng::{Block, PcapNgReader},
};

use crate::Error;

/// One record of a capture.
pub struct Record {
    /// Capture time, since the Unix epoch.
    pub timestamp: Duration,
    /// Bytes captured.
    pub len: usize,
    /// The record as an Ethernet frame, or why it could not be one.
    pub frame: Result<Vec<u8>, RecordError>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// A link type other than Ethernet, SLL or SLL2 (the number from the capture).
    UnsupportedLinkType(u32),
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
            Self::Truncated => "truncated_record",
            Self::Unreadable(_) => "unreadable_record",
        }
    }
}

const SLL_HEADER: usize = 16;
const SLL2_HEADER: usize = 20;

/// Turns a record of link type `link` into an Ethernet frame.
pub fn to_ethernet(link: DataLink, data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let cooked = |protocol: [u8; 2], source: &[u8], payload: &[u8]| {
        let mut frame = Vec::with_capacity(14 + payload.len());
        frame.extend_from_slice(&[0; 6]);
        let mut mac = [0u8; 6];
        let n = source.len().min(6);
        mac[..n].copy_from_slice(&source[..n]);
        frame.extend_from_slice(&mac);
        frame.extend_from_slice(&protocol);
        frame.extend_from_slice(payload);
        frame
    };
    match link {
        DataLink::ETHERNET if data.len() >= 14 => Ok(data.to_vec()),
        // SLL: packet type, ARPHRD, address length, address (8), protocol.
        DataLink::LINUX_SLL if data.len() >= SLL_HEADER => {
            let addr_len = usize::from(u16::from_be_bytes([data[4], data[5]])).min(8);
            Ok(cooked(
                [data[14], data[15]],
                &data[6..6 + addr_len],
                &data[SLL_HEADER..],
            ))
        }
        // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address (8).
        DataLink::LINUX_SLL2 if data.len() >= SLL2_HEADER => {
            let addr_len = usize::from(data[11]).min(8);
            Ok(cooked(
                [data[0], data[1]],
                &data[12..12 + addr_len],
                &data[SLL2_HEADER..],
            ))
        }
        DataLink::ETHERNET | DataLink::LINUX_SLL | DataLink::LINUX_SLL2 => {
            Err(RecordError::Truncated)
        }
        other => Err(RecordError::UnsupportedLinkType(u32::from(other))),
    }
}

/// The records of a pcap or pcapng file, in file order.
pub fn records(path: &Path) -> Result<Box<dyn Iterator<Item = Record>>, Error> {
    let capture_error = |reason: String| Error::Capture {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(|e| capture_error(e.to_string()))?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|_| capture_error("too short to be a capture".to_owned()))?;
    let file = File::open(path).map_err(|e| capture_error(e.to_string()))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    match u32::from_le_bytes(magic) {
        0x0a0d_0d0a => {
            let reader = PcapNgReader::new(reader).map_err(|e| capture_error(e.to_string()))?;
            Ok(Box::new(PcapNgRecords {
                reader,
                done: false,
            }))
        }
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => {
            let reader = PcapReader::new(reader).map_err(|e| capture_error(e.to_string()))?;
            let header = reader.header();
            Ok(Box::new(PcapRecords {
                reader,
                link: header.datalink,
                nanoseconds: header.ts_resolution == TsResolution::NanoSecond,
                done: false,
            }))
        }
        _ => Err(capture_error(
            "not a pcap or pcapng file (unknown magic number)".to_owned(),
        )),
    }
}

struct PcapRecords<R: Read> {
    reader: PcapReader<R>,
    link: DataLink,
    nanoseconds: bool,
    done: bool,
}

impl<R: Read> Iterator for PcapRecords<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.done {
            return None;
        }
        // Raw records: pcap-file 2.0's checked reader refuses any record whose original length
        // exceeds the snap length, i.e. every packet of a `tcpdump -s 256` capture.
        match self.reader.next_raw_packet()? {
            Ok(packet) => {
                let fraction = if self.nanoseconds {
                    Duration::from_nanos(u64::from(packet.ts_frac))
                } else {
                    Duration::from_micros(u64::from(packet.ts_frac))
                };
                Some(Record {
                    timestamp: Duration::from_secs(u64::from(packet.ts_sec)) + fraction,
                    len: packet.data.len(),
                    frame: to_ethernet(self.link, &packet.data),
                })
            }
            Err(error) => {
                self.done = true;
                Some(unreadable(error.to_string()))
            }
        }
    }
}

struct PcapNgRecords<R: Read> {
    reader: PcapNgReader<R>,
    done: bool,
}

impl<R: Read> Iterator for PcapNgRecords<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        while !self.done {
            let block = match self.reader.next_block()? {
                Ok(block) => block,
                Err(error) => {
                    self.done = true;
                    return Some(unreadable(error.to_string()));
                }
            };
            let (timestamp, data, interface) = match block {
                Block::EnhancedPacket(packet) => (
                    packet.timestamp,
                    packet.data.into_owned(),
                    packet.interface_id,
                ),
                Block::SimplePacket(packet) => (Duration::ZERO, packet.data.into_owned(), 0),
                // Section headers, interface descriptions, statistics: no packet.
                _ => continue,
            };
            let link = self
                .reader
                .interfaces()
                .get(interface as usize)
                .map(|interface| interface.linktype);
            let frame = match link {
                Some(link) => to_ethernet(link, &data),
                None => Err(RecordError::Unreadable(format!(
                    "packet of interface {interface}, which the file does not describe"
                ))),
            };
            return Some(Record {
                timestamp,
                len: data.len(),
                frame,
            });
        }
        None
    }
}

fn unreadable(reason: String) -> Record {
    Record {
        timestamp: Duration::ZERO,
        len: 0,
        frame: Err(RecordError::Unreadable(reason)),
    }
}
