//! One run's measurements: the probe on the idle link, then the storm (every phone's
//! connections, the other user's bulk download and the probe, all at once), with the
//! measuring window after the ramp-up.

use std::{
    net::{SocketAddr, TcpListener},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Instant,
};

use super::{
    Phone, Spec,
    download::{self, Window},
    hosts::{BULK_SERVER, BULK_USER, INTERACTIVE_SERVER, INTERACTIVE_USER, PORT},
    probe::{self, RoundTrips},
};
use crate::{Lab, ROUTER_TO_CLIENT, htb};
use classifier::Error;

pub struct Measured {
    pub normal_bytes: u64,
    pub wire_bytes: (u64, u64),
    pub window_seconds: f64,
    pub idle_tcp: RoundTrips,
    pub idle_icmp: RoundTrips,
    pub storm_tcp: RoundTrips,
    pub storm_icmp: RoundTrips,
}

/// The probe alone for `spec.idle`, then the storm; the phones' bytes go into `phones`.
/// `interactive` is the probe's server's listener, served here until the storm ends.
pub fn idle_then_storm(
    lab: &Lab,
    spec: &Spec,
    phones: &mut [Phone],
    interactive: &TcpListener,
) -> Result<Measured, Error> {
    let stop_interactive = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| probe::serve(interactive, &stop_interactive));
        let measured = (|| {
            let now = Instant::now();
            let (idle_tcp, idle_icmp) = probes(lab, now, now + spec.idle)?;
            let start = Instant::now();
            let window = Window {
                from: start + spec.ramp,
                until: start + spec.ramp + spec.measure,
            };
            let (normal_bytes, (storm_tcp, storm_icmp), wire_bytes) = storm(lab, phones, window)?;
            Ok(Measured {
                normal_bytes,
                wire_bytes,
                window_seconds: window.seconds(),
                idle_tcp,
                idle_icmp,
                storm_tcp,
                storm_icmp,
            })
        })();
        stop_interactive.store(true, Ordering::Relaxed);
        measured
    })
}

/// Both probes from `from` until `until`: (TCP, ICMP).
fn probes(lab: &Lab, from: Instant, until: Instant) -> Result<(RoundTrips, RoundTrips), Error> {
    let client = &lab.client;
    let server = SocketAddr::from((INTERACTIVE_SERVER, PORT));
    // Waiting for the start of a window: a timer, not a synchronisation.
    let wait = move || thread::sleep(from.saturating_duration_since(Instant::now()));
    thread::scope(|scope| {
        let tcp = scope.spawn(move || {
            wait();
            probe::tcp(client, INTERACTIVE_USER, server, until)
        });
        let icmp = scope.spawn(move || {
            wait();
            probe::icmp(client, INTERACTIVE_USER, INTERACTIVE_SERVER, until)
        });
        Ok((
            tcp.join().expect("probe thread")?,
            icmp.join().expect("probe thread")?,
        ))
    })
}

/// The storm: returns the other user's bytes, the probes' round trips and what r0's normal
/// and bulk classes sent, all inside `window`.
#[expect(
    clippy::type_complexity,
    reason = "three measurements, named where they are taken apart"
)]
fn storm(
    lab: &Lab,
    phones: &mut [Phone],
    window: Window,
) -> Result<(u64, (RoundTrips, RoundTrips), (u64, u64)), Error> {
    thread::scope(|scope| {
        let normal = scope.spawn(|| {
            let socket = download::socket_from(&lab.client, BULK_USER)?;
            download::download(socket, SocketAddr::from((BULK_SERVER, PORT)), window)
        });
        let probes = scope.spawn(|| probes(lab, window.from, window.until));
        // Timers for the window's edges, not synchronisation. HTB's own counts: the floor is
        // a rate on the wire, so the bulk class is held against it as well as in goodput.
        let wire = scope.spawn(|| {
            let class_bytes = || htb::normal_and_bulk_bytes(&lab.router, ROUTER_TO_CLIENT);
            thread::sleep(window.from.saturating_duration_since(Instant::now()));
            let before = class_bytes()?;
            thread::sleep(window.until.saturating_duration_since(Instant::now()));
            let after = class_bytes()?;
            Ok::<_, Error>((after.0 - before.0, after.1 - before.1))
        });
        downloads(lab, phones, window)?;
        let normal = normal.join().expect("download thread")?;
        let probes = probes.join().expect("probe thread")?;
        let wire = wire.join().expect("tc thread")?;
        Ok((normal, probes, wire))
    })
}

/// Every phone's connections at once, each on its own thread until the window ends; the
/// bytes and failures go into `phones`. Fails if no phone received anything.
fn downloads(lab: &Lab, phones: &mut [Phone], window: Window) -> Result<(), Error> {
    let mut sockets = Vec::new();
    for (index, phone) in phones.iter().enumerate() {
        for _ in 0..phone.connections {
            let socket = download::socket_from(&lab.client, phone.address)?;
            sockets.push((index, SocketAddr::from((phone.server, PORT)), socket));
        }
    }
    let results: Vec<(usize, Result<u64, Error>)> = thread::scope(|scope| {
        let threads: Vec<_> = sockets
            .into_iter()
            .map(|(index, server, socket)| {
                scope.spawn(move || (index, download::download(socket, server, window)))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("download thread"))
            .collect()
    });
    for (index, result) in results {
        match result {
            Ok(bytes) => phones[index].bytes += bytes,
            Err(error) => {
                phones[index].failed += 1;
                eprintln!("  storm: phone {}: {error}", phones[index].address);
            }
        }
    }
    Ok(())
}
