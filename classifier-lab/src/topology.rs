//! The lab: a client, a router and a server, each a network namespace.
//!
//! ```text
//!  client                         router                          server
//!  c0 192.0.2.10 ─────────────── r0 192.0.2.1          r2 203.0.113.1 ──── s0 203.0.113.10
//!     2001:db8:c0::10               2001:db8:c0::1        2001:db8:5e::1      2001:db8:5e::10
//!  c1 198.18.1.10 ────────────── r1 198.18.1.1                             + 17.253.0.10 (Apple)
//!     (second path, for an MPTCP subflow)                                   + 198.51.100.10
//!                                                                           + 2620:149:a44::10 (Apple)
//!                                                                           + 2001:db8::10
//! ```
//!
//! The router forwards; the classifier attaches to its ingress interfaces (r2 catches
//! downloads, r0/r1 uploads) and the shaper to r0's egress. Neighbours are static, so no ARP
//! or neighbour discovery gets in the way.

use crate::{Netns, veth};
use classifier::{
    Error, PinDir,
    config_file::ConfigFile,
    control::attach::{self, HookChoice},
};

pub const CLIENT_V4: &str = "192.0.2.10";
pub const CLIENT_V4_SECOND: &str = "198.18.1.10";
pub const CLIENT_V6: &str = "2001:db8:c0::10";
pub const SERVER_APPLE_V4: &str = "17.253.0.10";
pub const SERVER_OTHER_V4: &str = "198.51.100.10";
pub const SERVER_APPLE_V6: &str = "2620:149:a44::10";
pub const SERVER_OTHER_V6: &str = "2001:db8::10";

/// Router interfaces, by role.
pub const ROUTER_TO_CLIENT: &str = "r0";
pub const ROUTER_TO_CLIENT_SECOND: &str = "r1";
pub const ROUTER_TO_SERVER: &str = "r2";
/// The router's ingress interfaces: where the classifier attaches.
pub const ROUTER_INGRESS: [&str; 3] = [ROUTER_TO_CLIENT, ROUTER_TO_CLIENT_SECOND, ROUTER_TO_SERVER];

pub struct Lab {
    pub client: Netns,
    pub router: Netns,
    pub server: Netns,
}

/// One point-to-point link: (namespace, interface, addresses) at each end.
struct Link<'a> {
    a: (&'a Netns, &'a str, &'a [&'a str]),
    b: (&'a Netns, &'a str, &'a [&'a str]),
}

