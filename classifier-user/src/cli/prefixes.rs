//! `classifier prefixes`: the prefix lists, changed live.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use classifier::{
    ClassifierMaps, WriterLock,
    control::{
        lists::{DEFAULT_LIST, ListNames},
        prefix_file::{parse_prefix_arg, read_prefix_file},
        prefixes::{self, Applied, Change},
    },
};
use serde::Serialize;

use super::{
    Context,
    output::{print_json, print_table},
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
  classifier prefixes list --list apple --json"
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
        #[arg(long, value_name = "NAME")]
        list: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add prefixes to a list.
    Add {
        #[arg(required = true, value_name = "CIDR")]
        prefixes: Vec<String>,
        /// The list (created if new).
        #[arg(long, value_name = "NAME", default_value = DEFAULT_LIST)]
        list: String,
    },
    /// Remove prefixes from a list, or from every list that has them.
    Remove {
        #[arg(required = true, value_name = "CIDR")]
        prefixes: Vec<String>,
        /// Only from this list [default: every list].
        #[arg(long, value_name = "NAME")]
        list: Option<String>,
    },
    /// Add every prefix of a file to a list.
    Load {
        file: PathBuf,
        #[arg(long, value_name = "NAME", default_value = DEFAULT_LIST)]
        list: String,
    },
    /// Make a list hold exactly the prefixes of a file, hitlessly: an address covered by both
    /// the old and the new list stays matched at every moment.
    Replace {
        file: PathBuf,
        #[arg(long, value_name = "NAME", default_value = DEFAULT_LIST)]
        list: String,
    },
    /// Remove every prefix of a list, or of all lists.
    Clear {
        /// Only this list [default: all lists].
        #[arg(long, value_name = "NAME")]
        list: Option<String>,
    },
}

#[derive(Serialize)]
struct PrefixRow {
    prefix: String,
    /// Lists this prefix was added to.
    lists: Vec<String>,
    /// Lists an address in it matches (its own plus those of prefixes containing it).
    effective: Vec<String>,
    /// Lists it was learned into from DNS answers, with the name and the expiry.
    learned: Vec<LearnedRow>,
}

#[derive(Serialize)]
struct LearnedRow {
    list: String,
    /// The name whose answer taught the address.
    name: String,
    /// RFC 3339, UTC.
    expires_at: String,
}

pub fn prefixes(context: &Context, args: PrefixesArgs) -> anyhow::Result<()> {
    // Every subcommand but `list` changes the lists: one writer at a time, from reading the
    // list names to the last write.
    let _writer = match args.command {
        PrefixesCommand::List { .. } => None,
        _ => Some(WriterLock::acquire(&context.pin_dir)?),
    };
    let mut maps = ClassifierMaps::open_pinned(&context.pin_dir)?;
    let mut names = ListNames::read(&maps)?;
    let (change, list_name) = match args.command {
        PrefixesCommand::List { list, json } => return show(&maps, &names, list, json),
        PrefixesCommand::Add { prefixes, list } => {
            let prefixes = parse_all(&prefixes)?;
            let bit = names.get_or_create(&mut maps, &list)?;
            (
                Change::Add {
                    list: bit,
                    prefixes,
                },
                Some(list),
            )
        }
        PrefixesCommand::Remove { prefixes, list } => {
            let prefixes = parse_all(&prefixes)?;
            let bit = list
                .as_deref()
                .map(|name| names.require(name))
                .transpose()?;
            (
                Change::Remove {
                    list: bit,
                    prefixes,
                },
                list,
            )
        }
        PrefixesCommand::Load { file, list } => {
            let prefixes = read_prefix_file(&file)?;
            let bit = names.get_or_create(&mut maps, &list)?;
            (
                Change::Add {
                    list: bit,
                    prefixes,
                },
                Some(list),
            )
        }
        PrefixesCommand::Replace { file, list } => {
            let prefixes = read_prefix_file(&file)?;
            let bit = names.get_or_create(&mut maps, &list)?;
            (
                Change::Replace {
                    list: bit,
                    prefixes,
                },
                Some(list),
            )
        }
        PrefixesCommand::Clear { list } => {
            let bit = list
                .as_deref()
                .map(|name| names.require(name))
                .transpose()?;
            (Change::Clear { list: bit }, list)
        }
    };
    let Applied {
        inserted,
        updated,
        deleted,
    } = prefixes::apply(&mut maps, &change)?;
    println!(
        "{}: {inserted} inserted, {updated} updated, {deleted} removed",
        list_name.as_deref().unwrap_or("all lists")
    );
    Ok(())
}

fn parse_all(texts: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    Ok(texts
        .iter()
        .map(|text| parse_prefix_arg(text))
        .collect::<Result<_, _>>()?)
}

fn show(
    maps: &ClassifierMaps,
    names: &ListNames,
    list: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let only = list
        .as_deref()
        .map(|name| names.require(name))
        .transpose()?;
    let mut learned = learned_rows(maps, names)?;
    let mut entries = maps.prefixes()?;
    entries.sort_by_key(|(prefix, _)| *prefix);
    let rows: Vec<PrefixRow> = entries
        .into_iter()
        .filter(|(_, value)| only.is_none_or(|bit| (value.own | value.learned) & (1 << bit) != 0))
        .map(|(prefix, value)| PrefixRow {
            prefix: prefix.to_string(),
            lists: names.names_in(value.own),
            effective: names.names_in(value.lists),
            learned: learned.remove(&prefix).unwrap_or_default(),
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    let mut table = vec![vec!["PREFIX".to_owned(), "LISTS".to_owned()]];
    for row in &rows {
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
                "{} (learned from {}, until {})",
                learned.list, learned.name, learned.expires_at
            ));
        }
        table.push(vec![row.prefix.clone(), lists]);
    }
    print_table(&table);
    Ok(())
}

/// Learned addresses by host prefix, from the pinned `LEARNED` map.
fn learned_rows(
    maps: &ClassifierMaps,
    names: &ListNames,
) -> anyhow::Result<std::collections::BTreeMap<ipnet::IpNet, Vec<LearnedRow>>> {
    let mut rows: std::collections::BTreeMap<ipnet::IpNet, Vec<LearnedRow>> = Default::default();
    for (key, value) in maps.learned()? {
        let expires = std::time::UNIX_EPOCH + std::time::Duration::from_secs(value.expires_at);
        rows.entry(ipnet::IpNet::from(classifier::dns::addr_of(&key)))
            .or_default()
            .push(LearnedRow {
                list: names.names_in(1 << key.list).join(","),
                name: classifier::padded_name(&value.name),
                expires_at: humantime::format_rfc3339_seconds(expires).to_string(),
            });
    }
    Ok(rows)
}
