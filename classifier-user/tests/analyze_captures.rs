//! `classifier analyze` on captures the tests make: crafted pcap/pcapng files (an iOS-style
//! MPTCP v0 handshake, malformed packets, VLAN, IPv6 extension headers; SLL, SLL2, raw IP,
//! PPP and BSD loopback records; unsupported link types and protocols; a broken file) and a
//! real kernel MPTCP connection recorded with tcpdump in the lab. The per-packet JSON is
//! checked field by field.

use classifier_testkit as support;

use std::{borrow::Cow, fs::File, path::PathBuf, time::Duration};

use classifier_lab::{self as lab, Lab, traffic};
use pcap_file::{
    DataLink,
    pcap::{PcapHeader, PcapPacket, PcapWriter},
    pcapng::{
        PcapNgWriter,
        blocks::{
            enhanced_packet::EnhancedPacketBlock, interface_description::InterfaceDescriptionBlock,
        },
    },
};
use serde_json::{Value, json};
use support::{
    cli::{Ran, binary},
    mptcp,
    packet::{
        DEST_OPTIONS, ETH_LEN, HOP_BY_HOP, Ipv6Extension, Segment, TPID_8021Q,
        insert_ipv6_extensions,
    },
    wait::wait_until,
};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("classifier-analyze-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_pcap(path: &PathBuf, link: DataLink, frames: &[Vec<u8>]) {
    let header = PcapHeader {
        datalink: link,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(File::create(path).unwrap(), header).unwrap();
    for (n, frame) in frames.iter().enumerate() {
        let packet = PcapPacket::new(Duration::from_millis(n as u64), frame.len() as u32, frame);
        writer.write_packet(&packet).unwrap();
    }
}

fn analyze(args: &[&str]) -> Ran {
    std::process::Command::new(binary())
        .args(["--config", "/dev/null", "analyze"])
        .args(args)
        .output()
        .unwrap()
        .into()
}

/// A child process killed (if still running) and reaped when dropped.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How many FIN segments from `side` (a tcpdump filter) the capture being written holds.
fn captured(path: &std::path::Path, side: &str) -> usize {
    let read = std::process::Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(path)
        .arg(format!("{side} and tcp[tcpflags] & tcp-fin != 0"))
        .stderr(std::process::Stdio::null())
        .output()
        .expect("running tcpdump -r");
    // A record still being written ends the read early: what came before it is counted.
    String::from_utf8_lossy(&read.stdout).lines().count()
}

fn lines(ran: Ran) -> Vec<Value> {
    let ran = ran.ok();
    ran.stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The exact line analyze prints for an untouched packet without MPTCP.
fn plain(index: u64, len: usize, dscp: Option<u8>, error: Option<&str>) -> Value {
    json!({"index": index, "len": len, "verdict": "pass", "mptcp_option": false,
           "mptcp_subtypes": [], "mptcp_flow": false, "mptcp_state": "no", "lists": [],
           "dscp_in": dscp, "dscp_out": dscp, "error": error})
}

#[test]
fn a_crafted_capture_gives_the_expected_line_for_every_packet() {
    support::require_root();
    let scratch = Scratch::new("crafted");
    // iOS 7's handshake towards Apple: MP_CAPABLE v0 on SYN, SYN-ACK and third ACK.
    let syn = Segment::tcp("192.0.2.10", "17.253.0.10", 50000, 443)
        .syn()
        .options(&[mptcp::syn_options(), mptcp::mp_capable_v0_syn()].concat())
        .payload(&[]);
    let syn_ack = syn.reply().syn_ack().options(&mptcp::mp_capable_v0_syn());
    let third = Segment::tcp("192.0.2.10", "17.253.0.10", 50000, 443)
        .options(&mptcp::mp_capable_v0_ack())
        .payload(&[]);
    let data = Segment::tcp("17.253.0.10", "192.0.2.10", 443, 50000).options(&mptcp::dss(true));
    let mut bad_ihl = Segment::tcp("192.0.2.10", "198.51.100.10", 50001, 80).build();
    bad_ihl[ETH_LEN] = 0x43;
    let bad_option = Segment::tcp("192.0.2.10", "198.51.100.10", 50002, 80)
        .options(&[2, 0, 1, 1])
        .build();
    let vlan = Segment::udp("198.51.100.10", "192.0.2.10", 53, 40000)
        .vlan(TPID_8021Q, 10)
        .build();
    let mut ipv6 = Segment::tcp("2001:db8:1::10", "2620:149:a44::10", 50003, 443)
        .options(&mptcp::mp_capable_v1_syn())
        .syn()
        .build();
    insert_ipv6_extensions(
        &mut ipv6,
        &[
            Ipv6Extension {
                kind: HOP_BY_HOP,
                len: 8,
            },
            Ipv6Extension {
                kind: DEST_OPTIONS,
                len: 16,
            },
        ],
    );
    let frames = vec![
        syn.build(),
        syn_ack.build(),
        third.build(),
        data.build(),
        bad_ihl,
        bad_option,
        vlan,
        ipv6,
    ];
    let path = scratch.file("crafted.pcap");
    write_pcap(&path, DataLink::ETHERNET, &frames);
    let got = lines(analyze(&[path.to_str().unwrap(), "--json"]));
    let len = |n: usize| frames[n].len();
    // A SYN's MP_CAPABLE only offers MPTCP: the flow is "attempted" until the SYN/ACK.
    let mptcp_line =
        |index: u64, subtypes: Value, version: Option<u8>, dscp_in: u8, dscp_out: u8| {
            let state = if index == 0 || index == 7 {
                "attempted"
            } else {
                "yes"
            };
            let mut line = json!({"index": index, "len": len(index as usize), "verdict": "pass",
            "mptcp_option": true, "mptcp_subtypes": subtypes, "mptcp_flow": state == "yes",
            "mptcp_state": state, "lists": ["apple"], "dscp_in": dscp_in, "dscp_out": dscp_out,
            "error": null});
            if let Some(version) = version {
                line.as_object_mut()
                    .unwrap()
                    .insert("mptcp_version".into(), json!(version));
            }
            line
        };
    let expected = vec![
        // Default policy: list:apple=LE first, so these Apple packets are marked LE (1).
        mptcp_line(0, json!([0]), Some(0), 0, 1),
        mptcp_line(1, json!([0]), Some(0), 0, 1),
        mptcp_line(2, json!([0]), Some(0), 0, 1),
        mptcp_line(3, json!([2]), None, 0, 1),
        plain(4, len(4), None, Some("ipv4_header_too_short")),
        // A bad option stops the walk, not the classification: no list, so no mark.
        plain(5, len(5), Some(0), Some("tcp_option_bad_length")),
        plain(6, len(6), Some(0), None),
        mptcp_line(7, json!([0]), Some(1), 0, 1),
    ];
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected);
    }
    assert_eq!(got.len(), expected.len());
    // Keys in the documented order.
    let first = analyze(&[path.to_str().unwrap(), "--json"]).ok().stdout;
    assert!(first.starts_with("{\"index\":0,\"len\":"), "{first}");

    // The summary of the same capture.
    let summary = analyze(&[path.to_str().unwrap()]).ok().stdout;
    println!("{summary}");
    for expected in [
        "8 packets",
        // The IPv6 SYN only offered MPTCP: no SYN/ACK in the capture.
        "MPTCP: 1 connections (MP_CAPABLE), 0 joined subflows (MP_JOIN), 1 flows in all; \
         1 offered on a SYN with no answer seen, 0 fell back to TCP",
        "MP_CAPABLE versions: v0 (RFC 6824, iOS) 3, v1 (RFC 8684) 1",
        "ipv4_header_too_short 1",
        "would be marked",
    ] {
        assert!(summary.contains(expected), "summary lacks `{expected}`");
    }
}

