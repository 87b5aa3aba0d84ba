//! The layers' rules that the compiler does not keep, checked on the source (ARCHITECTURE.md,
//! the code map): `report/` imports nothing from `control`, so a view cannot reach the code
//! that changes state; `config_file.rs` imports no layer, which read it, so no cycle runs
//! through it; only `tc/` starts another program. The compiler keeps the rest: only
//! `control` writes the pinned maps (`MapWriter`'s doc tests).
//!
//! The check reads `use` statements and paths, not comments: a doc may name another layer.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// The crate's source directory.
fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `path` (or `path` itself), in a stable order.
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = fs::read_dir(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .flat_map(|path| {
            if path.is_dir() {
                rust_files(&path)
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                vec![path]
            } else {
                Vec::new()
            }
        })
        .collect();
    files.sort();
    files
}

/// A file's code: its lines without comments, each with its line number.
fn code(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    text.lines()
        .enumerate()
        .map(|(index, line)| {
            let code = line.split_once("//").map_or(line, |(code, _)| code);
            (index + 1, code.trim().to_owned())
        })
        .filter(|(_, code)| !code.is_empty())
        .collect()
}

/// A `use` statement, whole (it may span lines), and where it starts.
struct Use {
    line: usize,
    /// The first segment of its path: `crate`, `super`, `std`, `classifier_common`, ...
    root: String,
    /// Every identifier in it.
    names: Vec<String>,
}

fn identifiers(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect()
}

fn uses(code: &[(usize, String)]) -> Vec<Use> {
    let mut uses = Vec::new();
    let mut lines = code.iter();
    while let Some((line, text)) = lines.next() {
        let Some(start) = text.find("use ").filter(|&at| {
            let before = &text[..at];
            before.is_empty() || before.starts_with("pub")
        }) else {
            continue;
        };
        let mut statement = text[start + 4..].to_owned();
        while !statement.ends_with(';') {
            let Some((_, more)) = lines.next() else { break };
            statement += more;
        }
        let names = identifiers(&statement);
        uses.push(Use {
            line: *line,
            root: names.first().cloned().unwrap_or_default(),
            names,
        });
    }
    uses
}

/// Where the files under `path` reach one of the crate's modules `forbidden`: a `use` from
/// `crate` or `super` naming it, or a path `crate::MODULE` in code.
fn reaches(path: &Path, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in rust_files(path) {
        let code = code(&file);
        let at = |line: usize| format!("{}:{line}", file.display());
        for statement in uses(&code) {
            if matches!(statement.root.as_str(), "crate" | "super" | "self")
                && let Some(module) = forbidden
                    .iter()
                    .find(|module| statement.names.iter().any(|name| name == *module))
            {
                found.push(format!("{}: use of {module}", at(statement.line)));
            }
        }
        for (line, text) in &code {
            let text: String = text.split_whitespace().collect();
            for module in forbidden {
                if text.contains(&format!("crate::{module}::"))
                    || text.contains(&format!("super::super::{module}::"))
                {
                    found.push(format!("{}: crate::{module}", at(*line)));
                }
            }
        }
    }
    found
}

#[test]
fn report_imports_nothing_from_control() {
    let found = reaches(&src().join("report"), &["control"]);
    assert!(
        found.is_empty(),
        "report/ only reads: what it needs from control belongs in load/ or report/ itself:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_config_file_imports_no_layer() {
    let layers = ["control", "dns", "analyze", "daemon", "report", "cli"];
    let found = reaches(&src().join("config_file.rs"), &layers);
    assert!(
        found.is_empty(),
        "config_file.rs is the file as written: a layer builds its settings from it, not the \
         other way round:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_tc_starts_a_program() {
    let mut found = Vec::new();
    for file in rust_files(&src()) {
        // This file names what it looks for.
        if file.starts_with(src().join("tc")) || file == src().join("layers.rs") {
            continue;
        }
        let code = code(&file);
        for statement in uses(&code) {
            if statement.root == "std"
                && statement.names.iter().any(|name| name == "process")
                && statement.names.iter().any(|name| name == "Command")
            {
                found.push(format!("{}:{}", file.display(), statement.line));
            }
        }
        for (line, text) in &code {
            if text.contains("process::Command") {
                found.push(format!("{}:{line}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "only tc/ starts a program (std::process::Command):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    // Each check on a file that breaks its rule, so that none passes by seeing nothing.
    let dir = std::env::temp_dir().join(format!("classifier-layers-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("view.rs");
    fs::write(
        &file,
        "//! Mentions crate::control in a comment only.\n\
         use std::fmt;\n\
         use crate::{\n    Error,\n    control::{attach, policy},\n};\n\
         fn f() { crate::dns::refused(); }\n",
    )
    .unwrap();
    let control = reaches(&file, &["control"]);
    let dns = reaches(&file, &["dns"]);
    let analyze = reaches(&file, &["analyze"]);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(control.len(), 1, "{control:?}");
    assert!(
        control[0].ends_with("view.rs:3: use of control"),
        "{control:?}"
    );
    assert_eq!(dns.len(), 1, "{dns:?}");
    assert!(dns[0].ends_with("view.rs:7: crate::dns"), "{dns:?}");
    assert!(analyze.is_empty(), "{analyze:?}");
}
