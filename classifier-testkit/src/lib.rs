//! What the classifier's tests share, compiled once: each test file says `use
//! classifier_testkit as support;` and reaches it as `support::...`.
//!
//! Here, the kernel tests' loaded classifier (`Kernel`) and what one packet did (`Run`); the
//! built binary under test (`cli`, with the JSON contract and its schemas) and what the fault
//! and security tests run around it (`faults`, `forge`, `relink`); packet builders (`packet`,
//! `mptcp`); the test hosts and what they see (`hosts`, `router`, `nft`, `tcx`, `metrics`,
//! `dns_client`, `promql`, `tshark`); `wait`; and the differential fuzzer with its reference
//! model (`fuzz`). The lab's own tests and benchmarks use `wait` and the packet builders.
//!
//! `Kernel::load` loads the pipeline twice, with private maps each: the XDP program and the
//! tc one. Every configuration change goes to both, every packet runs through both, and
//! `run` fails unless both left the same bytes, moved the same counters, wrote the same
//! report and remember the same flows (docs/design.md, 'The tc hook'). The test then checks
//! the XDP result, which is therefore the tc one too.

pub mod cli;
pub mod dns_client;
pub mod faults;
pub mod forge;
pub mod fuzz;
pub mod hosts;
pub mod json_contract;
pub mod json_schema;
pub mod metrics;
pub mod mptcp;
pub mod nft;
pub mod packet;
pub mod promql;
pub mod relink;
pub mod router;
pub mod tcx;
pub mod tshark;
pub mod wait;

use std::{collections::BTreeMap, os::unix::fs::MetadataExt as _, path::Path};

use classifier::{Classifier, Hook, report::counter_label};
use classifier_common::{
    Config, CounterValue, FlowEntry, FlowKey, PacketReport, PolicyRule, PrefixValue,
    config::{CONFIG_DRY_RUN, CONFIG_REPORT, CONFIG_SIDE_IS_DIRECTION, RULE_MATCH_MPTCP},
};

pub const XDP_PASS: u32 = 2;
pub const TC_ACT_OK: u32 = 0;

/// Whether BPF_PROG_TEST_RUN builds an skb of `packet`: it refuses (EINVAL) an Ethernet
/// header alone, and an IPv4 or IPv6 frame too short for the fixed IP header (measured on
/// 6.18). Those run through XDP only; on a real link they are runts all the same.
pub fn skb_can_be_built(packet: &[u8]) -> bool {
    if packet.len() <= 14 {
        return false;
    }
    match u16::from_be_bytes([packet[12], packet[13]]) {
        0x0800 => packet.len() >= 14 + 20,
        0x86dd => packet.len() >= 14 + 40,
        _ => true,
    }
}

/// The DSCP the test policy gives MPTCP flows (CS1) and listed traffic (LE).
pub const DSCP_MPTCP: u8 = 8;
pub const DSCP_LISTED: u8 = 1;
/// List 0 is `apple`; list 1 stands for a second list (`cdn`).
pub const LIST_APPLE: u32 = 1 << 0;
pub const LIST_CDN: u32 = 1 << 1;

/// The workspace's root: the documents, captures and deploy files the tests hold the code to.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("classifier-testkit sits in the workspace")
}

/// These tests load BPF programs: without root they cannot run, and must not pass silently.
pub fn require_root() {
    let euid = std::fs::metadata("/proc/self")
        .map(|meta| meta.uid())
        .expect("reading /proc/self to learn our uid");
    assert_eq!(
        euid, 0,
        "the kernel tests load BPF programs and need root: run them as root (`cargo xtask test`)"
    );
}

/// The classifier loaded into this kernel with private maps, report mode on, and the test
/// policy: MPTCP → CS1, list apple → LE. Packets run as if on `lo` and, as in `analyze`,
/// each direction of a flow counts as come in on an interface of its own
/// (`CONFIG_SIDE_IS_DIRECTION`); `sides_by_interface` and `run_at` make it a router's view.
pub struct Kernel {
    /// The program of `hook` with its maps: XDP's, but for `load_single(Hook::Tc)`.
    pub classifier: Classifier,
    pub hook: Hook,
    /// The tc program with maps of its own, run beside it on every packet; None for tests
    /// that write the maps themselves (`load_xdp_only`).
    pub tc: Option<Classifier>,
    config: Config,
    /// Packets run through the program, printed on drop (visible with --nocapture).
    runs: std::cell::Cell<usize>,
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // The fuzzer runs its packets itself, through `classifier`: nothing to say then.
        if self.runs.get() > 0 {
            println!("{} packets through BPF_PROG_TEST_RUN", self.runs.get());
        }
    }
}

/// What one run did.
#[derive(Debug)]
pub struct Run {
    pub verdict: u32,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
    /// Counter label → what it moved by.
    pub moved: BTreeMap<String, CounterValue>,
    pub report: PacketReport,
}

