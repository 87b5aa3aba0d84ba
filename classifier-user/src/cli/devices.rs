//! `classifier devices`: the flow table aggregated by device, biggest first.

use std::time::Duration;

use clap::Args;
use classifier::report::devices::{self, DeviceQuery};

use super::{
    Context,
    output::{bytes, print_json, print_table, si},
};

/// Show the devices behind the flows: how many, how much each takes, and its MPTCP state.
///
/// A device is the LAN-side address of its flows: the client of each flow, the endpoint whose
/// packet created its entry (for TCP, the SYN's sender; the CLIENT column of `classifier
/// flows`). RATE is what the device's flows carried between two reads of the table INTERVAL
/// apart. ACTIVE counts the flows with a packet in the last minute; MPTCP counts the flows
/// that use it (yes), offered it with no answer yet (attempted) or fell back (fallback).
#[derive(Args)]
#[command(after_help = "Examples:
  classifier devices --list apple --top 20
  classifier devices --list apple --json --interval 0")]
pub struct DevicesArgs {
    /// Only the flows in list NAME (and so the devices with a flow in it).
    #[arg(long, value_name = "NAME")]
    list: Option<String>,
    /// At most N devices [default: 50 in a table, all in JSON].
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// Seconds between the two reads the rates come from; 0 reads once and shows no rates.
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = interval)]
    interval: Duration,
}

fn interval(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&seconds) {
        return Err(format!("{text} is not between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

pub fn devices(context: &Context, args: DevicesArgs) -> anyhow::Result<()> {
    let json = context.format.is_json();
    let query = DeviceQuery {
        list: args.list,
        top: args.top.or((!json).then_some(50)),
        rate_interval: args.interval,
    };
    let table = devices::device_table(&context.pin_dir, &query)?;
    if json {
        return print_json(&table, context.format);
    }
    let mut rows = vec![
        [
            "DEVICE", "LISTS", "FLOWS", "ACTIVE", "PACKETS", "BYTES", "RATE", "MPTCP", "IDLE",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect::<Vec<_>>(),
    ];
    let rates = table.rate_interval_seconds > 0.0;
    for device in &table.devices {
        let mptcp = device.mptcp;
        rows.push(vec![
            device.address.to_string(),
            if device.lists.is_empty() {
                "-".to_owned()
            } else {
                device.lists.join(",")
            },
            device.flows.to_string(),
            device.active_flows.to_string(),
            device.packets.to_string(),
            bytes(device.bytes),
            if rates {
                format!("{}bit/s", si(device.rate_bps as f64))
            } else {
                "-".to_owned()
            },
            if mptcp.yes + mptcp.attempted + mptcp.fallback == 0 {
                "-".to_owned()
            } else {
                format!(
                    "yes {} attempted {} fallback {}",
                    mptcp.yes, mptcp.attempted, mptcp.fallback
                )
            },
            format!("{:.0}s", device.idle_seconds),
        ]);
    }
    print_table(&rows);
    let of = table
        .list
        .as_ref()
        .map_or_else(String::new, |name| format!(" in list {name}"));
    println!(
        "{} of {} devices shown ({} flows{of})",
        table.devices.len(),
        table.total_devices,
        table.flows
    );
    for list in &table.lists {
        println!(
            "list {}: {} devices, {} active in the last minute",
            list.name, list.devices, list.active_devices
        );
    }
    Ok(())
}
