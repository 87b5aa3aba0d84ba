//! The per-packet pipeline: parse, remember the flow, match prefixes, decide, act, record.

pub mod clock;
mod flow;
pub mod flow_cache;
mod policy;
mod prefix;

use classifier_common::{
    Config, Counter, ParseError,
    config::{CONFIG_LEARN_DNS, CONFIG_REPORT, config_slot},
    dns::DNS_PORT,
    flow::{ACTION_NONE, FLOW_MPTCP, NO_RULE},
    limits::MAX_VLAN_DEPTH,
    protocol::{ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP},
};

use crate::{
    act::{NO_COUNTER, Outcome, apply_action, forward_dns, read_dscp, record, slot},
    hook::PacketAccess,
    maps::{CONFIG, GENERATION, IFACE_SLOTS},
    parse::{
        Cursor, IpHeader, IpKind, Transport, parse_ethernet, parse_ipv4, parse_ipv6, parse_tcp,
        parse_udp,
    },
};

/// `DNS_PORT` as the UDP header holds it.
const DNS_PORT_BYTES: [u8; 2] = DNS_PORT.to_be_bytes();

/// What classification concluded for a packet.
#[derive(Copy, Clone)]
pub struct Decision {
    pub lists: u32,
    /// `FlowCreated` or `FlowInsertFailed` when the flow table was written, else `NO_COUNTER`.
    pub flow_event: u32,
    /// `MptcpFallback` when this packet showed the flow fell back, else `NO_COUNTER`.
    pub mptcp_event: u32,
    /// The flow is MPTCP (`FLOW_MPTCP`): what the class and `mptcp` rules go by.
    pub mptcp: bool,
    /// A DSCP, `ACTION_KEEP` or `ACTION_NONE`.
    pub action: u8,
    pub rule: u8,
    /// The flow entry's flags after this packet; 0 without a flow.
    pub flow_flags: u8,
}

/// `Decision::pack`'s flow event codes (bits 56..58) and fallback bit (58).
const PACKED_FLOW_CREATED: u64 = 1;
const PACKED_FLOW_INSERT_FAILED: u64 = 2;
const PACKED_FALLBACK: u64 = 1 << 58;

impl Decision {
    pub const NONE: Self = Self {
        lists: 0,
        flow_event: NO_COUNTER,
        mptcp_event: NO_COUNTER,
        mptcp: false,
        action: ACTION_NONE,
        rule: NO_RULE,
        flow_flags: 0,
    };

    /// The decision in one integer, the return value of the global function
    /// `classifier_track`: lists (bits 0..32), action (32..40), rule (40..48), flow flags
    /// (48..56), flow event (56..58), fallback (58). `mptcp` is the flags' `FLOW_MPTCP`.
    #[inline(always)]
    pub fn pack(&self) -> u64 {
        let flow_event = if self.flow_event == Counter::FlowCreated.index() {
            PACKED_FLOW_CREATED
        } else if self.flow_event == Counter::FlowInsertFailed.index() {
            PACKED_FLOW_INSERT_FAILED
        } else {
            0
        };
        let fallback = if self.mptcp_event == NO_COUNTER {
            0
        } else {
            PACKED_FALLBACK
        };
        u64::from(self.lists)
            | u64::from(self.action) << 32
            | u64::from(self.rule) << 40
            | u64::from(self.flow_flags) << 48
            | flow_event << 56
            | fallback
    }

    #[inline(always)]
    pub fn unpack(packed: u64) -> Self {
        let flow_flags = (packed >> 48) as u8;
        Self {
            lists: packed as u32,
            flow_event: match (packed >> 56) & 3 {
                PACKED_FLOW_CREATED => Counter::FlowCreated.index(),
                PACKED_FLOW_INSERT_FAILED => Counter::FlowInsertFailed.index(),
                _ => NO_COUNTER,
            },
            mptcp_event: if packed & PACKED_FALLBACK != 0 {
                Counter::MptcpFallback.index()
            } else {
                NO_COUNTER
            },
            mptcp: flow_flags & FLOW_MPTCP != 0,
            action: (packed >> 32) as u8,
            rule: (packed >> 40) as u8,
            flow_flags,
        }
    }
}

#[inline(always)]
pub fn classify_packet<H: PacketAccess>(ctx: &H) {
    let len = ctx.packet_len();
    // The generation first, once: the policy and the tries are read after it, so whatever
    // they say is at least as new as the generation it is filed under
    // (docs/design.md, 'Live updates: the generation protocol').
    let Some(generation) = GENERATION.get_ptr(0) else {
        return;
    };
    let generation = unsafe { core::ptr::read_volatile(generation) };
    let Some(config) = CONFIG.get(config_slot(generation)) else {
        return;
    };
    // On the stack: `record` takes it by pointer. The pipeline's calls pass everything else
    // as scalars and return their results, which leaves room for it.
    let mut outcome = Outcome::NEW;
    if let Err(error) = inspect(ctx, config, generation, len, &mut outcome) {
        outcome.class = slot(Counter::ClassMalformed);
        outcome.error = error as u8;
    }
    let ifindex = ctx.ifindex();
    let interface = IFACE_SLOTS.get(ifindex).copied().unwrap_or(0);
    #[cfg(not(feature = "ablate-counters"))]
    record(&outcome, len, interface, config.flags & CONFIG_REPORT != 0);
    #[cfg(feature = "ablate-counters")]
    let _ = (interface, CONFIG_REPORT);
    if outcome.flow_event == slot(Counter::FlowInsertFailed)
        || outcome.dns == slot(Counter::DnsLost)
    {
        ctx.log_trouble(u32::from(outcome.flow_event));
    }
}

