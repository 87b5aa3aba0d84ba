//! nftables counters in a lab namespace: how the lab and the tests see what arrived, and with
//! which DSCP, after XDP and forwarding, without trusting the classifier's own numbers.

use crate::{Netns, io_error};
use classifier::Error;

/// A table `inet verify` of counting rules loaded into a namespace.
pub struct Counters<'a> {
    ns: &'a Netns,
}

impl<'a> Counters<'a> {
    /// Loads `rules` (the text of one table named `inet verify`) into `ns`.
    pub fn load(ns: &'a Netns, rules: &str) -> Result<Self, Error> {
        ns.load_nft(rules)?;
        Ok(Self { ns })
    }

    /// The table loaded earlier into `ns`.
    pub fn loaded(ns: &'a Netns) -> Self {
        Self { ns }
    }

    /// The packet count of every counter, in rule order.
    pub fn read(&self) -> Result<Vec<u64>, Error> {
        let output = self
            .ns
            .exec("nft", &["-j", "list", "table", "inet", "verify"])?;
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| io_error("reading nft's JSON")(std::io::Error::other(error)))?;
        Ok(json["nftables"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|item| item.get("rule"))
            .filter_map(|rule| {
                rule["expr"]
                    .as_array()?
                    .iter()
                    .find_map(|e| e.get("counter"))
                    .and_then(|c| c["packets"].as_u64())
            })
            .collect())
    }
}
