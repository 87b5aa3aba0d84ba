//! An independent model, on the host, of what the kernel program must conclude for a packet:
//! etherparse reads the headers, a small walk of its own reads the TCP options, a map
//! remembers which flows are MPTCP, and a linear scan of the prefixes and the rules gives the
//! lists and the DSCP. It shares no code with the kernel side: only the names of the error
//! kinds (`ParseError`). The differential fuzzer (`tests/fuzz_differential.rs`) compares it
//! with the kernel on every packet.
//!
//! Where etherparse's view of a packet differs from DESIGN.md, this model follows DESIGN.md,
//! and says so where it happens.

use std::{collections::HashMap, fmt, net::IpAddr};

use classifier_common::{
    PacketReport, ParseError, PolicyRule,
    config::{ACTION_KEEP, RULE_MATCH_MPTCP},
    flow::NO_RULE,
    mptcp::{MPTCP_VERSION_NONE, MptcpSubtype},
    report::{REPORT_CLASSIFIED, REPORT_FRAGMENT, REPORT_MPTCP_FLOW, REPORT_MPTCP_OPTION},
};
use etherparse::{
    EtherType, Ethernet2HeaderSlice, IpAuthHeaderSlice, IpNumber, Ipv4HeaderSlice,
    Ipv6FragmentHeaderSlice, Ipv6HeaderSlice, Ipv6RawExtHeaderSlice, SingleVlanHeaderSlice,
    TcpHeaderSlice, UdpHeaderSlice, checksum::Sum16BitWords, err,
};
use ipnet::IpNet;

use super::packet::ipv4_checksum_ok;

/// DESIGN.md: "up to 2 VLAN tags (802.1Q, 802.1ad)"; a third is `VlanTooDeep`. etherparse
/// would also take 0x9100 (old QinQ) for a tag; DESIGN.md names only these two TPIDs.
const VLAN_DEPTH: usize = 2;
const VLAN_TPIDS: [EtherType; 2] = [EtherType::VLAN_TAGGED_FRAME, EtherType::PROVIDER_BRIDGING];

/// README "What the data path does": up to 6 extension headers of these five kinds. etherparse
/// knows more (Mobility, HIP, Shim6, the experimental numbers): DESIGN.md walks only these, so
/// any other next header is the transport, classified by address as "other".
const IPV6_EXT_DEPTH: usize = 6;
const IPV6_EXTENSIONS: [IpNumber; 5] = [
    IpNumber::IPV6_HEADER_HOP_BY_HOP,
    IpNumber::IPV6_ROUTE_HEADER,
    IpNumber::IPV6_FRAGMENTATION_HEADER,
    IpNumber::AUTHENTICATION_HEADER,
    IpNumber::IPV6_DESTINATION_OPTIONS,
];

const TCP_OPTION_EOL: u8 = 0;
const TCP_OPTION_NOP: u8 = 1;
const TCP_OPTION_MPTCP: u8 = 30;

/// What the headers say, as far as the classifier reads them.
#[derive(Clone, Debug)]
pub enum Headers {
    /// Not IPv4 or IPv6 after Ethernet and its tags.
    NonIp,
    Ip(IpPacket),
}

#[derive(Clone, Debug)]
pub struct IpPacket {
    /// Where the IP header starts.
    pub l3: usize,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// DSCP (6 bits) and ECN (2 bits) as they came in.
    pub dscp: u8,
    pub ecn: u8,
    /// Fragments are classified by address only: nothing past the IP layer is read.
    pub fragment: bool,
    pub transport: Transport,
}

#[derive(Clone, Debug)]
pub enum Transport {
    Tcp {
        src_port: u16,
        dst_port: u16,
        mptcp: MptcpOptions,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// A fragment, or a protocol other than TCP and UDP.
    Other,
}

/// The MPTCP options (kind 30) of one TCP header.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MptcpOptions {
    /// Bit n: an option of subtype n.
    pub subtypes: u16,
    /// MP_CAPABLE's version nibble, if an MP_CAPABLE option is present.
    pub version: Option<u8>,
}

