//! The TCP options walk and each MPTCP subtype's check, case by case against the code of
//! Linux that reads them: `mptcp_get_options` (the walk) and `mptcp_parse_option` (each
//! subtype) in net/mptcp/options.c, and the walk they share with `tcp_parse_options` in
//! net/ipv4/tcp_input.c (docs/design.md, 'TCP options and MPTCP').
//!
//! Read at torvalds/linux, net/mptcp/options.c commit
//! 00c1d298d486750e792bb08f52d821d06e63df7d and net/ipv4/tcp_input.c commit
//! 35e02583088823e8833419c360eeefcd3f935fed. Each case names the function, the condition and
//! the lines of options.c it mirrors ("L63-66"). `tcp_parse_options` has the same walk
//! (`EOL` returns, `NOP` advances by one, `length < 2`, `opsize < 2` and `opsize > length`
//! return, every other option is passed over by `opsize`), so the walk's cases stand for it
//! too.
//!
//! "Counts" is Linux setting the subtype's bit in `mp_opt->suboptions`; "ignored" is Linux
//! leaving it unset (a `break` before it), which the classifier reports as
//! `mptcp_option_malformed` and skips. The RFC 6824 (v0) forms the classifier accepts where
//! Linux does not (docs/design.md) are marked as such, not as Linux's.
//!
//! Every case also goes through the host model (`support::fuzz::reference`), which must agree.

use classifier_testkit as support;

use classifier_common::{ParseError, mptcp::MPTCP_VERSION_NONE};
use support::{
    Kernel,
    fuzz::reference::{SegmentKind, walk_tcp_options},
    mptcp::{self, EOL, KIND, NOP},
    packet::Segment,
};

/// The segment an option is read on: MP_CAPABLE's expected length and MP_TCPRST's
/// acceptance depend on it (`TCP_SKB_CB(skb)->tcp_flags`, `skb->len`).
#[derive(Copy, Clone, PartialEq, Debug)]
enum On {
    Syn,
    SynAck,
    /// An ACK without payload.
    Ack,
    /// An ACK with payload.
    Data,
    Rst,
}

struct Case {
    linux: &'static str,
    options: Vec<u8>,
    on: On,
    /// The subtypes that count.
    subtypes: &'static [u8],
    version: Option<u8>,
    error: Option<ParseError>,
}

const MALFORMED: Option<ParseError> = Some(ParseError::MptcpOptionMalformed);

fn case(
    linux: &'static str,
    options: &[u8],
    on: On,
    subtypes: &'static [u8],
    error: Option<ParseError>,
) -> Case {
    Case {
        linux,
        options: options.to_vec(),
        on,
        subtypes,
        version: None,
        error,
    }
}

fn mp_capable(linux: &'static str, options: &[u8], on: On, version: Option<u8>) -> Case {
    Case {
        linux,
        options: options.to_vec(),
        on,
        subtypes: if version.is_some() { &[0] } else { &[] },
        version,
        error: if version.is_some() { None } else { MALFORMED },
    }
}

/// An option 30 of `len` bytes: kind, length, `subtype_version`, `fourth`, then zeros.
fn option(subtype_version: u8, fourth: u8, len: usize) -> Vec<u8> {
    let mut bytes = vec![KIND, len as u8, subtype_version, fourth];
    bytes.resize(len.max(3), 0);
    bytes.truncate(len);
    bytes
}

/// A DSS with a 4-byte data ACK only (8 bytes), valid anywhere but on a SYN.
fn dss_ack() -> Vec<u8> {
    option(0x20, 0x01, 8)
}

/// MP_PRIO, 3 bytes.
fn mp_prio() -> Vec<u8> {
    option(0x50, 0, 3)
}

