//! `classifier flows`: the flow table, biggest first.

use clap::Args;
use classifier::report::flows::{self, FlowTable};

use super::{
    Context,
    output::{bytes, print_json, print_table},
};

/// Show the flows the classifier remembers, sorted by bytes.
///
/// One entry per connection (both directions); the client is the endpoint whose packet
/// created the entry. Entries age out of the table least-recently-used first.
#[derive(Args)]
#[command(after_help = "Examples:
  classifier flows --top 20
  classifier flows --mptcp -j")]
pub struct FlowsArgs {
    /// Only Multipath TCP flows.
    #[arg(long)]
    mptcp: bool,
    /// At most N flows [default: 50 in a table, all in JSON].
    #[arg(long, value_name = "N")]
    top: Option<usize>,
}

pub fn flows(context: &Context, args: FlowsArgs) -> anyhow::Result<()> {
    let json = context.format.is_json();
    let top = args.top.or((!json).then_some(50));
    let FlowTable { views, total } = flows::flow_table(&context.pin_dir, args.mptcp, top)?;
    if json {
        return print_json(&views, context.format);
    }
    let mut rows = vec![
        [
            "CLIENT", "SERVER", "PROTO", "CLASSES", "MPTCP", "DSCP", "PACKETS", "BYTES", "IDLE",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect::<Vec<_>>(),
    ];
    for view in &views {
        let mut classes = view.lists.clone();
        if view.mptcp == "yes" {
            classes.insert(0, "mptcp".to_owned());
        }
        rows.push(vec![
            view.client.clone(),
            view.server.clone(),
            view.protocol.to_owned(),
            if classes.is_empty() {
                "-".to_owned()
            } else {
                classes.join(",")
            },
            match (view.mptcp, view.mptcp_subtypes.is_empty()) {
                ("no", _) => "-".to_owned(),
                (state, true) => state.to_owned(),
                (state, false) => format!("{state}:{}", view.mptcp_subtypes.join(",")),
            },
            view.dscp.clone().unwrap_or_else(|| "-".to_owned()),
            view.packets.to_string(),
            bytes(view.bytes),
            format!("{:.0}s", view.idle_seconds),
        ]);
    }
    print_table(&rows);
    println!("{} of {total} flows shown", views.len());
    Ok(())
}
