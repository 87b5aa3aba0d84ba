//! `classifier attach` and `classifier detach`.

use clap::{Args, ValueEnum};
use classifier::control::attach::{self as control, Attached, Mode};
use serde::Serialize;

use super::{Context, output::print_json};

/// Attach the classifier to interfaces (XDP, on their ingress).
///
/// The program is loaded once and pinned with its maps and one link per interface under the
/// pin directory: it stays attached after the CLI exits, and counters, flows and prefixes
/// survive a re-attach. The first attach creates the state: the `apple` list (Apple's address
/// allocations) and the default policy `list:apple=LE mptcp=keep`, or those of the config
/// file.
///
/// Where to attach on a router: the WAN interface to catch downloads, the LAN interfaces to
/// catch uploads. The deprioritizing itself happens in the egress queue of the other side.
#[derive(Args)]
#[command(after_help = "Examples:
  classifier attach eth1                  # native XDP, skb mode if the driver lacks it
  classifier attach eth1 --mode skb
  classifier attach eth1 --replace        # swap in this binary's program, keeping all state
  classifier --netns lab attach veth0     # an interface of network namespace `lab`")]
pub struct AttachArgs {
    /// Interfaces to attach to.
    #[arg(required = true, value_name = "IFACE", add = super::completion::interfaces())]
    interfaces: Vec<String>,
    /// native: in the driver (fastest); skb: generic, after the kernel built an skb (works on
    /// any interface); auto: native, falling back to skb with a warning.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    mode: ModeArg,
    /// For interfaces already attached: swap the program atomically through their link,
    /// keeping maps and counters (how to upgrade classifier without a gap).
    #[arg(long)]
    replace: bool,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum ModeArg {
    Auto,
    Native,
    Skb,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Auto => Mode::Auto,
            ModeArg::Native => Mode::Native,
            ModeArg::Skb => Mode::Skb,
        }
    }
}

/// Detach the classifier from interfaces.
///
/// Removing an interface's link detaches the program from it at once. The maps (counters,
/// flows, prefixes, policy) stay pinned unless --purge is given with --all.
#[derive(Args)]
#[command(after_help = "Examples:
  classifier detach eth1
  classifier detach --all --purge         # remove everything classifier pinned")]
pub struct DetachArgs {
    /// Interfaces to detach from.
    #[arg(
        value_name = "IFACE",
        add = super::completion::interfaces(),
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    interfaces: Vec<String>,
    /// Detach from every interface (in every network namespace).
    #[arg(long)]
    all: bool,
    /// Also remove the pinned maps and the pin directory: counters, flows, prefixes and policy
    /// are gone.
    #[arg(long)]
    purge: bool,
}

/// `attach -j`: what was done on each interface.
#[derive(Serialize)]
struct AttachDocument<'a> {
    attached: &'a [Attached],
}

/// `detach -j`: the links removed (their pin names under `links/`), and whether the maps
/// and the pin directory were removed too.
#[derive(Serialize)]
struct DetachDocument<'a> {
    detached: &'a [String],
    purged: bool,
}

pub fn attach(context: &Context, args: AttachArgs) -> anyhow::Result<()> {
    let attached = control::attach(
        &context.pin_dir,
        &args.interfaces,
        args.mode.into(),
        args.replace,
        &context.config,
    )?;
    // The warnings stay on stderr under -j too; `fell_back` and `was_defunct` carry them.
    for done in &attached {
        if let Some(reason) = &done.fell_back {
            eprintln!(
                "warning: {}: native XDP failed ({reason}); attached in skb mode, which costs \
                 more per packet",
                done.interface
            );
        }
        if done.was_defunct {
            eprintln!(
                "note: {}: the interface had been deleted while attached; its defunct link was \
                 removed",
                done.interface
            );
        }
    }
    if context.format.is_json() {
        let document = AttachDocument {
            attached: &attached,
        };
        return print_json(&document, context.format);
    }
    for done in &attached {
        let verb = if done.replaced {
            "replaced the program on"
        } else {
            "attached to"
        };
        println!("{verb} {} ({})", done.interface, done.mode);
    }
    Ok(())
}

pub fn detach(context: &Context, args: DetachArgs) -> anyhow::Result<()> {
    let detached = control::detach(&context.pin_dir, &args.interfaces, args.all, args.purge)?;
    if context.format.is_json() {
        let document = DetachDocument {
            detached: &detached,
            purged: args.purge,
        };
        return print_json(&document, context.format);
    }
    for pin in &detached {
        println!("detached from {pin}");
    }
    if detached.is_empty() {
        println!("nothing was attached");
    }
    if args.purge {
        println!("removed {}", context.pin_dir.path().display());
    }
    Ok(())
}
