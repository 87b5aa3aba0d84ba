//! `classifier shape`: the egress deprioritizer.

use clap::Args;
use classifier::control::shape::{
    self, DEFAULT_BULK_DSCP, DEFAULT_BULK_FLOOR, Leaf, ShapeSpec, UnshapeOutcome, parse_dscp_list,
    parse_rate,
};

use super::Context;

/// Deprioritize marked traffic in an interface's egress queue.
///
/// Builds an HTB tree on IFACE: a normal class with (100 - floor)% of RATE and a bulk class
/// with a guaranteed floor% of RATE, both allowed to borrow up to RATE, the normal class
/// first. A tc egress program puts packets whose DSCP is a bulk DSCP into the bulk class and
/// everything else into the normal class. So bulk traffic gets whatever the rest leaves, and
/// never less than its floor.
///
/// Shape the interface where the marked traffic leaves: the LAN side for downloads marked on
/// the WAN, the WAN side for uploads. RATE should be a little below the link's real capacity,
/// so that the queue builds here and not in the modem.
///
/// Each class queues in fq_codel where the kernel has it, else in pfifo (`status` shows which).
///
/// shape replaces IFACE's root qdisc only when it is the kernel's default (handle 0:) or
/// classifier's own tree; anything else is someone's traffic control: shape names it, changes
/// nothing and exits with 2, unless --force. --off removes only classifier's own tree.
#[derive(Args)]
#[command(after_help = "Examples:
  classifier shape eth0 --rate 950mbit               # LAN side of a 1 Gbit/s uplink
  classifier shape eth0 --rate 50mbit --bulk-floor 5 --bulk-dscp LE,CS1,AF11
  classifier shape eth0 --rate 50mbit --force       # replace the root qdisc someone set up
  classifier shape eth0 --off")]
pub struct ShapeArgs {
    #[arg(value_name = "IFACE", add = super::completion::interfaces())]
    interface: String,
    /// The rate to shape to: a number and bit, kbit, mbit or gbit (e.g. 50mbit).
    #[arg(long, value_name = "RATE", required_unless_present = "off", value_parser = parse_rate)]
    rate: Option<u64>,
    /// The bulk class's guaranteed share of RATE, in percent.
    #[arg(long, value_name = "PCT", default_value_t = DEFAULT_BULK_FLOOR,
          value_parser = clap::value_parser!(u8).range(1..=99))]
    bulk_floor: u8,
    /// DSCPs that go to the bulk class (names or numbers, comma-separated).
    #[arg(long, value_name = "LIST", default_value = DEFAULT_BULK_DSCP, value_parser = dscp_list)]
    bulk_dscp: DscpList,
    /// Replace IFACE's root qdisc even when classifier did not create it: whatever traffic
    /// control it carries (classes, filters, leaves) is lost.
    #[arg(long, conflicts_with = "off")]
    force: bool,
    /// Remove classifier's HTB tree and egress program from IFACE. A root qdisc classifier did
    /// not create is left as it is (exit code 2).
    #[arg(long, conflicts_with_all = ["rate", "bulk_floor", "bulk_dscp"])]
    off: bool,
}

/// A comma-separated DSCP list as one argument (a bare Vec would make clap expect many).
#[derive(Clone, Debug)]
struct DscpList(Vec<u8>);

fn dscp_list(text: &str) -> Result<DscpList, String> {
    parse_dscp_list(text).map(DscpList)
}

pub fn shape(context: &Context, args: ShapeArgs) -> anyhow::Result<()> {
    if args.off {
        match shape::unshape(&context.pin_dir, &args.interface)? {
            UnshapeOutcome::Removed => println!("{}: shaping removed", args.interface),
            UnshapeOutcome::NothingToRemove => println!(
                "{}: not shaped by classifier; its root qdisc is the kernel's default",
                args.interface
            ),
        }
        return Ok(());
    }
    let spec = ShapeSpec {
        rate: args.rate.expect("clap requires --rate without --off"),
        bulk_floor: args.bulk_floor,
        bulk_dscp: args.bulk_dscp.0,
    };
    let shape = if args.force {
        shape::shape_forced
    } else {
        shape::shape
    };
    let outcome = shape(&context.pin_dir, &context.config, &args.interface, &spec)?;
    if let Some(qdisc) = &outcome.replaced {
        println!(
            "{}: replaced the root qdisc {qdisc} (--force)",
            args.interface
        );
    }
    let names: Vec<String> = spec
        .bulk_dscp
        .iter()
        .map(|d| classifier::control::policy::dscp_name(*d))
        .collect();
    println!(
        "{}: shaped to {} bit/s; bulk ({}) guaranteed {}%, may borrow up to the full rate; \
         each class queues in {}",
        args.interface,
        spec.rate,
        names.join(","),
        spec.bulk_floor,
        match outcome.leaf {
            Leaf::FqCodel => "fq_codel",
            Leaf::Pfifo => "pfifo (this kernel has no fq_codel)",
        }
    );
    Ok(())
}
