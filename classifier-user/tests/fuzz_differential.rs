//! Differential fuzzing of the kernel program: structure-aware random packets (`support::fuzz`)
//! go through BPF_PROG_TEST_RUN, and every result is compared with an independent model on the
//! host (`support::reference`: etherparse and a walk of the TCP options): the error kind,
//! whether MPTCP is present and its subtypes and version, the flow's MPTCP memory, the lists,
//! the rule and the DSCP out, and the bytes out. Every disagreement is a bug, in one or the
//! other; each one found is kept in `tests/corpus/` and replayed here.
//!
//! `CLASSIFIER_FUZZ_PACKETS` and `CLASSIFIER_FUZZ_SEED` (decimal or 0x hex) change the run;
//! `cargo xtask fuzz` runs a million packets in release mode.

mod support;

use std::{collections::BTreeMap, fmt::Write as _, net::IpAddr, path::Path, time::Instant};

use classifier::report::counter_label;
use classifier_common::{
    Counter, ParseError, config::CONFIG_LEARN_DNS, counter::COUNTER_SLOTS, limits::MAX_LISTS,
    mptcp::MptcpSubtype,
};
use support::{
    Kernel, LIST_APPLE, LIST_CDN, XDP_PASS,
    fuzz::Generator,
    reference::{Action, Prediction, Reference, Rule, View, check_output},
};

/// About 6 s in a debug build on two cores (25,000 packets a second); `cargo xtask fuzz` runs a
/// million in release mode (160,000 a second).
const DEFAULT_PACKETS: u64 = 150_000;
const DEFAULT_SEED: u64 = 0xd1ff_5eed_0007;

/// The prefixes installed, with their effective lists (a more specific prefix carries the
/// lists of those containing it, as the control plane writes them).
const PREFIXES: [(&str, u32); 7] = [
    ("17.0.0.0/8", LIST_APPLE),
    ("17.253.0.0/16", LIST_APPLE | LIST_CDN),
    ("23.32.0.0/11", LIST_CDN),
    ("2620:149::/32", LIST_APPLE),
    ("2620:149:a44::/48", LIST_APPLE | LIST_CDN),
    ("2a02:26f0::/32", LIST_CDN),
    ("fe80::/10", 1 << 5),
];

/// MPTCP to the CDN list is counted but kept; other MPTCP goes to CS1, Apple to LE.
const RULES: [Rule; 3] = [
    Rule::new(true, LIST_CDN, Action::Keep),
    Rule::new(true, 0, Action::Dscp(8)),
    Rule::new(false, LIST_APPLE, Action::Dscp(1)),
];

/// Every this many packets the prefixes and the policy change between the sets above and
/// these, and the generation with them: established flows must look their lists and rule up
/// again, and keep remembering that they are MPTCP.
const RECONFIGURE_EVERY: u64 = 25_000;
const MORE_PREFIXES: [(&str, u32); 2] =
    [("198.51.100.0/24", LIST_APPLE), ("2001:db8::/32", LIST_CDN)];
/// Apple first (even MPTCP to Apple goes to LE), then MPTCP, then the CDN list to AF11.
const OTHER_RULES: [Rule; 3] = [
    Rule::new(false, LIST_APPLE, Action::Dscp(1)),
    Rule::new(true, 0, Action::Dscp(8)),
    Rule::new(false, LIST_CDN, Action::Dscp(10)),
];

/// Flows remembered before both sides forget them all: far below the kernel's LRU table size,
/// so that the kernel never evicts a flow the model still remembers.
const MAX_FLOWS: usize = 20_000;

/// Disagreements printed in full; the rest are only counted.
const PRINTED: u64 = 10;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => value.replace('_', "").parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value}: not a number")))
}