#[test]
fn cooked_captures_other_link_types_and_broken_files() {
    support::require_root();
    let scratch = Scratch::new("cooked");
    let frame = Segment::tcp("192.0.2.10", "17.253.0.10", 50010, 443)
        .options(&mptcp::mp_capable_v1_syn())
        .syn()
        .build();
    let ip = &frame[ETH_LEN..];
    // SLL2: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address.
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(ip);
    // SLL: packet type, ARPHRD_ETHER, address length, address, protocol.
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(ip);
    let expected = |index: u64, len: usize| {
        json!({"index": index, "len": len, "verdict": "pass", "mptcp_option": true,
               "mptcp_subtypes": [0], "mptcp_version": 1, "mptcp_flow": false,
               "mptcp_state": "attempted", "lists": ["apple"], "dscp_in": 0, "dscp_out": 1,
               "error": null})
    };
    for (name, link, record) in [
        ("sll2.pcap", DataLink::LINUX_SLL2, &sll2),
        ("sll.pcap", DataLink::LINUX_SLL, &sll),
    ] {
        let path = scratch.file(name);
        write_pcap(&path, link, std::slice::from_ref(record));
        let got = lines(analyze(&[path.to_str().unwrap(), "--json"]));
        assert_eq!(got, vec![expected(0, record.len())], "{name}");
    }

    // pcapng with two interfaces of different link types, packets interleaved.
    let path = scratch.file("two-interfaces.pcapng");
    {
        let mut writer = PcapNgWriter::new(File::create(&path).unwrap()).unwrap();
        for linktype in [DataLink::ETHERNET, DataLink::LINUX_SLL2] {
            writer
                .write_pcapng_block(InterfaceDescriptionBlock {
                    linktype,
                    snaplen: 0,
                    options: vec![],
                })
                .unwrap();
        }
        for (interface, data) in [(1u32, &sll2), (0, &frame), (1, &sll2)] {
            writer
                .write_pcapng_block(EnhancedPacketBlock {
                    interface_id: interface,
                    timestamp: Duration::from_secs(1),
                    original_len: data.len() as u32,
                    data: Cow::Borrowed(data),
                    options: vec![],
                })
                .unwrap();
        }
    }
    let got = lines(analyze(&[path.to_str().unwrap(), "--json"]));
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], expected(1, frame.len()));
    // The flow is remembered across interfaces: still the same attempt.
    assert_eq!(got[2]["mptcp_state"], "attempted");

    // Raw IP (under all three numbers), PPP (with and without HDLC address and control) and
    // BSD loopback (NULL in either byte order, LOOP in network order), IPv4 and IPv6: each
    // record becomes the frame above, so each gives the same line.
    let frame6 = Segment::tcp("2001:db8:1::10", "2620:149:a44::10", 50011, 443)
        .options(&mptcp::mp_capable_v1_syn())
        .syn()
        .build();
    let ip6 = &frame6[ETH_LEN..];
    for (ip, ppp, family6) in [(ip, [0x00, 0x21], None), (ip6, [0x00, 0x57], Some(30u32))] {
        let null_family = family6.unwrap_or(2);
        let records = [
            ("raw", DataLink::RAW, ip.to_vec()),
            ("dlt12", DataLink::Unknown(12), ip.to_vec()),
            ("dlt14", DataLink::Unknown(14), ip.to_vec()),
            ("ppp", DataLink::PPP, [&ppp[..], ip].concat()),
            (
                "hdlc",
                DataLink::PPP,
                [&[0xff, 0x03], &ppp[..], ip].concat(),
            ),
            (
                "null-le",
                DataLink::NULL,
                [&null_family.to_le_bytes()[..], ip].concat(),
            ),
            (
                "null-be",
                DataLink::NULL,
                [&null_family.to_be_bytes()[..], ip].concat(),
            ),
            (
                "loop",
                DataLink::LOOP,
                [&null_family.to_be_bytes()[..], ip].concat(),
            ),
        ];
        for (name, link, record) in records {
            let path = scratch.file(&format!("{name}-{}.pcap", ip[0] >> 4));
            write_pcap(&path, link, std::slice::from_ref(&record));
            let got = lines(analyze(&[path.to_str().unwrap(), "--json"]));
            assert_eq!(
                got,
                vec![expected(0, record.len())],
                "{name}, IP version {}",
                ip[0] >> 4
            );
        }
    }

    // A link type analyze cannot turn into Ethernet, a PPP frame that is not IP (LCP) and a
    // loopback frame of another family, each after a good record where the link type has one:
    // entries with their errors, not a crash; the summary says what was found and where.
    let lcp = [0xc0, 0x21, 1, 1, 0, 4];
    let ppp_ip = [&[0x00, 0x21], ip].concat();
    let null_ip = [&2u32.to_le_bytes()[..], ip].concat();
    let appletalk = [&16u32.to_le_bytes()[..], ip].concat();
    for (name, link, records, error, found) in [
        (
            "wifi.pcap",
            DataLink::IEEE802_11,
            vec![ip.to_vec()],
            "unsupported_link_type",
            "link type 105",
        ),
        (
            "lcp.pcap",
            DataLink::PPP,
            vec![ppp_ip, lcp.to_vec()],
            "unsupported_ppp_protocol",
            "PPP protocol 0xc021",
        ),
        (
            "appletalk.pcap",
            DataLink::NULL,
            vec![null_ip, appletalk],
            "unsupported_loopback_family",
            "BSD loopback address family 16",
        ),
    ] {
        let path = scratch.file(name);
        write_pcap(&path, link, &records);
        let got = lines(analyze(&[path.to_str().unwrap(), "--json"]));
        let last = records.len() - 1;
        assert_eq!(got.len(), records.len(), "{name}");
        assert!(got[..last].iter().all(|p| p["verdict"] == "pass"), "{name}");
        assert_eq!(
            got[last],
            json!({"index": last, "len": records[last].len(), "verdict": null,
                    "mptcp_option": false, "mptcp_subtypes": [], "mptcp_flow": false,
                    "mptcp_state": "no", "lists": [], "dscp_in": null, "dscp_out": null,
                    "error": error}),
            "{name}"
        );
        let summary = analyze(&[path.to_str().unwrap()]).ok().stdout;
        let line = format!("1 records not run: {error} (the first, packet {last}: {found}");
        assert!(summary.contains(&line), "{name}: no `{line}` in {summary}");
    }

    // A file cut in the middle of a record: the records before it, then one error entry.
    let path = scratch.file("cut.pcap");
    write_pcap(&path, DataLink::ETHERNET, &[frame.clone(), frame.clone()]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
    let got = lines(analyze(&[path.to_str().unwrap(), "--json"]));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["verdict"], "pass");
    assert_eq!(got[1]["error"], "unreadable_record");

    // Not a capture at all: an input error naming the file.
    let path = scratch.file("not-a-capture.pcap");
    std::fs::write(&path, b"hello, this is text").unwrap();
    let ran = analyze(&[path.to_str().unwrap()]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("not-a-capture.pcap") && ran.stderr.contains("not a pcap"));
}

