//! Values of the LPM tries. Their keys are aya's `lpm_trie::Key<[u8; 4]>` and
//! `Key<[u8; 16]>`: a prefix length and the address in network byte order.

/// What a prefix says: the lists (bit n = list n) it belongs to. The longest matching prefix
/// decides, so a more specific prefix must carry every list it should be in.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixValue {
    pub lists: u32,
}
