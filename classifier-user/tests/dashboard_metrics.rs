//! The Grafana dashboard (deploy/grafana/classifier.json) and the Prometheus rules
//! (deploy/prometheus/classifier.rules.yml) query only what `classifier run` serves: every
//! metric name in their PromQL, and every label they match or group by, is checked against a
//! live scrape of `classifier run` in the lab. A panel or a rule whose metric does not exist
//! fails (README, "Metrics"; docs/design.md, 'Counters').

use classifier_testkit as support;

use std::{
    collections::BTreeSet,
    process::{Child, Command, Stdio},
    time::Duration,
};

use classifier_lab::{Lab, ROUTER_INGRESS};
use support::{
    cli::Cli,
    promql::{Reads, exposed, reads},
    wait::wait_for,
};

const DASHBOARD: &str = include_str!("../../deploy/grafana/classifier.json");
const RULES: &str = include_str!("../../deploy/prometheus/classifier.rules.yml");
const METRICS_PORT: u16 = 9417;
/// Labels Prometheus adds to every series it scrapes.
const TARGET_LABELS: &[&str] = &["instance", "job"];

/// Every query of the dashboard, named by its panel or variable.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or("?");
        let targets = panel["targets"]
            .as_array()
            .expect("a panel without targets");
        assert!(!targets.is_empty(), "panel `{title}` queries nothing");
        for target in targets {
            let expr = target["expr"].as_str().expect("a target without expr");
            queries.push((format!("panel `{title}`"), expr.to_owned()));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if variable["type"] == "query" {
            let query = variable["query"]["query"]
                .as_str()
                .or_else(|| variable["query"].as_str())
                .expect("a query variable without a query");
            queries.push((format!("variable `{}`", variable["name"]), query.to_owned()));
        }
    }
    queries
}

/// Every `expr:` of the rules file (single-line or a `|` block), named by its rule, and the
/// names the file records (queried by later rules, not served by classifier).
fn rule_queries() -> (Vec<(String, String)>, BTreeSet<String>) {
    let mut queries = Vec::new();
    let mut recorded = BTreeSet::new();
    let mut name = String::new();
    let mut lines = RULES.lines().peekable();
    while let Some(raw) = lines.next() {
        let line = raw.trim();
        if let Some(record) = line.strip_prefix("- record:") {
            name = record.trim().to_owned();
            recorded.insert(name.clone());
        } else if let Some(alert) = line.strip_prefix("- alert:") {
            name = alert.trim().to_owned();
        } else if let Some(expr) = line.strip_prefix("expr:") {
            let mut expr = expr.trim().to_owned();
            if expr == "|" {
                // A block: the lines indented deeper than `expr:`.
                let indent = raw.len() - raw.trim_start().len();
                expr.clear();
                while let Some(next) = lines.next_if(|l| l.len() - l.trim_start().len() > indent) {
                    expr.push_str(next.trim());
                    expr.push(' ');
                }
            }
            queries.push((format!("rule `{name}`"), expr));
        }
    }
    (queries, recorded)
}

#[test]
fn reading_promql_finds_metrics_and_labels() {
    let found = reads(
        r#"sum by (instance, class) (rate(classifier_bytes_total{instance=~"$router",interface=~"$interface"}[$__rate_interval])) * 8
           / ignoring(class) x_total offset 1h > bool 0.9"#,
    );
    assert_eq!(
        found,
        Reads {
            metrics: ["classifier_bytes_total", "x_total"]
                .map(String::from)
                .into(),
            labels: ["class", "instance", "interface"].map(String::from).into(),
        }
    );
    let variable =
        reads(r#"label_values(classifier_packets_total{instance=~"$router"}, interface)"#);
    assert_eq!(
        variable.metrics,
        BTreeSet::from(["classifier_packets_total".to_owned()])
    );
    assert!(variable.labels.contains("interface"));
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_metric_the_dashboard_and_the_rules_query_is_served_by_classifier_run() {
    let (rules, recorded) = rule_queries();
    let mut queries = dashboard_queries();
    assert!(queries.len() >= 10, "dashboard queries: {queries:?}");
    assert!(rules.len() >= 8, "rule queries: {rules:?}");
    queries.extend(rules);

    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    let _daemon = Daemon(
        Command::new(support::cli::binary())
            .env("CLASSIFIER_PIN_DIR", cli.pin_dir())
            .args(["--config", "/dev/null", "--netns", lab.router.name(), "run"])
            .args(ROUTER_INGRESS)
            .args(["--metrics", &format!("127.0.0.1:{METRICS_PORT}")])
            .stderr(Stdio::null())
            .spawn()
            .expect("starting classifier run"),
    );
    let scrape = wait_for(Duration::from_secs(10), "the metrics endpoint", || {
        support::metrics::scrape(&lab.router, METRICS_PORT)
            .ok()
            .filter(|r| r.contains("classifier_packets_total{interface=\""))
    });
    let body = scrape.split("\r\n\r\n").nth(1).unwrap_or_default();
    let (served, served_labels) = exposed(body);

    let mut missing = Vec::new();
    for (what, expr) in &queries {
        let found = reads(expr);
        assert!(!found.metrics.is_empty(), "{what} reads no metric: {expr}");
        for metric in &found.metrics {
            // `up` is Prometheus's own, per target; recorded names come from the rules.
            let known = served.contains(metric) || recorded.contains(metric) || metric == "up";
            if !known {
                missing.push(format!("{what}: metric {metric}"));
            }
        }
        for label in &found.labels {
            if !served_labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                missing.push(format!("{what}: label {label}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not served by classifier run:\n  {}\nserved: {served:?}",
        missing.join("\n  ")
    );
    println!(
        "{} queries, {} metrics served, all read metrics present",
        queries.len(),
        served.len()
    );
}
