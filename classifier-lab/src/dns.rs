//! DNS lookups from the lab's hosts, as a host's stub resolver makes them: the query, and the
//! lookup that asks again every second until it has an address or its deadline passes. The
//! router learns from the answers that cross it (docs/design.md, 'DNS learning').

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use simple_dns::{CLASS, Name, Packet, Question, TYPE, rdata};

use crate::{Netns, io_error};
use classifier::Error;

/// How long a lookup waits for its answer, and how often it asks again within that.
const LOOKUP_DEADLINE: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(1);

/// A query with id `id` for `name`'s records of type `qtype`.
pub fn query(id: u16, name: &str, qtype: TYPE) -> Vec<u8> {
    let mut query = Packet::new_query(id);
    query.questions.push(Question::new(
        Name::new_unchecked(name),
        qtype.into(),
        CLASS::IN.into(),
        false,
    ));
    query
        .build_bytes_vec()
        .expect("a query of one question always builds")
}

/// `source` in `client` asks `resolver` (port 53) for `name`'s address with query id `id`:
/// again every second, for up to 5 s. Returns the first address of the answer.
pub fn lookup(
    client: &Netns,
    source: IpAddr,
    resolver: IpAddr,
    name: &str,
    id: u16,
) -> Result<Ipv4Addr, Error> {
    let what = format!("looking up {name} from {source}");
    let socket = client
        .enter(|| UdpSocket::bind((source, 0)))?
        .map_err(io_error(what.clone()))?;
    socket
        .set_read_timeout(Some(RETRY))
        .map_err(io_error(what.clone()))?;
    let query = query(id, name, TYPE::A);
    let started = Instant::now();
    let mut buffer = [0u8; 1500];
    while started.elapsed() < LOOKUP_DEADLINE {
        socket
            .send_to(&query, SocketAddr::from((resolver, 53)))
            .map_err(io_error(what.clone()))?;
        let Ok(n) = socket.recv(&mut buffer) else {
            continue;
        };
        let Ok(reply) = Packet::parse(&buffer[..n]) else {
            continue;
        };
        if reply.id() != id {
            continue;
        }
        if let Some(address) = reply.answers.iter().find_map(|record| match &record.rdata {
            rdata::RData::A(a) => Some(Ipv4Addr::from(a.address)),
            _ => None,
        }) {
            return Ok(address);
        }
        return Err(io_error(what)(std::io::Error::other(
            "no address in the answer",
        )));
    }
    Err(io_error(what)(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {} s", LOOKUP_DEADLINE.as_secs()),
    )))
}
