//! Bad prefix files at scale and in odd shapes: a 2,000,000-line file whose last line is bad
//! (through `prefixes load`, `prefixes replace`, and a config file's list at the first
//! attach), bytes that are not UTF-8, invisible characters, a 100,000-character line, a
//! directory. Each is refused with exit code 2, a message naming the file and the line (and
//! showing the line readably), and nothing applied: same prefixes, same generation, no new
//! list, no state created.

use classifier_testkit as support;

use std::{fs, io::Write as _, path::PathBuf};

use classifier_lab::{Netns, veth};
use support::cli::Cli;

const LINES: u32 = 2_000_000;

fn scratch(cli: &Cli) -> PathBuf {
    let dir = std::env::temp_dir().join(cli.pin_dir().file_name().unwrap());
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// 1,999,999 distinct /32s, then `10.0.0.256` on line 2,000,000.
fn two_million_lines(path: &std::path::Path) {
    let mut file = std::io::BufWriter::new(fs::File::create(path).unwrap());
    for n in 1..LINES {
        let addr = std::net::Ipv4Addr::from(0x0a00_0000 + n);
        writeln!(file, "{addr}").unwrap();
    }
    writeln!(file, "10.0.0.256").unwrap();
}

/// What a refused command must leave as it was.
fn observable(cli: &Cli) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let status = cli.run(&["status", "--json"]).ok().json();
    (
        cli.run(&["prefixes", "list", "--json"]).ok().json(),
        status["prefixes"]["lists"].clone(),
        status["policy"]["generation"].clone(),
    )
}

fn refused(cli: &Cli, args: &[&str], message: &str) {
    let ran = cli.run(args).fails(2, message);
    assert!(
        ran.stderr.len() < 400,
        "a short message: {} bytes",
        ran.stderr.len()
    );
}

#[test]
fn a_two_million_line_file_with_a_bad_last_line_applies_nothing() {
    let ns = Netns::create("clst-in").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    cli.run(&["--netns", ns.name(), "attach", "a0"]).ok();
    let dir = scratch(&cli);
    let big = dir.join("big.txt");
    two_million_lines(&big);
    let big = big.to_str().unwrap();
    let before = observable(&cli);

    let message = format!("{big}:2000000: `10.0.0.256`: expected an address");
    refused(&cli, &["prefixes", "load", big, "--list", "big"], &message);
    refused(&cli, &["prefixes", "replace", big], &message);
    assert_eq!(observable(&cli), before, "nothing was applied");
    let ran = cli.run(&["prefixes", "list", "--list", "big"]);
    assert!(ran.stderr.contains("no list named `big`"), "{}", ran.stderr);

    // The same file named by the config file of a first attach: no state is created.
    let config = dir.join("config.toml");
    fs::write(
        &config,
        format!("[[lists]]\nname = \"big\"\nfile = \"{big}\"\n"),
    )
    .unwrap();
    let fresh = Cli::new();
    let ran: support::cli::Ran = std::process::Command::new(support::cli::binary())
        .env("CLASSIFIER_PIN_DIR", fresh.pin_dir())
        .arg("--config")
        .arg(&config)
        .args(["--netns", ns.name(), "attach", "b0"])
        .output()
        .unwrap()
        .into();
    ran.fails(2, &message);
    assert!(!fresh.pin_dir().exists(), "no state was created");
    assert!(!ns.has_xdp("b0").unwrap(), "b0 was not attached");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn odd_files_are_refused_readably_and_change_nothing() {
    let ns = Netns::create("clst-in").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    cli.run(&["--netns", ns.name(), "attach", "a0"]).ok();
    let dir = scratch(&cli);
    let before = observable(&cli);
    let long = format!("17.0.0.0/8\n{}\n", "1".repeat(100_000));
    let cases: [(&str, &[u8], String); 6] = [
        (
            "latin1.txt",
            b"17.0.0.0/8\n# caf\xe9\n",
            ":2: not UTF-8 text".to_owned(),
        ),
        (
            "bom.txt",
            b"\xef\xbb\xbf17.0.0.0/8\n",
            ":1: `\\u{feff}17.0.0.0/8`".to_owned(),
        ),
        (
            "nul.txt",
            b"17.0.0.0/8\0\n",
            ":1: `17.0.0.0/8\\0`".to_owned(),
        ),
        (
            "long.txt",
            long.as_bytes(),
            format!(":2: `{}…`", "1".repeat(60)),
        ),
        (
            "two.txt",
            b"17.0.0.0/8 17.1.0.0/16\n",
            ":1: `17.0.0.0/8 17.1.0.0/16`".to_owned(),
        ),
        (
            "missing.txt",
            b"",
            ":0: cannot read it: No such file".to_owned(),
        ),
    ];
    for (name, bytes, message) in &cases {
        let path = dir.join(name);
        if *name != "missing.txt" {
            fs::write(&path, bytes).unwrap();
        }
        let path = path.to_str().unwrap();
        refused(
            &cli,
            &["prefixes", "load", path],
            &format!("{path}{message}"),
        );
    }
    let path = dir.to_str().unwrap();
    refused(
        &cli,
        &["prefixes", "replace", path],
        &format!("{path}:0: cannot read it: Is a directory"),
    );
    assert_eq!(observable(&cli), before, "nothing was applied");

    // Windows line endings are fine.
    let crlf = dir.join("crlf.txt");
    fs::write(&crlf, "198.18.0.0/15\r\n203.0.113.0/24\r\n").unwrap();
    let ran = cli
        .run(&["prefixes", "load", crlf.to_str().unwrap(), "--list", "cdn"])
        .ok();
    assert!(ran.stdout.contains("cdn: 2 inserted"), "{}", ran.stdout);
    let _ = fs::remove_dir_all(dir);
}
