//! DSCP names (RFC 2474, 4594, 8622) as operators write them: `LE`, `CS1`, `AF11`, `EF`. The
//! kernel knows only numbers; the names are the operator's words, so they live on the user
//! side, here below both the policy's rules (`rules`, `control::policy`, `control::shape`'s
//! bulk DSCPs) and the views that print a DSCP (`report::flows`, the CLI).

use classifier_common::config::DSCP_MAX;

const DSCP_NAMES: [(&str, u8); 22] = [
    ("CS0", 0),
    ("LE", 1),
    ("CS1", 8),
    ("AF11", 10),
    ("AF12", 12),
    ("AF13", 14),
    ("CS2", 16),
    ("AF21", 18),
    ("AF22", 20),
    ("AF23", 22),
    ("CS3", 24),
    ("AF31", 26),
    ("AF32", 28),
    ("AF33", 30),
    ("CS4", 32),
    ("AF41", 34),
    ("AF42", 36),
    ("AF43", 38),
    ("CS5", 40),
    ("EF", 46),
    ("CS6", 48),
    ("CS7", 56),
];

/// A DSCP from its name (any case) or number.
pub fn parse_dscp(text: &str) -> Result<u8, String> {
    if let Some((_, value)) = DSCP_NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
    {
        return Ok(*value);
    }
    match text.parse::<u8>() {
        Ok(value) if value <= DSCP_MAX => Ok(value),
        _ => Err(format!(
            "`{text}` is not a DSCP: use a name (CS0-CS7, AF11-AF43, EF, LE), a number 0-63, \
             or `keep`"
        )),
    }
}

/// The DSCP's name when it has one, else its number.
pub fn dscp_name(value: u8) -> String {
    DSCP_NAMES
        .iter()
        .find(|(_, v)| *v == value)
        .map_or_else(|| value.to_string(), |(name, _)| (*name).to_owned())
}
