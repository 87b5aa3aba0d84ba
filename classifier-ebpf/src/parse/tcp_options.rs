//! The TCP options walk, looking for Multipath TCP (kind 30).
//!
//! All 40 option bytes are walked with a constant bound. EOL ends the walk, NOP advances by
//! one, any other kind needs a length of at least 2 that stays inside the header (pping learned
//! that length < 2 must be rejected: a walker that accepts 0 never advances).

use classifier_common::{
    ParseError,
    limits::MAX_TCP_OPTIONS_LEN,
    mptcp::{MPTCP_VERSION_NONE, TCP_OPTION_MPTCP},
};

const TCP_OPTION_EOL: u8 = 0;
const TCP_OPTION_NOP: u8 = 1;
const MPTCP_MIN_OPTION_LEN: usize = 3;
const MP_CAPABLE: u8 = 0;

/// What the MPTCP options of one TCP header said. C layout: it is passed to a global
/// BPF function.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct MptcpSeen {
    /// Bit n: an option with subtype n is present.
    pub subtypes: u16,
    /// The MP_CAPABLE version nibble, or `MPTCP_VERSION_NONE`.
    pub version: u8,
}

impl MptcpSeen {
    pub const NONE: Self = Self {
        subtypes: 0,
        version: MPTCP_VERSION_NONE,
    };

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

/// Walks `len` (0..=40) option bytes.
///
/// The walk visits the 40 byte positions in order, each at a constant index, and keeps only
/// "where the next option starts" as it goes. A loop over a variable offset would make the
/// verifier track that offset precisely and explore every combination of option lengths.
/// It works on a copy in the stack: packet reads would each need a bounds check that LLVM
/// merges in ways the verifier cannot follow.
#[inline(always)]
pub fn walk_tcp_options(options: &OptionBytes, len: usize) -> Result<MptcpSeen, ParseError> {
    WalkResult(classifier_walk_tcp_options(options, len as u32)).into_result()
}

/// The walk as a global BPF function: the verifier checks it once, on its own, instead of
/// once for every path that reaches it (VLAN depths × IP versions × extension chains), which
/// exceeded its 1M-instruction budget. Global functions take only scalars and pointers to
/// sized memory (which may be null), and return a scalar: `WalkResult`'s packing.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn classifier_walk_tcp_options(options: *const OptionBytes, len: u32) -> u64 {
    let Some(options) = (unsafe { options.as_ref() }) else {
        return WalkResult::failed(ParseError::TcpOptionPastHeader).0;
    };
    let len = len as usize;
    let mut walk = Walk {
        next: 0,
        seen: MptcpSeen::NONE,
    };
    macro_rules! visit_all {
        ($($position:literal)*) => {
            $(
                match visit::<$position>(options, len, &mut walk) {
                    Ok(true) => {}
                    Ok(false) => return WalkResult::done(walk.seen).0,
                    Err(error) => return WalkResult::failed(error).0,
                }
            )*
        };
    }
    visit_all!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
               20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39);
    WalkResult::done(walk.seen).0
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

    #[inline(always)]
    fn failed(error: ParseError) -> Self {
        Self((error as u64) << 24)
    }

    #[inline(always)]
    fn into_result(self) -> Result<MptcpSeen, ParseError> {
        match ParseError::from_code((self.0 >> 24) as u8) {
            None => Ok(MptcpSeen {
                subtypes: self.0 as u16,
                version: (self.0 >> 16) as u8,
            }),
            Some(error) => Err(error),
        }
    }
}

const _: () = assert!(MAX_TCP_OPTIONS_LEN == 40);

struct Walk {
    /// Position where the next option starts.
    next: usize,
    seen: MptcpSeen,
}

/// Looks at byte `AT`; returns whether the walk goes on.
#[inline(always)]
fn visit<const AT: usize>(
    options: &OptionBytes,
    len: usize,
    walk: &mut Walk,
) -> Result<bool, ParseError> {
    if AT >= len {
        return Ok(false);
    }
    if AT != walk.next {
        // Inside the body of the current option.
        return Ok(true);
    }
    let kind = options[AT];
    if kind == TCP_OPTION_EOL {
        return Ok(false);
    }
    if kind == TCP_OPTION_NOP {
        walk.next = AT + 1;
        return Ok(true);
    }
    if AT + 2 > len {
        return Err(ParseError::TcpOptionPastHeader);
    }
    let option_len = options[AT + 1] as usize;
    if option_len < 2 {
        return Err(ParseError::TcpOptionBadLength);
    }
    if AT + option_len > len {
        return Err(ParseError::TcpOptionPastHeader);
    }
    if kind == TCP_OPTION_MPTCP {
        if option_len < MPTCP_MIN_OPTION_LEN {
            return Err(ParseError::MptcpOptionTooShort);
        }
        let subtype_version = options[AT + 2];
        let subtype = subtype_version >> 4;
        walk.seen.subtypes |= 1 << subtype;
        if subtype == MP_CAPABLE {
            walk.seen.version = subtype_version & 0x0f;
        }
    }
    walk.next = AT + option_len;
    Ok(true)
}
