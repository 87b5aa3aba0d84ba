//! Values of the LPM tries. Their keys are aya's `lpm_trie::Key<[u8; 4]>` and
//! `Key<[u8; 16]>`: a prefix length and the address in network byte order.

/// What a prefix says. The kernel reads `lists` of the longest matching prefix only, so the
/// user side writes there every list that covers the prefix: its own (added or learned), and
/// those of every shorter prefix that contains it. An address thus matches every list with a prefix covering
/// it, at the cost of one lookup.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixValue {
    /// Effective lists (bit n = list n): `own` plus the lists inherited from covering prefixes.
    pub lists: u32,
    /// Lists this exact prefix was added to. Only the user side reads it.
    pub own: u32,
    /// Lists this address was learned into from DNS answers (details in `LEARNED`). Only the
    /// user side reads it.
    pub learned: u32,
    /// This entry's own prefix length: an LPM lookup returns the longest match, and this is
    /// how the user side tells an exact entry from a covering one without reading the trie.
    pub prefix_len: u32,
}