impl Lab {
    pub fn new() -> Result<Self, Error> {
        let lab = Self {
            client: Netns::create("clab-client")?,
            router: Netns::create("clab-router")?,
            server: Netns::create("clab-server")?,
        };
        let links = [
            Link {
                a: (&lab.client, "c0", &["192.0.2.10/24", "2001:db8:c0::10/64"]),
                b: (
                    &lab.router,
                    ROUTER_TO_CLIENT,
                    &["192.0.2.1/24", "2001:db8:c0::1/64"],
                ),
            },
            Link {
                a: (&lab.client, "c1", &["198.18.1.10/24"]),
                b: (&lab.router, ROUTER_TO_CLIENT_SECOND, &["198.18.1.1/24"]),
            },
            Link {
                a: (
                    &lab.server,
                    "s0",
                    &["203.0.113.10/24", "2001:db8:5e::10/64"],
                ),
                b: (
                    &lab.router,
                    ROUTER_TO_SERVER,
                    &["203.0.113.1/24", "2001:db8:5e::1/64"],
                ),
            },
        ];
        for link in &links {
            lab.wire(link)?;
        }
        for service in [SERVER_APPLE_V4, SERVER_OTHER_V4] {
            lab.server
                .ip(&["addr", "add", &format!("{service}/32"), "dev", "s0"])?;
            lab.router
                .ip(&["route", "add", service, "via", "203.0.113.10", "dev", "r2"])?;
        }
        for service in [SERVER_APPLE_V6, SERVER_OTHER_V6] {
            lab.server.ip(&[
                "addr",
                "add",
                &format!("{service}/128"),
                "dev",
                "s0",
                "nodad",
            ])?;
            lab.router.ip(&[
                "-6",
                "route",
                "add",
                service,
                "via",
                "2001:db8:5e::10",
                "dev",
                "r2",
            ])?;
        }
        lab.router
            .exec("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"])?;
        lab.router
            .exec("sysctl", &["-q", "-w", "net.ipv6.conf.all.forwarding=1"])?;
        lab.client
            .ip(&["route", "add", "default", "via", "192.0.2.1", "dev", "c0"])?;
        lab.client.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:c0::1",
            "dev",
            "c0",
        ])?;
        // Packets from the second address leave by the second path.
        lab.client.ip(&[
            "route",
            "add",
            "default",
            "via",
            "198.18.1.1",
            "dev",
            "c1",
            "table",
            "100",
        ])?;
        lab.client
            .ip(&["rule", "add", "from", CLIENT_V4_SECOND, "table", "100"])?;
        lab.server
            .ip(&["route", "add", "default", "via", "203.0.113.1", "dev", "s0"])?;
        lab.server.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:5e::1",
            "dev",
            "s0",
        ])?;
        // MPTCP: both ends accept a second subflow; the client opens it from c1.
        for ns in [&lab.client, &lab.server] {
            ns.exec("sysctl", &["-q", "-w", "net.mptcp.enabled=1"])?;
            // No blackhole detection: when an MP_CAPABLE SYN is retransmitted twice (here a
            // SYN dropped twice by an overloaded veth ring) and the plain TCP retry gets
            // through, the kernel takes the path for a firewall that drops option 30 and
            // opens every later connection of the namespace as plain TCP for an hour
            // (RELIABILITY.md, 'Soak': the stall of run 1). The lab has no such firewall.
            ns.exec("sysctl", &["-q", "-w", "net.mptcp.blackhole_timeout=0"])?;
            ns.ip(&[
                "mptcp",
                "limits",
                "set",
                "subflow",
                "2",
                "add_addr_accepted",
                "2",
            ])?;
        }
        lab.client.ip(&[
            "mptcp",
            "endpoint",
            "add",
            CLIENT_V4_SECOND,
            "dev",
            "c1",
            "subflow",
        ])?;
        Ok(lab)
    }

    /// Creates the veth pair of `link`, addresses both ends and makes the neighbours static.
    fn wire(&self, link: &Link<'_>) -> Result<(), Error> {
        let ((a_ns, a_dev, a_addrs), (b_ns, b_dev, b_addrs)) = (link.a, link.b);
        veth(a_ns, a_dev, b_ns, b_dev)?;
        for (ns, dev, addrs) in [(a_ns, a_dev, a_addrs), (b_ns, b_dev, b_addrs)] {
            for addr in addrs {
                let mut args = vec!["addr", "add", addr, "dev", dev];
                if addr.contains(':') {
                    args.push("nodad");
                }
                ns.ip(&args)?;
            }
        }
        let (a_mac, b_mac) = (a_ns.mac(a_dev)?, b_ns.mac(b_dev)?);
        for (ns, dev, peer_addrs, peer_mac) in [
            (a_ns, a_dev, b_addrs, &b_mac),
            (b_ns, b_dev, a_addrs, &a_mac),
        ] {
            for addr in peer_addrs.iter() {
                let host = addr.split('/').next().unwrap_or(addr);
                ns.ip(&[
                    "neigh",
                    "add",
                    host,
                    "lladdr",
                    peer_mac,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ])?;
            }
        }
        Ok(())
    }
}

impl Lab {
    /// Attaches the classifier (native XDP) to the router's ingress interfaces, its state in
    /// `pin_dir`, with the lists and policy of `config`.
    pub fn attach_classifier(&self, pin_dir: &PinDir, config: &ConfigFile) -> Result<(), Error> {
        self.attach_classifier_in(pin_dir, config, HookChoice::XdpNative)
    }

    /// As `attach_classifier`, in `mode` (`HookChoice::Tc`: at TCX ingress).
    pub fn attach_classifier_in(
        &self,
        pin_dir: &PinDir,
        config: &ConfigFile,
        mode: HookChoice,
    ) -> Result<(), Error> {
        let devices = ROUTER_INGRESS.map(String::from);
        self.router
            .enter(|| attach::attach(pin_dir, &devices, mode, false, config))??;
        Ok(())
    }

    /// Detaches the classifier everywhere and removes its state.
    pub fn detach_classifier(&self, pin_dir: &PinDir) -> Result<(), Error> {
        self.router
            .enter(|| attach::detach(pin_dir, &[], true, true))??;
        Ok(())
    }
}
