//! `stats --json` with `--per-cpu` and `--watch`, as README documents them: `per_cpu` splits
//! every leaf by CPU and adds up to it; in watch mode each line carries rates over the last
//! interval, not since the start.

use classifier_testkit as support;

use std::{
    io::{BufRead as _, BufReader},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;
use support::{
    cli::Cli,
    hosts::{LISTED, TwoHosts},
    wait::wait_for,
};

const DATAGRAMS: u64 = 40;

/// The server attached, and `DATAGRAMS` listed datagrams arrived through it.
fn attached_with_traffic() -> (TwoHosts, Cli) {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    cli.run(&["--netns", hosts.server.name(), "attach", "s0"])
        .ok();
    hosts.udp_stream(LISTED, 6300, DATAGRAMS as usize, Duration::ZERO);
    wait_for(Duration::from_secs(5), "the datagrams to arrive", || {
        Some(()).filter(|()| hosts.arrived().listed >= DATAGRAMS)
    });
    (hosts, cli)
}

fn packets(leaf: &Value) -> u64 {
    leaf["packets"].as_u64().expect("a packet count")
}

#[test]
fn per_cpu_counts_add_up_to_each_leaf() {
    let (_hosts, cli) = attached_with_traffic();
    let stats = cli.run(&["stats", "--json", "--per-cpu"]).ok().json();
    assert!(packets(&stats["total"]) >= DATAGRAMS, "{stats}");
    for leaf in [
        &stats["total"],
        &stats["classes"]["listed"],
        &stats["lists"]["apple"],
    ] {
        let per_cpu = leaf["per_cpu"].as_array().expect("per_cpu in every leaf");
        assert!(!per_cpu.is_empty(), "{leaf}");
        let (sum_packets, sum_bytes) = per_cpu.iter().fold((0, 0), |(p, b), cpu| {
            (p + packets(cpu), b + cpu["bytes"].as_u64().unwrap())
        });
        assert_eq!(sum_packets, packets(leaf), "{leaf}");
        assert_eq!(sum_bytes, leaf["bytes"].as_u64().unwrap(), "{leaf}");
    }
    let plain = cli.run(&["stats", "--json"]).ok().json();
    assert!(
        plain["total"].get("per_cpu").is_none(),
        "only with --per-cpu"
    );
}

#[test]
fn watch_lines_carry_the_rate_of_the_last_interval() {
    let (_hosts, cli) = attached_with_traffic();
    let before = packets(&cli.run(&["stats", "--json"]).ok().json()["total"]);
    let mut watch = cli
        .command()
        .args(["stats", "--json", "--watch", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting stats --watch");
    let mut line = String::new();
    BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("reading the first line");
    let _ = watch.kill();
    let _ = watch.wait();
    let first: Value = serde_json::from_str(&line).expect("one JSON object per line");
    let total = &first["total"];
    // Nothing crossed the wire during the interval: the rates are 0, not the totals over time.
    assert_eq!(packets(total), before, "{line}");
    assert_eq!(total["packets_per_second"].as_f64(), Some(0.0), "{line}");
    assert_eq!(total["bits_per_second"].as_f64(), Some(0.0), "{line}");
}
