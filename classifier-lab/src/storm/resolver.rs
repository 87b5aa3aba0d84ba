//! The lab's resolver, which the phones ask (`crate::dns::lookup`). It answers each CDN
//! server's name with a CNAME chain into Apple's CDN domains (`NAME CNAME
//! NAME.apple.com.edgekey.net CNAME eN.dscb.akamaiedge.net A ADDRESS`): the question is in no
//! list and the address in no list, so only the chain tells the router the address is Apple's
//! (docs/design.md, 'DNS learning'). The query crosses the router on r0 and the answer on r2,
//! as a campus resolver beyond the uplink would.

use std::{
    net::{Ipv4Addr, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use simple_dns::{CLASS, Name, Packet, RCODE, ResourceRecord, rdata};

use super::hosts::{RESOLVER, UpdateServer};
use crate::{Netns, io_error};
use classifier::Error;

/// How long each answered address lives: longer than any storm.
const TTL: u32 = 3600;

/// The resolver's thread, answering until dropped.
pub struct Resolver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Resolver {
    /// Starts the resolver on `RESOLVER`:53 in `server`, knowing `servers`' names.
    pub fn start(server: &Netns, servers: &[UpdateServer]) -> Result<Self, Error> {
        let socket = server
            .enter(|| UdpSocket::bind((RESOLVER, 53)))?
            .map_err(io_error("binding the lab's resolver"))?;
        // The read timeout is how often the thread looks at `stop`.
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(io_error("setting the resolver's timeout"))?;
        let zone: Vec<(String, Ipv4Addr)> = servers
            .iter()
            .filter_map(|s| Some((s.name.clone()?, s.address)))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                if let Some(reply) = answer(&buffer[..n], &zone) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The reply to one query: the CNAME chain and the address for a known name, NXDOMAIN for
/// anything else; None for what is not a query.
fn answer(query: &[u8], zone: &[(String, Ipv4Addr)]) -> Option<Vec<u8>> {
    let query = Packet::parse(query).ok()?;
    let question = query.questions.first()?;
    let asked = question.qname.to_string();
    let mut reply = Packet::new_reply(query.id());
    reply.questions.push(question.clone());
    match zone
        .iter()
        .position(|(name, _)| name.eq_ignore_ascii_case(&asked))
    {
        Some(index) => {
            let (name, address) = &zone[index];
            let edge = format!("{name}.apple.com.edgekey.net");
            let akamai = format!("e{index}.dscb.akamaiedge.net");
            for (owner, target) in [(name.as_str(), edge.as_str()), (&edge, &akamai)] {
                reply.answers.push(ResourceRecord::new(
                    Name::new_unchecked(owner),
                    CLASS::IN,
                    TTL,
                    rdata::RData::CNAME(rdata::CNAME(Name::new_unchecked(target))),
                ));
            }
            reply.answers.push(ResourceRecord::new(
                Name::new_unchecked(&akamai),
                CLASS::IN,
                TTL,
                rdata::RData::A(rdata::A::from(*address)),
            ));
            reply.build_bytes_vec().ok()
        }
        None => {
            *reply.rcode_mut() = RCODE::NameError;
            reply.build_bytes_vec().ok()
        }
    }
}