/// The kernel program and the model, with the same prefixes and policy.
fn kernel_and_reference() -> (Kernel, Reference) {
    let mut kernel = Kernel::load();
    for (prefix, lists) in PREFIXES {
        kernel.add_prefix_quietly(prefix, lists);
    }
    let rules: Vec<_> = RULES.iter().map(|rule| rule.to_policy_rule()).collect();
    kernel.set_rules(&rules);
    // DNS responses (UDP from port 53) take the learning path too: nobody drains the ring
    // buffer, so it fills and the "lost" path and its log record run as well. Neither may
    // change how a packet is classified.
    kernel.set_flag(CONFIG_LEARN_DNS, true);
    (kernel, Reference::new(&PREFIXES, &RULES))
}

/// Switches both sides to the other set of prefixes and rules; returns whether the second set
/// is now in force.
fn reconfigure(kernel: &mut Kernel, reference: &mut Reference, second: bool) -> bool {
    let second = !second;
    let (prefixes, rules): (Vec<_>, &[Rule]) = if second {
        for (prefix, lists) in MORE_PREFIXES {
            kernel.add_prefix_quietly(prefix, lists);
        }
        (
            PREFIXES.iter().chain(&MORE_PREFIXES).copied().collect(),
            &OTHER_RULES,
        )
    } else {
        for (prefix, _) in MORE_PREFIXES {
            let prefix = prefix.parse().expect("a test prefix");
            kernel
                .classifier
                .maps
                .remove_prefix(prefix)
                .expect("removing a prefix");
        }
        (PREFIXES.to_vec(), &RULES)
    };
    // Writing the rules bumps the generation: the kernel sees both changes at once.
    let policy: Vec<_> = rules.iter().map(|rule| rule.to_policy_rule()).collect();
    kernel.set_rules(&policy);
    reference.reconfigure(&prefixes, rules);
    second
}

/// Empties the kernel's flow table; the model forgets its flows with it.
fn forget_flows(kernel: &mut Kernel, reference: &mut Reference) {
    let flows = &mut kernel.classifier.maps.flows;
    let keys: Vec<_> = flows.keys().filter_map(Result::ok).collect();
    for key in keys {
        // An entry may be gone already (LRU); what matters is that none is left.
        let _ = flows.remove(&key);
    }
    assert_eq!(flows.keys().count(), 0, "the flow table did not empty");
    reference.forget_flows();
}

/// Counters the model does not predict: which layers a malformed packet got through before
/// its error is the kernel's own business (`kernel_malformed.rs` checks it case by case), and
/// DNS responses are handed over or lost as the ring buffer has room (`kernel_dns.rs`).
const NOT_MODELLED: [Counter; 7] = [
    Counter::Ipv4,
    Counter::Ipv6,
    Counter::Tcp,
    Counter::Udp,
    Counter::OtherTransport,
    Counter::DnsForwarded,
    Counter::DnsLost,
];

/// The counter slots the packet must move, by the model.
fn counters_of(prediction: &Prediction) -> Vec<u32> {
    let view = &prediction.view;
    let class = Counter::CLASSES
        .iter()
        .find(|(name, _)| *name == view.class())
        .map(|(_, class)| *class)
        .expect("a class");
    let mut slots = vec![Counter::Packets.index(), class.index()];
    if view.error != 0 {
        slots.push(Counter::for_parse_error_code(view.error));
    }
    if view.mptcp_option {
        slots.push(Counter::MptcpOption.index());
        slots.extend(
            (0..16u8)
                .filter(|subtype| view.mptcp_subtypes & (1 << subtype) != 0)
                .map(Counter::for_mptcp_subtype),
        );
        slots.extend(view.mptcp_version.map(|version| {
            match version {
                0 => Counter::MpCapableV0,
                1 => Counter::MpCapableV1,
                _ => Counter::MpCapableOtherVersion,
            }
            .index()
        }));
    }
    slots.extend(
        (0..MAX_LISTS)
            .filter(|list| view.lists & (1 << list) != 0)
            .map(Counter::for_list),
    );
    if let Some(ip) = &prediction.ip {
        if ip.fragment {
            slots.push(match ip.src {
                IpAddr::V4(_) => Counter::Ipv4Fragment.index(),
                IpAddr::V6(_) => Counter::Ipv6Fragment.index(),
            });
        }
        match prediction.action {
            Some(Action::Dscp(dscp)) if dscp == ip.dscp => {
                slots.push(Counter::AlreadyMarked.index())
            }
            Some(Action::Dscp(_)) => slots.push(Counter::Marked.index()),
            Some(Action::Keep) => slots.push(Counter::KeptByRule.index()),
            None => {}
        }
    }
    if prediction.new_flow {
        slots.push(Counter::FlowCreated.index());
    }
    slots
}

