//! `classifier run`: the long-running form. It attaches (adopting what is attached already),
//! learns CDN addresses from the DNS answers that match a query it saw, expires them, serves
//! Prometheus metrics, forwards the kernel's log records, watches its interfaces (`watch`),
//! and on SIGTERM or SIGINT stops learning and detaches what it manages (unless told to keep
//! it attached).

mod metrics;
mod watch;

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aya::programs::ProgramInfo;
use classifier_common::config::CONFIG_LEARN_DNS;
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};

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
            log::info!("attached to {} ({})", done.interface, done.mode);
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("starting the runtime"))?;
    let result = runtime.block_on(serve(
        pin_dir,
        config,
        &mut maps,
        &mut learner,
        &mut watch,
        options,
    ));
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

async fn serve(
    pin_dir: &PinDir,
    config: &ConfigFile,
    maps: &mut ClassifierMaps,
    learner: &mut Learner,
    watch: &mut watch::Watch,
    options: &RunOptions,
) -> Result<(), Error> {
    // Separate handles: one drains the ring buffer, one answers scrapes.
    let ring = ClassifierMaps::open_pinned(pin_dir)?.into_dns_events();
    // SAFETY: the ring buffer owns its map fd, open and unchanged for as long as it lives,
    // and the AsyncFd owns the ring buffer.
    let mut events = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|error| Error::io("watching the DNS ring buffer")(error.into()))?;
    if let Some(addr) = options.metrics {
        let registry = metrics::Metrics::registry(ClassifierMaps::open_pinned(pin_dir)?);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(Error::io(format!("binding the metrics endpoint to {addr}")))?;
        log::info!("metrics on http://{addr}/metrics");
        let registry = std::sync::Arc::new(registry);
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let registry = registry.clone();
                async move {
                    let mut text = String::new();
                    match prometheus_client::encoding::text::encode(&mut text, &registry) {
                        Ok(()) => (
                            [(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            text,
                        ),
                        Err(_) => (
                            [("content-type", "text/plain")],
                            "encoding failed".to_owned(),
                        ),
                    }
                }
            }),
        );
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                log::error!("metrics endpoint: {error}");
            }
        });
    }
    if let Ok(info) = ProgramInfo::from_pin(pin_dir.program()) {
        match aya_log::EbpfLogger::init_from_id(info.id()) {
            Ok(logger) => {
                // SAFETY: as for the ring buffer: the logger owns its fd for its lifetime.
                let mut logger =
                    unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }
                        .map_err(|error| Error::io("watching kernel logs")(error.into()))?;
                tokio::spawn(async move {
                    while let Ok(mut guard) = logger.readable_mut().await {
                        guard.get_inner_mut().flush();
                        guard.clear_ready();
                    }
                });
            }
            Err(error) => log::debug!("no kernel log records to forward: {error}"),
        }
    }
    let mut terminate = signal(SignalKind::terminate()).map_err(Error::io("handling SIGTERM"))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::io("handling SIGINT"))?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    log::info!("learning from DNS answers; SIGTERM or Ctrl-C stops");
    loop {
        tokio::select! {
            ready = events.readable_mut() => {
                let mut guard = ready.map_err(Error::io("reading the DNS ring buffer"))?;
                let mut datagrams = Vec::new();
                while let Some(event) = guard.get_inner_mut().next() {
                    datagrams.extend(DnsDatagram::decode(&event));
                }
                guard.clear_ready();
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
            }
            _ = tick.tick() => {
                let expired = {
                    let _writer = writer_lock(pin_dir)?;
                    learner.expire(maps, now())?
                };
                if expired > 0 {
                    log::debug!("{expired} learned address(es) expired");
                }
                watch.check(pin_dir, config, options)?;
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    log::info!("stopping");
    Ok(())
}
