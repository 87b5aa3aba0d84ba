//! Large prefix lists for the scale and live-update benchmarks: random, distinct, with
//! lengths as in routing tables (mostly /24 and /48), and never covering the addresses the
//! benchmarks send from or to, so that what a packet matches is known.

use std::{collections::HashSet, fmt::Write as _, net::Ipv4Addr, path::Path};

use anyhow::Result;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Networks the benchmarks' own addresses are in: the lab's client and server subnets.
const KEEP_OUT_V4: [&str; 2] = ["192.0.2.0/24", "198.51.100.0/24"];

fn v4_length(rng: &mut StdRng) -> u8 {
    match rng.random_range(0..100) {
        0..60 => 24,
        60..90 => rng.random_range(16..24),
        _ => rng.random_range(25..=32),
    }
}

/// `count` distinct IPv4 prefixes in 20.0.0.0–223.255.255.255 (so never in 10/8, where the
/// first-packet clients are, nor in Apple's 17/8).
pub fn ipv4(count: usize, seed: u64) -> Vec<IpNet> {
    let mut rng = StdRng::seed_from_u64(seed);
    let keep_out: Vec<Ipv4Net> = KEEP_OUT_V4.iter().map(|n| n.parse().unwrap()).collect();
    let mut seen = HashSet::with_capacity(count);
    while seen.len() < count {
        let address = Ipv4Addr::from(rng.random_range(0x1400_0000u32..0xe000_0000));
        let prefix = Ipv4Net::new(address, v4_length(&mut rng))
            .expect("a valid length")
            .trunc();
        if keep_out
            .iter()
            .any(|net| net.contains(&prefix) || prefix.contains(net))
        {
            continue;
        }
        seen.insert(IpNet::V4(prefix));
    }
    seen.into_iter().collect()
}

/// `count` distinct IPv6 prefixes in 2400::/13 (never in 2001:db8::/32 nor Apple's
/// 2620:149::/32), mostly /48.
pub fn ipv6(count: usize, seed: u64) -> Vec<IpNet> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = HashSet::with_capacity(count);
    while seen.len() < count {
        let high: u128 = 0x2400 | rng.random_range(0..0x800);
        let address = (high << 112) | (rng.random::<u128>() >> 16);
        let length = match rng.random_range(0..100) {
            0..70 => 48,
            70..90 => rng.random_range(32..48),
            _ => rng.random_range(49..=64),
        };
        let prefix = Ipv6Net::new(address.into(), length)
            .expect("a valid length")
            .trunc();
        seen.insert(IpNet::V6(prefix));
    }
    seen.into_iter().collect()
}

/// Writes a prefix file: the shipped `apple` list, then `extra`, one per line.
pub fn write(path: &Path, extra: &[IpNet]) -> Result<()> {
    let mut text = String::from(classifier::control::state::SHIPPED_APPLE_LIST);
    text.push('\n');
    for prefix in extra {
        let _ = writeln!(text, "{prefix}");
    }
    std::fs::write(path, text)?;
    Ok(())
}