impl Kernel {
    /// Both hooks, run side by side on every packet.
    pub fn load() -> Self {
        require_root();
        let tc = Classifier::load_for(Hook::Tc).expect("loading the tc program into the kernel");
        Self::with(Hook::Xdp, Some(tc))
    }

    /// The program of `hook` alone: the fuzzer runs each hook on its own against the model.
    pub fn load_single(hook: Hook) -> Self {
        require_root();
        Self::with(hook, None)
    }

    /// XDP alone: for tests that write the maps directly (`kernel.classifier.maps()`), which
    /// the tc twin would not see.
    pub fn load_xdp_only() -> Self {
        require_root();
        Self::with(Hook::Xdp, None)
    }

    fn with(hook: Hook, tc: Option<Classifier>) -> Self {
        let classifier =
            Classifier::load_for(hook).expect("loading the classifier into the kernel");
        let mut config = Config {
            generation: 1,
            flags: CONFIG_REPORT | CONFIG_SIDE_IS_DIRECTION,
            ..Config::default()
        };
        config.rules[0] = PolicyRule {
            flags: RULE_MATCH_MPTCP,
            action: DSCP_MPTCP,
            ..PolicyRule::default()
        };
        config.rules[1] = PolicyRule {
            lists: LIST_APPLE,
            action: DSCP_LISTED,
            ..PolicyRule::default()
        };
        config.rule_count = 2;
        let mut kernel = Self {
            classifier,
            hook,
            tc,
            config,
            runs: std::cell::Cell::new(0),
        };
        kernel.write_config();
        kernel
    }

    /// Publishes the test's config: like every change, it moves the generation on.
    fn write_config(&mut self) {
        let config = self.config;
        for classifier in self.classifiers_mut() {
            classifier
                .writer()
                .publish(&config)
                .expect("publishing the config");
        }
    }

    /// The loaded programs: XDP's, then tc's when there is one.
    fn classifiers_mut(&mut self) -> impl Iterator<Item = &mut Classifier> {
        std::iter::once(&mut self.classifier).chain(self.tc.as_mut())
    }

    /// DNS events the programs handed over since the last call; fails unless both hooks
    /// handed over the same.
    pub fn take_dns_events(&mut self) -> Vec<Vec<u8>> {
        let events = self.classifier.take_dns_events();
        if let Some(tc) = self.tc.as_mut() {
            assert_eq!(
                tc.take_dns_events(),
                events,
                "tc handed over other DNS events than XDP"
            );
        }
        events
    }

    /// Fails unless both hooks' flow tables hold the same flows with the same entries
    /// (but for when they were seen: the two runs straddle a clock tick now and then).
    pub fn assert_hooks_remember_the_same_flows(&self) {
        let Some(tc) = &self.tc else {
            return;
        };
        let flows = |classifier: &Classifier| -> BTreeMap<Vec<u8>, FlowEntry> {
            let mut flows = BTreeMap::new();
            for (key, mut entry) in classifier.maps().flows().expect("reading flows") {
                entry.first_seen_ns = 0;
                entry.last_seen_ns = 0;
                flows.insert(key_bytes(&key), entry);
            }
            flows
        };
        assert_eq!(
            flows(tc),
            flows(&self.classifier),
            "the tc hook remembers other flows than XDP"
        );
    }

    pub fn set_rules(&mut self, rules: &[PolicyRule]) {
        self.config.rules = Default::default();
        self.config.rules[..rules.len()].copy_from_slice(rules);
        self.config.rule_count = rules.len() as u32;
        self.bump_generation();
    }

    pub fn set_flag(&mut self, flag: u32, on: bool) {
        if on {
            self.config.flags |= flag;
        } else {
            self.config.flags &= !flag;
        }
        self.write_config();
    }

    /// As on a live router: a packet's side is the interface it came in on (`run_at`), not
    /// its direction.
    pub fn sides_by_interface(&mut self) {
        self.set_flag(CONFIG_SIDE_IS_DIRECTION, false);
    }

    pub fn set_dry_run(&mut self, on: bool) {
        if on {
            self.config.flags |= CONFIG_DRY_RUN;
        } else {
            self.config.flags &= !CONFIG_DRY_RUN;
        }
        self.write_config();
    }

    pub fn bump_generation(&mut self) {
        self.write_config();
    }

    /// Adds a prefix without bumping the generation (the caller decides when).
    pub fn add_prefix_quietly(&mut self, prefix: &str, lists: u32) {
        let prefix = prefix.parse().expect("a valid prefix in the test");
        for classifier in self.classifiers_mut() {
            classifier
                .writer()
                .set_prefix(
                    prefix,
                    PrefixValue {
                        lists,
                        own: lists,
                        learned: 0,
                        prefix_len: u32::from(prefix.prefix_len()),
                    },
                )
                .expect("inserting a prefix");
        }
    }

