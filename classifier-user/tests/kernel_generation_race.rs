//! The generation protocol under a storm of changes (docs/design.md, 'Live updates: the
//! generation protocol'): packets of many flows run on both CPUs while the policy and a
//! prefix list are flipped thousands of times, each change made the way the CLI makes it
//! (`control::policy::set`, `control::prefixes::apply`). The flips come in bursts; after the
//! last change of each burst, with no further bump, every flow's cached decision must be the
//! one the state then in force gives. Checking after every burst, not only at the end,
//! gives the race a chance at each burst's last change rather than once.
//!
//! It fails when a packet can file a decision under a generation newer than the policy or
//! the tries it read: for example when the kernel reads the generation again after the
//! lookups instead of using the snapshot it took first (the old ordering), or when user space
//! bumps the generation before the data is written.

use classifier_testkit as support;

use std::{
    net::Ipv4Addr,
    os::fd::{AsFd as _, AsRawFd as _},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use classifier::{
    control::{
        policy,
        prefixes::{self, Change},
    },
    load::{ListNames, rules::Rule},
};
use classifier_common::{FlowKey, flow::ACTION_NONE};
use ipnet::IpNet;
use support::{Kernel, packet::Segment};

/// Flows per CPU thread: enough that a flip lands while some flows are being recomputed.
const FLOWS: u16 = 256;
const BURSTS: usize = 500;
/// Odd, so that the bursts end on a policy change and on a list change in turn.
const FLIPS_PER_BURST: usize = 3;
const LIST: u32 = 0;
/// DSCPs of the two policies the flips alternate between.
const LE: u8 = 1;
const CS1: u8 = 8;

/// The two versions of the list: flows from 17.1.0.0/16 are in both, flows from
/// 17.200.0.0/16 only in the wide one.
fn list_version(wide: bool) -> Vec<IpNet> {
    let prefix = if wide { "17.0.0.0/8" } else { "17.0.0.0/9" };
    vec![prefix.parse().expect("a test prefix")]
}

fn policy_version(le: bool) -> Vec<Rule> {
    let rule = if le {
        "list:apple=LE"
    } else {
        "list:apple=CS1"
    };
    vec![rule.parse().expect("a test rule")]
}

/// Flow `n` of thread `thread`: a plain ACK from a 17.x client to a server.
fn segment(thread: u16, n: u16) -> Segment {
    let network = if n.is_multiple_of(2) { 1 } else { 200 };
    let client = Ipv4Addr::new(17, network, thread as u8, (n / 2) as u8);
    Segment::tcp(&client.to_string(), "198.51.100.10", 40000 + n, 443)
}

/// BPF_PROG_TEST_RUN on `prog_fd`, once, from any thread: the library's `test_run` needs the
/// whole `Classifier`, which the main thread is changing meanwhile.
fn run_once(prog_fd: i32, packet: &[u8]) {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(prog_fd as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&(packet.len() as u32).to_ne_bytes());
    attr[16..24].copy_from_slice(&(packet.as_ptr() as u64).to_ne_bytes());
    attr[32..36].copy_from_slice(&1u32.to_ne_bytes());
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    // SAFETY: a bpf_attr laid out for BPF_PROG_TEST_RUN, with a packet that outlives the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            attr.as_mut_ptr(),
            attr.len() as u32,
        )
    };
    assert_eq!(
        result,
        0,
        "BPF_PROG_TEST_RUN: {}",
        std::io::Error::last_os_error()
    );
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set),
            0,
            "pinning a packet thread to CPU {cpu}"
        );
    }
}

