//! `classifier run`: the long-running form. It attaches (adopting what is attached already),
//! learns CDN addresses from the DNS answers that match a query it saw, expires them, serves
//! Prometheus metrics, forwards the kernel's log records, watches its interfaces (`watch`),
//! and on SIGTERM or SIGINT stops learning and detaches what it manages (unless told to keep
//! it attached). No async runtime: one loop `poll`s the ring buffers and a signalfd, with a
//! timeout for the once-a-second work; the metrics endpoint has a thread of its own.

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

use aya::{
    maps::{MapData, RingBuf},
    programs::ProgramInfo,
};
use classifier_common::config::CONFIG_LEARN_DNS;

use crate::{
    ClassifierMaps, Error, PinDir, WriterLock,
    config_file::ConfigFile,
    control::{
        attach::{self, Mode},
        lists::ListNames,
        netns,
    },
    dns::{DnsDatagram, Learner, Observed},
    load::pinned_link,
};

/// Where metrics are served unless told otherwise: loopback only.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9417";

/// How often learned addresses are expired and the interfaces checked.
const TICK: Duration = Duration::from_secs(1);

pub struct RunOptions {
    pub interfaces: Vec<String>,
    pub mode: Mode,
    /// None: no metrics endpoint.
    pub metrics: Option<SocketAddr>,
    pub keep_attached: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The writer lock, however long another writer holds it: giving up would stop learning
/// (docs/design.md, 'One writer at a time'). The wait is logged.
fn writer_lock(pin_dir: &PinDir) -> Result<WriterLock, Error> {
    loop {
        match WriterLock::acquire(pin_dir) {
            Err(Error::WriterBusy { holder, .. }) => {
                log::warn!("waiting for {holder}, which is changing the state");
            }
            other => return other,
        }
    }
}

fn set_learning(pin_dir: &PinDir, maps: &mut ClassifierMaps, on: bool) -> Result<(), Error> {
    let _writer = writer_lock(pin_dir)?;
    let mut config = maps.config()?;
    if on {
        config.flags |= CONFIG_LEARN_DNS;
    } else {
        config.flags &= !CONFIG_LEARN_DNS;
    }
    maps.publish(&config).map(drop)
}

pub fn run(pin_dir: &PinDir, config: &ConfigFile, options: &RunOptions) -> Result<(), Error> {
    let pending: Vec<String> = options
        .interfaces
        .iter()
        .filter(|name| {
            // Not attached, or left defunct by a deletion of the interface: attach replaces it.
            let pin = pin_dir.link(&netns::link_pin_name(name));
            !pin.exists() || matches!(pinned_link::attached_ifindex(&pin), Ok(None))
        })
        .cloned()
        .collect();
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
    for name in options
        .interfaces
        .iter()
        .filter(|name| !pending.contains(name))
    {
        log::info!("{name} was attached already: adopting it");
    }
    let mut maps = ClassifierMaps::open_pinned(pin_dir)?;
    let names = ListNames::read(&maps)?;
    let mut learner = Learner::new(config.domains(&names), config.learner_settings()?);
    let adopted = learner.adopt(&maps)?;
    if adopted > 0 {
        log::info!("{adopted} learned addresses from an earlier run will expire on time");
    }
    set_learning(pin_dir, &mut maps, true)?;
    let mut watch = watch::Watch::new(&options.interfaces);
    let result = serve(
        pin_dir,
        config,
        &mut maps,
        &mut learner,
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

/// What the loop waits on, in `poll`'s order.
const RING: usize = 0;
const STOP: usize = 1;
const LOGS: usize = 2;

fn serve(
    pin_dir: &PinDir,
    config: &ConfigFile,
    maps: &mut ClassifierMaps,
    learner: &mut Learner,
    watch: &mut watch::Watch,
    options: &RunOptions,
) -> Result<(), Error> {
    // First, before the metrics thread exists: it must inherit the blocked signals.
    let stop = stop::Stop::new().map_err(Error::io("handling SIGTERM and SIGINT"))?;
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
    let mut fds = vec![pollfd(events.as_raw_fd()), pollfd(stop.as_fd().as_raw_fd())];
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
        if let Some(logger) = &mut logger {
            if fds[LOGS].revents != 0 {
                logger.flush();
            }
        }
        if Instant::now() >= next_tick {
            next_tick += TICK;
            // A tick missed (a long wait for the writer lock) is not made up in a burst.
            if next_tick < Instant::now() {
                next_tick = Instant::now() + TICK;
            }
            expire(pin_dir, maps, learner)?;
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
    let _writer = writer_lock(pin_dir)?;
    for datagram in datagrams {
        match learner.observe(maps, &datagram, now())? {
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
    Ok(())
}

fn expire(pin_dir: &PinDir, maps: &mut ClassifierMaps, learner: &mut Learner) -> Result<(), Error> {
    let expired = {
        let _writer = writer_lock(pin_dir)?;
        learner.expire(maps, now())?
    };
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
