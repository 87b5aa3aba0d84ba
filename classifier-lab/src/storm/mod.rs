//! The update storm (`cargo xtask storm`): hundreds of phones pulling the same
//! update through the lab's router at once, some over 8 connections, some from CDN servers
//! known only through DNS, beside one other user's bulk download and an interactive user,
//! on a shaped link. One run is one lab, built, stormed and removed; the report compares
//! runs without the classifier, with per-flow queueing and with per-device fairness.

mod download;
pub mod hosts;
mod measure;
mod operator;
pub mod probe;
mod resolver;
pub mod summary;

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    time::Duration,
};

use download::Senders;
use hosts::{BULK_SERVER, INTERACTIVE_SERVER, PORT, RESOLVER, UpdateServer};
pub use operator::Fair;
pub use probe::RoundTrips;

use crate::{Lab, dns, io_error, nft::Counters};
use ::classifier::{Error, Hook};

/// What the storm is made of, and how long it lasts.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The shaped rate of r0 (towards the phones), Mbit/s.
    pub rate_mbit: u64,
    /// The bulk class's floor, percent of the rate.
    pub bulk_floor: u8,
    pub phones: usize,
    /// Phones that download over `heavy_connections` connections at once.
    pub heavy_phones: usize,
    pub heavy_connections: usize,
    /// The probe alone on the link, before the storm.
    pub idle: Duration,
    /// The storm before measuring: connections opening, slow start.
    pub ramp: Duration,
    /// The storm, measured.
    pub measure: Duration,
    /// The hook `classifier run` attaches at (`--hook`); None: its default, native XDP on
    /// the lab's veths.
    pub hook: Option<Hook>,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            rate_mbit: 50,
            bulk_floor: 10,
            phones: 200,
            heavy_phones: 5,
            heavy_connections: 8,
            idle: Duration::from_secs(3),
            ramp: Duration::from_secs(3),
            measure: Duration::from_secs(10),
            hook: None,
        }
    }
}

/// The router of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// The same shaped link, no classifier: nothing is marked, everything shares one queue.
    NoClassifier,
    /// The classifier with `shape --fair off`: the bulk class shared between connections.
    PerFlow,
    /// The classifier with `shape --fair K`: the bulk class shared between devices.
    PerDevice(u32),
}

impl Setup {
    pub fn name(&self) -> String {
        match self {
            Self::NoClassifier => "no classifier".to_owned(),
            Self::PerFlow => "per-flow (--fair off)".to_owned(),
            Self::PerDevice(k) => format!("per-device (--fair {k})"),
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            Self::NoClassifier => "none",
            Self::PerFlow => "flow",
            Self::PerDevice(_) => "device",
        }
    }
}

/// One phone's download.
#[derive(Clone, Debug)]
pub struct Phone {
    pub address: Ipv4Addr,
    pub server: Ipv4Addr,
    /// Through a name the resolver answered with a CNAME chain (not a listed address).
    pub learned_server: bool,
    pub connections: usize,
    /// Received inside the measuring window, over all its connections.
    pub bytes: u64,
    /// Connections that failed (their bytes up to the failure are not counted).
    pub failed: usize,
}

/// Packets from a server that reached the phones, and those marked LE on the way.
#[derive(Clone, Debug)]
pub struct Marked {
    pub server: Ipv4Addr,
    pub packets: u64,
    pub le: u64,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub setup: Setup,
    pub phones: Vec<Phone>,
    /// The other user's bulk download, bytes inside the window.
    pub normal_bytes: u64,
    /// What r0's normal and bulk classes sent inside the window, in bytes on the wire.
    pub wire_bytes: (u64, u64),
    pub window_seconds: f64,
    pub idle_tcp: RoundTrips,
    pub idle_icmp: RoundTrips,
    pub storm_tcp: RoundTrips,
    pub storm_icmp: RoundTrips,
    /// `classifier devices --list apple`'s count; None in the run without the classifier,
    /// which has none to ask.
    pub phones_seen: Option<usize>,
    /// The servers known only through DNS.
    pub learned_servers: Vec<Marked>,
    /// How `shape` was called, as the report shows it.
    pub shaped_with: String,
    /// (interface, hook) where `classifier status` showed the classifier at the end of the
    /// storm; none without it.
    pub attached: Vec<(String, String)>,
}

