//! Reading captures: pcap and pcapng (any number of interfaces), each record turned into the
//! Ethernet frame XDP sees by `link`. A record that cannot be turned into a frame is
//! reported, never fatal.

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

use super::link::{RecordError, to_ethernet};
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
