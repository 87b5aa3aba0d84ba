//! iproute2's `tc`, the one program the classifier starts. HTB's class options (rates,
//! ceilings, rate tables) are not covered by a maintained netlink crate, and `tc` is what
//! operators read and debug with anyway. What `tc` did is judged by its exit status
//! (`command`), and what is on an interface by its JSON (`tc -j qdisc show`) or, for classes,
//! its lines (`show`); its English messages are passed on with the command that failed, never
//! interpreted.
//!
//! Neither a change nor a view: `control::shape` builds and removes classifier's tree
//! through it, `report::shaping` reads the tree through it, and both find the tree's parts by
//! `layout`. No other module starts a program (`layers.rs` holds it).

mod command;
pub mod layout;
mod show;

pub(crate) use command::{batch, output, run};
pub(crate) use show::{HANDLE_KERNEL, Qdisc, egress_qdiscs, leaves_of};
