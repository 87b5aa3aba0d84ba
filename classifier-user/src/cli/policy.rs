//! `classifier policy`: the ordered rules that map what matched to a DSCP.

use clap::{Args, Subcommand, ValueEnum};
use classifier::{control::policy, report};

use super::{Context, output::print_json};

/// Show or set the policy: ordered rules MATCH=ACTION, the first match wins.
///
/// MATCH is `mptcp` (the packet's flow is Multipath TCP), `list:NAME` (its source or
/// destination is in list NAME), or both joined by `+`. ACTION is the DSCP to write: a name
/// (CS0-CS7, AF11-AF43, EF, LE = Lower Effort, RFC 8622) or a number 0-63; or `keep` to count
/// the traffic and leave its DSCP alone. Traffic matching no rule is left alone. A change
/// applies to established flows from their next packet.
#[derive(Args)]
#[command(after_help = "Examples:
  classifier policy show
  classifier policy set list:apple=LE mptcp=keep     # the default
  classifier policy set mptcp+list:apple=LE list:apple=AF11
  classifier policy set --dry-run on                 # count what would be marked, change nothing")]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Show the rules and the dry-run state.
    Show,
    /// Replace the rules (if any are given) and/or switch dry-run.
    Set {
        /// The rules, in order.
        #[arg(value_name = "MATCH=ACTION", required_unless_present = "dry_run")]
        rules: Vec<String>,
        /// on: count what would be marked and rewrite nothing.
        #[arg(long, value_enum, value_name = "on|off")]
        dry_run: Option<OnOff>,
    },
}

#[derive(Copy, Clone, ValueEnum)]
enum OnOff {
    On,
    Off,
}

pub fn policy(context: &Context, args: PolicyArgs) -> anyhow::Result<()> {
    let view = match args.command {
        PolicyCommand::Show => {
            let view = report::policy::read(&context.pin_dir)?;
            if context.format.is_json() {
                return print_json(&view, context.format);
            }
            view
        }
        PolicyCommand::Set { rules, dry_run } => {
            let dry_run = dry_run.map(|switch| matches!(switch, OnOff::On));
            let change = policy::change(&context.pin_dir, &rules, dry_run)?;
            if context.format.is_json() {
                return print_json(&change, context.format);
            }
            change.now
        }
    };
    for (index, rule) in view.rules.iter().enumerate() {
        println!("{}. {rule}", index + 1);
    }
    if view.rules.is_empty() {
        println!("no rules: nothing is marked");
    }
    println!(
        "dry run: {}",
        if view.dry_run {
            "on (nothing is rewritten)"
        } else {
            "off"
        }
    );
    Ok(())
}
