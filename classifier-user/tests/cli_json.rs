//! The JSON contract (README, "JSON output"): every command run with `-j` prints one document
//! (the streams, `stats --watch` and `analyze`, one object per line) that validates against
//! its schema in `docs/json/`, and every schema is strict enough that a renamed field fails
//! it. A failure under `-j` prints the error document, with the exit code it has without.

use classifier_testkit as support;

use std::{collections::BTreeSet, fs::File, path::PathBuf, process::Stdio, time::Duration};

use classifier_lab::{Netns, veth};
use pcap_file::{
    DataLink,
    pcap::{PcapHeader, PcapPacket, PcapWriter},
};
use serde_json::Value;
use support::{
    cli::Cli,
    hosts::{LISTED, SERVER, TwoHosts},
    json_contract::Contract,
    json_schema::{assert_conform, schema},
    mptcp,
    packet::Segment,
    wait::{wait_for, wait_until},
};

fn scratch(cli: &Cli, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(cli.pin_dir().file_name().unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A capture of a listed UDP datagram, an MPTCP v1 SYN (so `mptcp_version` appears) and a
/// frame too short for Ethernet (so `error` does).
fn capture(path: &PathBuf) {
    let frames = [
        Segment::udp(LISTED, SERVER, 5000, 6000).build(),
        Segment::tcp(SERVER, LISTED, 40000, 443)
            .syn()
            .options(&mptcp::mp_capable_v1_syn())
            .build(),
        vec![0u8; 10],
    ];
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(File::create(path).unwrap(), header).unwrap();
    for (n, frame) in frames.iter().enumerate() {
        let packet = PcapPacket::new(Duration::from_millis(n as u64), frame.len() as u32, frame);
        writer.write_packet(&packet).unwrap();
    }
}

#[test]
fn every_command_prints_what_its_schema_says() {
    let hosts = TwoHosts::new();
    let server = hosts.server.name();
    let mut contract = Contract::new(Cli::new());

    contract.document("attach", &["--netns", server, "attach", "s0"]);
    // The client's side at tc: status then shows both hooks and both programs.
    let client = hosts.client.name();
    let tc = contract.document(
        "attach",
        &["--netns", client, "attach", "--hook", "tc", "c0"],
    );
    assert_eq!(tc["attached"][0]["hook"], "tc", "{tc}");
    hosts.udp_stream(LISTED, 6400, 20, Duration::ZERO);
    wait_until(Duration::from_secs(5), "the datagrams to arrive", || {
        hosts.arrived().listed >= 20
    });

    let status = contract.document("status", &["status"]);
    let hooks: Vec<_> = status["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["interface"].as_str().unwrap(),
                i["hook"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(hooks.contains(&("s0", "xdp")), "{status}");
    assert!(hooks.contains(&("c0", "tc")), "{status}");
    assert!(status["program_tc"].is_object(), "{status}");

    let added = contract.document(
        "prefixes-edit",
        &[
            "prefixes",
            "add",
            "203.0.113.0/24",
            "198.18.0.0/15",
            "--list",
            "cdn",
        ],
    );
    assert_eq!(
        added,
        serde_json::json!({"list": "cdn", "inserted": 2, "updated": 0, "removed": 0})
    );
    let removed = contract.document("prefixes-edit", &["prefixes", "remove", "198.18.0.0/15"]);
    assert_eq!(
        removed,
        serde_json::json!({"list": null, "inserted": 0, "updated": 0, "removed": 1})
    );
    let file = scratch(&contract.cli, "cdn.txt");
    std::fs::write(&file, "203.0.113.0/24\n192.0.2.0/25\n").unwrap();
    let file = file.to_str().unwrap();
    contract.document(
        "prefixes-edit",
        &["prefixes", "load", file, "--list", "cdn"],
    );
    contract.document(
        "prefixes-edit",
        &["prefixes", "replace", file, "--list", "cdn"],
    );
    contract.document("prefixes-list", &["prefixes", "list"]);
    let cleared = contract.document("prefixes-edit", &["prefixes", "clear", "--list", "cdn"]);
    assert_eq!(cleared["forgotten"], 0, "{cleared}");
    let forgotten = contract.document("prefixes-forget", &["prefixes", "forget", "--all"]);
    assert_eq!(forgotten, serde_json::json!({"forgotten": {}}));

    let before = contract.document("policy-show", &["policy", "show"]);
    let set = contract.document(
        "policy-set",
        &["policy", "set", "list:apple=LE", "mptcp=CS1"],
    );
    assert_eq!(set["previous"], before, "{set}");
    contract.document("policy-set", &["policy", "set", "--dry-run", "on"]);
    let saved = scratch(&contract.cli, "saved.json");
    let saved_arg = saved.to_str().unwrap();
    let summary = contract.document("state-save", &["state", "save", saved_arg]);
    assert_eq!(summary["dry_run"], true, "{summary}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_conform(&[("saved-state", "the file of state save", &file)]);
    let restored = contract.document("state-restore", &["state", "restore", saved_arg]);
    assert_eq!(restored["rules"], 2, "{restored}");

    let stats = contract.document("stats", &["stats"]);
    assert!(
        stats["lists"]["apple"]["packets"].as_u64() >= Some(20),
        "{stats}"
    );
    contract.document("stats", &["stats", "--per-cpu"]);
    contract.watch(2);
    let flows = contract.document("flows", &["flows"]);
    assert!(!flows.as_array().unwrap().is_empty(), "{flows}");
    let devices = contract.document("devices", &["devices", "--interval", "0.2"]);
    assert!(
        !devices["devices"].as_array().unwrap().is_empty(),
        "{devices}"
    );

    let shaped = contract.document(
        "shape",
        &["--netns", server, "shape", "s0", "--rate", "50mbit"],
    );
    assert_eq!(
        shaped["bulk_dscp"],
        serde_json::json!(["LE", "CS1"]),
        "{shaped}"
    );
    let off = contract.document("shape-off", &["--netns", server, "shape", "s0", "--off"]);
    assert_eq!(off["removed"], true, "{off}");
    let again = contract.document("shape-off", &["--netns", server, "shape", "s0", "--off"]);
    assert_eq!(again["removed"], false, "{again}");

    let pcap = scratch(&contract.cli, "three.pcap");
    capture(&pcap);
    let packets = contract.lines("analyze", &["analyze", pcap.to_str().unwrap()]);
    assert_eq!(packets, 3, "one line per packet");

    let detached = contract.document("detach", &["--netns", server, "detach", "s0"]);
    assert_eq!(
        detached["detached"].as_array().map(Vec::len),
        Some(1),
        "{detached}"
    );
    contract.document("detach", &["detach", "--all", "--purge"]);

    assert_conform(&contract.cases());

    // Every command but `run` (a daemon: no document; its error is in the test below) was
    // held to a schema.
    let missing: Vec<&str> = contract
        .uncovered()
        .into_iter()
        .filter(|c| *c != "run")
        .collect();
    assert!(
        missing.is_empty(),
        "commands with no JSON checked here (README, 'How to add a command's JSON'): {missing:?}"
    );
}

#[test]
fn pretty_is_the_same_document_indented() {
    let ns = Netns::create("clst-j").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    cli.run(&["--netns", ns.name(), "attach", "a0"]).ok();
    for args in [&["policy", "show"][..], &["prefixes", "list"][..]] {
        let compact = cli.run(&[&["-j"], args].concat()).ok();
        let pretty = cli.run(&[args, &["--pretty"]].concat()).ok();
        assert!(
            pretty.stdout.lines().count() > 1,
            "indented: {}",
            pretty.stdout
        );
        assert_eq!(pretty.json(), compact.json(), "{}", args.join(" "));
    }
}

/// Runs `args` with and without `-j`: the same exit code; without, the message on stderr and
/// nothing on stdout; with, only the error document on stdout, of `kind`.
fn fails_alike(cli: &Cli, args: &[&str], code: i32, kind: &str) -> Value {
    let text = cli.run(args);
    assert_eq!(text.code, code, "`{}`: {}", args.join(" "), text.stderr);
    assert!(
        text.stdout.is_empty() && text.stderr.starts_with("error: "),
        "{text:?}"
    );
    let json = cli.run(&[&["-j"], args].concat());
    assert_eq!(json.code, code, "`-j {}`: same exit code", args.join(" "));
    assert!(
        json.stderr.is_empty(),
        "`-j {}`: {}",
        args.join(" "),
        json.stderr
    );
    let document = json.json();
    assert_eq!(document["error"]["kind"], kind, "{document}");
    assert_eq!(document["error"]["exit_code"], code, "{document}");
    document
}

#[test]
fn a_failure_under_json_is_the_error_document_with_the_same_exit_code() {
    let ns = Netns::create("clst-j").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let netns = ns.name();
    let cli = Cli::new();

    let mut documents = vec![fails_alike(&cli, &["status"], 1, "no_state")];
    cli.run(&["--netns", netns, "attach", "a0"]).ok();
    let bad_file = scratch(&cli, "bad.txt");
    std::fs::write(&bad_file, "203.0.113.0/24\n17.300.0.0/16\n").unwrap();
    let bad_file = ["prefixes", "load", bad_file.to_str().unwrap()];
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--netns", netns, "attach", "nosuch0"],
            2,
            "unknown_interface",
        ),
        (&["--netns", netns, "attach", "a0"], 2, "already_attached"),
        (&["prefixes", "add", "example.com"], 2, "invalid_prefix"),
        (&["prefixes", "clear", "--list", "nope"], 2, "unknown_list"),
        (&["policy", "set", "list:apple=XX"], 2, "invalid_rule"),
        (
            &["--netns", netns, "shape", "nosuch0", "--rate", "50mbit"],
            2,
            "unknown_interface",
        ),
        (&bad_file, 2, "prefix_file"),
        (&["prefixes", "frobnicate"], 2, "usage"),
        (
            &["--netns", netns, "shape", "a0", "--rate", "fast"],
            2,
            "usage",
        ),
        (
            &["--netns", netns, "run", "nosuch0", "--metrics", "off"],
            2,
            "unknown_interface",
        ),
    ];
    for (args, code, kind) in cases {
        documents.push(fails_alike(&cli, args, *code, kind));
    }
    let cases: Vec<(&str, &str, &Value)> = documents
        .iter()
        .map(|d| ("error", "a failure", d))
        .collect();
    assert_conform(&cases);
}

#[test]
fn run_prints_nothing_on_stdout_under_json() {
    let ns = Netns::create("clst-j").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    let run = cli
        .command()
        .args(["-j", "--netns", ns.name(), "run", "a0", "--metrics", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting classifier run");
    wait_for(Duration::from_secs(10), "run to attach a0", || {
        let status = cli.run(&["-j", "status"]);
        (status.code == 0 && status.json()["interfaces"][0]["interface"] == "a0").then_some(())
    });
    // SAFETY: a plain signal to the child we started.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let output = run.wait_with_output().expect("run's exit");
    assert!(output.status.success(), "run exits 0 on SIGTERM");
    assert!(
        output.stdout.is_empty(),
        "a daemon prints no document: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// The kinds error.schema.json allows are exactly those the library and the CLI report.
#[test]
fn the_error_schema_lists_every_kind() {
    let listed: BTreeSet<String> =
        schema("error")["properties"]["error"]["properties"]["kind"]["enum"]
            .as_array()
            .expect("an enum of kinds")
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
    // The CLI's own: a command line clap refused, a failure outside the library.
    let reported: BTreeSet<String> = classifier::Error::KINDS
        .iter()
        .chain(&["usage", "other"])
        .map(|k| (*k).to_owned())
        .collect();
    assert_eq!(listed, reported);
}
