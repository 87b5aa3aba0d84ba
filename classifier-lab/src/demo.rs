//! The demo (`cargo xtask demo`): the lab, the classifier on the router, and three phases
//! that show what the project is for, each printed as it completes.
//!
//! 1. MPTCP detected: a kernel MPTCP connection with two subflows, what the classifier saw,
//!    and the DSCP the server received.
//! 2. An Apple download on its own: classified, marked, and received marked.
//! 3. Contention on a shaped link: an Apple download beside a normal one, with and without
//!    the classifier.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use classifier_common::Counter;

use self::contention::{Contention, Downloads};
use crate::{
    CLIENT_V4, CLIENT_V4_SECOND, Lab, ROUTER_TO_CLIENT, SERVER_APPLE_V4, SERVER_OTHER_V4, io_error,
    nft::Counters, traffic,
};
use classifier::{
    ClassifierMaps, Error, Hook, PinDir,
    capabilities::{self, Capability},
    config_file::ConfigFile,
    control::{
        attach::HookChoice,
        policy,
        shape::{self, ShapeSpec},
    },
    load::ListNames,
    report::{flows, status},
};

pub mod contention;

pub const RATE_MBIT: u64 = 50;
pub const BULK_FLOOR: u8 = 10;
const CONTENTION: Duration = Duration::from_secs(4);

/// The demo's own pin directory, so that it never touches a real installation's state.
pub fn pin_dir() -> PathBuf {
    PathBuf::from(format!("/sys/fs/bpf/classifier-lab-{}", std::process::id()))
}

/// Counts, in the server, the MPTCP upload's packets after each subflow's SYN and those not
/// marked LE. A SYN only offers MPTCP (docs/design.md, 'MPTCP state of a flow'): the flow is
/// MPTCP, and marked, from its SYN/ACK on.
const SERVER_RULES: &str = "table inet verify {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        tcp dport 7000 tcp flags & (syn | ack) != syn counter
        tcp dport 7000 tcp flags & (syn | ack) != syn ip dscp != 1 counter
    }
}";

/// Counts, in the client, the Apple download's packets and those not marked LE.
const CLIENT_RULES: &str = "table inet verify {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        ip saddr 17.253.0.10 tcp sport 8000 counter
        ip saddr 17.253.0.10 tcp sport 8000 ip dscp != 1 counter
    }
}";

/// Removes the demo's pinned state when dropped.
struct State(PinDir);

impl Drop for State {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.path());
    }
}

/// Runs the demo with the classifier at `hook` (XDP: native), printing each phase's report as
/// it ends; returns the whole report.
pub fn run(hook: Hook) -> Result<String, Error> {
    let started = Instant::now();
    // Namespaces, veths, nftables and the program: everything root has.
    capabilities::require(
        "the demo",
        &[
            Capability::SysAdmin,
            Capability::NetAdmin,
            Capability::Bpf,
            Capability::Perfmon,
        ],
    )?;
    let mut report = String::new();
    let mut say = |text: String| {
        println!("{text}");
        let _ = writeln!(report, "{text}");
    };
    let lab = Lab::new()?;
    let state = State(PinDir::new(pin_dir()));
    let config = ConfigFile {
        // MPTCP marked too, so that its DSCP can be seen at the receiver.
        policy: Some(vec!["list:apple=LE".to_owned(), "mptcp=LE".to_owned()]),
        ..ConfigFile::default()
    };
    let (mode, placement) = match hook {
        Hook::Xdp => (HookChoice::XdpNative, "native XDP"),
        Hook::Tc => (HookChoice::Tc, "tc, at TCX ingress"),
    };
    lab.attach_classifier_in(&state.0, &config, mode)?;
    say(format!(
        "lab: client ⇄ router ⇄ server in namespaces {}, {}, {}",
        lab.client.name(),
        lab.router.name(),
        lab.server.name()
    ));
    say(format!(
        "classifier attached to the router's r0, r1, r2 ({placement}); policy list:apple=LE \
         mptcp=LE\n"
    ));

    mptcp_phase(&lab, &state.0, &mut say)?;
    apple_phase(&lab, &state.0, &mut say)?;
    contention_phase(&lab, &state.0, &config, &mut say)?;

    // What is attached, as `classifier status` reads it: the hook asked for, to the end.
    let attached: Vec<String> = status::read(&state.0)?
        .interfaces
        .iter()
        .map(|i| format!("{} {} ({})", i.interface, i.hook, i.mode))
        .collect();
    say(format!("\nattached at the end: {}", attached.join(", ")));
    lab.detach_classifier(&state.0)?;
    say(format!(
        "done in {:.0} s; the lab and its state are removed",
        started.elapsed().as_secs_f64()
    ));
    drop(lab);
    Ok(report)
}

