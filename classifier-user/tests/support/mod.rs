//! What the kernel tests share: a loaded classifier with report mode on, a way to run one
//! packet and see what moved, and packet builders.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]

pub mod cli;
pub mod faults;
pub mod fuzz;
pub mod fuzz_config;
pub mod fuzz_flows;
pub mod fuzz_mix;
pub mod hosts;
pub mod json_contract;
pub mod json_schema;
pub mod metrics;
pub mod mptcp;
pub mod nft;
pub mod packet;
pub mod promql;
pub mod reference;
pub mod relink;
pub mod tshark;
pub mod wait;

use std::{collections::BTreeMap, os::unix::fs::MetadataExt as _};

use classifier::{Classifier, report::counter_label};
use classifier_common::{
    Config, CounterValue, PacketReport, PolicyRule, PrefixValue,
    config::{CONFIG_DRY_RUN, CONFIG_REPORT, RULE_MATCH_MPTCP},
};

pub const XDP_PASS: u32 = 2;

/// The DSCP the test policy gives MPTCP flows (CS1) and listed traffic (LE).
pub const DSCP_MPTCP: u8 = 8;
pub const DSCP_LISTED: u8 = 1;
/// List 0 is `apple`; list 1 stands for a second list (`cdn`).
pub const LIST_APPLE: u32 = 1 << 0;
pub const LIST_CDN: u32 = 1 << 1;

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
/// policy: MPTCP → CS1, list apple → LE.
pub struct Kernel {
    pub classifier: Classifier,
    config: Config,
    /// Packets run through the program, printed on drop (visible with --nocapture).
    runs: std::cell::Cell<usize>,
}

impl Drop for Kernel {
    fn drop(&mut self) {
        println!("{} packets through BPF_PROG_TEST_RUN", self.runs.get());
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
    pub fn load() -> Self {
        require_root();
        let classifier = Classifier::load().expect("loading the classifier into the kernel");
        let mut config = Config {
            generation: 1,
            flags: CONFIG_REPORT,
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
            config,
            runs: std::cell::Cell::new(0),
        };
        kernel.write_config();
        kernel
    }

    /// Publishes the test's config: like every change, it moves the generation on.
    fn write_config(&mut self) {
        self.classifier
            .maps
            .publish(&self.config)
            .expect("publishing the config");
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
        self.classifier
            .maps
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

    pub fn add_prefix(&mut self, prefix: &str, lists: u32) {
        self.add_prefix_quietly(prefix, lists);
        self.bump_generation();
    }

    /// Runs the program once over `packet` and reports what it changed and counted.
    pub fn run(&self, packet: &[u8]) -> Run {
        self.runs.set(self.runs.get() + 1);
        // BPF_PROG_TEST_RUN runs as if on `lo`, which has no counter slot of its own.
        let before = self
            .classifier
            .maps
            .counters_of_slot(0)
            .expect("reading counters");
        let sequence = self.report().sequence;
        let result = self.classifier.test_run(packet).expect("BPF_PROG_TEST_RUN");
        let after = self
            .classifier
            .maps
            .counters_of_slot(0)
            .expect("reading counters");
        let report = self.report();
        assert_eq!(
            report.sequence,
            sequence + 1,
            "the program wrote no report for this packet"
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

    pub fn report(&self) -> PacketReport {
        self.classifier
            .maps
            .report()
            .expect("reading the report map")
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
