//! Reading prefixes: from the command line or from a file of one CIDR per line, `#` starting
//! a comment, blank lines ignored. A bare address stands for its /32 or /128. Host bits set
//! (`17.1.2.3/8`) are an error rather than a silent truncation: they are usually a typo. A
//! file that someone other than root could have written is refused (`trust::read_file`).

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use ipnet::IpNet;

use crate::Error;

/// Parses one prefix as an operator writes it.
pub fn parse_prefix(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text.parse().map_err(|_| {
        "expected an address or a CIDR prefix such as 17.0.0.0/8 or 2620:149::/32".to_owned()
    })?;
    if net.trunc() != net {
        return Err(format!("host bits are set; did you mean {}?", net.trunc()));
    }
    Ok(net)
}

pub fn parse_prefix_arg(text: &str) -> Result<IpNet, Error> {
    parse_prefix(text).map_err(|reason| Error::InvalidPrefix {
        text: text.to_owned(),
        reason,
    })
}

/// Every prefix in `text`, the contents of `path`; the first bad line is an error naming it.
pub fn parse_prefix_text(path: &Path, text: &str) -> Result<Vec<IpNet>, Error> {
    let mut prefixes = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let prefix = parse_prefix(content).map_err(|reason| Error::PrefixFile {
            path: path.to_path_buf(),
            line: number + 1,
            reason: format!("`{}`: {reason}", shown(content)),
        })?;
        prefixes.push(prefix);
    }
    Ok(prefixes)
}

/// A line as an error message shows it: invisible characters (a byte-order mark, a NUL)
/// escaped, and cut short when long.
fn shown(content: &str) -> String {
    const MOST: usize = 60;
    let escaped: String = content.escape_debug().collect();
    match escaped.char_indices().nth(MOST) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

/// The largest prefix file read: a million IPv6 prefixes of 44 characters, and some.
const PREFIX_FILE_LIMIT: u64 = 256 << 20;

pub fn read_prefix_file(path: &Path) -> Result<Vec<IpNet>, Error> {
    let bytes = crate::trust::read_file(path, PREFIX_FILE_LIMIT).map_err(|error| {
        crate::trust::read_error(error, |source| Error::PrefixFile {
            path: PathBuf::from(path),
            line: 0,
            reason: format!("cannot read it: {source}"),
        })
    })?;
    let text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        Error::PrefixFile {
            path: PathBuf::from(path),
            line: valid.iter().filter(|b| **b == b'\n').count() + 1,
            reason: "not UTF-8 text".to_owned(),
        }
    })?;
    parse_prefix_text(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_operators_write() {
        let text = "# Apple\n17.0.0.0/8  # ARIN\n\n  2620:149::/32\n17.253.0.10\n";
        let prefixes = parse_prefix_text(Path::new("apple.txt"), text).unwrap();
        let expected: Vec<IpNet> = ["17.0.0.0/8", "2620:149::/32", "17.253.0.10/32"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(prefixes, expected);
    }

    #[test]
    fn a_bad_line_names_the_file_and_line() {
        let text = "17.0.0.0/8\n\n17.300.0.0/16\n";
        let error = parse_prefix_text(Path::new("lists/apple.txt"), text).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("lists/apple.txt:3: `17.300.0.0/16`"),
            "{message}"
        );
    }

    #[test]
    fn invisible_and_long_lines_are_shown_escaped_and_cut() {
        let text = format!("\u{feff}17.0.0.0/8\n{}\n", "1".repeat(100_000));
        let error = parse_prefix_text(Path::new("l.txt"), &text).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("l.txt:1: `\\u{feff}17.0.0.0/8`"),
            "{error}"
        );
        let error = parse_prefix_text(Path::new("l.txt"), &text[text.find('\n').unwrap()..])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!("l.txt:2: `{}…`", "1".repeat(60))),
            "{error}"
        );
    }

    #[test]
    fn host_bits_are_an_error_with_a_suggestion() {
        let reason = parse_prefix("17.1.2.3/8").unwrap_err();
        assert!(reason.contains("did you mean 17.0.0.0/8"), "{reason}");
    }
}