/// What the kernel did with one packet.
struct KernelRun {
    verdict: u32,
    output: Vec<u8>,
    view: View,
}

fn run_kernel(kernel: &Kernel, packet: &[u8]) -> KernelRun {
    let sequence = kernel.report().sequence;
    let result = kernel
        .classifier
        .test_run(packet)
        .unwrap_or_else(|error| panic!("BPF_PROG_TEST_RUN refused {}: {error}", hex(packet)));
    let report = kernel.report();
    assert_eq!(
        report.sequence,
        sequence + 1,
        "no report for {}",
        hex(packet)
    );
    KernelRun {
        verdict: result.verdict,
        output: result.packet,
        view: View::of_report(&report),
    }
}

/// What is wrong with the kernel's run, by the model; empty when they agree.
fn disagreements(packet: &[u8], run: &KernelRun, prediction: &Prediction) -> Vec<String> {
    let mut problems = Vec::new();
    if run.verdict != XDP_PASS {
        problems.push(format!("verdict {} instead of XDP_PASS", run.verdict));
    }
    if run.view != prediction.view {
        problems.push("the views differ".to_owned());
    }
    if let Err(problem) = check_output(packet, &run.output, prediction) {
        problems.push(format!("bytes out: {problem}"));
    }
    problems
}

/// A short name for a kind of disagreement, to count alike ones together.
fn signature(kernel: &View, reference: &View, problems: &[String]) -> String {
    let fields = kernel.differences(reference);
    let bytes = problems.iter().any(|p| p.starts_with("bytes out"));
    format!(
        "[{}{}] reference {} / kernel {}",
        fields.join(","),
        if bytes { " bytes" } else { "" },
        error_name(reference.error),
        error_name(kernel.error),
    )
}

fn error_name(code: u8) -> String {
    match ParseError::from_code(code) {
        _ if code == 0 => "no error".to_owned(),
        Some(error) => error.name().to_owned(),
        None => format!("error code {code}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex in the corpus"))
        .collect()
}

/// The disagreement in full, and the corpus entry that would keep it.
fn describe(
    index: u64,
    packet: &[u8],
    run: &KernelRun,
    prediction: &Prediction,
    problems: &[String],
) -> String {
    let mut text = format!("disagreement at packet {index}: {}\n", problems.join("; "));
    let _ = writeln!(text, "  packet ({} bytes): {}", packet.len(), hex(packet));
    let _ = writeln!(text, "  kernel:    {}", run.view);
    let _ = writeln!(text, "  reference: {}", prediction.view);
    if run.output != packet {
        let _ = writeln!(text, "  kernel's bytes out:  {}", hex(&run.output));
    }
    text.push_str("  corpus entry (expecting the reference's view):\n");
    if let Some(since) = &prediction.mptcp_since {
        if since.index != index {
            let _ = writeln!(text, "    # packet {} made the flow MPTCP", since.index);
            let _ = writeln!(text, "    packet {}", hex(&since.packet));
            let _ = writeln!(text, "    expect {}", since.view);
        }
    }
    let _ = writeln!(text, "    packet {}", hex(packet));
    let _ = writeln!(text, "    expect {}", prediction.view);
    text
}

