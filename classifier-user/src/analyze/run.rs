//! Running a capture through the kernel program, one BPF_PROG_TEST_RUN per record.

use std::path::Path;

use classifier_common::{
    ParseError,
    config::{CONFIG_LEARN_DNS, CONFIG_REPORT, CONFIG_SIDE_IS_DIRECTION},
    flow::MptcpState,
    mptcp::MPTCP_VERSION_NONE,
    report::{DSCP_UNKNOWN, REPORT_MPTCP_FLOW, REPORT_MPTCP_OPTION},
};
use serde::Serialize;

use super::{
    Settings, capture,
    link::RecordError,
    summary::{NotRun, Summary},
};
use crate::{
    Classifier, Error,
    control::{learning::Learning, state},
    dns::{DnsDatagram, Learner, Observed},
    load::ListNames,
};

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// What the classifier did with one packet: analyze's `--json` line, keys in this order.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PacketVerdict {
    /// Position in the capture, from 0.
    pub index: u64,
    /// Bytes captured.
    pub len: usize,
    /// The XDP action ("pass"), or null when the record never reached the program.
    pub verdict: Option<&'static str>,
    /// This packet's TCP header carries option 30.
    pub mptcp_option: bool,
    /// Subtypes of those options.
    pub mptcp_subtypes: Vec<u8>,
    /// MP_CAPABLE's version, when the packet carries MP_CAPABLE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mptcp_version: Option<u8>,
    /// The packet belongs to a flow known to be MPTCP.
    pub mptcp_flow: bool,
    /// The flow's MPTCP state after this packet: "no", "attempted", "fallback" or "yes"
    /// (docs/design.md, 'MPTCP state of a flow'); "no" for packets without a flow.
    pub mptcp_state: &'static str,
    /// Prefix lists matched.
    pub lists: Vec<String>,
    pub dscp_in: Option<u8>,
    pub dscp_out: Option<u8>,
    /// Parse error kind (or why the record could not be run), null when none.
    pub error: Option<&'static str>,
}

/// The outcome of a whole capture.
pub struct Analysis {
    pub summary: Summary,
}

fn verdict_name(action: u32) -> &'static str {
    match action {
        XDP_ABORTED => "aborted",
        XDP_DROP => "drop",
        XDP_PASS => "pass",
        XDP_TX => "tx",
        _ => "redirect",
    }
}

fn not_run(index: u64, len: usize, error: &'static str) -> PacketVerdict {
    PacketVerdict {
        index,
        len,
        verdict: None,
        mptcp_option: false,
        mptcp_subtypes: Vec::new(),
        mptcp_version: None,
        mptcp_flow: false,
        mptcp_state: MptcpState::No.name(),
        lists: Vec::new(),
        dscp_in: None,
        dscp_out: None,
        error: Some(error),
    }
}

/// Runs every record of `path` through a freshly loaded classifier set up as `settings`
/// says (lists, policy, DNS domains), calling `on_packet` for each in capture order. DNS
/// responses in the capture teach addresses as `classifier run` would, and they expire by
/// the capture's clock.
pub fn analyze(
    path: &Path,
    settings: &Settings,
    mut on_packet: impl FnMut(&PacketVerdict),
) -> Result<Analysis, Error> {
    let initial = settings.initial_state()?;
    let records = capture::records(path)?;
    let mut classifier = Classifier::load()?;
    state::initialize(&mut classifier.writer(), &initial)?;
    let mut config = classifier.maps().config()?;
    // A capture records no interface: each direction counts as one of its own, as on a
    // router (docs/design.md, 'MPTCP state of a flow').
    config.flags |= CONFIG_REPORT | CONFIG_LEARN_DNS | CONFIG_SIDE_IS_DIRECTION;
    classifier.writer().publish(&config)?;
    let names = ListNames::read(classifier.maps())?;
    let mut learner = Learner::new(settings.domains(&names), settings.learner.clone());
    let mut learned = 0;

    let mut never_run: Vec<NotRun> = Vec::new();
    for (index, record) in records.enumerate() {
        let index = index as u64;
        let now = record.timestamp.as_secs();
        learner.expire(&mut Learning::new(classifier.writer()), now);
        let verdict = match &record.frame {
            Err(error) => not_run(index, record.len, error.name()),
            Ok(frame) => match classifier.test_run(frame) {
                // The kernel refuses frames bigger than a page for XDP without multi-buffer
                // support; on a real NIC such a frame (a capture of GRO'd packets) never
                // reaches XDP in one piece either.
                Err(_) => not_run(index, record.len, "too_big_for_xdp"),
                Ok(result) => {
                    learned += learn_from_events(&mut classifier, &mut learner, now)?;
                    let report = classifier.maps().report()?;
                    let subtypes: Vec<u8> = (0..16u8)
                        .filter(|s| report.mptcp_subtypes & (1 << s) != 0)
                        .collect();
                    let dscp = |value: u8| (value != DSCP_UNKNOWN).then_some(value);
                    PacketVerdict {
                        index,
                        len: record.len,
                        verdict: Some(verdict_name(result.verdict)),
                        mptcp_option: report.flags & REPORT_MPTCP_OPTION != 0,
                        mptcp_subtypes: subtypes,
                        mptcp_version: (report.mptcp_version != MPTCP_VERSION_NONE)
                            .then_some(report.mptcp_version),
                        mptcp_flow: report.flags & REPORT_MPTCP_FLOW != 0,
                        mptcp_state: MptcpState::from_flags(report.flow_flags).name(),
                        lists: names.names_in(report.lists),
                        dscp_in: dscp(report.dscp_in),
                        dscp_out: dscp(report.dscp_out),
                        error: ParseError::from_code(report.error).map(ParseError::name),
                    }
                }
            },
        };
        if verdict.verdict.is_none() {
            let reason = verdict.error.unwrap_or("unknown");
            match never_run.iter_mut().find(|n| n.reason == reason) {
                Some(entry) => entry.records += 1,
                None => never_run.push(NotRun {
                    reason,
                    records: 1,
                    first_index: index,
                    first: match &record.frame {
                        Err(error) => error.to_string(),
                        Ok(frame) => {
                            format!("{} bytes, more than XDP takes in one buffer", frame.len())
                        }
                    },
                }),
            }
        }
        on_packet(&verdict);
        if let Err(RecordError::Unreadable(_)) = record.frame {
            break;
        }
    }
    let summary = Summary::collect(classifier.maps(), &names, never_run, learned)?;
    Ok(Analysis { summary })
}

/// Feeds the DNS queries and answers the program handed over to the learner.
fn learn_from_events(
    classifier: &mut Classifier,
    learner: &mut Learner,
    now: u64,
) -> Result<usize, Error> {
    let mut datagrams = Vec::new();
    for event in classifier.take_dns_events() {
        datagrams.extend(DnsDatagram::decode(&event));
    }
    let mut learned = 0;
    let mut learning = Learning::new(classifier.writer());
    for datagram in datagrams {
        if let Observed::Learned(count) = learner.observe(&mut learning, &datagram, now) {
            learned += count;
        }
    }
    Ok(learned)
}
