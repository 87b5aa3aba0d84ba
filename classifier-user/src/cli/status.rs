//! `classifier status`.

use clap::Args;
use classifier::report::status;

use super::{
    Context,
    output::{print_json, print_table},
};

/// Show where the classifier is attached, how full its maps are, and the policy.
#[derive(Args)]
pub struct StatusArgs {}

pub fn status(context: &Context, _args: StatusArgs) -> anyhow::Result<()> {
    let status = status::read(&context.pin_dir)?;
    if context.format.is_json() {
        return print_json(&status, context.format);
    }
    println!("state: {}", status.pin_dir);
    for (hook, program) in [("xdp", &status.program), ("tc", &status.program_tc)] {
        match program {
            Some(program) => println!(
                "program ({hook}): id {}, loaded {}, {} instructions",
                program.id,
                program.loaded_at.as_deref().unwrap_or("?"),
                program
                    .instructions
                    .map_or("?".to_owned(), |n| n.to_string())
            ),
            None => println!("program ({hook}): none pinned"),
        }
    }
    if status.interfaces.is_empty() {
        println!("interfaces: none attached");
    } else {
        let mut rows = vec![vec![
            "INTERFACE".to_owned(),
            "HOOK".to_owned(),
            "MODE".to_owned(),
            "PROGRAM".to_owned(),
            "LINK".to_owned(),
            "NETNS".to_owned(),
            "ATTACHED".to_owned(),
        ]];
        for interface in &status.interfaces {
            rows.push(vec![
                interface.interface.clone(),
                interface.hook.to_owned(),
                if interface.interface_gone {
                    "gone".to_owned()
                } else {
                    interface.mode.to_owned()
                },
                interface.program_id.to_string(),
                interface.link_id.to_string(),
                interface.netns.map_or("host".to_owned(), |n| n.to_string()),
                interface.attached_at.clone().unwrap_or_default(),
            ]);
        }
        print_table(&rows);
        for interface in status.interfaces.iter().filter(|i| i.interface_gone) {
            println!(
                "warning: {} was deleted while attached: its link is attached to nothing; \
                 `classifier detach {}` removes it, and attaching {} again replaces it",
                interface.interface, interface.interface, interface.interface
            );
        }
    }
    for shaped in &status.shaped {
        let fair = match (shaped.fair_leaves, shaped.side) {
            (None, _) => String::new(),
            (Some(leaves), side) => format!(
                "; bulk fair between devices in {leaves} leaves, by {} address",
                side.map_or("? (no steering entry)", |side| side.device_address())
            ),
        };
        let flows = shaped.flow_leaves.map_or_else(String::new, |leaves| {
            format!("; normal shared between flows in {leaves} leaves")
        });
        let queue = match (&shaped.leaf, shaped.flow_leaves, shaped.fair_leaves) {
            (Some(kind), ..) => kind.as_str(),
            (None, Some(_), Some(_)) => "pfifo leaves",
            (None, ..) => "? (tc shows no leaf under classifier's classes)",
        };
        println!(
            "shaped: {}{}, classes queue in {queue}{flows}{fair}",
            shaped.interface,
            shaped
                .netns
                .map_or_else(String::new, |n| format!(" (netns {n})")),
        );
    }
    let lists: Vec<String> = status
        .prefixes
        .lists
        .iter()
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    println!(
        "prefixes: {} IPv4, {} IPv6 (lists: {})",
        status.prefixes.ipv4,
        status.prefixes.ipv6,
        lists.join(", ")
    );
    println!("flows: {} of {}", status.flows.used, status.flows.max);
    println!(
        "policy{}: {}",
        if status.policy.dry_run {
            " (dry run: counting only)"
        } else {
            ""
        },
        if status.policy.rules.is_empty() {
            "no rules".to_owned()
        } else {
            status.policy.rules.join(" ")
        }
    );
    Ok(())
}
