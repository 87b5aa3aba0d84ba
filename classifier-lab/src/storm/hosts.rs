//! Who is in the storm, and where: the phones as addresses on the client's c0 (one namespace,
//! many addresses, as phones behind one access point), the Apple and CDN servers, the other
//! users' servers and the lab's resolver as addresses on the server's s0, and the router's
//! routes to all of them.

use std::net::Ipv4Addr;

use crate::{Lab, Netns, io_error, run};
use classifier::Error;

/// Phones are 10.200.0.1 upwards; the other users 10.201.0.1 and .2; one route covers both.
const PHONES_FIRST: u32 = u32::from_be_bytes([10, 200, 0, 1]);
const CLIENTS_ROUTE: &str = "10.200.0.0/15";
/// How many phones fit below 10.201.0.0.
pub const MAX_PHONES: usize = 65_534;

/// The person at a laptop: the interactive probe's source.
pub const INTERACTIVE_USER: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
/// The other user's non-Apple bulk download goes here.
pub const BULK_USER: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);

/// Where the interactive probe's requests and echoes go, and the non-Apple bulk download's
/// server (the lab's own "other" server).
pub const INTERACTIVE_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
pub const BULK_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// The lab's resolver: the phones ask it for the CDN names.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);

/// Every server listens on this port (HTTPS's, for the look of it).
pub const PORT: u16 = 443;

/// An update server a phone downloads from.
#[derive(Clone, Debug)]
pub struct UpdateServer {
    pub address: Ipv4Addr,
    /// The name a phone asks the resolver for, when the server is reachable only through DNS
    /// (its address is in no list): the resolver answers with a CNAME chain into Apple's CDN
    /// domains, and `classifier run` learns the address from that answer.
    pub name: Option<String>,
}

/// Three servers in Apple's 17.0.0.0/8 (listed) and two CDN servers outside every list,
/// known only by name: 2 of 5 phones are classified only if DNS learning works.
pub fn update_servers() -> Vec<UpdateServer> {
    let listed = [10, 11, 12].map(|host| UpdateServer {
        address: Ipv4Addr::new(17, 253, 0, host),
        name: None,
    });
    let learned = [1u8, 2].map(|n| UpdateServer {
        address: Ipv4Addr::new(23, 50, 0, 10 + n),
        name: Some(format!("swupdate-{n}.campus.lab")),
    });
    listed.into_iter().chain(learned).collect()
}

/// The address of phone `index` (0-based).
pub fn phone(index: usize) -> Ipv4Addr {
    Ipv4Addr::from(PHONES_FIRST + index as u32)
}

/// Adds the phones and the other users to the client, the servers to the server, and the
/// routes to the router. One `ip -batch` per namespace: hundreds of addresses in one call.
pub fn add(lab: &Lab, phones: usize, servers: &[UpdateServer]) -> Result<(), Error> {
    let mut client = String::new();
    for address in (0..phones).map(phone).chain([INTERACTIVE_USER, BULK_USER]) {
        client.push_str(&format!("addr add {address}/32 dev c0\n"));
    }
    batch(&lab.client, &client)?;
    let mut server = String::new();
    let mut router = format!("route add {CLIENTS_ROUTE} via 192.0.2.10 dev r0\n");
    let others = [INTERACTIVE_SERVER, RESOLVER];
    for address in servers.iter().map(|s| s.address).chain(others) {
        // The lab has the first Apple server and the bulk server already.
        if address
            != crate::SERVER_APPLE_V4
                .parse::<Ipv4Addr>()
                .expect("an address")
        {
            server.push_str(&format!("addr add {address}/32 dev s0\n"));
            router.push_str(&format!("route add {address} via 203.0.113.10 dev r2\n"));
        }
    }
    batch(&lab.server, &server)?;
    batch(&lab.router, &router)?;
    Ok(())
}

/// `ip -n NS -batch FILE` over `commands`, one per line.
fn batch(ns: &Netns, commands: &str) -> Result<(), Error> {
    let file = std::env::temp_dir().join(format!("{}.ip-batch", ns.name()));
    std::fs::write(&file, commands).map_err(io_error(format!("writing {}", file.display())))?;
    let done = run("ip", &["-n", ns.name(), "-batch", &file.to_string_lossy()]);
    let _ = std::fs::remove_file(&file);
    done.map(drop)
}
