//! `classifier run`: the long-running form.

use clap::Args;
use classifier::daemon::{self, DEFAULT_METRICS, RunOptions};

use super::{Context, attach::Placement};

/// Run in the foreground: attach, learn CDN addresses from DNS answers, serve metrics.
///
/// Attaches to the interfaces (adopting those attached already, e.g. by an earlier run that
/// was killed), then, until SIGTERM or Ctrl-C: reads the DNS queries and answers the kernel
/// hands over and puts the A/AAAA records of listed domains, from answers that match a query
/// it saw (or come from a [[dns.trusted_resolvers]] entry on its interfaces), into their
/// lists for their TTL (at least the config file's dns_min_ttl, 60 s by default; at most
/// [dns] max_learned_per_list addresses a list, 4096 by default); expires them; serves Prometheus metrics;
/// and forwards the kernel's log records to the log (RUST_LOG sets the level, `info` by
/// default). On exit it stops learning and detaches, unless --keep-attached.
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