/// Reads the headers of `packet` as DESIGN.md defines them; the error says why it stopped.
pub fn parse_headers(packet: &[u8]) -> Result<Headers, ParseError> {
    let eth = Ethernet2HeaderSlice::from_slice(packet).map_err(|_| ParseError::EthTruncated)?;
    let mut ether_type = eth.ether_type();
    let mut rest = &packet[eth.slice().len()..];
    let mut tags = 0;
    while VLAN_TPIDS.contains(&ether_type) {
        // A third tag is refused as soon as the second one announces it, present or not.
        if tags == VLAN_DEPTH {
            return Err(ParseError::VlanTooDeep);
        }
        let vlan =
            SingleVlanHeaderSlice::from_slice(rest).map_err(|_| ParseError::VlanTruncated)?;
        ether_type = vlan.ether_type();
        rest = &rest[vlan.slice().len()..];
        tags += 1;
    }
    let l3 = packet.len() - rest.len();
    match ether_type {
        EtherType::IPV4 => parse_ipv4(rest, l3).map(Headers::Ip),
        EtherType::IPV6 => parse_ipv6(rest, l3).map(Headers::Ip),
        _ => Ok(Headers::NonIp),
    }
}

fn parse_ipv4(slice: &[u8], l3: usize) -> Result<IpPacket, ParseError> {
    use err::ipv4::{HeaderError, HeaderSliceError};
    // Lengths come from the frame, not from the total-length field: DESIGN.md bounds every read
    // by the packet's end, and a total length that lies does not make a header malformed.
    let ip = Ipv4HeaderSlice::from_slice(slice).map_err(|error| match error {
        HeaderSliceError::Len(len) if len.required_len == 20 => ParseError::Ipv4Truncated,
        HeaderSliceError::Len(_) => ParseError::Ipv4HeaderPastPacket,
        HeaderSliceError::Content(HeaderError::UnexpectedVersion { .. }) => {
            ParseError::Ipv4BadVersion
        }
        HeaderSliceError::Content(HeaderError::HeaderLengthSmallerThanHeader { .. }) => {
            ParseError::Ipv4HeaderTooShort
        }
    })?;
    let fragment = ip.is_fragmenting_payload();
    let src = IpAddr::from(ip.source_addr());
    let dst = IpAddr::from(ip.destination_addr());
    let transport = if fragment {
        Transport::Other
    } else {
        parse_transport(ip.protocol(), &slice[ip.slice().len()..])?
    };
    Ok(IpPacket {
        l3,
        src,
        dst,
        dscp: ip.dcp().value(),
        ecn: ip.ecn().value(),
        fragment,
        transport,
    })
}

fn parse_ipv6(slice: &[u8], l3: usize) -> Result<IpPacket, ParseError> {
    use err::ipv6::HeaderSliceError;
    let ip = Ipv6HeaderSlice::from_slice(slice).map_err(|error| match error {
        HeaderSliceError::Len(_) => ParseError::Ipv6Truncated,
        HeaderSliceError::Content(_) => ParseError::Ipv6BadVersion,
    })?;
    let mut next = ip.next_header();
    let mut rest = &slice[ip.slice().len()..];
    let mut walked = 0;
    let mut fragment = false;
    // Header by header with etherparse's slices rather than `Ipv6ExtensionsSlice`, which
    // refuses hop-by-hop anywhere but first, stops at its own depth, and knows more kinds:
    // DESIGN.md walks any chain of the five kinds to a depth of 6.
    while IPV6_EXTENSIONS.contains(&next) {
        if walked == IPV6_EXT_DEPTH {
            return Err(ParseError::Ipv6ExtTooDeep);
        }
        let (header_next, len) = ipv6_extension(next, rest)?;
        rest = &rest[len..];
        walked += 1;
        if next == IpNumber::IPV6_FRAGMENTATION_HEADER {
            // DESIGN.md: a fragment header makes a fragment, whatever its offset and M flag
            // say (etherparse's `is_fragmenting_payload` would call an atomic fragment, offset
            // 0 and M clear, whole). Nothing after it is read, not even the rest of the chain.
            fragment = true;
            next = header_next;
            break;
        }
        next = header_next;
    }
    let transport = if fragment {
        Transport::Other
    } else {
        parse_transport(next, rest)?
    };
    let traffic_class = ip.traffic_class();
    Ok(IpPacket {
        l3,
        src: IpAddr::from(ip.source_addr()),
        dst: IpAddr::from(ip.destination_addr()),
        dscp: traffic_class >> 2,
        ecn: traffic_class & 0x03,
        fragment,
        transport,
    })
}

