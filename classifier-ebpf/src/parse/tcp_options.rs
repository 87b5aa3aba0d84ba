//! The TCP options walk, looking for Multipath TCP (kind 30).
//!
//! The walk goes option by option, at most 40 rounds. EOL ends it, NOP advances by one, any
//! other kind needs a length of at least 2 that stays inside the header (pping learned
//! that length < 2 must be rejected: a walker that accepts 0 never advances).
//!
//! An option 30 counts only when Linux's MPTCP stack (`mptcp_parse_option` in
//! net/mptcp/options.c) would accept it: the length its subtype and the segment allow, and
//! for MP_CAPABLE the version and flags. An option 30 that does not fit, or is too short to
//! hold a subtype, is reported and skipped, as Linux skips it; an option whose length breaks
//! the walk stops it, and what was seen before stands (docs/design.md, 'TCP options and
//! MPTCP').

use classifier_common::{
    ParseError,
    limits::MAX_TCP_OPTIONS_LEN,
    mptcp::{MPTCP_VERSION_NONE, TCP_OPTION_MPTCP},
};

const TCP_OPTION_EOL: u8 = 0;
pub(super) const TCP_OPTION_NOP: u8 = 1;
const MPTCP_MIN_OPTION_LEN: usize = 3;

const MP_CAPABLE: u8 = 0;
const MP_JOIN: u8 = 1;
const DSS: u8 = 2;
const ADD_ADDR: u8 = 3;
const REMOVE_ADDR: u8 = 4;
const MP_PRIO: u8 = 5;
const MP_FAIL: u8 = 6;
const MP_FASTCLOSE: u8 = 7;
const MP_TCPRST: u8 = 8;

/// What the walk needs to know of the segment, as `Segment` bits: MP_CAPABLE's length
/// depends on the handshake step, MP_TCPRST is valid only on a reset.
pub const SEGMENT_SYN: u32 = 1;
pub const SEGMENT_ACK: u32 = 2;
pub const SEGMENT_RST: u32 = 4;
/// The segment carries payload after its header.
pub const SEGMENT_PAYLOAD: u32 = 8;

/// MP_CAPABLE flags (RFC 8684 §3.1): the crypto bits must say HMAC-SHA256, and the
/// extensibility bit must be clear, or Linux ignores the option.
const MPC_FLAG_CRYPTO_MASK: u8 = 0x1f;
const MPC_FLAG_HMAC_SHA256: u8 = 0x01;
const MPC_FLAG_EXTENSIBILITY: u8 = 0x40;

/// DSS flags (RFC 8684 §3.3): which fields follow, hence the option's length.
const DSS_HAS_ACK: u8 = 0x01;
const DSS_ACK64: u8 = 0x02;
const DSS_HAS_MAP: u8 = 0x04;
const DSS_DSN64: u8 = 0x08;
const DSS_CHECKSUM_LEN: usize = 2;

/// ADD_ADDR's echo bit (RFC 8684 §3.4.1): an echo carries no HMAC. Linux reads this bit
/// alone (`MPTCP_ADDR_ECHO`); the other three bits of the nibble are not checked.
const ADD_ADDR_ECHO: u8 = 0x01;
/// RFC 6824's ADD_ADDR has the IP version where RFC 8684 has the echo bit.
const ADD_ADDR_V0_IPV4: u8 = 4;
const ADD_ADDR_V0_IPV6: u8 = 6;

/// What the MPTCP options of one TCP header said. Passed to the global BPF function
/// `classifier_track` packed in one integer (`pack`).
#[derive(Copy, Clone)]
pub struct MptcpSeen {
    /// Bit n: an option with subtype n is present.
    pub subtypes: u16,
    /// The MP_CAPABLE version nibble, or `MPTCP_VERSION_NONE`.
    pub version: u8,
    /// The segment's `SEGMENT_*` bits: whether it is a SYN or SYN/ACK decides what its
    /// options say about the flow (docs/design.md, 'MPTCP state of a flow').
    pub segment: u8,
}

impl MptcpSeen {
    pub const NONE: Self = Self {
        subtypes: 0,
        version: MPTCP_VERSION_NONE,
        segment: 0,
    };

    /// Subtypes (bits 0..16), version (16..24), segment (24..32).
    #[inline(always)]
    pub fn pack(&self) -> u32 {
        u32::from(self.subtypes) | u32::from(self.version) << 16 | u32::from(self.segment) << 24
    }

    #[inline(always)]
    pub fn unpack(packed: u32) -> Self {
        Self {
            subtypes: packed as u16,
            version: (packed >> 16) as u8,
            segment: (packed >> 24) as u8,
        }
    }