#[inline(always)]
fn inspect<H: PacketAccess>(
    ctx: &H,
    config: &Config,
    generation: u32,
    len: u64,
    out: &mut Outcome,
) -> Result<(), ParseError> {
    let mut cursor = Cursor::new(ctx.data(), ctx.data_end());
    let ip = match parse_ethernet(&mut cursor, MAX_VLAN_DEPTH)? {
        ETH_P_IP => {
            out.network = slot(Counter::Ipv4);
            parse_ipv4(&mut cursor)?
        }
        ETH_P_IPV6 => {
            out.network = slot(Counter::Ipv6);
            parse_ipv6(&mut cursor, || ctx.headers_cut())?
        }
        _ => {
            out.class = slot(Counter::ClassNonIp);
            return Ok(());
        }
    };
    out.dscp_in = read_dscp(&ip.kind);
    out.dscp_out = out.dscp_in;

    let decision = if ip.fragment {
        out.address_only = match ip.kind {
            IpKind::V4(_) => slot(Counter::Ipv4Fragment),
            IpKind::V6(_) => slot(Counter::Ipv6Fragment),
        };
        out.transport = slot(Counter::OtherTransport);
        by_address(&ip, config)
    } else if ip.transport_unreachable {
        // The addresses are in the fixed header: an extension chain longer than the walk
        // does not keep a packet from its class or its mark (docs/design.md, 'IPv6
        // extension headers').
        out.address_only = slot(Counter::TransportUnreachable);
        out.transport = slot(Counter::OtherTransport);
        by_address(&ip, config)
    } else if ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP {
        let parsed = if ip.protocol == IPPROTO_TCP {
            out.transport = slot(Counter::Tcp);
            parse_tcp(&mut cursor, ip.payload_len)
        } else {
            out.transport = slot(Counter::Udp);
            let udp = parse_udp(&mut cursor, ip.payload_len);
            if let Ok(udp) = &udp
                && config.flags & CONFIG_LEARN_DNS != 0
                && (udp.src_port == DNS_PORT_BYTES || udp.dst_port == DNS_PORT_BYTES)
            {
                let (ip_start, ipv6) = match ip.kind {
                    IpKind::V4(hdr) => (hdr as usize, 0),
                    IpKind::V6(hdr) => (hdr as usize, 1),
                };
                out.dns = forward_dns(
                    ctx,
                    (ip_start - ctx.data()) as u32,
                    (cursor.pos - ctx.data()) as u32,
                    (cursor.end - cursor.pos) as u32,
                    ipv6,
                ) as u8;
            }
            udp
        };
        match parsed {
            // The header runs past what the hook may read (tc: past the linear part), not
            // past the packet: out of reach, classified by address like a chain too long.
            Err(error) if out_of_reach(ctx, error) => {
                out.address_only = slot(Counter::TransportUnreachable);
                out.transport = slot(Counter::OtherTransport);
                by_address(&ip, config)
            }
            parsed => {
                let transport = parsed?;
                out.mptcp_subtypes = transport.mptcp.subtypes;
                out.mptcp_version = transport.mptcp.version;
                out.error = transport.option_error;
                remember(ctx, &ip, &transport, config, generation, len)
            }
        }
    } else {
        out.transport = slot(Counter::OtherTransport);
        by_address(&ip, config)
    };

    out.lists = decision.lists;
    out.mptcp_flow = u8::from(decision.mptcp);
    out.rule = decision.rule;
    out.flow_event = decision.flow_event as u8;
    out.mptcp_event = decision.mptcp_event as u8;
    out.flow_flags = decision.flow_flags;
    out.class = if decision.mptcp {
        slot(Counter::ClassMptcp)
    } else if decision.lists != 0 {
        slot(Counter::ClassListed)
    } else {
        slot(Counter::ClassNormal)
    };
    apply_action(ctx, &ip.kind, decision.action, config, out);
    Ok(())
}

/// Whether `error`, a truncation after the IP header, only says that the header runs past
/// what `ctx` may read: at tc, where the linear part ends before the skb does.
#[inline(always)]
fn out_of_reach<H: PacketAccess>(ctx: &H, error: ParseError) -> bool {
    matches!(
        error,
        ParseError::TcpTruncated | ParseError::TcpHeaderPastPacket | ParseError::UdpTruncated
    ) && ctx.headers_cut()
}

/// A packet with ports: its flow remembered (flow cache, flow table) and decided.
#[cfg(not(feature = "ablate-flows"))]
#[inline(always)]
fn remember<H: PacketAccess>(
    ctx: &H,
    ip: &IpHeader,
    transport: &Transport,
    config: &Config,
    generation: u32,
    len: u64,
) -> Decision {
    let mut key = flow::packet_key(ip, transport.src_port, transport.dst_port);
    flow::track(&mut key, &transport.mptcp, config, generation, len, || {
        ctx.ifindex()
    })
}

/// The benchmark's variant without the flow stage: decided by the addresses alone.
#[cfg(feature = "ablate-flows")]
#[inline(always)]
fn remember<H: PacketAccess>(
    _: &H,
    ip: &IpHeader,
    _: &Transport,
    config: &Config,
    _: u32,
    _: u64,
) -> Decision {
    by_address(ip, config)
}

/// Packets without ports (fragments, ICMP, ...), or whose ports are out of reach, are
/// classified by their addresses alone and not remembered: all fragments of a datagram get
/// the same treatment.
#[inline(always)]
fn by_address(ip: &IpHeader, config: &Config) -> Decision {
    let lists = prefix::lists_of_addresses(&flow::packet_key(ip, [0; 2], [0; 2]));
    let (action, rule) = policy::decide_again(false, lists, config);
    Decision {
        lists,
        action,
        rule,
        ..Decision::NONE
    }
}
