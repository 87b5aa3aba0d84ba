//! deploy/prometheus/: the rules are valid for Prometheus (`promtool check rules`), and the
//! alerts fire on the series they are about and stay quiet on healthy ones (`promtool test
//! rules` on classifier.rules.test.yml: a flow table 95 % full for 10 minutes, MPTCP
//! fallbacks that jump twentyfold, beside routers where nothing is wrong). The metric names
//! they read are checked against a live scrape in dashboard_metrics.rs.

use std::{path::PathBuf, process::Command};

const PROMETHEUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus");

/// promtool on PATH, or in cargo's bin directory where `cargo xtask setup` puts it.
fn promtool() -> PathBuf {
    let on_path = Command::new("promtool").arg("--version").output();
    if on_path.is_ok_and(|out| out.status.success()) {
        return PathBuf::from("promtool");
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .expect("neither CARGO_HOME nor HOME is set");
    let promtool = cargo_home.join("bin/promtool");
    assert!(
        promtool.is_file(),
        "no promtool on PATH nor at {}: run `cargo xtask setup`",
        promtool.display()
    );
    promtool
}

fn promtool_passes(args: &[&str]) {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(PROMETHEUS_DIR)
        .output()
        .expect("running promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("promtool {}:\n{said}", args.join(" "));
    assert!(
        output.status.success(),
        "promtool {}: {said}",
        args.join(" ")
    );
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn the_rules_are_valid() {
    promtool_passes(&["check", "rules", "classifier.rules.yml"]);
}

#[test]
fn the_alerts_fire_when_they_should_and_only_then() {
    promtool_passes(&["test", "rules", "classifier.rules.test.yml"]);
}