fn cases() -> Vec<Case> {
    let then = |a: &[u8], b: &[u8]| [a, b].concat();
    vec![
        // mptcp_get_options, the walk (L365-402).
        case(
            "mptcp_get_options L383-384: `case TCPOPT_EOL: return;` (what follows is not read)",
            &then(&[EOL, 0, 0, 0], &dss_ack()),
            On::Data,
            &[],
            None,
        ),
        case(
            "mptcp_get_options L385-387: `case TCPOPT_NOP: length--; continue;`",
            &then(&[NOP, NOP, NOP], &dss_ack()),
            On::Data,
            &[2],
            None,
        ),
        case(
            "mptcp_get_options L389-390: `if (length < 2) return;` (kind 30 in the last byte)",
            &then(&dss_ack(), &[NOP, NOP, NOP, KIND]),
            On::Data,
            &[2],
            Some(ParseError::TcpOptionPastHeader),
        ),
        case(
            "mptcp_get_options L392-393: `if (opsize < 2) return;` (\"silly options\")",
            &then(&[KIND, 1, NOP, NOP], &dss_ack()),
            On::Data,
            &[],
            Some(ParseError::TcpOptionBadLength),
        ),
        case(
            "mptcp_get_options L394-395: `if (opsize > length) return;` (partial option)",
            &then(&dss_ack(), &[KIND, 8, 0x20, 0x01]),
            On::Data,
            &[2],
            Some(ParseError::TcpOptionPastHeader),
        ),
        case(
            "mptcp_get_options L396-399: an option 30 of opsize 2 goes to mptcp_parse_option, \
             where no subtype takes 2 bytes; the walk goes on to the DSS after it",
            &then(&[KIND, 2], &dss_ack()),
            On::Data,
            &[2],
            Some(ParseError::MptcpOptionTooShort),
        ),
        case(
            "mptcp_get_options L396-399: the same after a valid DSS, then an MP_PRIO",
            &[dss_ack(), vec![KIND, 2], mp_prio()].concat(),
            On::Data,
            &[2, 5],
            Some(ParseError::MptcpOptionTooShort),
        ),
        case(
            "mptcp_get_options L398-399: an ignored option 30 is passed over by opsize",
            &then(&option(0x20, 0x01, 10 + 4), &mp_prio()),
            On::Data,
            &[5],
            MALFORMED,
        ),
        case(
            "mptcp_get_options L396: only opcode 30 is parsed (30 inside kind 253's body)",
            &[253, 8, 0, 0, KIND, 4, 0x01, 0x81],
            On::Data,
            &[],
            None,
        ),
        // mptcp_parse_option L27 and L360-361: subtypes without a case.
        case(
            "mptcp_parse_option L360-361: `default: break;` (subtype 9)",
            &option(0x90, 0, 4),
            On::Data,
            &[],
            None,
        ),
        case(
            "mptcp_parse_option L360-361: `default: break;` (subtype 15)",
            &option(0xf0, 0, 12),
            On::Data,
            &[],
            None,
        ),
        // MP_CAPABLE (L35-123).
        mp_capable(
            "MP_CAPABLE L47-48: a SYN expects TCPOLEN_MPTCP_MPC_SYN (4)",
            &option(0x01, 0x81, 4),
            On::Syn,
            Some(1),
        ),
        mp_capable(
            "MP_CAPABLE L63-66: 12 bytes of v1 on a SYN are not 4",
            &option(0x01, 0x01, 12),
            On::Syn,
            None,
        ),
        mp_capable(
            "MP_CAPABLE L43-45: a SYN/ACK expects TCPOLEN_MPTCP_MPC_SYNACK (12)",
            &option(0x01, 0x01, 12),
            On::SynAck,
            Some(1),
        ),
        mp_capable(
            "MP_CAPABLE L63-66: 4 bytes on a SYN/ACK are not 12",
            &option(0x01, 0x01, 4),
            On::SynAck,
            None,
        ),
        mp_capable(
            "MP_CAPABLE L38-41: without payload, TCPOLEN_MPTCP_MPC_ACK (20)",
            &option(0x01, 0x01, 20),
            On::Ack,
            Some(1),
        ),
        mp_capable(
            "MP_CAPABLE L63-66: 22 bytes without payload are not 20",
            &option(0x01, 0x01, 22),
            On::Ack,
            None,
        ),
        mp_capable(
            "MP_CAPABLE L38-39: `skb->len > doff << 2`: TCPOLEN_MPTCP_MPC_ACK_DATA (22)",
            &option(0x01, 0x01, 22),
            On::Data,
            Some(1),
        ),
        mp_capable(
            "MP_CAPABLE L63-65: with payload, TCPOLEN_MPTCP_MPC_ACK_DATA_CSUM (24) too",
            &option(0x01, 0x81, 24),
            On::Data,
            Some(1),
        ),
        mp_capable(
            "MP_CAPABLE L63-66: 20 bytes with payload are neither 22 nor 24",
            &option(0x01, 0x01, 20),
            On::Data,
            None,
        ),
        mp_capable(
            "MP_CAPABLE L73: on the SYN (opsize 4) a later version is taken",
            &option(0x02, 0x01, 4),
            On::Syn,
            Some(2),
        ),
        mp_capable(
            "MP_CAPABLE L73-74: on the SYN, `version < MPTCP_SUPPORTED_VERSION` breaks",
            &option(0x00, 0x01, 4),
            On::Syn,
            None,
        ),
        mp_capable(
            "MP_CAPABLE L70-72: `opsize != TCPOLEN_MPTCP_MPC_SYN`: version must be 1",
            &option(0x02, 0x01, 12),
            On::SynAck,
            None,
        ),
        mp_capable(
            "MP_CAPABLE L78: crypto bits (mask 0x1f) other than HMAC-SHA256",
            &option(0x01, 0x02, 4),
            On::Syn,
            None,
        ),
        mp_capable(
            "MP_CAPABLE L79: the extensibility bit (0x40) set",
            &option(0x01, 0x41, 4),
            On::Syn,
            None,
        ),
        mp_capable(
            "MP_CAPABLE L78-79: checksum (0x80) and deny-join-id0 (0x20) are outside the mask",
            &option(0x01, 0xa1, 4),
            On::Syn,
            Some(1),
        ),
        mp_capable(
            "not Linux: MP_CAPABLE v0 (RFC 6824) on a SYN, 12 bytes, accepted for iOS",
            &option(0x00, 0x01, 12),
            On::Syn,
            Some(0),
        ),
        // MP_JOIN (L125-154): three lengths, whatever the segment.
        case(
            "MP_JOIN L126: TCPOLEN_MPTCP_MPJ_SYN (12)",
            &option(0x10, 0x02, 12),
            On::Syn,
            &[1],
            None,
        ),
        case(
            "MP_JOIN L137: TCPOLEN_MPTCP_MPJ_SYNACK (16)",
            &option(0x10, 0x01, 16),
            On::SynAck,
            &[1],
            None,
        ),
        case(
            "MP_JOIN L148: TCPOLEN_MPTCP_MPJ_ACK (24)",
            &option(0x10, 0, 24),
            On::Ack,
            &[1],
            None,
        ),
        case(
            "MP_JOIN L126-154: 20 bytes match no length: ignored",
            &option(0x10, 0, 20),
            On::Ack,
            &[],
            MALFORMED,
        ),
        // DSS (L156-240): the length its flags (L165, mask 0x1f) imply, or 2 more.
        case(
            "DSS L177, L196: no flags, TCPOLEN_MPTCP_DSS_BASE (4)",
            &option(0x20, 0x00, 4),
            On::Data,
            &[2],
            None,
        ),
        case(
            "DSS L179-184: data ACK, 4 bytes (ACK32)",
            &option(0x20, 0x01, 8),
            On::Data,
            &[2],
            None,
        ),
        case(
            "DSS L180-181: 8-byte data ACK (ACK64)",
            &option(0x20, 0x03, 12),
            On::Data,
            &[2],
            None,
        ),
        case(
            "DSS L186-191: mapping, 4-byte DSN (MAP32)",
            &option(0x20, 0x04, 14),
            On::Data,
            &[2],
            None,
        ),
        case(
            "DSS L187-188: mapping, 8-byte DSN (MAP64), and 8-byte ACK",
            &option(0x20, 0x0f, 4 + 8 + 14),
            On::Data,
            &[2],
            None,
        ),
        case(
            "DSS L197: `expected_opsize + TCPOLEN_MPTCP_DSS_CHECKSUM` (even without a mapping)",
            &option(0x20, 0x01, 10),
            On::Data,
            &[2],
            None,
        ),
        case(
            "DSS L165: DATA_FIN (0x10) and the bits above the mask change no length",
            &option(0x20, 0xf5, 18),
            On::Data,
            &[2],
            None,
        ),
        case(
            "DSS L196-198: neither expected nor expected + 2",
            &option(0x20, 0x05, 16),
            On::Data,
            &[],
            MALFORMED,
        ),
        // ADD_ADDR (L242-299): the echo bit alone (L243, MPTCP_ADDR_ECHO = BIT(0)).
        case(
            "ADD_ADDR L244-247: no echo, TCPOLEN_MPTCP_ADD_ADDR (16)",
            &option(0x30, 0x01, 16),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L245-246: no echo, TCPOLEN_MPTCP_ADD_ADDR_PORT (18)",
            &option(0x30, 0x01, 18),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L249-251: no echo, TCPOLEN_MPTCP_ADD_ADDR6 (28)",
            &option(0x30, 0x01, 28),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L249-251: no echo, TCPOLEN_MPTCP_ADD_ADDR6_PORT (30)",
            &option(0x30, 0x01, 30),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L253-254: no echo, 8 bytes (an echo's length): ignored",
            &option(0x30, 0x01, 8),
            On::Data,
            &[],
            MALFORMED,
        ),
        case(
            "ADD_ADDR L256-258: echo, TCPOLEN_MPTCP_ADD_ADDR_BASE (8)",
            &option(0x31, 0x01, 8),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L256-257: echo, TCPOLEN_MPTCP_ADD_ADDR_BASE_PORT (10)",
            &option(0x31, 0x01, 10),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L260-262: echo, TCPOLEN_MPTCP_ADD_ADDR6_BASE (20)",
            &option(0x31, 0x01, 20),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L260-262: echo, TCPOLEN_MPTCP_ADD_ADDR6_BASE_PORT (22)",
            &option(0x31, 0x01, 22),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L264-265: echo, 16 bytes (an HMAC form): ignored",
            &option(0x31, 0x01, 16),
            On::Data,
            &[],
            MALFORMED,
        ),
        case(
            "ADD_ADDR L243-244: the nibble's other bits are not looked at: 0x2 has no echo",
            &option(0x32, 0x01, 16),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L243, L256: 0x3 is an echo",
            &option(0x33, 0x01, 8),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L243-247: nibble 4 (RFC 6824's IPv4) has no echo bit: the v1 HMAC form",
            &option(0x34, 0x01, 16),
            On::Data,
            &[3],
            None,
        ),
        case(
            "ADD_ADDR L243, L260-261: nibble 0xf is an echo, IPv6",
            &option(0x3f, 0x01, 20),
            On::Data,
            &[3],
            None,
        ),
        case(
            "not Linux: ADD_ADDR v0 (RFC 6824), IPv4 without HMAC, accepted for iOS",
            &option(0x34, 0x01, 8),
            On::Data,
            &[3],
            None,
        ),
        case(
            "not Linux: ADD_ADDR v0 (RFC 6824), IPv6 with a port, accepted for iOS",
            &option(0x36, 0x01, 22),
            On::Data,
            &[3],
            None,
        ),
        // RM_ADDR (L301-313): one to MPTCP_RM_IDS_MAX (8) ids after the 3-byte base.
        case(
            "RM_ADDR L302: `opsize < TCPOLEN_MPTCP_RM_ADDR_BASE + 1` (3 bytes, no id)",
            &option(0x40, 0, 3),
            On::Data,
            &[],
            MALFORMED,
        ),
        case(
            "RM_ADDR L302-304: one id (4 bytes)",
            &option(0x40, 1, 4),
            On::Data,
            &[4],
            None,
        ),
        case(
            "RM_ADDR L303: eight ids (11 bytes)",
            &option(0x40, 1, 11),
            On::Data,
            &[4],
            None,
        ),
        case(
            "RM_ADDR L303: `opsize > BASE + MPTCP_RM_IDS_MAX` (12 bytes)",
            &option(0x40, 1, 12),
            On::Data,
            &[],
            MALFORMED,
        ),
        // MP_PRIO (L315-322), MP_FASTCLOSE (L324-333), MP_TCPRST (L335-348), MP_FAIL
        // (L350-358): one length each.
        case(
            "MP_PRIO L316: TCPOLEN_MPTCP_PRIO (3)",
            &option(0x51, 0, 3),
            On::Data,
            &[5],
            None,
        ),
        case(
            "not Linux: MP_PRIO with an address id (RFC 6824, 4 bytes), accepted for iOS",
            &option(0x51, 1, 4),
            On::Data,
            &[5],
            None,
        ),
        case(
            "MP_PRIO L316-317: 5 bytes",
            &option(0x51, 1, 5),
            On::Data,
            &[],
            MALFORMED,
        ),
        case(
            "MP_FASTCLOSE L325: TCPOLEN_MPTCP_FASTCLOSE (12)",
            &option(0x70, 0, 12),
            On::Ack,
            &[7],
            None,
        ),
        case(
            "MP_FASTCLOSE L325-326: 11 bytes",
            &option(0x70, 0, 11),
            On::Ack,
            &[],
            MALFORMED,
        ),
        case(
            "MP_TCPRST L336, L339: 4 bytes on a reset",
            &option(0x80, 1, 4),
            On::Rst,
            &[8],
            None,
        ),
        case(
            "MP_TCPRST L339-340: `!(tcp_flags & TCPHDR_RST)` breaks",
            &option(0x80, 1, 4),
            On::Ack,
            &[],
            MALFORMED,
        ),
        case(
            "MP_TCPRST L336-337: 8 bytes on a reset",
            &option(0x80, 1, 8),
            On::Rst,
            &[],
            MALFORMED,
        ),
        case(
            "MP_FAIL L351: TCPOLEN_MPTCP_FAIL (12)",
            &option(0x60, 0, 12),
            On::Data,
            &[6],
            None,
        ),
        case(
            "MP_FAIL L351-352: 16 bytes",
            &option(0x60, 0, 16),
            On::Data,
            &[],
            MALFORMED,
        ),
    ]
}

/// Each case on a flow of its own, through both hooks and the model: the subtypes that
/// count, the MP_CAPABLE version, the error, and exactly the counters that move. One packet
/// of a flow never makes it MPTCP: that takes option 30 both ways.
#[test]
fn the_walk_and_each_subtype_agree_with_linux_case_by_case() {
    let kernel = Kernel::load();
    for (port, case) in (47000..).zip(cases()) {
        let segment = Segment::tcp("192.0.2.10", "198.51.100.10", port, 443).options(&case.options);
        let segment = match case.on {
            On::Syn => segment.syn().payload(&[]),
            On::SynAck => segment.syn_ack().payload(&[]),
            On::Ack => segment.payload(&[]),
            On::Data => segment,
            On::Rst => segment.rst().payload(&[]),
        };
        let packet = segment.build();
        let name = case.linux;
        let mask = case.subtypes.iter().fold(0u16, |m, s| m | 1 << s);

        let model = walk_tcp_options(
            &case.options,
            SegmentKind {
                syn: matches!(case.on, On::Syn | On::SynAck),
                ack: case.on != On::Syn,
                rst: case.on == On::Rst,
                payload: case.on == On::Data,
            },
        );
        assert_eq!(model.mptcp.subtypes, mask, "model: {name}: subtypes");
        assert_eq!(model.error, case.error, "model: {name}: error");

        let run = kernel.run(&packet);
        assert_eq!(run.report.mptcp_subtypes, mask, "{name}: subtypes");
        assert_eq!(
            run.report.mptcp_version,
            case.version.unwrap_or(MPTCP_VERSION_NONE),
            "{name}: MP_CAPABLE version"
        );
        assert_eq!(
            ParseError::from_code(run.report.error),
            case.error,
            "{name}: error"
        );
        let mut expected = vec!["packets".to_owned(), "ipv4".into(), "tcp".into()];
        expected.push("flow_created".into());
        // One packet, one direction: never a handshake seen both ways, so never MPTCP
        // (docs/design.md, 'MPTCP state of a flow'); what the walk found is counted.
        run.assert_untouched();
        expected.push("class_normal".into());
        if mask != 0 {
            expected.push("mptcp_option".into());
            expected.extend(
                case.subtypes
                    .iter()
                    .map(|s| mptcp::SUBTYPE_COUNTERS[*s as usize].into()),
            );
        }
        match case.version {
            None => {}
            Some(0) => expected.push("mp_capable_v0".into()),
            Some(1) => expected.push("mp_capable_v1".into()),
            Some(_) => expected.push("mp_capable_other_version".into()),
        }
        if let Some(error) = case.error {
            expected.push(format!("error_{}", error.name()));
        }
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        run.assert_moved(&expected);
    }
}
