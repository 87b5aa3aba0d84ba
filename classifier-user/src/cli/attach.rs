//! `classifier attach` and `classifier detach`.

use clap::{Args, ValueEnum};
use classifier::{
    control::attach::{self as control, Attached, HookChoice},
    load::AttachMode,
};
use serde::Serialize;

use super::{Context, output::print_json};

/// Attach the classifier to interfaces (XDP or tc, on their ingress).
///
/// The program is loaded once and pinned with its maps and one link per interface under the
/// pin directory: it stays attached after the CLI exits, and counters, flows and prefixes
/// survive a re-attach. The first attach creates the state: the `apple` list (Apple's address
/// allocations) and the default policy `list:apple=LE mptcp=keep`, or those of the config
/// file.
///
/// Where to attach on a router: the WAN interface to catch downloads, the LAN interfaces to
/// catch uploads. The deprioritizing itself happens in the egress queue of the other side.
///
/// The hook: native XDP runs in the driver, before the kernel builds an skb, and is the
/// fastest. Where the driver has none (Wi-Fi, USB NICs, bridges, tunnels), the same pipeline
/// runs at tc (TCX ingress), which marks, counts and remembers flows alike and costs much less
/// than generic (skb) XDP. By default attach picks native XDP, else tc, and says so.
#[derive(Args)]
#[command(after_help = "Examples:
  classifier attach eth1                  # native XDP, tc if the driver lacks it
  classifier attach wlan0 --hook tc
  classifier attach eth1 --hook xdp --mode skb   # generic XDP
  classifier attach eth1 --replace        # swap in this binary's program, keeping all state
  classifier --netns lab attach veth0     # an interface of network namespace `lab`")]
pub struct AttachArgs {
    /// Interfaces to attach to.
    #[arg(required = true, value_name = "IFACE", add = super::completion::interfaces())]
    interfaces: Vec<String>,
    #[command(flatten)]
    placement: Placement,
    /// For interfaces already attached: swap the program atomically through their link,
    /// keeping maps and counters (how to upgrade classifier without a gap).
    #[arg(long)]
    replace: bool,
}

/// Where the program runs on an interface (shared by `attach` and `run`).
#[derive(Args)]
pub struct Placement {
    /// xdp: XDP, in --mode; tc: tc at TCX ingress (no qdisc needed); auto: native XDP where
    /// the driver has it, else tc, with a note.
    #[arg(long, value_enum, default_value_t = HookArg::Auto)]
    hook: HookArg,
    /// XDP's mode. native: in the driver (fastest); skb: generic, after the kernel built an
    /// skb (slower than tc); auto: native, falling back to skb with a warning (with --hook
    /// xdp) or to tc (with --hook auto). native and skb mean --hook xdp.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    mode: ModeArg,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum HookArg {
    Auto,
    Xdp,
    Tc,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum ModeArg {
    Auto,
    Native,
    Skb,
}

impl Placement {
    /// The library's mode. An XDP mode with --hook tc is a usage error: clap's message, exit
    /// code 2, before anything is done.
    pub fn mode(&self) -> HookChoice {
        match (self.hook, self.mode) {
            (HookArg::Auto, ModeArg::Auto) => HookChoice::Auto,
            (HookArg::Xdp, ModeArg::Auto) => HookChoice::XdpAuto,
            (HookArg::Auto | HookArg::Xdp, ModeArg::Native) => HookChoice::XdpNative,
            (HookArg::Auto | HookArg::Xdp, ModeArg::Skb) => HookChoice::XdpSkb,
            (HookArg::Tc, ModeArg::Auto) => HookChoice::Tc,
            (HookArg::Tc, ModeArg::Native | ModeArg::Skb) => clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                "--mode native and --mode skb are XDP's modes: they do not go with --hook tc\n",
            )
            .exit(),
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
        args.placement.mode(),
        args.replace,
        &context.config,
    )?;
    // The warnings stay on stderr under -j too; `fell_back` and `was_defunct` carry them.
    for done in &attached {
        if let Some(reason) = &done.fell_back {
            if done.mode == AttachMode::Tcx {
                eprintln!(
                    "note: {}: no native XDP ({reason}); attached at tc (TCX ingress) instead",
                    done.interface
                );
            } else {
                eprintln!(
                    "warning: {}: native XDP failed ({reason}); attached in skb mode, which \
                     costs more per packet than tc (--hook tc)",
                    done.interface
                );
            }
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
        println!(
            "{verb} {} ({} {})",
            done.interface,
            done.mode.hook(),
            done.mode
        );
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
