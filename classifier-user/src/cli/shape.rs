//! `classifier shape`: the egress deprioritizer.

use clap::{Args, ValueEnum};
use classifier::{
    control::shape::{
        self, DEFAULT_BULK_DSCP, DEFAULT_BULK_FLOOR, FAIR_LEAF_PACKETS, FLOW_LEAF_PACKETS, Leaf,
        ShapeSpec, Side, UnshapeOutcome, parse_dscp_list, parse_fair_leaves, parse_flow_leaves,
        parse_rate,
    },
    load::dscp_name,
};
use serde::Serialize;

use super::{Context, output::print_json};

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
/// Flows in the normal class (--flows, on by default): the normal class is split into N leaf
/// classes, and each packet that is not bulk goes to the leaf of a hash of its flow (addresses,
/// protocol, ports). HTB serves the busy leaves in turn, one quantum each, and a flow that
/// sends little (an interactive session, DNS, a page's first packets) gets a nearly empty
/// leaf of its own: it waits behind no other flow's queue. Each leaf queues in a pfifo of 64
/// packets (1:2000 and up in `tc class show`).
///
/// A class without leaves queues in fq_codel where the kernel has it, else in pfifo (`status`
/// shows which); fq_codel shares a class between flows by itself, so on such a kernel
/// `--flows off` gives the normal class fq_codel instead of the leaves.
///
/// Fairness between devices (--fair, on by default): the bulk class is split into K leaf
/// classes, and each bulk packet goes to the leaf of its device's address (the destination
/// with --side lan, the source with --side wan). HTB serves the leaves in turn, so bulk is
/// shared between devices, not between connections: a phone with 8 downloads gets what a
/// phone with one gets. Devices whose addresses hash alike share a leaf. Each leaf queues in
/// a pfifo of 64 packets. `tc -s class show dev IFACE` lists the leaves (1:100 and up).
///
/// shape replaces IFACE's root qdisc only when it is the kernel's default (handle 0:) or
/// classifier's own tree; anything else is someone's traffic control: shape names it, changes
/// nothing and exits with 2, unless --force. --off removes only classifier's own tree.
#[derive(Args)]
#[command(after_help = "Examples:
  classifier shape eth0 --rate 950mbit               # LAN side of a 1 Gbit/s uplink
  classifier shape eth0 --rate 50mbit --bulk-floor 5 --bulk-dscp LE,CS1,AF11
  classifier shape eth0 --rate 50mbit --force       # replace the root qdisc someone set up
  classifier shape wan0 --rate 20mbit --side wan    # uploads: devices are the sources
  classifier shape eth0 --rate 50mbit --fair off    # bulk is one queue, shared per connection
  classifier shape eth0 --rate 50mbit --flows off   # the normal class is one queue
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
    /// Share the bulk class between devices in K leaves, or `off` for one bulk queue shared
    /// by connections. K is a power of two (the kernel picks a leaf with a mask of the
    /// address hash, so each leaf gets an equal part of the addresses) from 2 to 4096 (the
    /// leaf ids' room; each leaf costs an HTB class and a queue). 256 suits a campus: up to
    /// 256 consecutive IPv4 addresses get a leaf each; random IPv6 addresses share more.
    #[arg(long, value_name = "K|off", default_value = "256", value_parser = fair_leaves)]
    fair: FairLeaves,
    /// Which side of the router IFACE faces, so whose address is the device's: lan (the
    /// destination: downloads leave here) or wan (the source: uploads leave here). Behind IPv4
    /// masquerading a WAN egress sees the router's own address: only IPv6 devices are told
    /// apart there.
    #[arg(long, value_enum, default_value_t = SideArg::Lan)]
    side: SideArg,
    /// Share the normal class between flows in N leaves, or `off` for one normal queue. N is
    /// a power of two from 2 to 4096. With 256, a flow that sends little shares its leaf with
    /// one of 4 busy flows 1.6 % of the time (about b/N with b busy flows).
    #[arg(long, value_name = "N|off", default_value = "256", value_parser = flow_leaves)]
    flows: FlowLeaves,
    /// Remove classifier's HTB tree and egress program from IFACE. A root qdisc classifier did
    /// not create is left as it is (exit code 2).
    #[arg(long, conflicts_with_all = ["rate", "bulk_floor", "bulk_dscp", "fair", "side", "flows"])]
    off: bool,
}

/// `--fair`: the number of leaves, None for off.
#[derive(Clone, Copy, Debug)]
struct FairLeaves(Option<u32>);

fn fair_leaves(text: &str) -> Result<FairLeaves, String> {
    parse_fair_leaves(text).map(FairLeaves)
}