#[derive(Default)]
struct Tally {
    packets: u64,
    corrupted: u64,
    classes: BTreeMap<&'static str, u64>,
    errors: BTreeMap<&'static str, u64>,
    subtypes: BTreeMap<&'static str, u64>,
    mptcp_option: u64,
    fragments: u64,
    rewritten: u64,
    flushes: u64,
    reconfigurations: u64,
    disagreements: u64,
    signatures: BTreeMap<String, u64>,
}

impl Tally {
    fn count(&mut self, view: &View, corrupted: bool, rewritten: bool) {
        self.packets += 1;
        self.corrupted += u64::from(corrupted);
        *self.classes.entry(view.class()).or_default() += 1;
        if view.error != 0 {
            *self
                .errors
                .entry(ParseError::from_code(view.error).map_or("unknown", ParseError::name))
                .or_default() += 1;
        }
        if view.mptcp_option {
            self.mptcp_option += 1;
            for subtype in MptcpSubtype::ALL {
                if view.mptcp_subtypes & (1 << subtype as u16) != 0 {
                    *self.subtypes.entry(subtype.name()).or_default() += 1;
                }
            }
            if view.mptcp_subtypes >> 9 != 0 {
                *self.subtypes.entry("unassigned (9-15)").or_default() += 1;
            }
        }
        self.fragments += u64::from(view.fragment);
        self.rewritten += u64::from(rewritten);
    }

    fn print(&self, seed: u64, seconds: f64) {
        let share = |n: u64| 100.0 * n as f64 / self.packets.max(1) as f64;
        let list = |map: &BTreeMap<_, u64>| {
            map.iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "fuzz: {} packets in {seconds:.1} s ({:.0} per second), seed {seed:#x}",
            self.packets,
            self.packets as f64 / seconds
        );
        println!(
            "fuzz: built valid then corrupted: {} ({:.1} %); prefixes and policy changed {} \
             times; flow tables emptied {} times",
            self.corrupted,
            share(self.corrupted),
            self.reconfigurations,
            self.flushes
        );
        println!("fuzz: classes: {}", list(&self.classes));
        println!(
            "fuzz: MPTCP option in {} packets ({:.1} %); subtypes: {}",
            self.mptcp_option,
            share(self.mptcp_option),
            list(&self.subtypes)
        );
        println!(
            "fuzz: fragments {}, DSCP rewritten {}",
            self.fragments, self.rewritten
        );
        println!("fuzz: errors: {}", list(&self.errors));
        println!("fuzz: disagreements: {}", self.disagreements);
        for (signature, n) in &self.signatures {
            println!("fuzz:   {n} × {signature}");
        }
    }
}

