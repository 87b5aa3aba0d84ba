//! `classifier run`: the long-running form. It attaches (adopting what is attached already),
//! learns CDN addresses from its own lookups of the lists' host names and from the answers of
//! the resolvers the operator named (docs/design.md, 'DNS learning'), expires them, serves
//! Prometheus metrics, forwards the kernel's log records, watches its interfaces (`watch`),
//! and on SIGTERM or SIGINT stops learning and detaches what it manages (unless told to keep
//! it attached). No async runtime: one loop `poll`s the ring buffers, a signalfd and the
//! lookups' wake-up socket, with a timeout for the once-a-second work; the metrics endpoint
//! and the lookups have threads of their own. Only a signal ends it once it runs: what goes
//! wrong while learning is counted and logged (a bad config stops it at start).

mod endpoint;
mod metrics;
mod stop;
mod watch;

pub use metrics::{Metrics, scrape_text};

use std::{
    net::SocketAddr,
    os::fd::{AsFd as _, AsRawFd as _, RawFd},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::{
    ClassifierMaps, Error, PinDir,
    config_file::ConfigFile,
    control::{
        attach::{self, HookChoice},
        learning,
    },
    dns::{
        self, DnsDatagram, DomainLists, HostLists, Learner, LearnerSettings, LookupDone, Lookups,
        Observed, Source, Trust, router_addresses,
    },
    load::{ListNames, netns::link_pin_name, pinned_link},
};
use aya::{
    maps::{MapData, RingBuf},
    programs::ProgramInfo,
};

/// Where metrics are served unless told otherwise: loopback only.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9417";

/// How often learned addresses are expired and the interfaces checked.
const TICK: Duration = Duration::from_secs(1);

pub struct RunOptions {
    pub interfaces: Vec<String>,
    pub mode: HookChoice,
    /// None: no metrics endpoint.
    pub metrics: Option<SocketAddr>,
    pub keep_attached: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Turns the kernel's hand-over of DNS datagrams on or off.
fn set_learning(pin_dir: &PinDir, maps: &mut ClassifierMaps, on: bool) -> Result<(), Error> {
    learning::with_lock(pin_dir, maps, |learning| learning.hand_over_dns(on))?
}

pub fn run(pin_dir: &PinDir, config: &ConfigFile, options: &RunOptions) -> Result<(), Error> {
    let pending: Vec<String> = options
        .interfaces
        .iter()
        .filter(|name| {
            // Not attached, or left defunct by a deletion of the interface: attach replaces it.
            let pin = pin_dir.link(&link_pin_name(name));
            !pin.exists() || matches!(pinned_link::attached_ifindex(&pin), Ok(None))
        })
        .cloned()
        .collect();
    // An upgrade: what is attached already runs this binary's programs from now on, through
    // the same links and on the same maps (docs/design.md, 'Upgrades'). First, so that the
    // interfaces attached below get the programs pinned here instead of loading them again.
    let adopted: Vec<String> = options
        .interfaces
        .iter()
        .filter(|name| !pending.contains(name))
        .cloned()
        .collect();
    if !adopted.is_empty() {
        // Whatever hook each is attached at stays: the replacement asks for none.
        for done in attach::attach(pin_dir, &adopted, HookChoice::Auto, true, config)? {
            log::info!(
                "{} was attached already ({} {}): its program is now this binary's, its \
                 state kept",
                done.interface,
                done.mode.hook(),
                done.mode
            );
        }
    }
    if !pending.is_empty() {
        for done in attach::attach(pin_dir, &pending, options.mode, false, config)? {
            if let Some(reason) = &done.fell_back {
                log::warn!("{}: native XDP failed ({reason})", done.interface);
            }
            log::info!(
                "attached to {} ({} {})",
                done.interface,
                done.mode.hook(),
                done.mode
            );
        }
    }
    let mut maps = ClassifierMaps::open_pinned(pin_dir)?;
    let names = ListNames::read(&maps)?;
    let settings = LearnerSettings::read(config)?;
    warn_about_names(config, &names, &settings.trust, &options.interfaces);
    let passive = matches!(&settings.trust, Trust::Named(resolvers) if !resolvers.is_empty());
    let mut learner = Learner::new(DomainLists::of(&config.lists, &names), settings);
    learner.settings_mut().bounds.own = router_addresses();
    let adopted = learning::with_lock(pin_dir, &mut maps, |learning| {
        learner.adopt(learning, now())
    })??;
    if adopted > 0 {
        log::info!("{adopted} learned addresses from an earlier run will expire on time");
    }
    // The kernel hands DNS over only when a named resolver's answers can teach.
    set_learning(pin_dir, &mut maps, passive)?;
    if !passive {
        log::info!("no [[dns.trusted_resolvers]]: DNS answers passing through teach nothing");
    }
    let mut watch = watch::Watch::new(&options.interfaces);
    let result = serve(
        pin_dir,
        config,
        &mut maps,
        &mut learner,
        &names,
        &mut watch,
        options,
    );
    let _ = set_learning(pin_dir, &mut maps, false);
    let attached = watch.attached(pin_dir);
    if !options.keep_attached && !attached.is_empty() {
        match attach::detach(pin_dir, &attached, false, false) {
            Ok(detached) => log::info!("detached from {}", detached.join(", ")),
            Err(error) => log::warn!("detaching: {error}"),
        }
    }
    result
}

/// Says what in the config names something `run` does not have: a list with domains or
/// hosts that the state does not hold (it teaches nothing), an interface named for a
/// resolver that `run` does not attach (its answers are never seen).
fn warn_about_names(config: &ConfigFile, names: &ListNames, trust: &Trust, interfaces: &[String]) {
    for list in config
        .lists
        .iter()
        .filter(|list| !list.domains.is_empty() || !list.hosts.is_empty())
        .filter(|list| names.bit(&list.name).is_none())
    {
        log::warn!(
            "list `{}` has domains or hosts in the config but is not in the state, so nothing \
             is learned into it: `classifier prefixes add --list {} PREFIX` creates it",
            list.name,
            list.name
        );
    }
    if let Trust::Named(resolvers) = trust {
        for resolver in resolvers {
            for interface in resolver
                .interfaces
                .iter()
                .filter(|name| !interfaces.contains(name))
            {
                log::warn!(
                    "[[dns.trusted_resolvers]] {} names {interface}, which this run does not \
                     attach: its answers there are never seen",
                    resolver.address
                );
            }
        }
    }
}

/// The lookup thread, when `[dns.lookup]` is on, there is a resolver, and a list has hosts.
fn start_lookups(
    config: &ConfigFile,
    names: &ListNames,
    learner: &mut Learner,
) -> Result<Option<Lookups>, Error> {
    let hosts = HostLists::of(&config.lists, names);
    let Some(resolver) = dns::lookup_resolver(config)? else {
        if config.dns.lookup.enabled == Some(false) {
            log::info!("[dns.lookup] enabled = false: no lookups of the lists' host names");
        } else {
            log::warn!(
                "no nameserver in /etc/resolv.conf and no [dns.lookup] resolver: no lookups \
                 of the lists' host names"
            );
        }
        return Ok(None);
    };
    if hosts.is_empty() {
        return Ok(None);
    }
    let lookups = Lookups::start(
        hosts.clone(),
        DomainLists::of(&config.lists, names),
        resolver,
        config.dns_min_ttl(),
        learner.settings_mut().max_ttl,
    )
    .map_err(Error::io("starting the DNS lookups"))?;
    learner.recognise_own_lookups(lookups.own());
    learner.settings_mut().bounds.resolvers.push(resolver.ip());
    log::info!("resolving {} host names through {resolver}", hosts.len());
    Ok(Some(lookups))
}

/// What the loop waits on, in `poll`'s order.
const RING: usize = 0;
const STOP: usize = 1;
const LOOKUPS: usize = 2;

fn serve(
    pin_dir: &PinDir,
    config: &ConfigFile,
    maps: &mut ClassifierMaps,
    learner: &mut Learner,
    names: &ListNames,
    watch: &mut watch::Watch,
    options: &RunOptions,
) -> Result<(), Error> {
    // First, before the metrics and lookup threads exist: they must inherit the blocked
    // signals (a thread that did not would take SIGTERM's default action: the end).
    let stop = stop::Stop::new().map_err(Error::io("handling SIGTERM and SIGINT"))?;
    let mut lookups = start_lookups(config, names, learner)?;
    // Separate handles: one drains the ring buffer, one answers scrapes.
    let mut events = ClassifierMaps::open_pinned(pin_dir)?.into_dns_events();
    if let Some(addr) = options.metrics {
        let registry = metrics::Metrics::registry(ClassifierMaps::open_pinned(pin_dir)?);
        endpoint::serve(addr, registry)?;
        log::info!("metrics on http://{addr}/metrics");
    }
    let mut logger = match ProgramInfo::from_pin(pin_dir.program()) {
        Ok(info) => match aya_log::EbpfLogger::init_from_id(info.id()) {
            Ok(logger) => Some(logger),
            Err(error) => {
                log::debug!("no kernel log records to forward: {error}");
                None
            }
        },
        Err(_) => None,
    };
    // The lookups' slot polls -1 (ignored by poll) when there are none.
    let mut fds = vec![
        pollfd(events.as_raw_fd()),
        pollfd(stop.as_fd().as_raw_fd()),
        pollfd(lookups.as_ref().map_or(-1, Lookups::wake_fd)),
    ];
    let logs = fds.len();
    if let Some(logger) = &logger {
        fds.push(pollfd(logger.as_raw_fd()));
    }
    // The first tick at once, as soon as the run starts.
    let mut next_tick = Instant::now();
    log::info!("learning from DNS answers; SIGTERM or Ctrl-C stops");
    loop {
        let timeout = next_tick.saturating_duration_since(Instant::now());
        // Rounded up: rounded down, poll would wake just before the tick and spin until it is due.
        let timeout_ms = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        for fd in &mut fds {
            fd.revents = 0;
        }
        // SAFETY: the pointer and length describe `fds`, whose descriptors all outlive the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if ready < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("waiting for DNS answers")(error));
        }
        if fds[STOP].revents != 0 && stop.received() {
            break;
        }
        if fds[RING].revents & libc::POLLERR != 0 {
            return Err(Error::io("reading the DNS ring buffer")(
                std::io::Error::other("the ring buffer reported an error"),
            ));
        }
        if fds[RING].revents != 0 {
            learn(pin_dir, maps, learner, &mut events)?;
        }
        if let Some(lookups) = lookups.as_mut().filter(|_| fds[LOOKUPS].revents != 0) {
            teach_lookups(pin_dir, maps, learner, lookups)?;
        }
        if let Some(logger) = &mut logger {
            if fds[logs].revents != 0 {
                logger.flush();
            }
        }
        if Instant::now() >= next_tick {
            next_tick += TICK;
            // A tick missed (a long wait for the writer lock) is not made up in a burst.
            if next_tick < Instant::now() {
                next_tick = Instant::now() + TICK;
            }
            learner.settings_mut().bounds.own = router_addresses();
            if lookups.as_ref().is_some_and(Lookups::stopped) {
                log::error!("the DNS lookup thread ended: no more lookups until a restart");
                lookups = None;
                fds[LOOKUPS].fd = -1;
            }
            expire(pin_dir, maps, learner)?;
            // New addresses that waited for the move's interval.
            learning::with_lock(pin_dir, maps, |learning| {
                learner.reclassify_if_new(learning, Instant::now())
            })?;
            watch.check(pin_dir, config, options)?;
        }
    }
    log::info!("stopping");
    Ok(())
}

/// Learns from every DNS answer waiting in the ring buffer, under one writer lock.
fn learn(
    pin_dir: &PinDir,
    maps: &mut ClassifierMaps,
    learner: &mut Learner,
    events: &mut RingBuf<MapData>,
) -> Result<(), Error> {
    let mut datagrams = Vec::new();
    while let Some(event) = events.next() {
        datagrams.extend(DnsDatagram::decode(&event));
    }
    learning::with_lock(pin_dir, maps, |learning| {
        observe(learning, learner, datagrams);
    })
}

fn observe(
    learning: &mut learning::Learning<'_>,
    learner: &mut Learner,
    datagrams: Vec<DnsDatagram>,
) {
    for datagram in datagrams {
        match learner.observe(learning, &datagram, now()) {
            Observed::Learned(learned) if learned > 0 => log::debug!(
                "learned {learned} address(es) from a DNS answer from {}",
                datagram.src
            ),
            Observed::Refused(why) => log::debug!(
                "refused a DNS answer from {} to {}: {}",
                datagram.src,
                datagram.dst,
                why.name()
            ),
            _ => {}
        }
    }
    learner.reclassify_if_new(learning, Instant::now());
}

/// Teaches what the finished lookups answered, under one writer lock.
fn teach_lookups(
    pin_dir: &PinDir,
    maps: &mut ClassifierMaps,
    learner: &mut Learner,
    lookups: &mut Lookups,
) -> Result<(), Error> {
    let finished = lookups.finished();
    if finished.is_empty() {
        return Ok(());
    }
    learning::with_lock(pin_dir, maps, |learning| {
        for done in finished {
            teach_lookup(learning, learner, done);
        }
        learner.reclassify_if_new(learning, Instant::now());
    })
}

/// Teaches one finished lookup's answer, or counts its failure.
fn teach_lookup(learning: &mut learning::Learning<'_>, learner: &mut Learner, done: LookupDone) {
    let source = Source::Lookup(done.resolver.ip());
    let refused = match done.answer {
        Err(reason) => {
            log::debug!("looking up {}: {reason}", done.host);
            Some(crate::dns::Refusal::LookupFailed)
        }
        Ok(answer) => {
            let taught = learner.teach(learning, &answer, source, now());
            log::debug!(
                "{}: {} address(es) learned or renewed",
                done.host,
                taught.count
            );
            taught.refused
        }
    };
    if let Some(why) = refused
        && let Err(error) = learning.count(why.counter(), 0)
    {
        log::warn!("counting a refused lookup: {error}");
    }
}

fn expire(pin_dir: &PinDir, maps: &mut ClassifierMaps, learner: &mut Learner) -> Result<(), Error> {
    let expired = learning::with_lock(pin_dir, maps, |learning| learner.expire(learning, now()))?;
    if expired > 0 {
        log::debug!("{expired} learned address(es) expired");
    }
    Ok(())
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
