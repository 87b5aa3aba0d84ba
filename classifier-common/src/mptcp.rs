//! Multipath TCP option (TCP option kind 30) subtypes, RFC 8684 §3 / RFC 6824 §3.

/// TCP option kind carrying MPTCP.
pub const TCP_OPTION_MPTCP: u8 = 30;

/// The subtype is the high nibble of the option's third byte. Read it as an integer and
/// convert with `from_code`: never transmute packet bytes into this enum.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MptcpSubtype {
    MpCapable = 0,
    MpJoin = 1,
    Dss = 2,
    AddAddr = 3,
    RemoveAddr = 4,
    MpPrio = 5,
    MpFail = 6,
    MpFastclose = 7,
    MpTcprst = 8,
}

impl MptcpSubtype {
    pub const ALL: [MptcpSubtype; 9] = [
        Self::MpCapable,
        Self::MpJoin,
        Self::Dss,
        Self::AddAddr,
        Self::RemoveAddr,
        Self::MpPrio,
        Self::MpFail,
        Self::MpFastclose,
        Self::MpTcprst,
    ];

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u8 == code)
    }

    /// Stable snake_case name, used in JSON output and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::MpCapable => "mp_capable",
            Self::MpJoin => "mp_join",
            Self::Dss => "dss",
            Self::AddAddr => "add_addr",
            Self::RemoveAddr => "remove_addr",
            Self::MpPrio => "mp_prio",
            Self::MpFail => "mp_fail",
            Self::MpFastclose => "mp_fastclose",
            Self::MpTcprst => "mp_tcprst",
        }
    }
}

/// MP_CAPABLE version nibble: 0 is RFC 6824 (iOS), 1 is RFC 8684 (Linux).
pub const MPTCP_VERSION_NONE: u8 = 0xff;
