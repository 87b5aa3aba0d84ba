//! Each CPU's flow cache in front of the flow tables (docs/design.md, 'The flow cache'): what
//! a cached flow's packets get must be what the table would give them, whichever CPU saw the
//! flow's other packets. The test thread pins itself to CPU 0 or CPU 1 before each run:
//! BPF_PROG_TEST_RUN runs the program on the caller's CPU, with that CPU's cache.

use classifier_testkit as support;

use classifier_common::{Counter, PolicyRule, flow::MptcpState, report::REPORT_MPTCP_FLOW};
use support::{
    DSCP_LISTED, DSCP_MPTCP, Kernel, LIST_APPLE, mptcp,
    packet::{Segment, traffic_class},
};

/// Moves the test thread to `cpu`, and checks that it is there.
fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; the calls get valid pointers and sizes.
    let on = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let done = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            done,
            0,
            "pinning the test thread to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
        libc::sched_getcpu()
    };
    assert_eq!(on, cpu as i32, "the test thread did not move to CPU {cpu}");
}

fn two_cpus() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        cpus >= 2,
        "these tests need two CPUs to run the program on, this host offers {cpus}"
    );
}

fn is_mptcp(kernel: &Kernel, packet: &[u8]) -> bool {
    let run = kernel.run(packet);
    let by_report = run.report.flags & REPORT_MPTCP_FLOW != 0;
    let by_mark = traffic_class(&run.output) >> 2 == DSCP_MPTCP;
    assert_eq!(by_report, by_mark, "the report and the mark disagree");
    by_report
}

#[test]
fn an_mptcp_handshake_answered_on_another_cpu_reaches_the_cached_direction() {
    two_cpus();
    let kernel = Kernel::load();
    let syn = Segment::tcp("192.0.2.10", "198.51.100.10", 50_000, 443)
        .syn()
        .options(&mptcp::mp_capable_v1_syn());
    let plain = Segment::tcp("192.0.2.10", "198.51.100.10", 50_000, 443).build();

    // The client's direction on CPU 0: its SYN offers MPTCP, its plain packets are cached
    // there as not MPTCP (yet).
    pin(0);
    assert!(!is_mptcp(&kernel, &syn.build()), "a SYN only offers it");
    for _ in 0..3 {
        assert!(!is_mptcp(&kernel, &plain), "no answer yet");
    }
    // The server's answer on CPU 1.
    pin(1);
    let syn_ack = syn
        .reply()
        .syn_ack()
        .options(&mptcp::mp_capable_v1_syn_ack())
        .build();
    assert!(is_mptcp(&kernel, &syn_ack), "the SYN/ACK accepts it");
    // CPU 0's next plain packet: MPTCP, though its slot was filled before.
    pin(0);
    assert!(
        is_mptcp(&kernel, &plain),
        "CPU 0 served a plain packet from its cache as not MPTCP after CPU 1 saw the SYN/ACK"
    );
    let run = kernel.run(&plain);
    assert_eq!(
        MptcpState::from_flags(run.report.flow_flags),
        MptcpState::Yes
    );
}

/// A new SYN on a 5-tuple whose connection was MPTCP, seen on another CPU, starts the flow
/// afresh: the CPU whose slot served the old connection as MPTCP learns it through
/// FLOW_EPOCH and marks the new plain connection's packets no more.
#[test]
fn a_new_syn_seen_on_another_cpu_ends_the_cached_mptcp_state() {
    two_cpus();
    let kernel = Kernel::load();
    let syn = Segment::tcp("192.0.2.30", "198.51.100.30", 50_002, 443).syn();
    let plain = Segment::tcp("192.0.2.30", "198.51.100.30", 50_002, 443).build();
    pin(1);
    assert!(!is_mptcp(
        &kernel,
        &syn.clone().options(&mptcp::mp_capable_v1_syn()).build()
    ));
    let syn_ack = syn
        .reply()
        .syn_ack()
        .options(&mptcp::mp_capable_v1_syn_ack())
        .build();
    assert!(is_mptcp(&kernel, &syn_ack), "the SYN/ACK accepts it");
    // CPU 0 caches the flow as MPTCP.
    pin(0);
    for _ in 0..3 {
        assert!(is_mptcp(&kernel, &plain));
    }
    // A new connection on the same 5-tuple, without MP_CAPABLE, on CPU 1.
    pin(1);
    assert!(!is_mptcp(&kernel, &syn.build()), "the new SYN");
    pin(0);
    assert!(
        !is_mptcp(&kernel, &plain),
        "CPU 0 served the new connection from its cache as the old, MPTCP one"
    );
}

/// A flow first seen mid-stream whose client sends DSS: CPU 0's slot serves the client's
/// repeated option 30s (the entry keeps the first side, which they cannot answer), and the
/// server's DSS on CPU 1 still makes the flow MPTCP for CPU 0's next packet.
#[test]
fn a_flow_first_seen_mid_stream_is_picked_up_while_another_cpu_caches_it() {
    two_cpus();
    let kernel = Kernel::load();
    let dss = Segment::tcp("192.0.2.40", "198.51.100.40", 50_003, 443)
        .options(&mptcp::dss(false))
        .build();
    pin(0);
    for _ in 0..5 {
        assert!(!is_mptcp(&kernel, &dss), "one way only");
    }
    pin(1);
    let answer = Segment::tcp("198.51.100.40", "192.0.2.40", 443, 50_003)
        .options(&mptcp::dss(false))
        .build();
    assert!(
        is_mptcp(&kernel, &answer),
        "the server's DSS answers the client's"
    );
    pin(0);
    assert!(
        is_mptcp(&kernel, &dss),
        "CPU 0 served the client's DSS from its cache as not MPTCP after the answer"
    );
}