    #[inline(always)]
    pub fn any(&self) -> bool {
        self.subtypes != 0
    }
}

/// The option bytes copied out of the packet; 64 bytes so that any index masked with 63 is
/// inside it, which is how the walk proves its reads to the verifier.
pub type OptionBytes = [u8; 64];

/// Copies `len` (0..=40, a multiple of 4) option bytes at `options` into `copy`.
#[inline(always)]
pub fn copy_tcp_options(
    options: usize,
    len: usize,
    end: usize,
    copy: &mut OptionBytes,
) -> Result<(), ParseError> {
    for word in 0..MAX_TCP_OPTIONS_LEN / 4 {
        let offset = word * 4;
        if offset >= len {
            break;
        }
        let at = options + offset;
        if at + 4 > end {
            return Err(ParseError::TcpHeaderPastPacket);
        }
        let bytes = unsafe { *(at as *const [u8; 4]) };
        copy[offset..offset + 4].copy_from_slice(&bytes);
    }
    Ok(())
}

/// What the walk found: the valid MPTCP options up to where it stopped, and why it stopped
/// early, if it did.
pub struct Walked {
    pub seen: MptcpSeen,
    /// A `ParseError` code, or 0: `tcp_option_bad_length` or `tcp_option_past_header` (the
    /// walk stopped there), or `mptcp_option_too_short` or `mptcp_option_malformed` (an option
    /// 30 was skipped, the last one skipped says which). The packet is classified all the
    /// same.
    pub error: u8,
}

/// Walks `len` (0..=40) option bytes of a segment described by `segment` (`SEGMENT_*`).
///
/// The walk goes option by option, a bounded loop of at most 40 rounds, each reading a kind
/// and a length at `next` and moving past the option. Reads are at indexes masked with 63 in
/// the 64-byte copy, and `next` is stored masked too (`walk_one_option`), so the verifier
/// carries no bounds on it from round to round and can prune rounds; unmasked, the bounds
/// differ from path to path and the verifier runs out of its budget. It works on a copy:
/// packet reads would each need a bounds check that LLVM merges in ways the verifier cannot
/// follow. The walks measured against this one (by position, `bpf_loop`, the fit check
/// inlined) and why each lost are in docs/design.md, 'TCP options and MPTCP'.
///
/// The usual segment skips the walk (`parse_tcp`: a leading NOP, NOP, timestamps that ends
/// the options leaves nothing to walk).
#[inline(always)]
pub fn walk_tcp_options(options: &OptionBytes, len: usize, segment: u32) -> Walked {
    WalkResult(classifier_walk_tcp_options(options, len as u32, segment)).into_walked()
}

/// The walk as a global BPF function: the verifier checks it once, on its own, instead of
/// once for every path that reaches it (VLAN depths × IP versions × extension chains), which
/// exceeded its 1M-instruction budget. Global functions take only scalars and pointers to
/// sized memory (which may be null), and return a scalar: `WalkResult`'s packing.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn classifier_walk_tcp_options(
    options: *const OptionBytes,
    len: u32,
    segment: u32,
) -> u64 {
    let Some(options) = (unsafe { options.as_ref() }) else {
        return WalkResult::failed(MptcpSeen::NONE, ParseError::TcpOptionPastHeader).0;
    };
    let len = len as usize;
    let mut walk = Walk {
        next: 0,
        segment,
        seen: MptcpSeen::NONE,
        skipped: 0,
    };
    // Every option but EOL (which ends the walk) takes at least one byte: 40 rounds reach the
    // end of any 40 bytes.
    for _ in 0..MAX_TCP_OPTIONS_LEN {
        match walk_one_option(options, len, &mut walk) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return WalkResult::failed(walk.seen, error).0,
        }
    }
    walk.result().0
}

/// The walk's result packed in one integer: subtypes (bits 0..16), MP_CAPABLE version
/// (16..24), `ParseError` code or 0 (24..32).
#[derive(Copy, Clone)]
struct WalkResult(u64);

impl WalkResult {
    #[inline(always)]
    fn done(seen: MptcpSeen) -> Self {
        Self(u64::from(seen.subtypes) | (u64::from(seen.version) << 16))
    }

    /// The walk stopped at a bad option, or skipped one; what it saw stands.
    #[inline(always)]
    fn failed(seen: MptcpSeen, error: ParseError) -> Self {
        Self::failed_code(seen, error as u8)
    }

