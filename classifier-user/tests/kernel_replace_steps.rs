//! The hitless replace, one map write at a time: a `prefixes replace` is planned as the CLI
//! plans it, its writes are made one by one, and after every single write packets that
//! really consult the tries (a new flow each, so no cached decision answers for them) must
//! find every address of both the old and the new list in the list, and no address of
//! neither (docs/design.md, 'Hitless replace').
//!
//! It fails if the plan deletes or shrinks before it inserts: an address covered by a
//! prefix the replace removes and by one it adds is unmatched between the two writes.

use classifier_testkit as support;

use std::{cell::Cell, net::IpAddr};

use classifier::control::prefixes::{self, Change, Step};
use ipnet::IpNet;
use support::{Kernel, LIST_APPLE, LIST_CDN, packet::Segment};

const APPLE: u32 = 0;
const CDN: u32 = 1;

/// The apple list before and after, with nested prefixes, in IPv4 and IPv6:
/// - the /8 gives way to a /16 and a /9 inside it (deleted: the new entries must come first);
/// - 10.0.0.0/8 stays in cdn, so it shrinks to cdn only while 10.20.0.0/16 joins apple (the
///   shrink must come after the insert);
/// - 172.16.5.0/24 (cdn) inherits apple from 172.16.0.0/12, then from 172.16.0.0/16;
/// - the same three shapes in IPv6.
const OLD_APPLE: &[&str] = &[
    "17.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "192.168.1.0/24",
    "2620:149::/32",
    "2a02:26f0::/32",
];
const NEW_APPLE: &[&str] = &[
    "17.253.0.0/16",
    "17.128.0.0/9",
    "10.20.0.0/16",
    "172.16.0.0/16",
    "192.168.1.0/24",
    "192.168.1.128/25",
    "2620:149:a00::/40",
    "2a01:b740::/32",
    "2a02:26f0:100::/40",
    "100.64.0.0/10",
];
const CDN_PREFIXES: &[&str] = &[
    "10.0.0.0/8",
    "172.16.5.0/24",
    "2620:149:a44::/48",
    "2a02:26f0::/32",
];

/// Addresses to look up, as sources; which of them are in both lists, in one or in neither
/// is worked out from the lists above.
const ADDRESSES: &[&str] = &[
    "17.253.0.10",
    "17.200.1.1",
    "17.1.0.1",
    "10.20.0.5",
    "10.1.0.1",
    "172.16.5.9",
    "172.16.200.1",
    "172.20.0.1",
    "192.168.1.1",
    "192.168.1.200",
    "192.168.2.1",
    "192.0.2.1",
    "203.0.113.1",
    "18.0.0.1",
    "100.64.0.1",
    "2620:149:a44::10",
    "2620:149:a01::1",
    "2620:149:1::1",
    "2a01:b740::1",
    "2a02:26f0:100::1",
    "2a02:26f0:200::1",
    "2001:db8::1",
    "2620:14a::1",
];

fn parse(prefixes: &[&str]) -> Vec<IpNet> {
    prefixes.iter().map(|p| p.parse().unwrap()).collect()
}

fn covered(prefixes: &[&str], addr: IpAddr) -> bool {
    parse(prefixes).iter().any(|p| p.contains(&addr))
}

/// Runs UDP packets from each address through the program, each a flow never seen before,
/// and returns whether the packet was in the apple list.
struct Probe {
    next_port: Cell<u16>,
}

impl Probe {
    fn in_apple(&self, kernel: &Kernel, addr: IpAddr) -> bool {
        let port = self.next_port.get();
        self.next_port
            .set(port.checked_add(1).expect("enough source ports"));
        let server = match addr {
            IpAddr::V4(_) => "198.51.100.1",
            IpAddr::V6(_) => "2001:db8:ffff::1",
        };
        let packet = Segment::udp(&addr.to_string(), server, port, 9).build();
        let run = kernel.run(&packet);
        assert!(
            run.moved.contains_key("flow_created"),
            "{addr}: the probe must be a new flow, looked up in the tries"
        );
        run.report.lists & LIST_APPLE != 0
    }
}