/// Runs `setup` once: builds a lab, storms it, removes it. `binary` is the `classifier` to
/// run; `prefix` names the run's pin directory and files (with the process id in it, for the
/// Ctrl-C handler).
pub fn run(binary: &Path, spec: &Spec, setup: Setup, prefix: &str) -> Result<Outcome, Error> {
    let mut router = operator::Operator::new(binary, &format!("{prefix}-{}", setup.tag()))?;
    if spec.phones == 0 || spec.phones > hosts::MAX_PHONES {
        return Err(io_error("the storm's phones")(std::io::Error::other(
            format!(
                "{} phones: between 1 and {} fit the lab's addresses",
                spec.phones,
                hosts::MAX_PHONES
            ),
        )));
    }
    let lab = Lab::new()?;
    let servers = hosts::update_servers();
    hosts::add(&lab, spec.phones, &servers)?;
    if setup != Setup::NoClassifier {
        router.start(&lab, spec.hook)?;
    }
    let (fair, flows) = (fair_flag(setup), flows_flag(setup));
    router.shape(&lab, spec.rate_mbit, spec.bulk_floor, fair, &flows)?;
    let shaped_with = shaped_with(spec, fair, &flows);

    let learned: Vec<&UpdateServer> = servers.iter().filter(|s| s.name.is_some()).collect();
    let counters = Counters::load(&lab.client, &marking_rules(&learned))?;
    let _resolver = resolver::Resolver::start(&lab.server, &servers)?;
    let mut listening: Vec<SocketAddr> = servers
        .iter()
        .map(|s| SocketAddr::from((s.address, PORT)))
        .collect();
    listening.push(SocketAddr::from((BULK_SERVER, PORT)));
    let senders = Senders::start(&lab.server, &listening)?;
    let interactive = SocketAddr::from((INTERACTIVE_SERVER, PORT));
    let interactive_listener = download::listen(&lab.server, interactive)?;

    let mut phones = plan(spec, &servers);
    // Each phone behind a CDN server asks for its name first, as a phone resolves before it
    // downloads; the router learns the address from the answers.
    for (index, phone) in phones.iter().enumerate() {
        if let Some(name) = &servers[index % servers.len()].name {
            let answered = dns::lookup(
                &lab.client,
                phone.address.into(),
                RESOLVER.into(),
                name,
                index as u16,
            )?;
            if answered != phone.server {
                return Err(io_error(format!("looking up {name}"))(
                    std::io::Error::other(format!(
                        "answered {answered}, expected {}",
                        phone.server
                    )),
                ));
            }
        }
    }
    if setup != Setup::NoClassifier {
        let addresses: Vec<Ipv4Addr> = learned.iter().map(|s| s.address).collect();
        router.wait_learned(&addresses, Duration::from_secs(10))?;
    }

    let measured = measure::idle_then_storm(&lab, spec, &mut phones, &interactive_listener)?;
    let packets = counters.read()?;
    let learned_servers = learned
        .iter()
        .zip(packets.chunks(2))
        .map(|(server, pair)| Marked {
            server: server.address,
            packets: pair[0],
            le: pair.get(1).copied().unwrap_or(0),
        })
        .collect();
    let (phones_seen, attached) = if setup == Setup::NoClassifier {
        (None, Vec::new())
    } else {
        (Some(router.apple_devices()?), router.attached()?)
    };
    drop(senders);
    drop(router);
    drop(lab);
    Ok(Outcome {
        setup,
        phones,
        normal_bytes: measured.normal_bytes,
        wire_bytes: measured.wire_bytes,
        window_seconds: measured.window_seconds,
        idle_tcp: measured.idle_tcp,
        idle_icmp: measured.idle_icmp,
        storm_tcp: measured.storm_tcp,
        storm_icmp: measured.storm_icmp,
        phones_seen,
        learned_servers,
        shaped_with,
        attached,
    })
}

/// The `--fair` that `setup` asks of `shape`: the bulk class shared per flow, except for
/// per-device fairness.
fn fair_flag(setup: Setup) -> Fair {
    match setup {
        Setup::PerDevice(k) => Fair::Leaves(k),
        Setup::NoClassifier | Setup::PerFlow => Fair::Off,
    }
}

/// The `--flows` that `setup` asks of `shape`. Without the classifier the link is what a
/// plain shaper gives, one FIFO for everything (`--flows off`); the classifier's runs share
/// the normal class between flows (docs/design.md, 'Flows in the normal class').
fn flows_flag(setup: Setup) -> String {
    match setup {
        Setup::NoClassifier => "off".to_owned(),
        Setup::PerFlow | Setup::PerDevice(_) => {
            ::classifier::control::shape::DEFAULT_FLOW_LEAVES.to_string()
        }
    }
}

/// How r0 was shaped, for the report.
fn shaped_with(spec: &Spec, fair: Fair, flows: &str) -> String {
    format!(
        "`classifier shape r0 --rate {}mbit --bulk-floor {} --flows {flows} --fair {fair}`",
        spec.rate_mbit, spec.bulk_floor
    )
}

/// Which phone downloads from which server, over how many connections: phone i from server
/// i mod the number of servers; the first `heavy_phones` over `heavy_connections`.
fn plan(spec: &Spec, servers: &[UpdateServer]) -> Vec<Phone> {
    (0..spec.phones)
        .map(|index| {
            let server = &servers[index % servers.len()];
            Phone {
                address: hosts::phone(index),
                server: server.address,
                learned_server: server.name.is_some(),
                connections: if index < spec.heavy_phones {
                    spec.heavy_connections
                } else {
                    1
                },
                bytes: 0,
                failed: 0,
            }
        })
        .collect()
}

/// nftables rules in the client: per server known only through DNS, its packets and those
/// that arrived marked LE (DSCP 1).
fn marking_rules(servers: &[&UpdateServer]) -> String {
    let mut rules = String::from(
        "table inet verify {\n    chain pre {\n        type filter hook prerouting priority \
         -300; policy accept;\n",
    );
    for server in servers {
        let address = server.address;
        rules.push_str(&format!(
            "        ip saddr {address} counter\n        ip saddr {address} ip dscp 1 counter\n"
        ));
    }
    rules.push_str("    }\n}\n");
    rules
}