    #[inline(always)]
    fn failed_code(seen: MptcpSeen, error: u8) -> Self {
        Self(Self::done(seen).0 | (u64::from(error) << 24))
    }

    #[inline(always)]
    fn into_walked(self) -> Walked {
        Walked {
            seen: MptcpSeen {
                subtypes: self.0 as u16,
                version: (self.0 >> 16) as u8,
                segment: 0,
            },
            error: (self.0 >> 24) as u8,
        }
    }
}

const _: () = assert!(MAX_TCP_OPTIONS_LEN == 40);

struct Walk {
    /// Position where the next option starts.
    next: usize,
    /// `SEGMENT_*` bits of the segment.
    segment: u32,
    seen: MptcpSeen,
    /// The `ParseError` code of the last option 30 that Linux would ignore and the walk
    /// skipped (`mptcp_option_too_short`, `mptcp_option_malformed`), or 0.
    skipped: u8,
}

impl Walk {
    /// The result of a walk that went to its end.
    #[inline(always)]
    fn result(&self) -> WalkResult {
        WalkResult::failed_code(self.seen, self.skipped)
    }
}

/// Reads the option that starts at `walk.next`; returns whether the walk goes on.
///
/// Every index into the copy is masked with 63, so the verifier needs nothing of `walk.next`
/// to accept the reads. `walk.next` is stored masked too: it never exceeds `len` (at most 40),
/// so the mask changes no value, but it keeps the verifier from carrying the bounds that the
/// comparisons with `len` taught it into the next round, where states that differ only in
/// those bounds could not be pruned.
#[inline(always)]
fn walk_one_option(options: &OptionBytes, len: usize, walk: &mut Walk) -> Result<bool, ParseError> {
    let at = walk.next;
    if at >= len {
        return Ok(false);
    }
    let kind = options[at & 63];
    if kind == TCP_OPTION_EOL {
        return Ok(false);
    }
    if kind == TCP_OPTION_NOP {
        walk.next = (at + 1) & 63;
        return Ok(true);
    }
    if at + 2 > len {
        return Err(ParseError::TcpOptionPastHeader);
    }
    let option_len = options[(at + 1) & 63] as usize;
    if option_len < 2 {
        return Err(ParseError::TcpOptionBadLength);
    }
    if at + option_len > len {
        return Err(ParseError::TcpOptionPastHeader);
    }
    if kind == TCP_OPTION_MPTCP && option_len < MPTCP_MIN_OPTION_LEN {
        // No subtype byte. Linux's `mptcp_get_options` hands it to `mptcp_parse_option` all
        // the same, where no subtype accepts 2 bytes, and walks on: so does the walk.
        walk.skipped = ParseError::MptcpOptionTooShort as u8;
    } else if kind == TCP_OPTION_MPTCP {
        let subtype_version = options[(at + 2) & 63];
        let (subtype, low_nibble) = (subtype_version >> 4, subtype_version & 0x0f);
        // The fourth byte holds MP_CAPABLE's and DSS's flags. It is inside the copy whatever
        // the option's length, and read without a branch on the length (one more split of
        // every walk state): a 3-byte option is refused by its length alone, whatever it says.
        let flags = options[(at + 3) & 63];
        match Fit::from_code(classifier_mptcp_option_fits(
            u32::from(subtype_version),
            u32::from(flags),
            option_len as u32,
            walk.segment,
        )) {
            Fit::Valid => {
                walk.seen.subtypes |= 1 << subtype;
                if subtype == MP_CAPABLE {
                    // The last valid one wins, as in Linux, which parses each in turn.
                    walk.seen.version = low_nibble;
                }
            }
            Fit::Unassigned => {}
            // Skipped like Linux skips it; the options after it still count.
            Fit::Malformed => walk.skipped = ParseError::MptcpOptionMalformed as u8,
        }
    }
    walk.next = (at + option_len) & 63;
    Ok(true)
}

/// How an option 30 fits Linux's rules.
#[derive(Copy, Clone)]
enum Fit {
    Valid = 0,
    /// Subtypes 9..=15 are not assigned: Linux ignores them, and so does the classifier.
    Unassigned = 1,
    Malformed = 2,
}

impl Fit {
    #[inline(always)]
    fn from_code(code: u32) -> Self {
        match code {
            0 => Self::Valid,
            1 => Self::Unassigned,
            _ => Self::Malformed,
        }
    }
}