fn mptcp_phase(lab: &Lab, pin_dir: &PinDir, say: &mut impl FnMut(String)) -> Result<(), Error> {
    let counters = Counters::load(&lab.server, SERVER_RULES)?;
    let server: SocketAddr = format!("{SERVER_OTHER_V4}:7000")
        .parse()
        .expect("an address");
    let bytes = 8 << 20;
    let source = CLIENT_V4.parse().expect("an address");
    // Both subflows: the client's first path and the one its path manager adds from c1.
    traffic::transfer(&lab.client, source, &lab.server, server, bytes, true, 2)?;
    let maps = ClassifierMaps::open_pinned(pin_dir)?;
    let names = ListNames::read(&maps)?;
    let subflows = flows::views(&maps.flows()?, &names, true, None);
    let counters_now = maps.counters()?;
    let seen: Vec<String> = classifier_common::MptcpSubtype::ALL
        .iter()
        .filter_map(|subtype| {
            let packets = counters_now
                .get(Counter::for_mptcp_subtype(*subtype as u8))
                .packets;
            (packets > 0).then(|| format!("{} {packets}", subtype.name()))
        })
        .collect();
    let [arrived, not_le] = counters.read()?[..] else {
        return Err(io_error("nft")(std::io::Error::other(
            "two counters expected",
        )));
    };
    say("1. MPTCP detected".to_owned());
    say(format!(
        "   kernel MPTCP upload {CLIENT_V4} → {server}, {} MiB, {} subflows:",
        bytes >> 20,
        subflows.len()
    ));
    for subflow in &subflows {
        say(format!(
            "     {} → {}  {} packets, DSCP {}",
            subflow.client,
            subflow.server,
            subflow.packets,
            subflow.dscp.as_deref().unwrap_or("-")
        ));
    }
    let second_path = subflows
        .iter()
        .any(|s| s.client.starts_with(&format!("{CLIENT_V4_SECOND}:")));
    say(format!(
        "   second path (MP_JOIN from {CLIENT_V4_SECOND}): {}",
        if second_path { "yes" } else { "no" }
    ));
    say(format!(
        "   option 30 subtypes counted (packets): {}",
        seen.join(", ")
    ));
    say(format!(
        "   at the server: {} of {arrived} packets after the SYNs carried DSCP LE\n",
        arrived - not_le
    ));
    Ok(())
}

fn apple_phase(lab: &Lab, pin_dir: &PinDir, say: &mut impl FnMut(String)) -> Result<(), Error> {
    let counters = Counters::load(&lab.client, CLIENT_RULES)?;
    let maps = ClassifierMaps::open_pinned(pin_dir)?;
    let before = maps.counters()?;
    let server: SocketAddr = format!("{SERVER_APPLE_V4}:8000")
        .parse()
        .expect("an address");
    let duration = Duration::from_millis(1500);
    let client = CLIENT_V4.parse().expect("an address");
    let bytes = traffic::download(&lab.client, client, &lab.server, server, duration)?;
    let after = maps.counters()?;
    let moved = |counter: Counter| {
        let (a, b) = (after.get(counter.index()), before.get(counter.index()));
        (a.packets - b.packets, a.bytes - b.bytes)
    };
    let (listed, listed_bytes) = moved(Counter::ClassListed);
    let (marked, _) = moved(Counter::Marked);
    // ACKs the client's kernel sends itself (TIME_WAIT, RST) reflect the TOS they answer.
    let (already, _) = moved(Counter::AlreadyMarked);
    let [arrived, not_le] = counters.read()?[..] else {
        return Err(io_error("nft")(std::io::Error::other(
            "two counters expected",
        )));
    };
    say("2. Apple download on its own".to_owned());
    say(format!(
        "   {server} → {CLIENT_V4}: {:.1} MiB in {:.1} s ({:.0} Mbit/s, unshaped)",
        bytes as f64 / (1 << 20) as f64,
        duration.as_secs_f64(),
        bytes as f64 * 8.0 / duration.as_secs_f64() / 1e6
    ));
    say(format!(
        "   router: {listed} packets ({:.1} MiB) classed apple: {marked} marked LE, {already} \
         already LE",
        listed_bytes as f64 / (1 << 20) as f64
    ));
    say(format!(
        "   at the client: {} of {arrived} packets arrived as LE\n",
        arrived - not_le
    ));
    Ok(())
}

fn contention_phase(
    lab: &Lab,
    pin_dir: &PinDir,
    config: &ConfigFile,
    say: &mut impl FnMut(String),
) -> Result<(), Error> {
    let spec = ShapeSpec {
        rate: RATE_MBIT * 1_000_000,
        bulk_floor: BULK_FLOOR,
        bulk_dscp: vec![1, 8],
        // What `classifier shape` does by default.
        fair_leaves: Some(shape::DEFAULT_FAIR_LEAVES),
        side: shape::Side::Lan,
        flow_leaves: Some(shape::DEFAULT_FLOW_LEAVES),
    };
    lab.router
        .enter(|| shape::shape(pin_dir, config, ROUTER_TO_CLIENT, &spec))??;
    let with = traffic::apple_beside_normal(lab, (8100, 8101), CONTENTION)?;
    // "Without": the same shaped link, the classifier counting but marking nothing.
    policy::change(pin_dir, &[], Some(true))?;
    let without = traffic::apple_beside_normal(lab, (8102, 8103), CONTENTION)?;
    policy::change(pin_dir, &[], Some(false))?;
    lab.router
        .enter(|| shape::unshape(pin_dir, ROUTER_TO_CLIENT))??;

    let rate = RATE_MBIT as f64;
    let downloads = |(apple_mbit, normal_mbit)| Downloads {
        apple_mbit,
        normal_mbit,
    };
    let contention = Contention::shown(RATE_MBIT, BULK_FLOOR, downloads(without), downloads(with));
    say(format!(
        "3. Contention: r0 (towards the client) shaped to {RATE_MBIT} Mbit/s, bulk floor \
         {BULK_FLOOR} %; two downloads side by side for {} s each",
        CONTENTION.as_secs()
    ));
    say("                          Apple (bulk)      normal".to_owned());
    for (label, shown) in [
        ("without classifier", contention.without),
        ("with classifier", contention.with),
    ] {
        let (apple, normal) = (shown.apple_mbit, shown.normal_mbit);
        say(format!(
            "   {label:<20} {apple:6.1} Mbit/s {:>4.0} %  {normal:6.1} Mbit/s {:>4.0} %",
            apple / rate * 100.0,
            normal / rate * 100.0
        ));
    }
    say(format!(
        "   (goodput; the link carries a few % more in headers). {}",
        contention.sentence()
    ));
    Ok(())
}
