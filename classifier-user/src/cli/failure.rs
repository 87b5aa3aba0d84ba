//! How a failed command ends: its exit code, and its message on stderr, or under `-j` the
//! error document `{"error":{"kind":...,"message":...,"exit_code":...}}` on stdout
//! (`docs/json/error.schema.json`). The exit code is the same either way.

use std::ffi::OsString;

use serde::Serialize;

use super::output::{Format, print_json};

/// The kinds the CLI adds to `classifier::Error::KINDS`: `usage` for a command line clap
/// refused, `other` for a failure outside the library (writing the output, say).
pub const CLI_KINDS: [&str; 2] = ["usage", "other"];

#[derive(Debug, Serialize)]
pub struct Failure {
    kind: &'static str,
    message: String,
    exit_code: u8,
}

#[derive(Serialize)]
struct ErrorDocument<'a> {
    error: &'a Failure,
}

impl Failure {
    /// The outermost `classifier::Error` names the kind; any one that is bad input makes the
    /// exit code 2 (README, "Exit codes").
    pub fn of(error: &anyhow::Error) -> Self {
        let library: Vec<&classifier::Error> = error
            .chain()
            .filter_map(|cause| cause.downcast_ref::<classifier::Error>())
            .collect();
        let bad_input = library.iter().any(|e| e.is_bad_input());
        Self {
            kind: library.first().map_or(CLI_KINDS[1], |e| e.kind()),
            message: format!("{error:#}"),
            exit_code: if bad_input { 2 } else { 1 },
        }
    }

    /// A command line clap refused: its message without clap's usage lines.
    pub fn of_usage(error: &clap::Error) -> Self {
        let rendered = error.render().to_string();
        let message = rendered
            .trim_start_matches("error: ")
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        Self {
            kind: CLI_KINDS[0],
            message,
            exit_code: u8::try_from(error.exit_code()).unwrap_or(2),
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }

    pub fn report(&self, format: Format) {
        if format.is_json() {
            let document = ErrorDocument { error: self };
            if print_json(&document, format).is_ok() {
                return;
            }
        }
        eprintln!("error: {}", self.message);
    }
}

/// Whether a command line clap refused asked for JSON: `-j`, `--json`, `-p`, `--pretty`, or
/// short flags run together (`-jp`), before any `--`.
pub fn json_requested(args: impl IntoIterator<Item = OsString>) -> Option<Format> {
    let mut format = None;
    for arg in args.into_iter().skip(1) {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        let short = arg.strip_prefix('-').filter(|s| {
            !s.is_empty() && !s.starts_with('-') && s.chars().all(|c| "jp".contains(c))
        });
        let pretty = arg == "--pretty" || short.is_some_and(|s| s.contains('p'));
        if pretty {
            format = Some(Format::Json { pretty: true });
        } else if (arg == "--json" || short.is_some()) && format.is_none() {
            format = Some(Format::Json { pretty: false });
        }
    }
    format
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(args: &[&str]) -> Option<Format> {
        json_requested(
            std::iter::once("classifier")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn a_refused_command_line_still_says_whether_it_asked_for_json() {
        let (compact, pretty) = (
            Some(Format::Json { pretty: false }),
            Some(Format::Json { pretty: true }),
        );
        assert_eq!(requested(&["-j", "frob"]), compact);
        assert_eq!(requested(&["prefixes", "frob", "--json"]), compact);
        assert_eq!(requested(&["-p", "frob"]), pretty);
        assert_eq!(requested(&["--json", "--pretty"]), pretty);
        assert_eq!(requested(&["-jp"]), pretty);
        assert_eq!(requested(&["frob"]), None);
        // Not flags: a value, or anything after `--`.
        assert_eq!(requested(&["--list", "jp", "--", "-j"]), None);
        assert_eq!(requested(&["--rate", "-5"]), None);
    }
}