/// `mptcp_option_fits` as a function of its own, called from the walk's rounds: one
/// body of comparisons instead of inlined copies, and only scalars in and out, so nothing
/// it compares makes the walk's own values exact to the verifier. Scalars in, a `Fit` code
/// out.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn classifier_mptcp_option_fits(
    subtype_version: u32,
    flags: u32,
    len: u32,
    segment: u32,
) -> u32 {
    let subtype_version = subtype_version as u8;
    mptcp_option_fits(
        subtype_version >> 4,
        subtype_version & 0x0f,
        flags as u8,
        len as usize,
        segment,
    ) as u32
}

/// Whether an option 30 of `subtype`, its third byte's low nibble `low_nibble` (MP_CAPABLE's
/// version, ADD_ADDR's echo bit), fourth byte `flags` and length `len`, in a segment of
/// `segment` bits, is one Linux's `mptcp_parse_option` accepts.
///
/// Three deliberate differences, for the RFC 6824 (v0) options iOS still sends, which Linux
/// (v1 only) ignores: MP_CAPABLE v0 is accepted at 12 bytes on a SYN or SYN/ACK and 20
/// otherwise; ADD_ADDR v0, whose low nibble is the IP version (4 or 6, whose low bit, v1's
/// echo bit, is clear), at 8 or 10 bytes for IPv4 and 20 or 22 for IPv6 (no HMAC); and MP_PRIO
/// at 4 bytes (v0's form with an address ID) as well as 3.
#[inline(always)]
fn mptcp_option_fits(subtype: u8, low_nibble: u8, flags: u8, len: usize, segment: u32) -> Fit {
    let valid = match subtype {
        MP_CAPABLE => mp_capable_fits(low_nibble, flags, len, segment),
        MP_JOIN => matches!(len, 12 | 16 | 24),
        DSS => {
            let mut expected = 4;
            if flags & DSS_HAS_ACK != 0 {
                expected += if flags & DSS_ACK64 != 0 { 8 } else { 4 };
            }
            if flags & DSS_HAS_MAP != 0 {
                expected += if flags & DSS_DSN64 != 0 { 14 } else { 10 };
            }
            len >= 4 && (len == expected || len == expected + DSS_CHECKSUM_LEN)
        }
        ADD_ADDR => add_addr_fits(low_nibble, len),
        // One to eight address IDs.
        REMOVE_ADDR => (4..=11).contains(&len),
        MP_PRIO => len == 3 || len == 4,
        MP_FAIL | MP_FASTCLOSE => len == 12,
        MP_TCPRST => len == 4 && segment & SEGMENT_RST != 0,
        _ => return Fit::Unassigned,
    };
    if valid { Fit::Valid } else { Fit::Malformed }
}

/// ADD_ADDR v1 (RFC 8684 §3.4.1), as Linux reads it: the echo bit alone decides whether an
/// HMAC (8 bytes) follows the address (4 or 16 bytes) and optional port (2); the nibble's
/// other bits are not looked at. v0 (RFC 6824), for iOS: the nibble is the IP version, and
/// the address and optional port follow without an HMAC.
#[inline(always)]
fn add_addr_fits(low_nibble: u8, len: usize) -> bool {
    let v1 = if low_nibble & ADD_ADDR_ECHO == 0 {
        matches!(len, 16 | 18 | 28 | 30)
    } else {
        matches!(len, 8 | 10 | 20 | 22)
    };
    v1 || (low_nibble == ADD_ADDR_V0_IPV4 && (len == 8 || len == 10))
        || (low_nibble == ADD_ADDR_V0_IPV6 && (len == 20 || len == 22))
}

/// MP_CAPABLE's length is fixed by the handshake step (RFC 8684 §3.1): 4 on the SYN, 12 on
/// the SYN/ACK, 20 on the third ACK, 22 (24 with a checksum) on the first data segment.
#[inline(always)]
fn mp_capable_fits(version: u8, flags: u8, len: usize, segment: u32) -> bool {
    let syn = segment & SEGMENT_SYN != 0;
    if version == 0 {
        return if syn { len == 12 } else { len == 20 };
    }
    let length_fits = if !syn {
        if segment & SEGMENT_PAYLOAD != 0 {
            len == 22 || len == 24
        } else {
            len == 20
        }
    } else if segment & SEGMENT_ACK != 0 {
        len == 12
    } else {
        len == 4
    };
    // A SYN may offer a later version (the peer answers with its own); every other step
    // must carry version 1.
    let version_fits = len == 4 || version == 1;
    length_fits
        && version_fits
        && flags & MPC_FLAG_CRYPTO_MASK == MPC_FLAG_HMAC_SHA256
        && flags & MPC_FLAG_EXTENSIBILITY == 0
}
