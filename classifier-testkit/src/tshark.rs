//! tshark's reading of a capture: for every frame, the MPTCP subtypes and MP_CAPABLE version
//! its dissector decodes, and whether it found the packet malformed. tshark must be there
//! (`cargo xtask setup` installs it): without it the comparison cannot run, and fails.

use std::{collections::BTreeSet, path::Path, process::Command};

/// One frame as tshark reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsharkFrame {
    /// From 1, as tshark counts.
    pub number: u64,
    /// Subtypes of every option 30 the dissector decoded.
    pub subtypes: BTreeSet<u8>,
    /// MP_CAPABLE's version, when the frame carries MP_CAPABLE.
    pub version: Option<u8>,
    /// tshark's malformed-packet note (`_ws.malformed`), e.g. "[Malformed Packet: MPTCP]".
    pub malformed: Option<String>,
}

const FIELDS: [&str; 4] = [
    "frame.number",
    "tcp.options.mptcp.subtype",
    "tcp.options.mptcp.version",
    "_ws.malformed",
];

/// Runs tshark over `capture`.
pub fn frames(capture: &Path) -> Vec<TsharkFrame> {
    let mut command = Command::new("tshark");
    command
        .args(["-n", "-r"])
        .arg(capture)
        .args(["-T", "fields"]);
    for field in FIELDS {
        command.args(["-e", field]);
    }
    command.args([
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    let output = command.output().unwrap_or_else(|error| {
        panic!(
            "tshark could not be run ({error}): the comparison needs it; install it with \
             `apt-get install tshark` (or `cargo xtask setup`)"
        )
    });
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "tshark failed on {}: {}",
        capture.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let frames: Vec<TsharkFrame> = stdout.lines().map(parse_line).collect();
    assert!(
        !frames.is_empty(),
        "tshark read no frame of {}",
        capture.display()
    );
    frames
}

fn parse_line(line: &str) -> TsharkFrame {
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields.len(), FIELDS.len(), "tshark line `{line}`");
    let numbers = |field: &str| -> Vec<u8> {
        field
            .split(',')
            .filter(|value| !value.is_empty())
            .map(|value| value.parse().unwrap())
            .collect()
    };
    let versions = numbers(fields[2]);
    TsharkFrame {
        number: fields[0].parse().unwrap(),
        subtypes: numbers(fields[1]).into_iter().collect(),
        version: versions.last().copied(),
        malformed: (!fields[3].is_empty()).then(|| fields[3].to_owned()),
    }
}
