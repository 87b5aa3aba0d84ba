//! `classifier analyze` throughput on a capture of 1 M packets.

use std::{
    fs::File,
    io::BufWriter,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use anyhow::Result;
use classifier_testkit::{mptcp, packet::Segment};
use pcap_file::pcap::{PcapPacket, PcapWriter};

use crate::{
    cli, packets,
    table::{Section, Table, Target, count},
};

const PACKETS: usize = 1_000_000;
const FLOWS: u32 = 5_000;

/// A capture of `PACKETS` packets in `FLOWS` flows: plain TCP, Apple downloads, MPTCP with
/// DSS options, IPv6 with extension headers, UDP, and some malformed, in turn.
fn write_capture(path: &std::path::Path) -> Result<u64> {
    let mut writer = PcapWriter::new(BufWriter::new(File::create(path)?))?;
    let templates = [
        packets::ipv4_tcp_no_match(),
        packets::apple_v4(),
        packets::ipv4_tcp_mptcp_dss(),
        packets::ipv6_tcp_two_extensions(),
        packets::worst_case(),
        packets::udp(),
        packets::malformed(),
    ];
    let mut bytes = 0u64;
    for n in 0..PACKETS {
        let flow = n as u32 % FLOWS;
        let mut packet = if n % 10 == 0 {
            // A new client now and then, with an MPTCP SYN.
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | flow));
            Segment::tcp(&client.to_string(), packets::APPLE_V4, 40_000, 443)
                .syn()
                .options(&mptcp::mp_capable_v1_syn())
                .build()
        } else {
            templates[n % templates.len()].clone()
        };
        // Spread the templates over flows: the source port is at the same place in each
        // (for the IPv4 ones); the IPv6 ones stay few flows.
        if packet.len() > 36 && packet[12..14] == [0x08, 0x00] {
            let port = 1024 + (flow % 60_000) as u16;
            packet[34..36].copy_from_slice(&port.to_be_bytes());
        }
        let timestamp = Duration::from_micros(n as u64 * 10);
        bytes += packet.len() as u64;
        writer.write_packet(&PcapPacket::new(timestamp, packet.len() as u32, &packet))?;
    }
    Ok(bytes)
}

pub fn run() -> Result<Section> {
    let mut section = Section::new(
        "analyze throughput",
        format!(
            "A pcap of {} packets ({} flows of every kind the per-packet section measures, \
             plus MPTCP SYNs from new clients), written by the benchmark; then `classifier \
             analyze FILE` (the summary), its wall time from start to exit. Each packet goes \
             through the kernel program with BPF_PROG_TEST_RUN.",
            count(PACKETS as u64),
            count(u64::from(FLOWS))
        ),
    );
    let path = std::env::temp_dir().join(format!("classifier-bench-{}.pcap", std::process::id()));
    let result = (|| -> Result<(u64, Duration)> {
        let bytes = write_capture(&path)?;
        let elapsed = cli::timed(None, &["analyze".as_ref(), path.as_os_str()])?;
        Ok((bytes, elapsed))
    })();
    let _ = std::fs::remove_file(&path);
    let (bytes, elapsed) = result?;
    let rate = PACKETS as f64 / elapsed.as_secs_f64();
    let mut table = Table::new(
        "classifier analyze",
        &["packets", "capture", "wall time", "packets/s"],
    );
    table.row(vec![
        count(PACKETS as u64),
        format!("{:.0} MB", bytes as f64 / 1e6),
        format!("{:.2} s", elapsed.as_secs_f64()),
        count(rate as u64),
    ]);
    section.table(table);
    section.target(Target {
        what: "analyze throughput",
        goal: "≥ 200,000 packets/s",
        measured: format!("{} packets/s", count(rate as u64)),
        met: rate >= 200_000.0,
    });
    Ok(section)
}