#[test]
fn after_a_storm_of_changes_every_cached_decision_is_the_final_one() {
    let mut kernel = Kernel::load_xdp_only();
    let maps = &mut kernel.classifier.writer();
    let mut names = ListNames::read(maps).expect("reading list names");
    assert_eq!(names.get_or_create(maps, "apple").expect("a list"), LIST);
    policy::set(maps, Some(&policy_version(true)), None).expect("the first policy");
    apply_list(maps, true);

    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        cpus >= 2,
        "the race needs packets on two CPUs; this machine has {cpus}"
    );
    let prog_fd = kernel
        .classifier
        .xdp()
        .expect("the XDP program")
        .fd()
        .expect("its fd")
        .as_fd()
        .as_raw_fd();
    let packets: Vec<Vec<Vec<u8>>> = (0..2u16)
        .map(|thread| (0..FLOWS).map(|n| segment(thread, n).build()).collect())
        .collect();
    let stop = AtomicBool::new(false);
    let passes = [AtomicU64::new(0), AtomicU64::new(0)];

    let mut wrong = Vec::new();
    std::thread::scope(|scope| {
        for (thread, flows) in packets.iter().enumerate() {
            let (stop, passes) = (&stop, &passes);
            scope.spawn(move || {
                pin_to_cpu(thread);
                while !stop.load(Ordering::Relaxed) {
                    for packet in flows {
                        run_once(prog_fd, packet);
                    }
                    passes[thread].fetch_add(1, Ordering::Release);
                }
            });
        }
        // Both threads busy before the storm starts.
        wait_for_passes(&passes, [1, 1]);
        let maps = &mut kernel.classifier.writer();
        let (mut list_wide, mut le) = (true, true);
        for burst in 0..BURSTS {
            for flip in 0..FLIPS_PER_BURST {
                if (burst * FLIPS_PER_BURST + flip).is_multiple_of(2) {
                    le = !le;
                    policy::set(maps, Some(&policy_version(le)), None)
                        .expect("flipping the policy");
                } else {
                    list_wide = !list_wide;
                    apply_list(maps, list_wide);
                }
            }
            // Every flow sees at least one whole pass after the burst's last change.
            let after = [0, 1].map(|t| passes[t].load(Ordering::Acquire) + 2);
            wait_for_passes(&passes, after);
            wrong.extend(
                stale_decisions(maps, list_wide, le)
                    .into_iter()
                    .map(|flow| format!("after burst {burst}: {flow}")),
            );
            if !wrong.is_empty() {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(
        wrong.is_empty(),
        "flows cached a decision that is not the state in force (of {} flows, {BURSTS} \
         bursts of {FLIPS_PER_BURST} changes):\n{}",
        2 * FLOWS,
        wrong.join("\n")
    );
}

/// The flows whose cached decision is not what the list and policy in force give.
fn stale_decisions(
    maps: &classifier::load::ClassifierMaps,
    list_wide: bool,
    le: bool,
) -> Vec<String> {
    let generation = maps.generation().expect("the generation");
    let flows = maps.flows().expect("reading the flows");
    assert_eq!(flows.len(), 2 * usize::from(FLOWS), "one entry per flow");
    let mut wrong = Vec::new();
    for (key, entry) in &flows {
        let listed = in_list(key, list_wide);
        let expected_lists = if listed { 1 << LIST } else { 0 };
        let expected_action = match (listed, le) {
            (false, _) => ACTION_NONE,
            (true, true) => LE,
            (true, false) => CS1,
        };
        if entry.generation != generation
            || entry.lists != expected_lists
            || entry.action != expected_action
        {
            wrong.push(format!(
                "{}: generation {} (now {generation}), lists {:#x} (want {expected_lists:#x}), \
                 action {} (want {expected_action})",
                Ipv4Addr::new(key.addr_a[0], key.addr_a[1], key.addr_a[2], key.addr_a[3]),
                entry.generation,
                entry.lists,
                entry.action,
            ));
        }
    }
    wrong
}

fn apply_list(maps: &mut classifier::MapWriter<'_>, wide: bool) {
    let change = Change::Replace {
        list: LIST,
        prefixes: list_version(wide),
    };
    prefixes::apply(maps, &change).expect("replacing the list");
}

/// Whether the client of `key` (endpoint A: 17.x sorts before 198.51.100.10) is in the list.
fn in_list(key: &FlowKey, wide: bool) -> bool {
    key.addr_a[0] == 17 && (wide || key.addr_a[1] < 128)
}

/// Waits until each thread has made at least `at_least[t]` passes over its flows.
fn wait_for_passes(passes: &[AtomicU64; 2], at_least: [u64; 2]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..2).any(|t| passes[t].load(Ordering::Acquire) < at_least[t]) {
        assert!(
            Instant::now() < deadline,
            "packet threads made {:?} passes in 60 s, wanted {at_least:?}",
            passes
                .iter()
                .map(|p| p.load(Ordering::Acquire))
                .collect::<Vec<_>>()
        );
        std::thread::yield_now();
    }
}