/// One IPv6 extension header of kind `kind` at the start of `slice`: its next header and
/// its length.
fn ipv6_extension(kind: IpNumber, slice: &[u8]) -> Result<(IpNumber, usize), ParseError> {
    let truncated = |_| ParseError::Ipv6ExtTruncated;
    match kind {
        IpNumber::IPV6_FRAGMENTATION_HEADER => {
            let header = Ipv6FragmentHeaderSlice::from_slice(slice).map_err(truncated)?;
            Ok((header.next_header(), header.slice().len()))
        }
        // etherparse refuses an AH whose length field is 0 (RFC 4302's fixed part is 12
        // bytes). DESIGN.md has no error kind for that: the chain is walked by its length
        // fields, and this one says (0 + 2) × 4 = 8 bytes.
        IpNumber::AUTHENTICATION_HEADER if slice.get(1) == Some(&0) => match slice.get(..8) {
            Some(header) => Ok((IpNumber(header[0]), 8)),
            None => Err(ParseError::Ipv6ExtTruncated),
        },
        IpNumber::AUTHENTICATION_HEADER => {
            let header =
                IpAuthHeaderSlice::from_slice(slice).map_err(|_| ParseError::Ipv6ExtTruncated)?;
            Ok((header.next_header(), header.slice().len()))
        }
        _ => {
            let header = Ipv6RawExtHeaderSlice::from_slice(slice).map_err(truncated)?;
            Ok((header.next_header(), header.slice().len()))
        }
    }
}

fn parse_transport(protocol: IpNumber, slice: &[u8]) -> Result<Transport, ParseError> {
    match protocol {
        IpNumber::TCP => {
            use err::tcp::HeaderSliceError;
            let tcp = TcpHeaderSlice::from_slice(slice).map_err(|error| match error {
                HeaderSliceError::Len(len) if len.required_len == 20 => ParseError::TcpTruncated,
                HeaderSliceError::Len(_) => ParseError::TcpHeaderPastPacket,
                HeaderSliceError::Content(_) => ParseError::TcpHeaderTooShort,
            })?;
            Ok(Transport::Tcp {
                src_port: tcp.source_port(),
                dst_port: tcp.destination_port(),
                mptcp: walk_tcp_options(tcp.options())?,
            })
        }
        IpNumber::UDP => {
            let udp = UdpHeaderSlice::from_slice(slice).map_err(|_| ParseError::UdpTruncated)?;
            Ok(Transport::Udp {
                src_port: udp.source_port(),
                dst_port: udp.destination_port(),
            })
        }
        _ => Ok(Transport::Other),
    }
}

/// The TCP options, by DESIGN.md: EOL ends the walk, NOP is one byte, every other option
/// has a length of at least 2 that stays inside the header; kind 30 is MPTCP, its subtype
/// the high nibble of its third byte, MP_CAPABLE's version the low one. Not etherparse's
/// iterator: it also insists on the lengths of the kinds it knows (MSS = 4, ...), which
/// DESIGN.md does not.
pub fn walk_tcp_options(options: &[u8]) -> Result<MptcpOptions, ParseError> {
    let mut seen = MptcpOptions::default();
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        match kind {
            TCP_OPTION_EOL => break,
            TCP_OPTION_NOP => at += 1,
            _ => {
                let len = usize::from(*options.get(at + 1).ok_or(ParseError::TcpOptionPastHeader)?);
                if len < 2 {
                    return Err(ParseError::TcpOptionBadLength);
                }
                let option = options
                    .get(at..at + len)
                    .ok_or(ParseError::TcpOptionPastHeader)?;
                if kind == TCP_OPTION_MPTCP {
                    let subtype_version = *option.get(2).ok_or(ParseError::MptcpOptionTooShort)?;
                    let subtype = subtype_version >> 4;
                    seen.subtypes |= 1 << subtype;
                    if subtype == MptcpSubtype::MpCapable as u8 {
                        // Two MP_CAPABLEs in one header: the last one's version, as Linux's
                        // option parser (each option overwrites what the previous one set).
                        seen.version = Some(subtype_version & 0x0f);
                    }
                }
                at += len;
            }
        }
    }
    Ok(seen)
}

/// A policy rule as the model reads it.
#[derive(Copy, Clone, Debug)]
pub struct Rule {
    pub mptcp: bool,
    /// Any of these lists (none: any packet).
    pub lists: u32,
    pub action: Action,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Dscp(u8),
    Keep,
}

impl Rule {
    /// Matches MPTCP flows only if `mptcp`, and an address in any of `lists` (0: any).
    pub const fn new(mptcp: bool, lists: u32, action: Action) -> Self {
        Self {
            mptcp,
            lists,
            action,
        }
    }