#[test]
fn a_real_mptcp_connection_recorded_with_tcpdump() {
    let lab = Lab::new().expect("lab");
    let scratch = Scratch::new("real");
    let path = scratch.file("mptcp.pcap");
    // Plain frames on the wire, so that each record is one packet as XDP would see it.
    for (ns, dev) in [
        (&lab.client, "c0"),
        (&lab.client, "c1"),
        (&lab.server, "s0"),
    ] {
        ns.exec("ethtool", &["-K", dev, "tso", "off", "gso", "off"])
            .unwrap();
    }
    // Killed on drop, so that a failing test leaves no tcpdump behind.
    let mut tcpdump = KilledOnDrop(
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                lab.router.name(),
                "tcpdump",
                "-i",
                "any",
                "-s",
                "256",
                "-U",
                "-w",
            ])
            .arg(&path)
            .args(["tcp", "port", "7000"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // tcpdump says "listening on ..." once it captures; before that packets would be missed.
    let stderr = tcpdump.0.stderr.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("listening on") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(15))
        .expect("tcpdump did not start capturing");
    let server = format!("{}:7000", lab::SERVER_APPLE_V4).parse().unwrap();
    traffic::transfer(
        &lab.client,
        lab::CLIENT_V4.parse().unwrap(),
        &lab.server,
        server,
        1 << 20,
        true,
        2,
    )
    .unwrap();
    // The connection is over in the capture once both ends' FINs are in it.
    wait_until(
        Duration::from_secs(10),
        "the capture to hold both ends' FIN",
        || {
            ["src port 7000", "dst port 7000"]
                .iter()
                .all(|side| captured(&path, side) > 0)
        },
    );
    // SAFETY: signalling our own child so that tcpdump flushes and closes the file.
    unsafe { libc::kill(tcpdump.0.id() as i32, libc::SIGINT) };
    tcpdump.0.wait().unwrap();

    // `-i any` records Linux cooked frames (SLL2 with this tcpdump).
    let got = lines(analyze(&[path.to_str().unwrap(), "--json"]));
    assert!(got.len() > 100, "only {} packets captured", got.len());
    let with = |subtype: u64| {
        got.iter()
            .filter(|p| {
                p["mptcp_subtypes"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(subtype))
            })
            .count()
    };
    assert!(with(0) >= 3, "MP_CAPABLE packets: {}", with(0));
    assert!(with(1) >= 2, "MP_JOIN packets: {}", with(1));
    assert!(with(2) > 50, "DSS packets: {}", with(2));
    assert!(
        got.iter().all(|p| p["error"].is_null()),
        "no errors expected"
    );
    // Every packet of port 7000 is MPTCP, but the SYNs: they only offer it (docs/design.md,
    // 'MPTCP state of a flow'), and each subflow is MPTCP from its SYN/ACK on.
    let attempts = got
        .iter()
        .filter(|p| p["mptcp_state"] == "attempted")
        .count();
    assert!(
        (2..=4).contains(&attempts),
        "one SYN per subflow is only an attempt, with perhaps a retransmission: {attempts}"
    );
    assert!(
        got.iter()
            .all(|p| p["mptcp_flow"] == true || p["mptcp_state"] == "attempted"),
        "every packet of port 7000 but the SYNs is MPTCP"
    );
    assert!(got.iter().all(|p| p["lists"] == json!(["apple"])));
    assert!(
        got.iter()
            .filter(|p| p["mptcp_subtypes"] == json!([0]))
            .all(|p| p["mptcp_version"] == 1)
    );
    let summary = analyze(&[path.to_str().unwrap()]).ok().stdout;
    println!("{summary}");
    assert!(
        summary.contains("MPTCP: 1 connections (MP_CAPABLE), 1 joined subflows (MP_JOIN)"),
        "{summary}"
    );
}

