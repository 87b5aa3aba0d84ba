//! The mix a fuzz run claims to make: what the generator built, what the kernel saw and the
//! configuration changes, each at least a stated share of the packets. The shares are about
//! half of what a run of the default seed gives, so that chance never fails a run of the
//! default size or larger, but a generator that stops building a kind (or a kernel that
//! never reports it) does.

use std::collections::BTreeMap;

/// Below this many packets rare kinds may be missing by chance: the mix is not checked.
pub const CHECKED_FROM: u64 = 50_000;

/// What `support::fuzz::Generator` notes as built, per packet (options too).
const BUILT: [(&str, f64); 20] = [
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
    ("IPv6 extension chain of 1-6", 0.067),
    ("IPv6 extension chain deeper than 6", 0.005),
    ("option 30 (TCP options built)", 0.32),
    ("malformed option (TCP options built)", 0.06),
    ("corruption: truncation", 0.1),
    ("corruption: byte flips", 0.12),
    ("corruption: a length lies", 0.08),
    ("corruption: a type or version lies", 0.06),
    ("corruption: an option lies", 0.04),
];

/// What the kernel's reports showed, per packet. The MPTCP subtypes and the MPTCP class
/// have lower floors than half: which option lengths count is the data path's business, and
/// a stricter parser may count fewer of the generated options without the generator being
/// wrong.
const SEEN: [(&str, f64); 20] = [
    ("class normal", 0.1),
    ("class listed", 0.12),
    ("class mptcp", 0.04),
    ("class malformed", 0.14),
    ("class non_ip", 0.046),
    ("MPTCP option", 0.05),
    ("subtype mp_capable", 0.004),
    ("subtype mp_join", 0.004),
    ("subtype dss", 0.004),
    ("subtype add_addr", 0.004),
    ("subtype remove_addr", 0.004),
    ("subtype mp_prio", 0.004),
    ("subtype mp_fail", 0.004),
    ("subtype mp_fastclose", 0.004),
    ("subtype mp_tcprst", 0.004),
    ("subtype unassigned (9-15)", 0.002),
    ("fragment", 0.06),
    ("DSCP rewritten", 0.11),
    ("corrupted", 0.2),
    ("parse error", 0.14),
];

/// Configuration changes, per packet: a third of what `fuzz_config` makes of each.
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