    /// The same rule in the kernel's encoding.
    pub fn to_policy_rule(self) -> PolicyRule {
        PolicyRule {
            lists: self.lists,
            flags: if self.mptcp { RULE_MATCH_MPTCP } else { 0 },
            action: match self.action {
                Action::Dscp(dscp) => dscp,
                Action::Keep => ACTION_KEEP,
            },
            ..PolicyRule::default()
        }
    }
}

/// What the classifier concluded for one packet: the things the fuzzer compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// `ParseError` code, 0 for none.
    pub error: u8,
    /// Option 30 present in this packet (the report's flag).
    pub mptcp_option: bool,
    /// Bit n: MPTCP subtype n present.
    pub mptcp_subtypes: u16,
    pub mptcp_version: Option<u8>,
    /// The packet's flow is known to be MPTCP.
    pub mptcp_flow: bool,
    pub fragment: bool,
    /// Lists matched by the source or the destination.
    pub lists: u32,
    /// The DSCP the packet leaves with, for a classified IP packet; `None` for one that is
    /// not (non-IP, malformed): it must leave untouched.
    pub dscp_out: Option<u8>,
    /// The rule that matched.
    pub rule: Option<u8>,
}

impl View {
    /// The kernel's view, from its report on the packet.
    pub fn of_report(report: &PacketReport) -> Self {
        let classified = report.error == 0 && report.flags & REPORT_CLASSIFIED != 0;
        Self {
            error: report.error,
            mptcp_option: report.flags & REPORT_MPTCP_OPTION != 0,
            mptcp_subtypes: report.mptcp_subtypes,
            mptcp_version: (report.mptcp_version != MPTCP_VERSION_NONE)
                .then_some(report.mptcp_version),
            mptcp_flow: report.flags & REPORT_MPTCP_FLOW != 0,
            fragment: report.flags & REPORT_FRAGMENT != 0,
            lists: report.lists,
            dscp_out: classified.then_some(report.dscp_out),
            rule: (report.rule != NO_RULE).then_some(report.rule),
        }
    }

    /// The names of the fields in which `other` differs.
    pub fn differences(&self, other: &View) -> Vec<&'static str> {
        [
            ("error", self.error != other.error),
            ("mptcp_option", self.mptcp_option != other.mptcp_option),
            ("subtypes", self.mptcp_subtypes != other.mptcp_subtypes),
            ("version", self.mptcp_version != other.mptcp_version),
            ("mptcp_flow", self.mptcp_flow != other.mptcp_flow),
            ("fragment", self.fragment != other.fragment),
            ("lists", self.lists != other.lists),
            ("dscp_out", self.dscp_out != other.dscp_out),
            ("rule", self.rule != other.rule),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
    }

    /// The class the packet is counted in.
    pub fn class(&self) -> &'static str {
        if self.error != 0 {
            "malformed"
        } else if self.dscp_out.is_none() {
            "non_ip"
        } else if self.mptcp_flow {
            "mptcp"
        } else if self.lists != 0 {
            "listed"
        } else {
            "normal"
        }
    }
}

/// One line, the form the regression corpus stores expectations in.
impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let error = match ParseError::from_code(self.error) {
            _ if self.error == 0 => "none".to_owned(),
            Some(error) => error.name().to_owned(),
            None => format!("code_{}", self.error),
        };
        let optional = |value: Option<u8>| value.map_or("none".to_owned(), |v| v.to_string());
        write!(
            f,
            "class={} error={error} mptcp_option={} subtypes={:#06x} version={} mptcp_flow={} \
             fragment={} lists={:#x} dscp_out={} rule={}",
            self.class(),
            u8::from(self.mptcp_option),
            self.mptcp_subtypes,
            optional(self.mptcp_version),
            u8::from(self.mptcp_flow),
            u8::from(self.fragment),
            self.lists,
            optional(self.dscp_out),
            optional(self.rule),
        )
    }
}

/// A flow as the model remembers it: canonical endpoints, so both directions share it.
type FlowId = (u8, (IpAddr, u16), (IpAddr, u16));

/// The model's flow memory: which flows are MPTCP, and the packet that made them so (to show
/// when the kernel disagrees).
struct Flow {
    mptcp_since: Option<MptcpSince>,
}

