//! nftables counters in a namespace: how the tests see what arrived, and with which DSCP,
//! after XDP and forwarding, without trusting the classifier's own numbers.

use classifier::lab::Netns;

/// Loads `rules` (one table `inet verify`) into `ns` and returns a reader of its counters'
/// packet counts, in rule order.
pub fn nft_counters<'a>(ns: &'a Netns, rules: &str) -> impl Fn() -> Vec<u64> + 'a {
    let file = std::env::temp_dir().join(format!("{}.nft", ns.name()));
    std::fs::write(&file, rules).unwrap();
    ns.exec("nft", &["-f", file.to_str().unwrap()])
        .expect("nft rules");
    let _ = std::fs::remove_file(file);
    move || {
        let output = ns
            .exec("nft", &["-j", "list", "table", "inet", "verify"])
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|item| item.get("rule"))
            .map(|rule| {
                rule["expr"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find_map(|e| e.get("counter"))
                    .and_then(|c| c["packets"].as_u64())
                    .unwrap_or(0)
            })
            .collect()
    }
}