#[test]
fn every_single_write_of_a_replace_keeps_both_lists_addresses_matched() {
    let mut kernel = Kernel::load_xdp_only();
    let maps = &mut kernel.classifier.writer();
    for (list, prefixes) in [(CDN, CDN_PREFIXES), (APPLE, OLD_APPLE)] {
        let change = Change::Add {
            list,
            prefixes: parse(prefixes),
        };
        prefixes::apply(maps, &change).unwrap();
    }
    let replace = Change::Replace {
        list: APPLE,
        prefixes: parse(NEW_APPLE),
    };
    let plan = prefixes::plan(maps, &replace).unwrap();
    let steps = plan.steps().to_vec();
    println!("{} writes: {steps:#?}", steps.len());
    let deletes = steps
        .iter()
        .filter(|s| matches!(s, Step::Delete { .. }))
        .count();
    assert!(
        deletes >= 3 && steps.len() - deletes >= 8,
        "the plan must insert, update and delete"
    );

    let addresses: Vec<IpAddr> = ADDRESSES.iter().map(|a| a.parse().unwrap()).collect();
    let old = |a: IpAddr| covered(OLD_APPLE, a);
    let new = |a: IpAddr| covered(NEW_APPLE, a);
    let both: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|a| old(*a) && new(*a))
        .collect();
    let neither: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|a| !old(*a) && !new(*a))
        .collect();
    let only_old: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|a| old(*a) && !new(*a))
        .collect();
    let only_new: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|a| !old(*a) && new(*a))
        .collect();
    assert!(
        both.len() >= 8 && neither.len() >= 4 && only_old.len() >= 4 && only_new.len() >= 2,
        "the addresses cover every case: both {both:?}, neither {neither:?}, only old \
         {only_old:?}, only new {only_new:?}"
    );
    assert!(both.iter().any(IpAddr::is_ipv6) && neither.iter().any(IpAddr::is_ipv6));

    let probe = Probe {
        next_port: Cell::new(1024),
    };
    let check = |kernel: &Kernel, after: &str| {
        for addr in &both {
            assert!(
                probe.in_apple(kernel, *addr),
                "{after}: {addr}, in both the old and the new list, is unmatched"
            );
        }
        for addr in &neither {
            assert!(
                !probe.in_apple(kernel, *addr),
                "{after}: {addr}, in neither list, matches"
            );
        }
    };
    let expect_exactly = |kernel: &Kernel, lists: &[&str], when: &str| {
        for addr in &addresses {
            assert_eq!(
                probe.in_apple(kernel, *addr),
                covered(lists, *addr),
                "{when}: {addr}"
            );
        }
    };

    expect_exactly(&kernel, OLD_APPLE, "before the replace");
    for (index, step) in steps.iter().enumerate() {
        step.write(&mut kernel.classifier.writer()).unwrap();
        check(&kernel, &format!("after write {} ({step:?})", index + 1));
    }
    expect_exactly(&kernel, NEW_APPLE, "after the last write");
    // The cdn list is untouched: its addresses kept cdn at every step, and still have it.
    for addr in [
        "10.1.0.1",
        "172.16.5.9",
        "2620:149:a44::10",
        "2a02:26f0:200::1",
    ] {
        let server = if addr.contains(':') {
            "2001:db8:ffff::1"
        } else {
            "198.51.100.1"
        };
        let packet = Segment::udp(addr, server, 999, 9).build();
        assert_ne!(kernel.run(&packet).report.lists & LIST_CDN, 0, "{addr}");
    }
    // And the step-by-step result is exactly what `apply` makes in one go.
    let mut reference = Kernel::load_xdp_only();
    for (list, prefixes) in [(CDN, CDN_PREFIXES), (APPLE, OLD_APPLE)] {
        let change = Change::Add {
            list,
            prefixes: parse(prefixes),
        };
        prefixes::apply(&mut reference.classifier.writer(), &change).unwrap();
    }
    prefixes::apply(&mut reference.classifier.writer(), &replace).unwrap();
    let sorted = |kernel: &Kernel| {
        let mut entries = kernel.classifier.maps().prefixes().unwrap();
        entries.sort_by_key(|(prefix, _)| *prefix);
        entries
    };
    assert_eq!(sorted(&kernel), sorted(&reference));
}