/// The packet that made a flow MPTCP: its index in the run, its bytes, and its view.
#[derive(Clone, Debug)]
pub struct MptcpSince {
    pub index: u64,
    pub packet: Vec<u8>,
    pub view: View,
}

/// The model: prefixes and rules as installed in the kernel, and the flows seen so far.
pub struct Reference {
    prefixes: Vec<(IpNet, u32)>,
    rules: Vec<Rule>,
    flows: HashMap<FlowId, Flow>,
}

/// The model's prediction for one packet.
pub struct Prediction {
    pub view: View,
    /// The IP header and its incoming DSCP, to check the bytes out.
    pub ip: Option<IpPacket>,
    /// For a packet of an MPTCP flow: the packet that made it MPTCP (maybe this one).
    pub mptcp_since: Option<MptcpSince>,
    /// The action of the rule that matched.
    pub action: Option<Action>,
    /// The packet's flow was not known before it.
    pub new_flow: bool,
}

impl Reference {
    /// `prefixes`: each with the lists it stands for (the effective lists, as the control plane
    /// writes them: a more specific prefix carries those of the prefixes containing it).
    pub fn new(prefixes: &[(&str, u32)], rules: &[Rule]) -> Self {
        Self {
            prefixes: prefixes
                .iter()
                .map(|(prefix, lists)| (prefix.parse().expect("a test prefix"), *lists))
                .collect(),
            rules: rules.to_vec(),
            flows: HashMap::new(),
        }
    }

