//! Two test hosts on one wire: a client namespace whose `c0` has an address inside the
//! `apple` list (17.253.0.10) and one outside it (192.0.2.10), and a server namespace whose
//! `s0` (198.51.100.10) is where the classifier is attached. Static neighbours, no IPv6, no
//! segmentation offloads: every frame on the wire is one packet on both sides. nftables in
//! the server counts what arrived, after XDP, by source and DSCP.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, UdpSocket},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use classifier_lab::{Netns, veth};

pub const LISTED: &str = "17.253.0.10";
pub const UNLISTED: &str = "192.0.2.10";
pub const SERVER: &str = "198.51.100.10";
/// The client's source ports for `udp_new_flows_until`, clear of the kernel's ephemeral range.
const NEW_FLOW_SOURCE_PORTS: std::ops::Range<u16> = 20_000..32_000;

pub struct TwoHosts {
    pub client: Netns,
    pub server: Netns,
}

/// nftables counters in the server, in rule order.
pub const VERIFY_RULES: &str = "table inet verify {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        ip saddr 17.253.0.10 counter
        ip saddr 192.0.2.10 counter
        ip saddr 17.253.0.10 ip dscp 1 counter
        ip saddr 17.253.0.10 ip dscp != 1 counter
    }
}";

/// Packets counted by `VERIFY_RULES`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrived {
    pub listed: u64,
    pub unlisted: u64,
    pub listed_le: u64,
    pub listed_not_le: u64,
}

impl TwoHosts {
    #[expect(
        clippy::new_without_default,
        reason = "it builds two namespaces and a veth: not a default value"
    )]
    pub fn new() -> Self {
        let client = Netns::create("clst-c").expect("client namespace");
        let server = Netns::create("clst-s").expect("server namespace");
        veth(&client, "c0", &server, "s0").expect("veth pair");
        for (ns, dev) in [(&client, "c0"), (&server, "s0")] {
            ns.plain_frames(dev).expect("offloads off");
        }
        let (client_mac, server_mac) = (client.mac("c0").unwrap(), server.mac("s0").unwrap());
        for addr in [LISTED, UNLISTED] {
            client
                .ip(&["addr", "add", &format!("{addr}/32"), "dev", "c0"])
                .unwrap();
            server
                .ip(&["route", "add", &format!("{addr}/32"), "dev", "s0"])
                .unwrap();
            server
                .ip(&[
                    "neigh",
                    "add",
                    addr,
                    "lladdr",
                    &client_mac,
                    "dev",
                    "s0",
                    "nud",
                    "permanent",
                ])
                .unwrap();
        }
        server
            .ip(&["addr", "add", &format!("{SERVER}/32"), "dev", "s0"])
            .unwrap();
        client
            .ip(&["route", "add", &format!("{SERVER}/32"), "dev", "c0"])
            .unwrap();
        client
            .ip(&[
                "neigh",
                "add",
                SERVER,
                "lladdr",
                &server_mac,
                "dev",
                "c0",
                "nud",
                "permanent",
            ])
            .unwrap();
        server.load_nft(VERIFY_RULES).expect("nft rules");
        Self { client, server }
    }

    pub fn arrived(&self) -> Arrived {
        let counts = classifier_lab::nft::Counters::loaded(&self.server)
            .read()
            .expect("reading nft counters");
        Arrived {
            listed: counts[0],
            unlisted: counts[1],
            listed_le: counts[2],
            listed_not_le: counts[3],
        }
    }

    /// A TCP connection from `source` to the server carrying `bytes`; returns what arrived.
    pub fn tcp_transfer(&self, source: &str, port: u16, bytes: usize) -> usize {
        let listener = self
            .server
            .enter(|| TcpListener::bind((SERVER, port)))
            .unwrap()
            .expect("listening in the server");
        let receiver = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accepting");
            let mut received = Vec::new();
            stream.read_to_end(&mut received).expect("receiving");
            received.len()
        });
        let source: SocketAddr = format!("{source}:0").parse().unwrap();
        let server: SocketAddr = format!("{SERVER}:{port}").parse().unwrap();
        self.client
            .enter(|| {
                let socket = socket2::Socket::new(
                    socket2::Domain::IPV4,
                    socket2::Type::STREAM,
                    Some(socket2::Protocol::TCP),
                )?;
                socket.bind(&source.into())?;
                socket.connect(&server.into())?;
                let mut stream: std::net::TcpStream = socket.into();
                stream.write_all(&vec![0x5a; bytes])?;
                stream.shutdown(std::net::Shutdown::Write)?;
                // Wait for the server's close, so the whole exchange is on the wire.
                let mut rest = Vec::new();
                stream.read_to_end(&mut rest)?;
                std::io::Result::Ok(())
            })
            .unwrap()
            .expect("sending");
        receiver.join().expect("receiver")
    }

    /// UDP datagrams from `source` to the server, `pause` apart, until `stop`, each a flow the
    /// classifier has not seen, so that each one is looked up in the prefix tries: from every
    /// source port of NEW_FLOW_SOURCE_PORTS in turn to `first_port`, then again to the next
    /// port, and so on. Counts what it sent in `sent`.
    pub fn udp_new_flows_until(
        &self,
        source: &str,
        first_port: u16,
        pause: std::time::Duration,
        stop: &AtomicBool,
        sent: &AtomicU64,
    ) {
        self.client
            .enter(|| {
                for port in first_port.. {
                    for source_port in NEW_FLOW_SOURCE_PORTS {
                        if stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        let socket = UdpSocket::bind((source, source_port))?;
                        socket.send_to(&source_port.to_be_bytes(), (SERVER, port))?;
                        sent.fetch_add(1, Ordering::Relaxed);
                        if !pause.is_zero() {
                            // A rate limit the caller asked for, not a synchronisation.
                            std::thread::sleep(pause);
                        }
                    }
                }
                std::io::Result::Ok(())
            })
            .unwrap()
            .expect("sending from the client");
    }

    /// UDP datagrams from `source` to the server's `port`, `pause` apart, until `stop`: one
    /// flow. Counts what it sent in `sent`.
    pub fn udp_stream_until(
        &self,
        source: &str,
        port: u16,
        pause: std::time::Duration,
        stop: &AtomicBool,
        sent: &AtomicU64,
    ) {
        let socket = self
            .client
            .enter(|| UdpSocket::bind((source, 0)))
            .unwrap()
            .expect("binding in the client");
        for n in 0u64.. {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            socket
                .send_to(&n.to_be_bytes(), (SERVER, port))
                .expect("sending");
            sent.fetch_add(1, Ordering::Relaxed);
            if !pause.is_zero() {
                // A rate limit the caller asked for, not a synchronisation.
                std::thread::sleep(pause);
            }
        }
    }

    /// `count` UDP datagrams from `source`, `pause` apart.
    pub fn udp_stream(&self, source: &str, port: u16, count: usize, pause: std::time::Duration) {
        let socket = self
            .client
            .enter(|| UdpSocket::bind((source, 0)))
            .unwrap()
            .expect("binding in the client");
        for n in 0..count {
            socket
                .send_to(&(n as u64).to_be_bytes(), (SERVER, port))
                .expect("sending");
            if !pause.is_zero() {
                // A rate limit the caller asked for, not a synchronisation.
                std::thread::sleep(pause);
            }
        }
    }
}
