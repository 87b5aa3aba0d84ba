//! `classifier analyze --json` against tshark's MPTCP dissector, packet by packet, on public
//! captures this project did not make (tests/captures/public/README.md): tcpdump's MPTCP
//! test captures (Ethernet, Linux cooked SLL, raw IP) and mptcpanalyzer's iperf capture
//! (PPP), then the same packets re-encapsulated as BSD loopback (NULL, LOOP), HDLC-framed
//! PPP and raw IP under DLT 12 and 14.
//!
//! Per packet: the set of MPTCP subtypes, MP_CAPABLE's version, and whether the packet is
//! malformed. The classifier counts an option 30 only when Linux's `mptcp_parse_option`
//! accepts it (docs/design.md, 'TCP options and MPTCP'); tshark decodes whatever it can.
//! Where the two readings differ by design, the frame is in `DISAGREEMENTS` with the reason,
//! and both readings are checked there too; every other frame must agree exactly.

use classifier_testkit as support;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use pcap_file::{DataLink, pcap::PcapReader};
use serde_json::Value;
use support::{
    cli::binary,
    relink::{Relink, relink},
    tshark::{self, TsharkFrame},
};

const PUBLIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/captures/public");

/// The public captures as their projects published them, with their link types.
const NATIVE: [(&str, DataLink); 8] = [
    ("tcpdump/mptcp-v0.pcap", DataLink::ETHERNET),
    ("tcpdump/mptcp-fclose.pcap", DataLink::ETHERNET),
    ("tcpdump/mptcp-aa-v1.pcap", DataLink::ETHERNET),
    ("tcpdump/mptcp-dss-oobr.pcap", DataLink::ETHERNET),
    ("tcpdump/mptcp-v1.pcap", DataLink::LINUX_SLL),
    ("tcpdump/mptcp-aa-echo.pcap", DataLink::LINUX_SLL),
    ("tcpdump/mptcp-tcprst.pcap", DataLink::RAW),
    ("mptcpanalyzer/iperf-mptcp-0-0.pcap", DataLink::PPP),
];

/// Re-encapsulations: the same IP bytes under another link-layer header (`support::relink`).
const RELINKED: [(&str, Relink); 5] = [
    // IPv4 and IPv6 (ICMPv6 router solicitations), as macOS writes `tcpdump -i lo0`.
    (
        "mptcpanalyzer/iperf-mptcp-0-0.pcap",
        Relink::NullLittleEndian,
    ),
    ("tcpdump/mptcp-v0.pcap", Relink::Loop),
    ("tcpdump/mptcp-v1.pcap", Relink::PppHdlc),
    ("tcpdump/mptcp-tcprst.pcap", Relink::RawDlt(12)),
    ("tcpdump/mptcp-dss-oobr.pcap", Relink::RawDlt(14)),
];

/// A frame the classifier must read differently from tshark, and why. Keyed by the
/// published capture; its re-encapsulations hold the same frames.
struct Disagreement {
    capture: &'static str,
    frame: u64,
    tshark_subtypes: &'static [u8],
    tshark_malformed: bool,
    analyze_subtypes: &'static [u8],
    analyze_error: &'static str,
    why: &'static str,
}

/// One frame only: the v0 ADD_ADDRs of 8 bytes (no HMAC) in `mptcp-v0.pcap` and the
/// mptcpanalyzer capture once disagreed too, until the classifier accepted RFC 6824's
/// ADD_ADDR as it accepts RFC 6824's MP_CAPABLE (docs/design.md, 'TCP options and MPTCP');
/// tshark and the classifier now read them the same, and the test holds them to it.
const DISAGREEMENTS: [Disagreement; 1] = [
    // A DSS of 3 bytes, with no room for its flags (tcpdump prints `[bad opt]`). Both call
    // the packet malformed, but tshark names the subtype before it throws; Linux needs at
    // least 4 bytes and ignores the option, so the classifier counts no subtype.
    Disagreement {
        capture: "tcpdump/mptcp-dss-oobr.pcap",
        frame: 1,
        tshark_subtypes: &[2],
        tshark_malformed: true,
        analyze_subtypes: &[],
        analyze_error: "mptcp_option_malformed",
        why: "3-byte DSS: tshark names its subtype, Linux ignores it",
    },
];

/// What analyze said of one packet, in the terms compared.
#[derive(Debug, PartialEq, Eq)]
struct Reading {
    subtypes: BTreeSet<u8>,
    version: Option<u8>,
    error: Option<String>,
}