    pub fn add_prefix(&mut self, prefix: &str, lists: u32) {
        self.add_prefix_quietly(prefix, lists);
        self.bump_generation();
    }

    /// Runs the programs once over `packet` and reports what XDP changed and counted, after
    /// checking that tc changed, counted, reported and remembered the same.
    pub fn run(&self, packet: &[u8]) -> Run {
        self.run_maybe_at(packet, None)
    }

    /// `run`, as if `packet` came in through interface `ifindex` of this thread's network
    /// namespace.
    pub fn run_at(&self, packet: &[u8], ifindex: u32) -> Run {
        self.run_maybe_at(packet, Some(ifindex))
    }

    fn run_maybe_at(&self, packet: &[u8], ifindex: Option<u32>) -> Run {
        self.runs.set(self.runs.get() + 1);
        let reports = self.config.flags & CONFIG_REPORT != 0;
        let run = run_on(&self.classifier, self.hook, packet, reports, ifindex);
        if let Some(tc) = &self.tc
            && skb_can_be_built(packet)
        {
            let tc_run = run_on(tc, Hook::Tc, packet, reports, ifindex);
            assert_eq!(tc_run.verdict, TC_ACT_OK, "tc verdict");
            assert_eq!(
                tc_run.output,
                run.output,
                "tc left other bytes than XDP ({} into {})",
                hex(packet),
                hex(&run.output)
            );
            assert_eq!(
                tc_run.moved,
                run.moved,
                "tc moved other counters than XDP for {}",
                hex(packet)
            );
            // The sequence counts each program's own runs, and only XDP sees the runts.
            let tc_report = PacketReport {
                sequence: run.report.sequence,
                ..tc_run.report
            };
            assert_eq!(
                tc_report,
                run.report,
                "tc reported otherwise than XDP for {}",
                hex(packet)
            );
            // Reading both tables and every CPU's cache slots takes thousands of calls: each
            // of the first 64 runs, then every 16th.
            if self.runs.get() <= 64 || self.runs.get().is_multiple_of(16) {
                self.assert_hooks_remember_the_same_flows();
            }
        }
        run
    }

    pub fn report(&self) -> PacketReport {
        report_of(&self.classifier)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_bytes(key: &FlowKey) -> Vec<u8> {
    // SAFETY: FlowKey is a plain #[repr(C)] struct with explicit padding: every byte is set.
    unsafe {
        std::slice::from_raw_parts((key as *const FlowKey).cast::<u8>(), size_of::<FlowKey>())
    }
    .to_vec()
}

fn report_of(classifier: &Classifier) -> PacketReport {
    classifier.maps().report().expect("reading the report map")
}

/// Runs `packet` once through `classifier`'s program at `hook`, whose report mode is
/// `reports` (`kernel_usual_outcome.rs` turns it off).
fn run_on(
    classifier: &Classifier,
    hook: Hook,
    packet: &[u8],
    reports: bool,
    ifindex: Option<u32>,
) -> Run {
    // The interfaces the tests run packets on have no counter slot of their own (0).
    let before = classifier
        .maps()
        .counters_of_slot(0)
        .expect("reading counters");
    let sequence = report_of(classifier).sequence;
    let result = classifier
        .test_run_at(hook, packet, ifindex)
        .expect("BPF_PROG_TEST_RUN");
    let after = classifier
        .maps()
        .counters_of_slot(0)
        .expect("reading counters");
    let report = report_of(classifier);
    assert_eq!(
        report.sequence,
        sequence + u64::from(reports),
        "the program wrote a report for this packet only if report mode is on"
    );
    let moved = after
        .moved_since(&before)
        .into_iter()
        .map(|(index, value)| {
            let label = counter_label(index).unwrap_or_else(|| format!("slot_{index}"));
            (label, value)
        })
        .collect();
    Run {
        verdict: result.verdict,
        input: packet.to_vec(),
        output: result.packet,
        moved,
        report,
    }
}

impl Run {
    /// XDP_PASS, and not one byte changed.
    pub fn assert_untouched(&self) -> &Self {
        assert_eq!(self.verdict, XDP_PASS, "verdict");
        assert_eq!(self.output, self.input, "the packet must leave unchanged");
        self
    }

    /// XDP_PASS, and the packet is exactly `expected`.
    pub fn assert_output(&self, expected: &[u8]) -> &Self {
        assert_eq!(self.verdict, XDP_PASS, "verdict");
        assert_eq!(self.output, expected, "output bytes");
        self
    }

    /// Exactly these counters moved, each by one packet of this packet's length.
    pub fn assert_moved(&self, expected: &[&str]) -> &Self {
        let moved: Vec<&str> = self.moved.keys().map(String::as_str).collect();
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(moved, expected, "counters moved");
        for (label, value) in &self.moved {
            assert_eq!(
                *value,
                CounterValue {
                    packets: 1,
                    bytes: self.input.len() as u64
                },
                "counter {label}"
            );
        }
        self
    }
}