#[test]
fn kernel_agrees_with_the_reference_on_random_packets() {
    let packets = env_u64("CLASSIFIER_FUZZ_PACKETS").unwrap_or(DEFAULT_PACKETS);
    let seed = env_u64("CLASSIFIER_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    println!(
        "fuzz: seed {seed:#x}, {packets} packets \
         (again: CLASSIFIER_FUZZ_SEED={seed:#x} CLASSIFIER_FUZZ_PACKETS={packets})"
    );
    let (mut kernel, mut reference) = kernel_and_reference();
    let mut generator = Generator::new(seed);
    let mut tally = Tally::default();
    let mut expected_counters = vec![0u64; COUNTER_SLOTS as usize];
    let started = Instant::now();
    let mut second_config = false;
    for index in 0..packets {
        if index > 0 && index % RECONFIGURE_EVERY == 0 {
            second_config = reconfigure(&mut kernel, &mut reference, second_config);
            tally.reconfigurations += 1;
        }
        if reference.flow_count() >= MAX_FLOWS {
            forget_flows(&mut kernel, &mut reference);
            tally.flushes += 1;
        }
        let generated = generator.packet();
        let packet = &generated.packet;
        let prediction = reference.predict(index, packet);
        let run = run_kernel(&kernel, packet);
        let problems = disagreements(packet, &run, &prediction);
        if !problems.is_empty() {
            tally.disagreements += 1;
            let signature = signature(&run.view, &prediction.view, &problems);
            *tally.signatures.entry(signature).or_default() += 1;
            if tally.disagreements <= PRINTED {
                println!("{}", describe(index, packet, &run, &prediction, &problems));
            }
        }
        tally.count(&run.view, generated.corrupted, run.output != *packet);
        for slot in counters_of(&prediction) {
            expected_counters[slot as usize] += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    tally.print(seed, seconds);
    let built: Vec<String> = generator
        .mix
        .iter()
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
    println!("fuzz: built: {}", built.join(", "));

    // The kernel's counters, summed over the run, must be what the model says they count.
    let counters = kernel.classifier.maps.counters().expect("reading counters");
    println!(
        "fuzz: DNS responses handed to user space {}, lost to a full ring buffer {}",
        counters.get(Counter::DnsForwarded.index()).packets,
        counters.get(Counter::DnsLost.index()).packets
    );
    let wrong: Vec<String> = (0..COUNTER_SLOTS)
        .filter(|slot| !NOT_MODELLED.iter().any(|counter| counter.index() == *slot))
        .filter(|&slot| counters.get(slot).packets != expected_counters[slot as usize])
        .map(|slot| {
            format!(
                "{}: kernel {}, reference {}",
                counter_label(slot).unwrap_or_else(|| format!("slot {slot}")),
                counters.get(slot).packets,
                expected_counters[slot as usize]
            )
        })
        .collect();
    assert!(wrong.is_empty(), "counters differ: {}", wrong.join("; "));
    assert_eq!(
        tally.disagreements, 0,
        "the kernel and the reference disagree (details above; seed {seed:#x})"
    );
}

/// One case of the corpus: packets in order (a flow's earlier packets first), each with the
/// view it must produce.
struct CorpusCase {
    name: String,
    steps: Vec<(Vec<u8>, String)>,
}

fn read_corpus() -> Vec<CorpusCase> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("reading a corpus file");
            let mut steps = Vec::new();
            let mut packet = None;
            for (number, line) in (1..).zip(text.lines()) {
                let line = line.trim();
                if let Some(bytes) = line.strip_prefix("packet ") {
                    packet = Some(unhex(bytes.trim()));
                } else if let Some(view) = line.strip_prefix("expect ") {
                    let packet = packet
                        .take()
                        .unwrap_or_else(|| panic!("{name}:{number}: expect without a packet"));
                    steps.push((packet, view.trim().to_owned()));
                } else {
                    assert!(
                        line.is_empty() || line.starts_with('#'),
                        "{name}:{number}: not a comment, a packet or an expectation"
                    );
                }
            }
            assert!(!steps.is_empty(), "{name}: no case in it");
            CorpusCase { name, steps }
        })
        .collect()
}

/// Every disagreement the fuzzer found, replayed: the kernel and the reference must both give
/// the expected view, and the bytes out must be right.
#[test]
fn regression_corpus_replays() {
    let corpus = read_corpus();
    let mut failures = Vec::new();
    let mut steps = 0;
    for case in &corpus {
        // A fresh kernel per case: its flow table holds only the case's own packets.
        let (kernel, mut reference) = kernel_and_reference();
        for (index, (packet, expected)) in (0..).zip(&case.steps) {
            steps += 1;
            let prediction = reference.predict(index, packet);
            let run = run_kernel(&kernel, packet);
            let mut problems = disagreements(packet, &run, &prediction);
            if run.view.to_string() != *expected {
                problems.push(format!("kernel: {}", run.view));
            }
            if prediction.view.to_string() != *expected {
                problems.push(format!("reference: {}", prediction.view));
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{} packet {index}: expected {expected}\n  {}",
                    case.name,
                    problems.join("\n  ")
                ));
            }
        }
    }
    println!("corpus: {} cases, {steps} packets", corpus.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
