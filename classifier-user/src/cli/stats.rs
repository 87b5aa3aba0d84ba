//! `classifier stats`: counters, once or every few seconds with rates.

use std::thread;

use clap::Args;
use classifier::report::{
    stats::{Count, Stats},
    stats_reader::StatsReader,
};

use super::{
    Context,
    output::{Format, bytes, print_json, print_json_line, print_table, si},
};

/// Show the counters: packets and bytes per class, per MPTCP subtype, marked, and parse
/// errors.
///
/// Every packet is in exactly one class (non_ip, malformed, mptcp, listed, normal); the other
/// groups are breakdowns. Counters are per CPU in the kernel and summed here. The JSON keys are
/// stable: every leaf is {"packets", "bytes"}; marked packets are at `actions.marked.packets`.
#[derive(Args)]
#[command(after_help = "Examples:
  classifier stats
  classifier stats --watch 1            # rates every second (Ctrl-C to stop)
  classifier -j stats | jq .actions.marked.packets
  classifier -j stats --watch 1         # JSON Lines: one object per line")]
pub struct StatsArgs {
    /// Print again every SECS seconds, with rates (under -j: one object per line).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    watch: Option<u64>,
    /// Show each CPU's counts too.
    #[arg(long)]
    per_cpu: bool,
}

pub fn stats(context: &Context, args: StatsArgs) -> anyhow::Result<()> {
    let mut reader = StatsReader::open(&context.pin_dir, args.per_cpu)?;
    let Some(seconds) = args.watch else {
        return print(&reader.read()?, context.format, false);
    };
    // The first reading is the baseline of the first rates.
    reader.read()?;
    loop {
        thread::sleep(std::time::Duration::from_secs(seconds));
        print(&reader.read()?, context.format, true)?;
    }
}

fn print(stats: &Stats, format: Format, watching: bool) -> anyhow::Result<()> {
    match (format.is_json(), watching) {
        (true, true) => return print_json_line(stats),
        (true, false) => return print_json(stats, format),
        (false, _) => {}
    }
    let mut header = vec!["", "PACKETS", "BYTES"];
    if watching {
        header.extend(["PKT/S", "BIT/S"]);
    }
    let mut rows = vec![header.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()];
    let mut row = |label: String, count: &Count, always: bool| {
        if !always && count.value.packets == 0 {
            return;
        }
        let mut cells = vec![
            label,
            count.value.packets.to_string(),
            bytes(count.value.bytes),
        ];
        if let (Some(pps), Some(bps)) = (count.packets_per_second, count.bits_per_second) {
            cells.extend([si(pps), si(bps)]);
        }
        if let Some(per_cpu) = &count.per_cpu {
            let cpus: Vec<String> = per_cpu.iter().map(|c| c.packets.to_string()).collect();
            cells.push(format!("per cpu: {}", cpus.join(" ")));
        }
        rows.push(cells);
    };
    row("total".to_owned(), &stats.total, true);
    for (name, count) in &stats.classes {
        row(format!("class {name}"), count, true);
    }
    for (name, count) in &stats.lists {
        row(format!("list {name}"), count, true);
    }
    for (name, count) in &stats.actions {
        row(name.replace('_', " "), count, *name == "marked");
    }
    row("mptcp option".to_owned(), &stats.mptcp.option, true);
    row("mptcp fallback".to_owned(), &stats.mptcp.fallback, false);
    for (name, count) in &stats.mptcp.subtypes {
        row(format!("mptcp {name}"), count, false);
    }
    for (name, count) in &stats.mptcp.mp_capable_versions {
        row(format!("mp_capable {name}"), count, false);
    }
    for (group, counts) in [
        ("", &stats.network),
        ("", &stats.transport),
        ("fragments ", &stats.fragments),
        ("flows ", &stats.flows),
    ] {
        for (name, count) in counts {
            row(format!("{group}{name}"), count, false);
        }
    }
    row("dns forwarded".to_owned(), &stats.dns.forwarded, false);
    row("dns lost".to_owned(), &stats.dns.lost, false);
    for (name, count) in &stats.dns.refused {
        row(
            format!("dns refused {}", name.replace('_', " ")),
            count,
            false,
        );
    }
    let errors: u64 = stats.errors.values().map(|c| c.value.packets).sum();
    for (name, count) in &stats.errors {
        row(format!("error {name}"), count, false);
    }
    print_table(&rows);
    if errors == 0 {
        println!("no parse errors");
    }
    if watching {
        println!();
    }
    Ok(())
}