/// `--flows`: the number of leaves, None for off.
#[derive(Clone, Copy, Debug)]
struct FlowLeaves(Option<u32>);

fn flow_leaves(text: &str) -> Result<FlowLeaves, String> {
    parse_flow_leaves(text).map(FlowLeaves)
}

#[derive(Copy, Clone, ValueEnum)]
enum SideArg {
    Lan,
    Wan,
}

impl From<SideArg> for Side {
    fn from(side: SideArg) -> Self {
        match side {
            SideArg::Lan => Side::Lan,
            SideArg::Wan => Side::Wan,
        }
    }
}

/// A comma-separated DSCP list as one argument (a bare Vec would make clap expect many).
#[derive(Clone, Debug)]
struct DscpList(Vec<u8>);

fn dscp_list(text: &str) -> Result<DscpList, String> {
    parse_dscp_list(text).map(DscpList)
}

/// `shape -j`: the tree now in force on the interface, and the foreign root qdisc `--force`
/// replaced ("tbf 1:"), if any.
#[derive(Serialize)]
struct ShapeDocument<'a> {
    interface: &'a str,
    /// Bits per second.
    rate: u64,
    bulk_floor: u8,
    /// DSCP names (numbers for those without one), as `--bulk-dscp` takes them.
    bulk_dscp: Vec<String>,
    leaf: Leaf,
    /// Leaves the bulk class is shared between, one per group of devices; null with `--fair off`.
    fair_leaves: Option<u32>,
    /// Which side the interface faces ("lan" or "wan"): whose address picks the leaf.
    side: Side,
    /// Leaves the normal class is shared between, one per hash of a flow; null with `--flows off`.
    flow_leaves: Option<u32>,
    replaced: Option<&'a str>,
}

/// `shape --off -j`: whether classifier's tree was there and is gone.
#[derive(Serialize)]
struct UnshapeDocument<'a> {
    interface: &'a str,
    removed: bool,
}

pub fn shape(context: &Context, args: ShapeArgs) -> anyhow::Result<()> {
    if args.off {
        let outcome = shape::unshape(&context.pin_dir, &args.interface)?;
        if context.format.is_json() {
            let document = UnshapeDocument {
                interface: &args.interface,
                removed: outcome == UnshapeOutcome::Removed,
            };
            return print_json(&document, context.format);
        }
        match outcome {
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
        fair_leaves: args.fair.0,
        side: args.side.into(),
        flow_leaves: args.flows.0,
    };
    let shape = if args.force {
        shape::shape_forced
    } else {
        shape::shape
    };
    let outcome = shape(&context.pin_dir, &context.config, &args.interface, &spec)?;
    let names: Vec<String> = spec.bulk_dscp.iter().map(|d| dscp_name(*d)).collect();
    if context.format.is_json() {
        let document = ShapeDocument {
            interface: &args.interface,
            rate: spec.rate,
            bulk_floor: spec.bulk_floor,
            bulk_dscp: names,
            leaf: outcome.leaf,
            fair_leaves: spec.fair_leaves,
            side: spec.side,
            flow_leaves: spec.flow_leaves,
            replaced: outcome.replaced.as_deref(),
        };
        return print_json(&document, context.format);
    }
    if let Some(qdisc) = &outcome.replaced {
        println!(
            "{}: replaced the root qdisc {qdisc} (--force)",
            args.interface
        );
    }
    let leaf = match outcome.leaf {
        Leaf::FqCodel => "fq_codel",
        Leaf::Pfifo => "pfifo (this kernel has no fq_codel)",
    };
    let normal = match spec.flow_leaves {
        None => format!("the normal class queues in {leaf}"),
        Some(leaves) => format!(
            "the normal class is shared between flows in {leaves} leaves of a pfifo of \
             {FLOW_LEAF_PACKETS} packets"
        ),
    };
    let bulk = match spec.fair_leaves {
        None => format!("bulk queues in {leaf}"),
        Some(leaves) => format!(
            "bulk is shared between devices (by {} address, {} side) in {leaves} leaves of a \
             pfifo of {FAIR_LEAF_PACKETS} packets",
            spec.side.device_address(),
            match spec.side {
                Side::Lan => "LAN",
                Side::Wan => "WAN",
            }
        ),
    };
    let queues = if spec.flow_leaves.is_none() && spec.fair_leaves.is_none() {
        format!("each class queues in {leaf}")
    } else {
        format!("{normal}; {bulk}")
    };
    println!(
        "{}: shaped to {} bit/s; bulk ({}) guaranteed {}%, may borrow up to the full rate; \
         {queues}",
        args.interface,
        spec.rate,
        names.join(","),
        spec.bulk_floor,
    );
    Ok(())
}