#[test]
fn flow_counts_are_exact_whichever_cpu_counted_them() {
    two_cpus();
    let kernel = Kernel::load();
    let packet = Segment::tcp("192.0.2.20", "198.51.100.20", 50_001, 443)
        .payload(&[7; 100])
        .build();
    // Runs of 150 on each CPU: more than a slot serves before it visits the entry, so some
    // counts are in the entry, some in each CPU's slot.
    let runs = [(0, 150), (1, 150), (0, 30), (1, 1), (0, 150)];
    let mut sent = 0u64;
    for (cpu, count) in runs {
        pin(cpu);
        for _ in 0..count {
            kernel.run(&packet);
            sent += 1;
        }
        let flows = kernel.classifier.maps().flows().expect("reading the flows");
        assert_eq!(flows.len(), 1, "one flow");
        let (key, entry) = flows[0];
        assert_eq!(
            (entry.packets, entry.bytes),
            (sent, sent * packet.len() as u64),
            "the flow's packets and bytes after {sent} packets, the last {count} on CPU {cpu}"
        );
        let one = kernel
            .classifier
            .maps()
            .flow(&key)
            .expect("reading a flow")
            .expect("the flow is there");
        assert_eq!(one, entry, "one flow read alone reads the same");
    }
    let counters = kernel.classifier.maps().counters().expect("counters");
    assert_eq!(counters.get(Counter::FlowCreated.index()).packets, 1);
    assert_eq!(counters.get(Counter::Packets.index()).packets, sent);
}

#[test]
fn a_policy_change_applies_to_the_next_packet_of_a_cached_flow() {
    two_cpus();
    let mut kernel = Kernel::load();
    let packet = Segment::tcp("192.0.2.30", "203.0.113.30", 50_002, 443).build();
    pin(0);
    for _ in 0..3 {
        let run = kernel.run(&packet);
        assert_eq!(traffic_class(&run.output), 0, "in no list: not marked");
    }
    // The server joins the Apple list: a new generation.
    kernel.add_prefix("203.0.113.0/24", LIST_APPLE);
    let run = kernel.run(&packet);
    assert_eq!(
        traffic_class(&run.output) >> 2,
        DSCP_LISTED,
        "the cached decision outlived the generation that made it"
    );
    // And the rule goes away: the next packet is left alone.
    kernel.set_rules(&[PolicyRule::default()][..0]);
    let run = kernel.run(&packet);
    assert_eq!(
        traffic_class(&run.output),
        0,
        "a removed rule still marked the next packet"
    );
}

#[test]
fn counts_and_mptcp_stay_exact_while_a_cpu_bypasses_its_cache() {
    two_cpus();
    let kernel = Kernel::load();
    // 1,000 one-packet flows on CPU 0: its lookups miss, and it stops looking at its cache
    // but for one packet in 16 (`CacheUse`).
    pin(0);
    for n in 0..1_000u32 {
        let client = format!("10.9.{}.{}", n >> 8, n & 0xff);
        let packet = Segment::udp(&client, "198.51.100.40", 40_000, 4_000).build();
        kernel.run(&packet);
    }
    let syn = Segment::tcp("192.0.2.40", "198.51.100.40", 50_003, 443)
        .syn()
        .options(&mptcp::mp_capable_v1_syn());
    let plain = Segment::tcp("192.0.2.40", "198.51.100.40", 50_003, 443).build();
    assert!(!is_mptcp(&kernel, &syn.build()));
    // Some of these are probes that fill the slot, the others go past it.
    for _ in 0..100 {
        assert!(!is_mptcp(&kernel, &plain));
    }
    pin(1);
    let syn_ack = syn
        .reply()
        .syn_ack()
        .options(&mptcp::mp_capable_v1_syn_ack())
        .build();
    assert!(is_mptcp(&kernel, &syn_ack));
    pin(0);
    for n in 0..100 {
        assert!(
            is_mptcp(&kernel, &plain),
            "plain packet {n} on CPU 0 after the SYN/ACK on CPU 1 is not MPTCP"
        );
    }
    let flows = kernel.classifier.maps().flows().expect("reading the flows");
    let (_, entry) = flows
        .iter()
        .find(|(key, _)| key.protocol == 6)
        .expect("the TCP flow");
    assert_eq!(entry.packets, 202, "SYN, 200 plain packets and the SYN/ACK");
    assert_eq!(
        entry.bytes,
        (syn.build().len() + 200 * plain.len() + syn_ack.len()) as u64
    );
    let udp = flows.iter().filter(|(key, _)| key.protocol == 17).count();
    assert_eq!(udp, 1_000, "every UDP flow remembered");
}
