//! Which side of the router a shaped interface faces, as its steering entry in the pinned
//! `SHAPING` map records it: `control::shape` writes it, `report::shaping` reads it back.

use classifier_common::control::{SIDE_LAN, SIDE_WAN};
use serde::Serialize;

/// Which side of the router an interface faces. It decides which address of a packet leaving
/// through it is the device's: its destination on the LAN side (downloads), its source on the
/// WAN side (uploads). The kernel cannot tell (a LAN may have public addresses, a WAN private
/// ones), so `shape` is told and writes it into the interface's `ShapeConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Lan,
    Wan,
}

impl Side {
    /// The code `ShapeConfig::side` holds.
    pub fn code(self) -> u32 {
        match self {
            Self::Lan => SIDE_LAN,
            Self::Wan => SIDE_WAN,
        }
    }

    /// The side of a `ShapeConfig::side` code; None for a code this binary does not know.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            SIDE_LAN => Some(Self::Lan),
            SIDE_WAN => Some(Self::Wan),
            _ => None,
        }
    }

    /// The packet's address that is the device's, for messages.
    pub fn device_address(self) -> &'static str {
        match self {
            Self::Lan => "destination",
            Self::Wan => "source",
        }
    }
}