fn analyze(capture: &Path) -> Vec<Value> {
    let output = std::process::Command::new(binary())
        .args(["--config", "/dev/null", "analyze", "--json"])
        .arg(capture)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "analyze failed on {}: {}",
        capture.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn reading(packet: &Value) -> Reading {
    Reading {
        subtypes: packet["mptcp_subtypes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap() as u8)
            .collect(),
        version: packet
            .get("mptcp_version")
            .map(|v| v.as_u64().unwrap() as u8),
        error: packet["error"].as_str().map(str::to_owned),
    }
}

/// Compares analyze and tshark on `path` (whose frames are those of `source`), frame by
/// frame; returns each difference in words, and the disagreements met.
fn compare(source: &str, path: &Path, met: &mut BTreeSet<(&'static str, u64)>) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let tshark = tshark::frames(path);
    let analyzed = analyze(path);
    let mut differences = Vec::new();
    if tshark.len() != analyzed.len() {
        differences.push(format!(
            "{name}: tshark reads {} frames, analyze {}",
            tshark.len(),
            analyzed.len()
        ));
    }
    for (frame, packet) in tshark.iter().zip(&analyzed) {
        let TsharkFrame {
            number,
            subtypes,
            version,
            malformed,
        } = frame;
        let at = format!("{name} frame {number}");
        assert_eq!(packet["index"], number - 1, "{at}: records out of step");
        // Every record of these link types reaches the program.
        if packet["verdict"] != "pass" {
            differences.push(format!("{at}: not run: {packet}"));
            continue;
        }
        let got = reading(packet);
        let disagreement = DISAGREEMENTS
            .iter()
            .find(|d| d.capture == source && d.frame == *number);
        let (tshark_expected, analyze_expected) = match disagreement {
            Some(d) => {
                met.insert((d.capture, d.frame));
                (
                    (
                        d.tshark_subtypes.iter().copied().collect(),
                        d.tshark_malformed,
                    ),
                    Reading {
                        subtypes: d.analyze_subtypes.iter().copied().collect(),
                        version: None,
                        error: Some(d.analyze_error.to_owned()),
                    },
                )
            }
            None => (
                (subtypes.clone(), malformed.is_some()),
                Reading {
                    subtypes: subtypes.clone(),
                    version: *version,
                    // tshark's malformed note stands for the kernel's option errors.
                    error: got.error.clone().filter(|_| malformed.is_some()),
                },
            ),
        };
        if (subtypes.clone(), malformed.is_some()) != tshark_expected {
            differences.push(format!(
                "{at}: tshark reads subtypes {subtypes:?} malformed {malformed:?}, the listed \
                 disagreement says {tshark_expected:?}"
            ));
        }
        if disagreement.is_none() && malformed.is_some() && got.error.is_none() {
            differences.push(format!(
                "{at}: tshark says {malformed:?}, analyze reports no error"
            ));
        }
        if got != analyze_expected {
            let why = disagreement.map_or("tshark's reading", |d| d.why);
            differences.push(format!(
                "{at}: analyze {got:?}, expected {analyze_expected:?} ({why})"
            ));
        }
    }
    differences
}

fn datalink(path: &Path) -> DataLink {
    let reader = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader.header().datalink
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn analyze_agrees_with_tshark_on_public_captures_in_every_link_type() {
    support::require_root();
    let public = Path::new(PUBLIC);
    let scratch = Scratch(
        std::env::temp_dir().join(format!("classifier-public-captures-{}", std::process::id())),
    );
    std::fs::create_dir_all(&scratch.0).unwrap();

    let mut differences = Vec::new();
    let mut met = BTreeSet::new();
    let mut projects_by_link: BTreeMap<u32, BTreeSet<&str>> = BTreeMap::new();
    for (file, link) in NATIVE {
        let path = public.join(file);
        assert_eq!(datalink(&path), link, "{file}'s link type");
        let project = file.split('/').next().unwrap();
        projects_by_link
            .entry(u32::from(link))
            .or_default()
            .insert(project);
        differences.extend(compare(file, &path, &mut met));
    }
    for (file, relinked) in RELINKED {
        let path = scratch.0.join(format!(
            "{}-{relinked:?}.pcap",
            file.replace(['/', '.'], "-")
        ));
        relink(&public.join(file), &path, relinked);
        differences.extend(compare(file, &path, &mut met));
    }

    // The bar: public captures of at least two other projects, in at least four
    // link types, as they were published.
    let projects: BTreeSet<&str> = projects_by_link.values().flatten().copied().collect();
    assert!(projects.len() >= 2, "projects: {projects:?}");
    assert!(
        projects_by_link.len() >= 4,
        "native link types: {projects_by_link:?}"
    );
    for d in &DISAGREEMENTS {
        assert!(
            met.contains(&(d.capture, d.frame)),
            "listed disagreement {} frame {} is not in the captures",
            d.capture,
            d.frame
        );
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
