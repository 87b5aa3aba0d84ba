//! Stable names for every counter slot: used as JSON keys, metric labels and in test output.

use classifier_common::{
    Counter, MptcpSubtype, ParseError,
    counter::{COUNTER_SLOTS, LIST_BASE, MPTCP_SUBTYPE_BASE, PARSE_ERROR_BASE},
};

/// The name of counter slot `index`: a fixed counter's name, `mptcp_<subtype>`,
/// `error_<kind>`, or `list_<n>`; `None` for unused slots.
pub fn counter_label(index: u32) -> Option<String> {
    if let Some(counter) = Counter::ALL.into_iter().find(|c| c.index() == index) {
        return Some(counter.name().to_owned());
    }
    if (MPTCP_SUBTYPE_BASE..PARSE_ERROR_BASE).contains(&index) {
        let code = (index - MPTCP_SUBTYPE_BASE) as u8;
        return Some(match MptcpSubtype::from_code(code) {
            Some(subtype) => format!("mptcp_{}", subtype.name()),
            None => format!("mptcp_subtype_{code}"),
        });
    }
    if (PARSE_ERROR_BASE..LIST_BASE).contains(&index) {
        let code = (index - PARSE_ERROR_BASE) as u8;
        return ParseError::from_code(code).map(|error| format!("error_{}", error.name()));
    }
    if (LIST_BASE..COUNTER_SLOTS).contains(&index) {
        return Some(format!("list_{}", index - LIST_BASE));
    }
    None
}
