//! The mix a fuzz run claims to make: what the generator built, what the kernel saw and the
//! configuration changes, each at least a stated share of the packets. The shares are about
//! half of what a run of the default seed gives, so that chance never fails a run of the
//! default size or larger, but a generator that stops building a kind (or a kernel that
//! never reports it) does.

use std::collections::BTreeMap;

/// Below this many packets rare kinds may be missing by chance: the mix is not checked.
pub const CHECKED_FROM: u64 = 50_000;

/// What `fuzz::Generator` notes as built, per packet (options too).
const BUILT: [(&str, f64); 29] = [
    ("non-IP", 0.03),
    ("IPv4", 0.23),
    ("IPv6", 0.23),
    ("TCP", 0.33),
    ("UDP", 0.1),
    ("other protocol", 0.033),
    ("1 VLAN tag", 0.12),
    ("2 VLAN tags", 0.06),
    ("3 VLAN tags", 0.015),
    ("IPv4 options", 0.027),
    ("IPv4 fragment", 0.046),
    ("IPv4 total length below its header", 0.0045),
    ("IPv6 extension chain of 1-6", 0.05),
    ("IPv6 extension chain deeper than 6", 0.005),
    ("IPv6 atomic fragment", 0.02),
    ("IPv6 fragment header alone, a real fragment", 0.006),
    ("Ethernet padding after the datagram", 0.056),
    ("IP length ends at the transport header", 0.012),
    ("IP length cuts the transport header", 0.013),
    ("IP length 0 (the frame's)", 0.014),
    ("option 30 (TCP options built)", 0.32),
    ("option 30 fitting its segment (TCP options built)", 0.2),
    ("option 30 not fitting (TCP options built)", 0.064),
    ("malformed option (TCP options built)", 0.06),
    ("corruption: truncation", 0.1),
    ("corruption: byte flips", 0.12),
    ("corruption: a length lies", 0.08),
    ("corruption: a type or version lies", 0.06),
    ("corruption: an option lies", 0.04),
];

/// What the kernel's reports (and, for fallbacks, its counter) showed, per packet: every
/// class and MPTCP subtype, the outcomes of docs/design.md's 'TCP options and MPTCP' (an
/// option 30 skipped as malformed, a packet classified despite an error in its options),
/// 'MPTCP state of a flow' (attempts, fallbacks), 'Fragments' (an atomic fragment parsed
/// whole) and 'Parsing and its bounds' (a padded frame classified, a total length below the
/// header).
const SEEN: [(&str, f64); 29] = [
    ("class normal", 0.1),
    ("class listed", 0.17),
    // Rarer since a flow needs its handshake, or option 30 both ways, to be MPTCP (docs/
    // design.md, 'MPTCP state of a flow'): 907 of 150,000 with the default seed.
    ("class mptcp", 0.003),
    ("class malformed", 0.11),
    ("class non_ip", 0.046),
    ("MPTCP option", 0.07),
    ("subtype mp_capable", 0.028),
    ("subtype mp_join", 0.015),
    ("subtype dss", 0.006),
    ("subtype add_addr", 0.0055),
    ("subtype remove_addr", 0.008),
    ("subtype mp_prio", 0.008),
    ("subtype mp_fail", 0.0075),
    ("subtype mp_fastclose", 0.008),
    ("subtype mp_tcprst", 0.0017),
    ("error mptcp_option_malformed", 0.027),
    ("error ipv4_bad_total_length", 0.0036),
    ("error tcp_header_past_packet", 0.015),
    ("classified with an option error", 0.067),
    ("flow MPTCP attempted", 0.023),
    ("MPTCP fallback", 0.0007),
    ("IPv6 atomic fragment parsed whole", 0.0139),
    ("padded frame classified", 0.053),
    ("fragment", 0.054),
    ("DSCP rewritten", 0.12),
    ("corrupted", 0.2),
    ("parse error", 0.18),
    ("error udp_truncated", 0.0033),
    ("error ipv6_ext_truncated", 0.0066),
];

/// Configuration changes, per packet: a third of what `fuzz::config` makes of each.
const CHANGES: [(&str, f64); 4] = [
    ("policy set", 5.5e-5),
    ("prefixes add", 5.5e-5),
    ("prefixes remove", 5.5e-5),
    ("prefixes replace", 5.5e-5),
];

/// Every kind below its minimum, with its count and the minimum.
pub fn missing(
    packets: u64,
    built: &BTreeMap<&'static str, u64>,
    changes: &BTreeMap<&'static str, u64>,
    seen: &BTreeMap<String, u64>,
) -> Vec<String> {
    let short = |table: &[(&str, f64)], what: &str, count: &dyn Fn(&str) -> u64| {
        table
            .iter()
            .filter_map(|(kind, share)| {
                let least = (share * packets as f64) as u64;
                let n = count(kind);
                (n < least).then(|| format!("{what} `{kind}`: {n}, at least {least} expected"))
            })
            .collect::<Vec<_>>()
    };
    let mut missing = short(&BUILT, "built", &|kind| {
        built.get(kind).copied().unwrap_or(0)
    });
    missing.extend(short(&SEEN, "seen", &|kind| {
        seen.get(kind).copied().unwrap_or(0)
    }));
    missing.extend(short(&CHANGES, "change", &|kind| {
        changes.get(kind).copied().unwrap_or(0)
    }));
    missing
}
