//! `classifier prefixes`: the prefix lists, changed live.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use classifier::{
    control::{
        prefix_edit::{self, Edit, Edited, Prefixes},
        prefixes::Applied,
    },
    load::DEFAULT_LIST,
    report::{self, prefixes::PrefixRow},
};

use super::{
    Context,
    output::{Format, print_json, print_table},
};

/// Show and change the prefix lists (live: no reload, no packet lost).
///
/// A list is a named set of IPv4/IPv6 prefixes; a packet whose source or destination is in a
/// list belongs to it, and the policy says what to do with each list. `apple` ships with
/// Apple's own address allocations. Every change is checked in full before anything is
/// written: a bad prefix changes nothing.
#[derive(Args)]
#[command(
    after_help = "Prefix files hold one prefix per line (a bare address is a /32 or /128);
`#` starts a comment; blank lines are ignored. A bad line is reported as FILE:LINE.

Examples:
  classifier prefixes add 17.0.0.0/8 2620:149::/32
  classifier prefixes add 23.32.0.0/11 --list cdn      # a new list is created on first use
  classifier prefixes replace /etc/classifier/apple.txt  # hitless: no address is unmatched
  classifier prefixes list --list apple -j
  classifier prefixes forget 198.51.100.0/24            # learned addresses in it, every list
  classifier prefixes forget --all --list cdn"
)]
pub struct PrefixesArgs {
    #[command(subcommand)]
    command: PrefixesCommand,
}

#[derive(Subcommand)]
enum PrefixesCommand {
    /// Show the prefixes and the lists each belongs to.
    List {
        /// Only this list's prefixes.
        #[arg(long, value_name = "NAME", add = super::completion::lists())]
        list: Option<String>,
    },
    /// Add prefixes to a list.
    Add {
        #[arg(required = true, value_name = "CIDR")]
        prefixes: Vec<String>,
        /// The list (created if new).
        #[arg(long, value_name = "NAME", add = super::completion::lists(), default_value = DEFAULT_LIST)]
        list: String,
    },
    /// Remove prefixes from a list, or from every list that has them.
    Remove {
        #[arg(required = true, value_name = "CIDR")]
        prefixes: Vec<String>,
        /// Only from this list [default: every list].
        #[arg(long, value_name = "NAME", add = super::completion::lists())]
        list: Option<String>,
    },
    /// Add every prefix of a file to a list.
    Load {
        file: PathBuf,
        #[arg(long, value_name = "NAME", add = super::completion::lists(), default_value = DEFAULT_LIST)]
        list: String,
    },
    /// Make a list hold exactly the prefixes of a file, hitlessly: an address covered by both
    /// the old and the new list stays matched at every moment.
    Replace {
        file: PathBuf,
        #[arg(long, value_name = "NAME", add = super::completion::lists(), default_value = DEFAULT_LIST)]
        list: String,
    },
    /// Remove every prefix of a list, or of all lists, learned addresses included (their
    /// records too: they do not come back until a trusted answer teaches them again).
    Clear {
        /// Only this list [default: all lists].
        #[arg(long, value_name = "NAME", add = super::completion::lists())]
        list: Option<String>,
    },
    /// Forget addresses learned from DNS: those inside the given addresses or prefixes, of
    /// one list or of every list, or all of them. What was added by hand stays. A trusted
    /// answer may teach a forgotten address again; `dns.never_learn` in the config keeps it
    /// out for good.
    Forget {
        /// Addresses or prefixes whose learned addresses go.
        #[arg(value_name = "CIDR", required_unless_present_any = ["list", "all"])]
        prefixes: Vec<String>,
        /// Only from this list [default: every list].
        #[arg(long, value_name = "NAME", add = super::completion::lists())]
        list: Option<String>,
        /// Every learned address (of `--list`, if given).
        #[arg(long, conflicts_with = "prefixes")]
        all: bool,
    },
}

pub fn prefixes(context: &Context, args: PrefixesArgs) -> anyhow::Result<()> {
    let edit = match args.command {
        PrefixesCommand::List { list } => {
            let rows = report::prefixes::prefixes(&context.pin_dir, list.as_deref())?;
            return show(&rows, context.format);
        }
        PrefixesCommand::Add { prefixes, list } => Edit::Add {
            list,
            prefixes: Prefixes::Args(prefixes),
        },
        PrefixesCommand::Remove { prefixes, list } => Edit::Remove {
            list,
            prefixes: Prefixes::Args(prefixes),
        },
        PrefixesCommand::Load { file, list } => Edit::Add {
            list,
            prefixes: Prefixes::File(file),
        },
        PrefixesCommand::Replace { file, list } => Edit::Replace {
            list,
            prefixes: Prefixes::File(file),
        },
        PrefixesCommand::Clear { list } => Edit::Clear { list },
        PrefixesCommand::Forget {
            prefixes,
            list,
            all: _,
        } => {
            let forgotten = prefix_edit::forget(&context.pin_dir, list.as_deref(), &prefixes)?;
            if context.format.is_json() {
                return print_json(&forgotten, context.format);
            }
            if forgotten.forgotten.is_empty() {
                println!("no learned address matched: nothing forgotten");
            }
            for (list, count) in &forgotten.forgotten {
                println!("{list}: {count} learned addresses forgotten");
            }
            return Ok(());
        }
    };
    let edited = prefix_edit::edit(&context.pin_dir, edit)?;
    if context.format.is_json() {
        return print_json(&edited, context.format);
    }
    let Edited {
        list,
        applied: Applied {
            inserted,
            updated,
            deleted,
        },
        forgotten,
    } = edited;
    println!(
        "{}: {inserted} inserted, {updated} updated, {deleted} removed{}",
        list.as_deref().unwrap_or("all lists"),
        forgotten.map_or_else(String::new, |n| format!(
            " ({n} learned addresses forgotten with their records)"
        ))
    );
    Ok(())
}

fn show(rows: &[PrefixRow], format: Format) -> anyhow::Result<()> {
    if format.is_json() {
        return print_json(&rows, format);
    }
    let mut table = vec![vec!["PREFIX".to_owned(), "LISTS".to_owned()]];
    for row in rows {
        let mut lists = row.lists.join(",");
        let inherited: Vec<&String> = row
            .effective
            .iter()
            .filter(|l| !row.lists.contains(l))
            .collect();
        if !inherited.is_empty() {
            let inherited: Vec<&str> = inherited.iter().map(|s| s.as_str()).collect();
            lists.push_str(&format!(
                " (+{} from a containing prefix)",
                inherited.join(",")
            ));
        }
        for learned in &row.learned {
            if !lists.is_empty() {
                lists.push_str("; ");
            }
            lists.push_str(&format!(
                "{} (learned from {}: {} {} at {}, until {})",
                learned.list,
                learned.name,
                match learned.source {
                    report::prefixes::LearnedSource::Answer => "answer of",
                    report::prefixes::LearnedSource::Lookup => "own lookup through",
                },
                learned.resolver,
                learned.learned_at,
                learned.expires_at
            ));
        }
        table.push(vec![row.prefix.clone(), lists]);
    }
    print_table(&table);
    Ok(())
}
