//! `classifier run`: the long-running form.

use clap::Args;
use classifier::daemon::{self, DEFAULT_METRICS, RunOptions};

use super::{Context, attach::Placement};

/// Run in the foreground: attach, learn CDN addresses from trusted DNS, serve metrics.
///
/// Attaches to the interfaces (adopting those attached already, e.g. by an earlier run that
/// was killed), then, until SIGTERM or Ctrl-C, learns the addresses the lists' names lead to
/// from two trusted sources only: its own lookups of the lists' host names (Apple's update
/// hosts ship with `apple`; [dns.lookup] picks the resolver, /etc/resolv.conf's by default),
/// and the answers of the resolvers named in [[dns.trusted_resolvers]], arriving on their
/// interfaces, to queries the router saw. A LAN host's own lookups teach nothing. Each
/// address joins its list for its TTL, between dns_min_ttl (60 s) and [dns] max_ttl
/// (3600 s), at most [dns] max_learned_per_list a list (4096); `prefixes list` shows where
/// each came from, `prefixes forget` removes them. It also serves Prometheus metrics and
/// forwards the kernel's log records to the log (RUST_LOG sets the level, `info` by
/// default). Refused answers and failed lookups are counted, never fatal: only a signal
/// ends it, or a bad config at start. On exit it stops learning and detaches, unless
/// --keep-attached.
///
/// A daemon has no document to print: under -j its log stays on stderr and stdout stays
/// empty, except when it fails, with the error document (a supervisor can read why).
#[derive(Args)]
#[command(after_help = "Examples:
  classifier run wan0 lan0
  classifier run wan0 --metrics 0.0.0.0:9417 --keep-attached   # metrics for a remote Prometheus
  curl -s http://127.0.0.1:9417/metrics | grep classifier_packets_total")]
pub struct RunArgs {
    #[arg(required = true, value_name = "IFACE", add = super::completion::interfaces())]
    interfaces: Vec<String>,
    /// How to attach interfaces not attached yet (see `attach --help`).
    #[command(flatten)]
    placement: Placement,
    /// Where to serve Prometheus metrics (`off` for nowhere). Loopback by default: the
    /// counters say a lot about the network.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_METRICS, value_parser = metrics_addr)]
    metrics: MetricsAddr,
    /// Leave the program attached on exit (a restart adopts it without a gap).
    #[arg(long)]
    keep_attached: bool,
}

#[derive(Clone, Debug)]
struct MetricsAddr(Option<std::net::SocketAddr>);

fn metrics_addr(text: &str) -> Result<MetricsAddr, String> {
    if text == "off" {
        return Ok(MetricsAddr(None));
    }
    text.parse()
        .map(|addr| MetricsAddr(Some(addr)))
        .map_err(|_| format!("`{text}` is not ADDRESS:PORT (e.g. 127.0.0.1:9417) or `off`"))
}

pub fn run(context: &Context, args: RunArgs) -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let options = RunOptions {
        interfaces: args.interfaces,
        mode: args.placement.mode(),
        metrics: args.metrics.0,
        keep_attached: args.keep_attached,
    };
    daemon::run(&context.pin_dir, &context.config, &options)?;
    Ok(())
}