    /// New prefixes and rules, as after a change the kernel learns of by a new generation:
    /// flows keep what they remember (MPTCP), their lists and rule are looked up again.
    pub fn reconfigure(&mut self, prefixes: &[(&str, u32)], rules: &[Rule]) {
        let flows = std::mem::take(&mut self.flows);
        *self = Self {
            flows,
            ..Self::new(prefixes, rules)
        };
    }

    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Forgets every flow (after the kernel's flow table was emptied).
    pub fn forget_flows(&mut self) {
        self.flows.clear();
    }

    /// The lists of the longest prefix containing `addr`.
    pub fn lists_of(&self, addr: IpAddr) -> u32 {
        self.prefixes
            .iter()
            .filter(|(prefix, _)| prefix.contains(&addr))
            .max_by_key(|(prefix, _)| prefix.prefix_len())
            .map_or(0, |(_, lists)| *lists)
    }

    /// The first rule that matches, with its index.
    fn decide(&self, mptcp: bool, lists: u32) -> Option<(u8, Action)> {
        self.rules
            .iter()
            .position(|rule| (!rule.mptcp || mptcp) && (rule.lists == 0 || rule.lists & lists != 0))
            .map(|index| (index as u8, self.rules[index].action))
    }

    /// What the kernel must conclude for `packet`, the `index`th of the run; remembers its
    /// flow as the kernel does.
    pub fn predict(&mut self, index: u64, packet: &[u8]) -> Prediction {
        let mut view = View {
            error: 0,
            mptcp_option: false,
            mptcp_subtypes: 0,
            mptcp_version: None,
            mptcp_flow: false,
            fragment: false,
            lists: 0,
            dscp_out: None,
            rule: None,
        };
        let ip = match parse_headers(packet) {
            Ok(Headers::Ip(ip)) => ip,
            not_classified => {
                // Nothing in a malformed packet is trusted: no MPTCP, no lists, no rewrite.
                if let Err(error) = not_classified {
                    view.error = error as u8;
                }
                return Prediction {
                    view,
                    ip: None,
                    mptcp_since: None,
                    action: None,
                    new_flow: false,
                };
            }
        };
        view.fragment = ip.fragment;
        view.lists = self.lists_of(ip.src) | self.lists_of(ip.dst);
        let mut flow_id = None;
        let mut mptcp_since = None;
        let mut made_mptcp = false;
        let mut new_flow = false;
        let (protocol, ports, seen) = match ip.transport {
            Transport::Tcp {
                src_port,
                dst_port,
                mptcp,
            } => (6, (src_port, dst_port), mptcp),
            Transport::Udp { src_port, dst_port } => {
                (17, (src_port, dst_port), MptcpOptions::default())
            }
            // Fragments and other protocols are classified by address only and not remembered.
            Transport::Other => (0, (0, 0), MptcpOptions::default()),
        };
        view.mptcp_option = seen.subtypes != 0;
        view.mptcp_subtypes = seen.subtypes;
        view.mptcp_version = seen.version;
        if protocol != 0 {
            let a = (ip.src, ports.0);
            let b = (ip.dst, ports.1);
            let id = (protocol, a.min(b), a.max(b));
            new_flow = !self.flows.contains_key(&id);
            let flow = self.flows.entry(id).or_insert(Flow { mptcp_since: None });
            made_mptcp = seen.subtypes != 0 && flow.mptcp_since.is_none();
            view.mptcp_flow = made_mptcp || flow.mptcp_since.is_some();
            mptcp_since = flow.mptcp_since.clone();
            flow_id = Some(id);
        }
        let decision = self.decide(view.mptcp_flow, view.lists);
        view.rule = decision.map(|(rule, _)| rule);
        view.dscp_out = Some(match decision {
            Some((_, Action::Dscp(dscp))) => dscp,
            _ => ip.dscp,
        });
        if let (true, Some(id)) = (made_mptcp, flow_id) {
            let since = MptcpSince {
                index,
                packet: packet.to_vec(),
                view: view.clone(),
            };
            mptcp_since = Some(since.clone());
            if let Some(flow) = self.flows.get_mut(&id) {
                flow.mptcp_since = Some(since);
            }
        }
        Prediction {
            view,
            ip: Some(ip),
            mptcp_since,
            action: decision.map(|(_, action)| action),
            new_flow,
        }
    }
}

/// The bytes the packet must leave with: unchanged, or with the DSCP rewritten and the ECN
/// bits kept. IPv4's header checksum is then what a full recomputation gives (DESIGN.md: the
/// incremental update "must equal a full recomputation") when it was valid, and when it was
/// not, RFC 1624's eqn. 3 applied to it, which keeps it exactly as wrong as it came in.
pub fn expected_output(input: &[u8], prediction: &Prediction) -> Vec<u8> {
    let mut output = input.to_vec();
    let (Some(ip), Some(dscp)) = (&prediction.ip, prediction.view.dscp_out) else {
        return output;
    };
    if dscp == ip.dscp {
        return output;
    }
    let l3 = ip.l3;
    let tos = (dscp << 2) | ip.ecn;
    if ip.src.is_ipv6() {
        output[l3] = (output[l3] & 0xf0) | (tos >> 4);
        output[l3 + 1] = (tos << 4) | (output[l3 + 1] & 0x0f);
        return output;
    }
    output[l3 + 1] = tos;
    let checksum = if ipv4_checksum_ok(input, l3) == Some(true) {
        let header_len = usize::from(input[l3] & 0x0f) * 4;
        ipv4_header_checksum(&output[l3..l3 + header_len])
    } else {
        let old = u16::from_be_bytes([input[l3 + 10], input[l3 + 11]]);
        let word = |tos: u8| u32::from(u16::from_be_bytes([input[l3], tos]));
        let mut sum = u32::from(!old) + (!word(input[l3 + 1]) & 0xffff) + word(tos);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    };
    output[l3 + 10..l3 + 12].copy_from_slice(&checksum.to_be_bytes());
    output
}

/// The checksum of an IPv4 header (all of it, options included), its own field counted as 0.
///
/// Summed over the raw bytes, not with `Ipv4Header::calc_header_checksum`: etherparse's
/// `Ipv4Header` has no field for the reserved flag bit (0x8000 of the flags and offset
/// word), so a header that sets it comes back from `to_header()` without it and sums to
/// another checksum. (The fuzzer's first disagreement, `bug-reserved-flag-checksum.txt`.)
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    Sum16BitWords::new()
        .add_slice(&header[..10])
        .add_slice(&header[12..])
        .ones_complement()
        .to_be()
}

/// Whether the kernel's bytes out are `expected_output`; what differs if not.
pub fn check_output(input: &[u8], output: &[u8], prediction: &Prediction) -> Result<(), String> {
    let expected = expected_output(input, prediction);
    if output == expected {
        return Ok(());
    }
    if output.len() != expected.len() {
        return Err(format!(
            "{} bytes out, {} expected",
            output.len(),
            expected.len()
        ));
    }
    let differ: Vec<usize> = (0..output.len())
        .filter(|&at| output[at] != expected[at])
        .collect();
    Err(format!(
        "bytes {differ:?} differ from the expected {}",
        match prediction.view.dscp_out {
            Some(dscp) if prediction.ip.as_ref().is_some_and(|ip| ip.dscp != dscp) => {
                format!("rewrite to DSCP {dscp}")
            }
            _ => "untouched packet".to_owned(),
        }
    ))
}
