//! The stall of the soak's run 1 (RELIABILITY.md, 'Soak'), reproduced: an MP_CAPABLE SYN
//! dropped twice makes the kernel retry in plain TCP, and when that retry gets through, its
//! blackhole detection (net.mptcp.blackhole_timeout) opened every later connection of the
//! namespace as plain TCP for an hour: the soak's MPTCP transfers went on, carrying no option
//! 30, and the classifier's MPTCP class stopped growing. The lab turns that detection off;
//! without it, the second transfer here falls back and the test fails.

use std::net::{IpAddr, SocketAddr};

use classifier_lab::{
    CLIENT_V4, Lab, SERVER_OTHER_V4,
    traffic::{InFlight, Link, Transfer},
};

/// The router drops every SYN that offers MPTCP on its way to port 7777, as the firewall the
/// kernel's blackhole detection looks for would.
const DROP_MPTCP_SYNS: &str = "table inet blackhole {
    chain forward {
        type filter hook forward priority 0;
        tcp dport 7777 tcp flags & (syn | ack) == syn tcp option mptcp exists counter drop
    }
}
";

fn transfer(lab: &Lab, port: u16) -> InFlight {
    let in_flight = InFlight::default();
    let client: IpAddr = CLIENT_V4.parse().unwrap();
    let server = SocketAddr::new(SERVER_OTHER_V4.parse().unwrap(), port);
    let bytes = 256 << 10;
    let received = Transfer {
        client: &lab.client,
        source: client,
        server: &lab.server,
        destination: server,
        bytes,
        mptcp: true,
        subflows: 1,
    }
    .run(&Link::LAB, &in_flight)
    .unwrap_or_else(|error| panic!("transfer to port {port}: {error}"));
    assert_eq!(received, bytes);
    in_flight
}

#[test]
fn mptcp_stays_on_after_a_connection_whose_mptcp_syns_were_dropped() {
    let lab = Lab::new().expect("lab");
    lab.router.load_nft(DROP_MPTCP_SYNS).expect("nft rules");

    let dropped = transfer(&lab, 7777);
    assert!(
        dropped.fell_back(),
        "the SYNs offering MPTCP were dropped, so the connection went as plain TCP"
    );
    let active_drops = lab
        .client
        .nstat_counter("MPTcpExtMPCapableSYNTXDrop")
        .unwrap();
    assert_eq!(
        active_drops, 1,
        "the kernel counted the dropped MP_CAPABLE SYNs"
    );

    let next = transfer(&lab, 7778);
    let blackholes = lab.client.nstat_counter("MPTcpExtBlackhole").unwrap();
    let disabled = lab
        .client
        .nstat_counter("MPTcpExtMPCapableSYNTXDisabled")
        .unwrap();
    assert!(
        !next.fell_back(),
        "the next connection must be MPTCP; the kernel detected {blackholes} blackhole(s) \
         and sent {disabled} SYN(s) without MP_CAPABLE"
    );
    assert_eq!((blackholes, disabled), (0, 0));
}
