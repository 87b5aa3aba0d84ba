//! Differential fuzzing of the kernel program: structure-aware random packets (`support::fuzz`)
//! go through BPF_PROG_TEST_RUN, and every result is compared with an independent model on the
//! host (`support::fuzz::reference`: etherparse and a walk of the TCP options): the error kind
//! (an error in the TCP options with the packet still classified), the valid MPTCP options
//! and MP_CAPABLE's version, the flow's MPTCP state (attempt, fallback, MPTCP), the lists,
//! the rule and the DSCP out, and the bytes out. Every disagreement is a bug, in one or the
//! other; each one found is kept in `tests/corpus/` and replayed here.
//!
//! Over the run, the counters (packets and bytes) must be what the model counts, and the
//! kernel's flow table what the model's flows hold (`support::fuzz::flows`), entry by entry.
//! At random points the configuration changes as the CLI changes it (`support::fuzz::config`:
//! `policy set`, `prefixes add/remove/replace` through the library), and the model reads it
//! back. The run must have built, and the kernel seen, the mix it claims (`support::fuzz::mix`).
//!
//! The whole run is made once per hook, XDP then tc, each program with maps of its own and
//! the same packets (docs/design.md, 'The tc hook'). Packets of which BPF_PROG_TEST_RUN
//! builds no skb (`support::skb_can_be_built`) are left out of the tc run, model included.
//!
//! `CLASSIFIER_FUZZ_PACKETS`, `CLASSIFIER_FUZZ_SEED` (decimal or 0x hex) and
//! `CLASSIFIER_FUZZ_HOOK` (`xdp`, `tc` or `both`, the default) change the run;
//! `cargo xtask fuzz` runs a million packets in release mode.

use classifier_testkit as support;

use std::{collections::BTreeMap, fmt::Write as _, net::IpAddr, path::Path, time::Instant};

use classifier::{Hook, report::counter_label};
use classifier_common::{
    Counter, CounterValue, ParseError, config::CONFIG_LEARN_DNS, counter::COUNTER_SLOTS,
    flow::FLOW_MPTCP_ATTEMPTED, limits::MAX_LISTS, mptcp::MptcpSubtype,
};
use support::{
    Kernel, LIST_APPLE, LIST_CDN,
    fuzz::{
        self, Generated, Generator,
        config::ConfigChanges,
        flows::FlowModel,
        reference::{Action, Prediction, Reference, Rule, View, check_output},
    },
};

/// About 10 s in a debug build on two cores, flow and configuration checks included;
/// `cargo xtask fuzz` runs a million in release mode.
const DEFAULT_PACKETS: u64 = 150_000;
const DEFAULT_SEED: u64 = 0xd1ff_5eed_0007;

/// The prefixes installed at the start, by list, through the library as `prefixes add` does.
const MEMBERS: [(&str, &str); 7] = [
    ("apple", "17.0.0.0/8"),
    ("apple", "2620:149::/32"),
    ("cdn", "17.253.0.0/16"),
    ("cdn", "23.32.0.0/11"),
    ("cdn", "2620:149:a44::/48"),
    ("cdn", "2a02:26f0::/32"),
    ("local", "fe80::/10"),
];

/// What the kernel's tries must then hold: each prefix with its effective lists (a more
/// specific prefix carries the lists of those containing it).
const PREFIXES: [(&str, u32); 7] = [
    ("17.0.0.0/8", LIST_APPLE),
    ("17.253.0.0/16", LIST_APPLE | LIST_CDN),
    ("23.32.0.0/11", LIST_CDN),
    ("2620:149::/32", LIST_APPLE),
    ("2620:149:a44::/48", LIST_APPLE | LIST_CDN),
    ("2a02:26f0::/32", LIST_CDN),
    ("fe80::/10", LIST_LOCAL),
];
const LIST_LOCAL: u32 = 1 << 2;

