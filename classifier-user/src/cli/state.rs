//! `classifier state`: the lists and the policy, saved to a file and restored from it.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use classifier::{control::restore, report::saved_state};
use serde_json::json;

use super::{Context, output::print_json};

/// Save the lists and the policy to a file, or restore them from one.
///
/// The file keeps every list with the prefixes it was given (not what DNS taught: that is
/// taught again) and the policy, in a form no new version of classifier fails to read. Save
/// before an upgrade: if the new version cannot read the state the old one made, it says so,
/// and `detach --all --purge`, `attach`, then `state restore` start it again with your lists
/// and policy. Restore replaces each list in the file (creating it if new; lists not in the
/// file stay) and puts the saved policy and dry-run switch in force.
#[derive(Args)]
#[command(after_help = "Examples:
  classifier state save /var/lib/classifier/saved.json
  classifier state restore /var/lib/classifier/saved.json")]
pub struct StateArgs {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Subcommand)]
enum StateCommand {
    /// Write the lists and the policy to FILE (replacing it whole).
    Save {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Put back the lists and the policy FILE holds; checked whole before anything changes.
    Restore {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn state(context: &Context, args: StateArgs) -> anyhow::Result<()> {
    match args.command {
        StateCommand::Save { file } => {
            let saved = saved_state::save(&context.pin_dir, &file)?;
            let summary = json!({
                "file": file.display().to_string(),
                "lists": saved.lists.len(),
                "prefixes": saved.prefix_count(),
                "rules": saved.rules.len(),
                "dry_run": saved.dry_run,
            });
            if context.format.is_json() {
                return print_json(&summary, context.format);
            }
            println!(
                "saved {} lists ({} prefixes) and {} rules to {}",
                saved.lists.len(),
                saved.prefix_count(),
                saved.rules.len(),
                file.display()
            );
        }
        StateCommand::Restore { file } => {
            let saved = restore::read_saved(&file)?;
            let restored = restore::restore(&context.pin_dir, &saved)?;
            if context.format.is_json() {
                return print_json(&restored, context.format);
            }
            for list in &restored.lists {
                println!(
                    "{}: {} inserted, {} updated, {} removed",
                    list.list, list.applied.inserted, list.applied.updated, list.applied.deleted
                );
            }
            println!(
                "policy: {} rules, dry run {}",
                restored.rules,
                if restored.dry_run { "on" } else { "off" }
            );
        }
    }
    Ok(())
}
