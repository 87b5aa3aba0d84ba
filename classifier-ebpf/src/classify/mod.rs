//! The per-packet pipeline: parse, remember the flow, match prefixes, decide, act, record.

pub mod clock;
mod flow;
mod policy;
mod prefix;

use classifier_common::{
    Config, Counter, ParseError,
    config::{CONFIG_LEARN_DNS, CONFIG_REPORT, config_slot},
    flow::{ACTION_NONE, NO_RULE},
};

use crate::{
    act::{NO_COUNTER, Outcome, apply_action, forward_dns, read_dscp, record},
    hook::Hook,
    maps::{CONFIG, GENERATION, IFACE_SLOTS, OUTCOME_SCRATCH},
    parse::{
        Cursor, ETH_P_IP, ETH_P_IPV6, IpHeader, IpKind, parse_ethernet, parse_ipv4, parse_ipv6,
        parse_tcp, parse_udp,
    },
};

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// UDP port of DNS: queries go to it, answers come from it (network byte order).
const DNS_PORT: [u8; 2] = 53u16.to_be_bytes();

/// What classification concluded for a packet. C layout: the global function
/// `classifier_track` writes it through a pointer.
#[repr(C)]
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
}

#[inline(always)]
pub fn classify_packet<H: Hook>(ctx: &H) {
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
    // The outcome lives in a per-CPU scratch map: the pipeline's call chain has no 40 bytes of
    // its 512-byte stack to spare.
    let Some(outcome) = OUTCOME_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let outcome = unsafe { &mut *outcome };
    outcome.reset();
    if let Err(error) = inspect(ctx, config, generation, len, outcome) {
        outcome.class = Counter::ClassMalformed.index();
        outcome.error = error as u8;
    }
    let ifindex = ctx.ifindex();
    let slot = IFACE_SLOTS.get(ifindex).copied().unwrap_or(0);
    record(outcome, len, slot, config.flags & CONFIG_REPORT != 0);
    if outcome.flow_event == Counter::FlowInsertFailed.index()
        || outcome.dns == Counter::DnsLost.index()
    {
        ctx.log_trouble(outcome.flow_event);
    }
}

#[inline(always)]
fn inspect<H: Hook>(
    ctx: &H,
    config: &Config,
    generation: u32,
    len: u64,
    out: &mut Outcome,
) -> Result<(), ParseError> {
    let mut cursor = Cursor::new(ctx.data(), ctx.data_end());
    let ip = match parse_ethernet(&mut cursor)? {
        ETH_P_IP => {
            out.network = Counter::Ipv4.index();
            parse_ipv4(&mut cursor)?
        }
        ETH_P_IPV6 => {
            out.network = Counter::Ipv6.index();
            parse_ipv6(&mut cursor)?
        }
        _ => {
            out.class = Counter::ClassNonIp.index();
            return Ok(());
        }
    };
    out.dscp_in = read_dscp(&ip.kind);
    out.dscp_out = out.dscp_in;

    let decision = if ip.fragment {
        out.fragment = match ip.kind {
            IpKind::V4(_) => Counter::Ipv4Fragment.index(),
            IpKind::V6(_) => Counter::Ipv6Fragment.index(),
        };
        out.transport = Counter::OtherTransport.index();
        by_address(&ip, config)
    } else if ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP {
        let transport = if ip.protocol == IPPROTO_TCP {
            out.transport = Counter::Tcp.index();
            parse_tcp(&mut cursor, ip.payload_len)?
        } else {
            out.transport = Counter::Udp.index();
            let udp = parse_udp(&mut cursor, ip.payload_len)?;
            if config.flags & CONFIG_LEARN_DNS != 0
                && (udp.src_port == DNS_PORT || udp.dst_port == DNS_PORT)
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
                );
            }
            udp
        };
        out.mptcp_subtypes = transport.mptcp.subtypes;
        out.mptcp_version = transport.mptcp.version;
        out.error = transport.option_error;
        let mut key = flow::packet_key(&ip, transport.src_port, transport.dst_port);
        flow::track(&mut key, &transport.mptcp, config, generation, len)
    } else {
        out.transport = Counter::OtherTransport.index();
        by_address(&ip, config)
    };

    out.lists = decision.lists;
    out.mptcp_flow = u8::from(decision.mptcp);
    out.rule = decision.rule;
    out.flow_event = decision.flow_event;
    out.mptcp_event = decision.mptcp_event;
    out.flow_flags = decision.flow_flags;
    out.class = if decision.mptcp {
        Counter::ClassMptcp.index()
    } else if decision.lists != 0 {
        Counter::ClassListed.index()
    } else {
        Counter::ClassNormal.index()
    };
    apply_action(ctx, &ip.kind, decision.action, config, out);
    Ok(())
}

/// Packets without ports (fragments, ICMP, ...) are classified by their addresses alone and
/// not remembered: all fragments of a datagram get the same treatment.
#[inline(always)]
fn by_address(ip: &IpHeader, config: &Config) -> Decision {
    let lists = prefix::lists_of(&flow::packet_key(ip, [0; 2], [0; 2]));
    let (action, rule) = policy::decide(false, lists, config);
    Decision {
        lists,
        action,
        rule,
        ..Decision::NONE
    }
}
