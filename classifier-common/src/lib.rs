//! Types shared by the kernel program (`classifier-ebpf`) and the user side (`classifier-user`).
//!
//! Everything here is `#[repr(C)]`, fixed-width and explicitly padded: map keys are hashed
//! byte-for-byte, so implicit padding would make lookups miss.
#![no_std]

pub mod clock;
pub mod config;
pub mod control;
pub mod counter;
pub mod dns;
pub mod flow;
pub mod flow_hash;
pub mod limits;
pub mod mptcp;
pub mod parse_error;
pub mod prefix;
pub mod protocol;
pub mod report;

#[cfg(feature = "user")]
mod pod;

pub use clock::CoarseClock;
pub use config::{Config, PolicyRule};
pub use control::{Attachment, ListName, ShapeConfig};
pub use counter::{Counter, CounterValue};
pub use flow::{FlowEntry, FlowKey, FlowKeyV4};
pub use mptcp::MptcpSubtype;
pub use parse_error::ParseError;
pub use prefix::PrefixValue;
pub use report::PacketReport;