/// A DNS answer to a query in the capture, leading through a CNAME chain into Apple's CDN
/// names, to an address outside every static prefix: the download that follows it is marked;
/// after the answer's lifetime (max(TTL 30 s, minimum 60 s)), a new flow to the address is
/// not, the answer's replay notwithstanding.
#[test]
fn dns_answers_in_a_capture_teach_cdn_addresses_until_they_expire() {
    use simple_dns::{CLASS, Name, Packet, Question, ResourceRecord, rdata};

    support::require_root();
    let scratch = Scratch::new("dns");
    let mut answer = Packet::new_reply(42);
    answer.questions.push(Question::new(
        Name::new_unchecked("updates.cdn-apple.com"),
        simple_dns::TYPE::A.into(),
        CLASS::IN.into(),
        false,
    ));
    let chain = [
        ("updates.cdn-apple.com", "updates.cdn-apple.com.akadns.net"),
        ("updates.cdn-apple.com.akadns.net", "a1.cdn.example.net"),
    ];
    for (owner, target) in chain {
        answer.answers.push(ResourceRecord::new(
            Name::new_unchecked(owner),
            CLASS::IN,
            300,
            rdata::RData::CNAME(rdata::CNAME(Name::new_unchecked(target))),
        ));
    }
    answer.answers.push(ResourceRecord::new(
        Name::new_unchecked("a1.cdn.example.net"),
        CLASS::IN,
        30,
        rdata::RData::A(rdata::A::from(std::net::Ipv4Addr::new(203, 0, 113, 77))),
    ));
    let mut query = Packet::new_query(42);
    query.questions = answer.questions.clone();
    let query = Segment::udp("192.0.2.10", "198.51.100.53", 40053, 53)
        .payload(&query.build_bytes_vec().unwrap())
        .build();
    let dns = Segment::udp("198.51.100.53", "192.0.2.10", 53, 40053)
        .payload(&answer.build_bytes_vec().unwrap())
        .build();
    // The same answer again: its query is used up, so it teaches nothing (see
    // docs/design.md, 'DNS learning'); were it learned, its later time would keep the
    // address past the new flow at 100 s.
    let replay = dns.clone();
    let download = Segment::tcp("203.0.113.77", "192.0.2.10", 443, 50100).build();
    let later_new_flow = Segment::tcp("203.0.113.77", "192.0.2.10", 443, 50101).build();
    let path = scratch.file("dns.pcap");
    let mut writer = PcapWriter::new(File::create(&path).unwrap()).unwrap();
    for (seconds, frame) in [
        (0, &query),
        (0, &dns),
        (1, &download),
        (50, &replay),
        (100, &later_new_flow),
        (100, &download),
    ] {
        let packet = PcapPacket::new(
            Duration::from_secs(1_700_000_000 + seconds),
            frame.len() as u32,
            frame,
        );
        writer.write_packet(&packet).unwrap();
    }
    drop(writer);

    let got = lines(analyze(&[path.to_str().unwrap(), "--json"]));
    assert_eq!(got[1]["lists"], json!([]), "the DNS answer itself");
    assert_eq!(
        got[2]["lists"],
        json!(["apple"]),
        "the download after the answer"
    );
    assert_eq!(got[2]["dscp_out"], 1);
    assert_eq!(
        got[4]["lists"],
        json!([]),
        "a new flow after the answer expired"
    );
    assert_eq!(
        got[5]["lists"],
        json!(["apple"]),
        "the established download keeps its class"
    );
    let summary = analyze(&[path.to_str().unwrap()]).ok().stdout;
    assert!(summary.contains("DNS: 1 addresses learned"), "{summary}");
}