/// MPTCP to the CDN list is counted but kept; other MPTCP goes to CS1, Apple to LE.
const POLICY: [&str; 3] = ["mptcp+list:cdn=keep", "mptcp=CS1", "list:apple=LE"];
const RULES: [Rule; 3] = [
    Rule::new(true, LIST_CDN, Action::Keep),
    Rule::new(true, 0, Action::Dscp(8)),
    Rule::new(false, LIST_APPLE, Action::Dscp(1)),
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

/// The kernel program and the model, with the same prefixes and policy: installed through
/// the library as the CLI installs them, and read back for the model.
fn kernel_and_reference(hook: Hook) -> (Kernel, Reference) {
    let mut kernel = Kernel::load_single(hook);
    // DNS responses (UDP from port 53) take the learning path too: nobody drains the ring
    // buffer, so it fills and the "lost" path and its log record run as well. Neither may
    // change how a packet is classified. (Set first: `Kernel` writes its whole config.)
    kernel.set_flag(CONFIG_LEARN_DNS, true);
    let maps = &mut kernel.classifier.writer();
    fuzz::config::create_lists(maps);
    for (list, prefix) in MEMBERS {
        fuzz::config::add(maps, list, prefix);
    }
    fuzz::config::set_policy(maps, &POLICY);
    let (prefixes, rules) = fuzz::config::read_back(maps);
    let mut expected: Vec<(String, u32)> = PREFIXES
        .iter()
        .map(|(prefix, lists)| ((*prefix).to_owned(), *lists))
        .collect();
    expected.sort();
    let mut installed = prefixes.clone();
    installed.sort();
    assert_eq!(installed, expected, "the tries after `prefixes add`");
    assert_eq!(
        format!("{rules:?}"),
        format!("{RULES:?}"),
        "the rules after `policy set`"
    );
    (kernel, Reference::new(&borrowed(&prefixes), &rules))
}

fn borrowed(prefixes: &[(String, u32)]) -> Vec<(&str, u32)> {
    prefixes
        .iter()
        .map(|(prefix, lists)| (prefix.as_str(), *lists))
        .collect()
}

/// The model takes the configuration the kernel now reads.
fn follow(kernel: &Kernel, reference: &mut Reference) {
    let (prefixes, rules) = fuzz::config::read_back(kernel.classifier.maps());
    reference.reconfigure(&borrowed(&prefixes), &rules);
}

/// Empties the kernel's flow table; the model forgets its flows with it.
fn forget_flows(kernel: &mut Kernel, reference: &mut Reference, flows: &mut FlowModel) {
    let maps = &mut kernel.classifier.writer();
    for (key, _) in maps.flows().expect("reading the flow table") {
        // An entry may be gone already (LRU); what matters is that none is left.
        maps.remove_flow(&key).expect("removing a flow");
    }
    assert_eq!(maps.flow_count(), 0, "the flow table did not empty");
    reference.forget_flows();
    flows.clear();
}

/// Compares the kernel's flow table with the model's; returns how many flows differ, and
/// prints the first few.
fn compare_flows(kernel: &Kernel, flows: &FlowModel, printed: &mut usize) -> usize {
    let table = kernel
        .classifier
        .maps()
        .flows()
        .expect("reading the flow table");
    let problems = flows.differences(&table);
    for problem in problems
        .iter()
        .take(PRINTED as usize - (*printed).min(PRINTED as usize))
    {
        println!("flow entry differs: {problem}");
        *printed += 1;
    }
    problems.len()
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
        if ip.transport_unreachable {
            slots.push(Counter::TransportUnreachable.index());
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
    if prediction.fallback {
        slots.push(Counter::MptcpFallback.index());
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
        .test_run_on(kernel.hook, packet)
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
fn disagreements(
    hook: Hook,
    packet: &[u8],
    run: &KernelRun,
    prediction: &Prediction,
) -> Vec<String> {
    let mut problems = Vec::new();
    if run.verdict != hook.pass_verdict() {
        problems.push(format!(
            "verdict {} instead of {} (pass)",
            run.verdict,
            hook.pass_verdict()
        ));
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
    for step in prediction
        .shaped_by
        .iter()
        .filter(|step| step.index != index)
    {
        let _ = writeln!(
            text,
            "    # packet {} changed the flow's MPTCP state",
            step.index
        );
        let _ = writeln!(text, "    packet {}", hex(&step.packet));
        let _ = writeln!(text, "    expect {}", step.view);
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
    option_errors_classified: u64,
    attempted: u64,
    atomic_fragments_whole: u64,
    padded_classified: u64,
    fallbacks: u64,
    fragments: u64,
    rewritten: u64,
    flushes: u64,
    reconfigurations: u64,
    disagreements: u64,
    signatures: BTreeMap<String, u64>,
}

impl Tally {
    fn count(&mut self, view: &View, generated: &Generated, rewritten: bool) {
        self.packets += 1;
        self.corrupted += u64::from(generated.corrupted);
        self.option_errors_classified += u64::from(view.classified_with_option_error());
        self.attempted += u64::from(view.flow_flags & FLOW_MPTCP_ATTEMPTED != 0);
        let classified = view.dscp_out.is_some();
        self.atomic_fragments_whole +=
            u64::from(generated.atomic_fragment && classified && !view.fragment);
        self.padded_classified += u64::from(generated.padded && classified);
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
        }
        self.fragments += u64::from(view.fragment);
        self.rewritten += u64::from(rewritten);
    }

    /// What the kernel saw, by name, for the mix check.
    fn seen(&self) -> BTreeMap<String, u64> {
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        for (class, n) in &self.classes {
            seen.insert(format!("class {class}"), *n);
        }
        for (subtype, n) in &self.subtypes {
            seen.insert(format!("subtype {subtype}"), *n);
        }
        seen.insert("MPTCP option".to_owned(), self.mptcp_option);
        seen.insert("fragment".to_owned(), self.fragments);
        seen.insert("DSCP rewritten".to_owned(), self.rewritten);
        seen.insert("corrupted".to_owned(), self.corrupted);
        seen.insert("parse error".to_owned(), self.errors.values().sum());
        for (error, n) in &self.errors {
            seen.insert(format!("error {error}"), *n);
        }
        seen.insert(
            "classified with an option error".to_owned(),
            self.option_errors_classified,
        );
        seen.insert("flow MPTCP attempted".to_owned(), self.attempted);
        seen.insert("MPTCP fallback".to_owned(), self.fallbacks);
        seen.insert(
            "IPv6 atomic fragment parsed whole".to_owned(),
            self.atomic_fragments_whole,
        );
        seen.insert("padded frame classified".to_owned(), self.padded_classified);
        seen
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
            "fuzz: classified with an error in the TCP options {}; flows attempting MPTCP {} \
             packets, fallbacks {}",
            self.option_errors_classified, self.attempted, self.fallbacks
        );
        println!(
            "fuzz: fragments {}, IPv6 atomic fragments parsed whole {}, padded frames \
             classified {}, DSCP rewritten {}",
            self.fragments, self.atomic_fragments_whole, self.padded_classified, self.rewritten
        );
        println!("fuzz: errors: {}", list(&self.errors));
        println!("fuzz: disagreements: {}", self.disagreements);
        for (signature, n) in &self.signatures {
            println!("fuzz:   {n} × {signature}");
        }
    }
}

/// The hooks to fuzz: `CLASSIFIER_FUZZ_HOOK`, both by default.
fn hooks() -> Vec<Hook> {
    match std::env::var("CLASSIFIER_FUZZ_HOOK").as_deref() {
        Err(_) | Ok("both") => Hook::ALL.to_vec(),
        Ok("xdp") => vec![Hook::Xdp],
        Ok("tc") => vec![Hook::Tc],
        Ok(other) => panic!("CLASSIFIER_FUZZ_HOOK={other}: not xdp, tc or both"),
    }
}

#[test]
fn kernel_agrees_with_the_reference_on_random_packets() {
    let packets = env_u64("CLASSIFIER_FUZZ_PACKETS").unwrap_or(DEFAULT_PACKETS);
    let seed = env_u64("CLASSIFIER_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    for hook in hooks() {
        println!(
            "fuzz: {hook} hook, seed {seed:#x}, {packets} packets (again: \
             CLASSIFIER_FUZZ_HOOK={hook} CLASSIFIER_FUZZ_SEED={seed:#x} \
             CLASSIFIER_FUZZ_PACKETS={packets})"
        );
        fuzz(hook, packets, seed);
    }
}

fn fuzz(hook: Hook, packets: u64, seed: u64) {
    let (mut kernel, mut reference) = kernel_and_reference(hook);
    let mut unbuildable = 0u64;
    let mut generator = Generator::new(seed);
    let mut changes = ConfigChanges::new(seed);
    let mut flows = FlowModel::default();
    let mut tally = Tally::default();
    let mut expected_counters = vec![CounterValue::default(); COUNTER_SLOTS as usize];
    let (mut flows_differing, mut flows_printed) = (0, 0);
    let started = Instant::now();
    for index in 0..packets {
        if changes
            .maybe_change(&mut kernel.classifier.writer())
            .is_some()
        {
            follow(&kernel, &mut reference);
            tally.reconfigurations += 1;
        }
        if reference.flow_count() >= MAX_FLOWS {
            flows_differing += compare_flows(&kernel, &flows, &mut flows_printed);
            forget_flows(&mut kernel, &mut reference, &mut flows);
            tally.flushes += 1;
        }
        let generated = generator.packet();
        let packet = &generated.packet;
        if hook == Hook::Tc && !support::skb_can_be_built(packet) {
            unbuildable += 1;
            continue;
        }
        let prediction = reference.predict(index, packet);
        let run = run_kernel(&kernel, packet);
        let problems = disagreements(hook, packet, &run, &prediction);
        if !problems.is_empty() {
            tally.disagreements += 1;
            let signature = signature(&run.view, &prediction.view, &problems);
            *tally.signatures.entry(signature).or_default() += 1;
            if tally.disagreements <= PRINTED {
                println!("{}", describe(index, packet, &run, &prediction, &problems));
            }
        }
        tally.count(&run.view, &generated, run.output != *packet);
        flows.update(packet.len(), &prediction);
        for slot in counters_of(&prediction) {
            let counter = &mut expected_counters[slot as usize];
            counter.packets += 1;
            counter.bytes += packet.len() as u64;
        }
    }
    let flows_at_end = flows.len();
    flows_differing += compare_flows(&kernel, &flows, &mut flows_printed);
    let seconds = started.elapsed().as_secs_f64();
    let counters = kernel
        .classifier
        .maps()
        .counters()
        .expect("reading counters");
    tally.fallbacks = counters.get(Counter::MptcpFallback.index()).packets;
    tally.print(seed, seconds);
    let list = |mix: &BTreeMap<&str, u64>| {
        mix.iter()
            .map(|(what, n)| format!("{what} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if hook == Hook::Tc {
        println!("fuzz: {unbuildable} packets too short for an skb, left out of the tc run");
    }
    println!("fuzz: built: {}", list(&generator.mix));
    println!("fuzz: configuration changes: {}", list(&changes.made));
    println!(
        "fuzz: flow entries compared at each emptying and at the end ({flows_at_end} then), \
         {flows_differing} differ"
    );

    // The kernel's counters, summed over the run, must be what the model says they count:
    // packets and bytes.
    println!(
        "fuzz: DNS responses handed to user space {}, lost to a full ring buffer {}",
        counters.get(Counter::DnsForwarded.index()).packets,
        counters.get(Counter::DnsLost.index()).packets
    );
    let wrong: Vec<String> = (0..COUNTER_SLOTS)
        .filter(|slot| !NOT_MODELLED.iter().any(|counter| counter.index() == *slot))
        .filter(|&slot| counters.get(slot) != expected_counters[slot as usize])
        .map(|slot| {
            let (kernel, model) = (counters.get(slot), expected_counters[slot as usize]);
            format!(
                "{}: kernel {} packets {} bytes, reference {} packets {} bytes",
                counter_label(slot).unwrap_or_else(|| format!("slot {slot}")),
                kernel.packets,
                kernel.bytes,
                model.packets,
                model.bytes
            )
        })
        .collect();
    assert!(wrong.is_empty(), "counters differ: {}", wrong.join("; "));
    assert_eq!(
        tally.disagreements, 0,
        "the kernel and the reference disagree (details above; seed {seed:#x})"
    );
    assert_eq!(
        flows_differing, 0,
        "flow entries differ from the model's (the first ones above; seed {seed:#x})"
    );
    if packets < fuzz::mix::CHECKED_FROM {
        println!(
            "fuzz: the mix is not checked below {} packets",
            fuzz::mix::CHECKED_FROM
        );
        return;
    }
    let missing = fuzz::mix::missing(packets, &generator.mix, &changes.made, &tally.seen());
    assert!(
        missing.is_empty(),
        "the run did not generate the mix it claims (seed {seed:#x}):\n  {}",
        missing.join("\n  ")
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
    for hook in hooks() {
        for case in &corpus {
            // A fresh kernel per case: its flow table holds only the case's own packets.
            let (kernel, mut reference) = kernel_and_reference(hook);
            for (index, (packet, expected)) in (0..).zip(&case.steps) {
                if hook == Hook::Tc && !support::skb_can_be_built(packet) {
                    continue;
                }
                steps += 1;
                let prediction = reference.predict(index, packet);
                let run = run_kernel(&kernel, packet);
                let mut problems = disagreements(hook, packet, &run, &prediction);
                if run.view.to_string() != *expected {
                    problems.push(format!("kernel: {}", run.view));
                }
                if prediction.view.to_string() != *expected {
                    problems.push(format!("reference: {}", prediction.view));
                }
                if !problems.is_empty() {
                    failures.push(format!(
                        "{} packet {index} ({hook}): expected {expected}\n  {}",
                        case.name,
                        problems.join("\n  ")
                    ));
                }
            }
        }
    }
    println!(
        "corpus: {} cases, {steps} packets over both hooks",
        corpus.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
