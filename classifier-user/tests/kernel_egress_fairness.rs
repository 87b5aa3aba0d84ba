//! The egress program's choice of HTB class with fairness between devices (docs/design.md,
//! 'Fairness between devices'), through BPF_PROG_TEST_RUN: skb->priority as the program
//! leaves it is the class HTB will queue the packet in. On a LAN-side interface the device is
//! the destination, on a WAN-side one the source; every packet of a device (any port, any
//! protocol, any peer, VLAN-tagged or not) lands in the same leaf, and different devices
//! spread over the leaves. Packets that are not bulk go to the normal class, with fairness off
//! bulk goes to the bulk class itself, and no byte of any packet changes.
//!
//! Flows in the normal class (docs/design.md, 'Flows in the normal class'): with them on,
//! every packet that is not bulk goes to the normal class's leaf of its flow's hash, which is
//! `flow_leaf` of its addresses, protocol and TCP/UDP ports as this file reads them from the
//! packet description (so a program that reads a wrong field, or skips one, disagrees);
//! flows spread over the leaves; fragments, ICMP, IPv6 extension headers and frames that are
//! not IP land in a leaf too, never in the normal class itself (HTB would send them
//! unshaped); bulk packets are steered as before.
//!
//! The runs happen inside a namespace the test creates, with two veths standing for the LAN
//! and WAN interfaces: BPF_PROG_TEST_RUN resolves the skb's interface there, and the program
//! picks that interface's steering entry, as it does on a real egress.

use classifier_testkit as support;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv6Addr},
};

use classifier::{
    Classifier,
    control::{
        netns,
        shape::{DEFAULT_FAIR_LEAVES, DEFAULT_FLOW_LEAVES, ShapeSpec, Side, steering},
    },
};
use classifier_common::{
    ShapeConfig,
    flow_hash::{FlowWords, flow_leaf},
};
use classifier_lab::{Netns, veth};
use rand::{Rng, SeedableRng, rngs::StdRng};
use support::{
    packet::{
        DEST_OPTIONS, Ipv6Extension, Segment, TPID_8021Q, insert_ipv6_extensions, l3_offset,
        make_ipv4_fragment, recompute_ipv4_checksum,
    },
    require_root,
};

const TC_ACT_OK: u32 = 0;
/// What skb->priority holds before the program runs: a value no class of the tree has, so a
/// packet the program leaves alone is seen to be left alone.
const UNTOUCHED: u32 = 7;
/// DSCP LE and AF11 as a TOS byte (DSCP << 2).
const TOS_LE: u8 = 1 << 2;
const TOS_AF11: u8 = 10 << 2;

/// The LAN device and WAN peers the cases use.
const PHONE_V4: &str = "192.0.2.77";
const PHONE_V6: &str = "2001:db8:c0::77";
const SERVERS_V4: [&str; 3] = ["17.253.0.10", "198.51.100.10", "203.0.113.5"];
const SERVERS_V6: [&str; 3] = ["2620:149:a44::10", "2001:db8::10", "2001:db8:5e::10"];

/// The egress program loaded with private maps, and the two interfaces it steers.
struct Steer {
    classifier: Classifier,
    lan: u32,
    wan: u32,
    lan_steering: ShapeConfig,
}

fn spec(fair_leaves: Option<u32>, flow_leaves: Option<u32>, side: Side) -> ShapeSpec {
    ShapeSpec {
        rate: 50_000_000,
        bulk_floor: 10,
        bulk_dscp: vec![1, 8],
        fair_leaves,
        side,
        flow_leaves,
    }
}

impl Steer {
    /// Must be called inside the namespace: it looks up x0 (LAN) and x1 (WAN) there.
    fn new(fair_leaves: Option<u32>, flow_leaves: Option<u32>) -> Self {
        let mut classifier = Classifier::load().expect("loading the program");
        let (lan, wan) = (
            netns::ifindex("x0").expect("x0"),
            netns::ifindex("x1").expect("x1"),
        );
        let lan_steering = steering(&spec(fair_leaves, flow_leaves, Side::Lan));
        classifier
            .writer()
            .set_shaping(lan, lan_steering)
            .expect("LAN steering");
        classifier
            .writer()
            .set_shaping(wan, steering(&spec(fair_leaves, flow_leaves, Side::Wan)))
            .expect("WAN steering");
        Self {
            classifier,
            lan,
            wan,
            lan_steering,
        }
    }

    /// The class the program picks for `packet` leaving through `ifindex`; checks that it
    /// passed the packet unchanged.
    fn class(&mut self, packet: &Segment, ifindex: u32) -> u32 {
        self.class_of_bytes(&packet.build(), ifindex, &format!("{packet:?}"))
    }

    /// `class` of a frame given as bytes (`what` names it in failures).
    fn class_of_bytes(&mut self, bytes: &[u8], ifindex: u32, what: &str) -> u32 {
        let run = self
            .classifier
            .steer_test_run(bytes, ifindex, UNTOUCHED)
            .expect("BPF_PROG_TEST_RUN");
        assert_eq!(run.verdict, TC_ACT_OK, "{what}");
        assert_eq!(run.packet, bytes, "the packet changed: {what}");
        run.priority
    }

    /// The flow leaf number of the class the program picks for a frame, which must be one of
    /// the normal class's leaves.
    fn flow_leaf(&mut self, bytes: &[u8], ifindex: u32, what: &str) -> u32 {
        let class = self.class_of_bytes(bytes, ifindex, what);
        let (first, leaves) = (
            self.lan_steering.first_flow_leaf,
            self.lan_steering.flow_leaves,
        );
        assert!(
            (first..first + leaves).contains(&class),
            "class {class:#x} is not one of the {leaves} flow leaves from {first:#x}: {what}"
        );
        class - first
    }

    /// The leaf number of the class the program picks, which must be a leaf.
    fn leaf(&mut self, packet: &Segment, ifindex: u32) -> u32 {
        let class = self.class(packet, ifindex);
        let (first, leaves) = (self.lan_steering.first_leaf, self.lan_steering.fair_leaves);
        assert!(
            (first..first + leaves).contains(&class),
            "class {class:#x} is not one of the {leaves} leaves from {first:#x}: {packet:?}"
        );
        class - first
    }
}

/// A namespace with the veth pair x0 (the LAN side) – x1 (the WAN side).
fn namespace() -> Netns {
    require_root();
    let ns = Netns::create("clst-eg").expect("namespace");
    veth(&ns, "x0", &ns, "x1").expect("veth");
    ns
}

/// Every kind of packet a device sends or receives with `server`: TCP and UDP on several
/// ports, untagged and with an 802.1Q tag, all marked LE. `device_is_destination` says which
/// way they go.
fn packets_of(device: &str, server: &str, device_is_destination: bool) -> Vec<Segment> {
    let mut packets = Vec::new();
    for (n, port) in [443u16, 80, 8443, 50000].into_iter().enumerate() {
        let client_port = 40000 + n as u16 * 7;
        for udp in [false, true] {
            let (src, dst, sport, dport) = if device_is_destination {
                (server, device, port, client_port)
            } else {
                (device, server, client_port, port)
            };
            let segment = if udp {
                Segment::udp(src, dst, sport, dport)
            } else {
                Segment::tcp(src, dst, sport, dport)
            }
            .tos(TOS_LE);
            packets.push(segment.clone().vlan(TPID_8021Q, 100 + n as u16));
            packets.push(segment);
        }
    }
    packets
}

/// The set of leaves `packets` land in.
fn leaves_of(egress: &mut Steer, packets: &[Segment], ifindex: u32) -> BTreeSet<u32> {
    packets.iter().map(|p| egress.leaf(p, ifindex)).collect()
}

#[test]
fn every_packet_of_a_device_lands_in_its_leaf_by_destination_on_the_lan_and_by_source_on_the_wan() {
    let ns = namespace();
    ns.enter(|| {
        let mut egress = Steer::new(Some(DEFAULT_FAIR_LEAVES), Some(DEFAULT_FLOW_LEAVES));
        // Flows in the normal class are on: bulk packets must not notice.
        let (lan, wan) = (egress.lan, egress.wan);
        for (phone, servers) in [(PHONE_V4, SERVERS_V4), (PHONE_V6, SERVERS_V6)] {
            // Downloads leaving the LAN side: 3 servers × 4 ports × TCP/UDP × tag or not.
            let downloads: Vec<Segment> = servers
                .iter()
                .flat_map(|server| packets_of(phone, server, true))
                .collect();
            let on_lan = leaves_of(&mut egress, &downloads, lan);
            assert_eq!(
                on_lan.len(),
                1,
                "{phone}'s downloads on the LAN side: {on_lan:?}"
            );
            // Uploads leaving the WAN side: the device is the source, and keeps its leaf.
            let uploads: Vec<Segment> = servers
                .iter()
                .flat_map(|server| packets_of(phone, server, false))
                .collect();
            let on_wan = leaves_of(&mut egress, &uploads, wan);
            assert_eq!(on_wan, on_lan, "{phone}: its leaf on the WAN side");

            // The side decides which address counts: the same downloads leaving the WAN side
            // are hashed by their sources, the servers, which spread over other leaves.
            let by_server: BTreeSet<u32> = servers
                .iter()
                .map(|server| egress.leaf(&packets_of(phone, server, true)[0], wan))
                .collect();
            assert_eq!(
                by_server.len(),
                3,
                "{phone}: 3 servers' leaves {by_server:?}"
            );
            // And uploads leaving the LAN side are hashed by their destinations.
            let to_servers: BTreeSet<u32> = servers
                .iter()
                .map(|server| egress.leaf(&packets_of(phone, server, false)[0], lan))
                .collect();
            assert_eq!(to_servers, by_server, "{phone}: servers as destinations");
        }
    })
    .expect("entering the namespace");
}

#[test]
fn consecutive_addresses_get_leaves_of_their_own_and_random_ipv6_addresses_spread() {
    let ns = namespace();
    ns.enter(|| {
        let mut egress = Steer::new(Some(DEFAULT_FAIR_LEAVES), None);
        let (lan, wan) = (egress.lan, egress.wan);
        // A DHCP pool: 256 consecutive IPv4 addresses, not aligned to a /24, each its own
        // leaf on both sides (docs/design.md: K consecutive addresses inside one aligned
        // block of 4,096 get K leaves). A hash that ignores the low bits, or any hash with
        // collisions, fails this.
        for ifindex in [lan, wan] {
            let leaves: BTreeSet<u32> = (0..256u32)
                .map(|n| {
                    let device = std::net::Ipv4Addr::from(0x0a01_0080 + n).to_string();
                    let packet = if ifindex == lan {
                        Segment::tcp("17.253.0.10", &device, 443, 40000)
                    } else {
                        Segment::tcp(&device, "17.253.0.10", 40000, 443)
                    };
                    egress.leaf(&packet.tos(TOS_LE), ifindex)
                })
                .collect();
            assert_eq!(leaves.len(), 256, "interface {ifindex}");
        }
        // DHCPv6 hands out consecutive addresses too.
        let leaves: BTreeSet<u32> = (0..256u128)
            .map(|n| {
                let device = Ipv6Addr::from(0x2001_0db8_00c0_0000_0000_0000_0000_1000 + n);
                egress.leaf(
                    &Segment::tcp("2620:149:a44::10", &device.to_string(), 443, 40000).tos(TOS_LE),
                    lan,
                )
            })
            .collect();
        assert_eq!(leaves.len(), 256, "consecutive IPv6 addresses");

        // SLAAC privacy addresses: random interface ids in one /64. 1,024 of them in 256
        // leaves: a uniform hash fills about 251 (256 × (1 − e⁻⁴)) with at most about 12 in a
        // leaf; a hash of the prefix alone would put them all in one.
        let mut rng = StdRng::seed_from_u64(0x13_02);
        let mut per_leaf: BTreeMap<u32, usize> = BTreeMap::new();
        for _ in 0..1024 {
            let id: u64 = rng.random();
            let device = Ipv6Addr::from((0x2001_0db8_00c0_0000u128 << 64) | u128::from(id));
            let leaf = egress.leaf(
                &Segment::tcp("2620:149:a44::10", &device.to_string(), 443, 40000).tos(TOS_LE),
                lan,
            );
            *per_leaf.entry(leaf).or_default() += 1;
        }
        let fullest = per_leaf.values().max().copied().unwrap_or(0);
        println!(
            "1,024 random IPv6 devices: {} of 256 leaves used, at most {fullest} in one",
            per_leaf.len()
        );
        assert!(per_leaf.len() >= 240, "{} leaves used", per_leaf.len());
        assert!(fullest <= 16, "{fullest} devices in one leaf");
    })
    .expect("entering the namespace");
}

#[test]
fn all_4096_leaves_are_reached_by_a_pool_of_4096_addresses() {
    let ns = namespace();
    ns.enter(|| {
        let mut egress = Steer::new(Some(4096), None);
        let lan = egress.lan;
        let leaves: BTreeSet<u32> = (0..4096u32)
            .map(|n| {
                let device = std::net::Ipv4Addr::from(0x0a10_0000 + n).to_string();
                egress.leaf(
                    &Segment::udp("198.51.100.10", &device, 443, 40000).tos(TOS_LE),
                    lan,
                )
            })
            .collect();
        assert_eq!(leaves.len(), 4096);
    })
    .expect("entering the namespace");
}

#[test]
fn packets_that_are_not_bulk_and_bulk_without_fairness_keep_the_classes_of_before() {
    let ns = namespace();
    ns.enter(|| {
        for fair_leaves in [Some(DEFAULT_FAIR_LEAVES), None] {
            let mut egress = Steer::new(fair_leaves, None);
            let ShapeConfig {
                normal_class,
                bulk_class,
                ..
            } = egress.lan_steering;
            let (lan, wan) = (egress.lan, egress.wan);
            for ifindex in [lan, wan] {
                for (src, dst) in [(SERVERS_V4[0], PHONE_V4), (SERVERS_V6[0], PHONE_V6)] {
                    for tos in [0, TOS_AF11, 63 << 2] {
                        for tagged in [false, true] {
                            let mut packet = Segment::tcp(src, dst, 443, 40000).tos(tos);
                            if tagged {
                                packet = packet.vlan(TPID_8021Q, 7);
                            }
                            assert_eq!(
                                egress.class(&packet, ifindex),
                                normal_class,
                                "not bulk: {packet:?}"
                            );
                        }
                    }
                    if fair_leaves.is_none() {
                        let packet = Segment::tcp(src, dst, 443, 40000).tos(TOS_LE);
                        assert_eq!(egress.class(&packet, ifindex), bulk_class, "{packet:?}");
                    }
                }
            }
            // The loopback is not shaped: its packets keep the priority they came with.
            let packet = Segment::tcp(SERVERS_V4[0], PHONE_V4, 443, 40000).tos(TOS_LE);
            assert_eq!(egress.class(&packet, 1), UNTOUCHED, "an unshaped interface");
        }
    })
    .expect("entering the namespace");
}

/// An address as `FlowWords` holds it: IPv4 in the first word.
fn address_words(address: IpAddr) -> [u32; 4] {
    match address {
        IpAddr::V4(v4) => [u32::from(v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            [
                (bits >> 96) as u32,
                (bits >> 64) as u32,
                (bits >> 32) as u32,
                bits as u32,
            ]
        }
    }
}

/// The flow of `packet` as the design says the program reads it, from the description, not
/// from the bytes: `ports` false for a packet whose ports are not read.
fn flow_of(packet: &Segment, protocol: u32, ports: bool) -> FlowWords {
    FlowWords {
        source: address_words(packet.src),
        destination: address_words(packet.dst),
        ports: if ports {
            u32::from(packet.src_port) << 16 | u32::from(packet.dst_port)
        } else {
            0
        },
        protocol,
    }
}

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const IPPROTO_ICMPV6: u8 = 58;

#[test]
fn a_normal_packet_goes_to_the_leaf_of_its_flow_s_addresses_protocol_and_ports() {
    let ns = namespace();
    ns.enter(|| {
        let mut egress = Steer::new(Some(DEFAULT_FAIR_LEAVES), Some(DEFAULT_FLOW_LEAVES));
        let (lan, wan) = (egress.lan, egress.wan);
        for (client, server) in [(PHONE_V4, SERVERS_V4[1]), (PHONE_V6, SERVERS_V6[1])] {
            for (udp, protocol) in [(false, IPPROTO_TCP), (true, IPPROTO_UDP)] {
                for (sport, dport) in [(443, 40000), (40000, 443), (53, 53), (8443, 61000)] {
                    let flow = if udp {
                        Segment::udp(server, client, sport, dport)
                    } else {
                        Segment::tcp(server, client, sport, dport)
                    };
                    let expected = flow_leaf(&flow_of(&flow, protocol, true), DEFAULT_FLOW_LEAVES);
                    // Every packet of the flow, whatever its DSCP (not a bulk one), tag and
                    // payload, and on either side: the leaf is the flow's, not the device's.
                    for tos in [0, TOS_AF11, 46 << 2] {
                        for tagged in [false, true] {
                            let mut packet = flow.clone().tos(tos).payload(&[tos; 100]);
                            if tagged {
                                packet = packet.vlan(TPID_8021Q, 42);
                            }
                            for ifindex in [lan, wan] {
                                let what = format!("{packet:?}");
                                let leaf = egress.flow_leaf(&packet.build(), ifindex, &what);
                                assert_eq!(leaf, expected, "{what}");
                            }
                        }
                    }
                }
            }
        }
    })
    .expect("entering the namespace");
}

#[test]
fn flows_spread_over_the_leaves_by_ports_and_by_addresses() {
    let ns = namespace();
    ns.enter(|| {
        let mut egress = Steer::new(None, Some(DEFAULT_FLOW_LEAVES));
        let lan = egress.lan;
        let mut leaf_of = |packet: Segment| {
            let what = format!("{packet:?}");
            egress.flow_leaf(&packet.build(), lan, &what)
        };
        // 256 connections between the same two hosts, differing only in the client's port:
        // a uniform hash fills about 162 of 256 leaves (256 × (1 − e⁻¹)); one that ignores
        // the ports puts them all in one.
        let by_port: BTreeSet<u32> = (0..256u16)
            .map(|n| leaf_of(Segment::tcp(SERVERS_V4[0], PHONE_V4, 443, 40000 + n)))
            .collect();
        assert!(by_port.len() >= 140, "{} leaves by port", by_port.len());
        // The same port pair to 256 devices, and from 256 servers, IPv4 and IPv6: a hash
        // that ignores either address fails one of these.
        for v6 in [false, true] {
            let address = |n: u32| -> String {
                if v6 {
                    Ipv6Addr::from(0x2001_0db8_00c0_0000_0000_0000_0000_1000u128 + u128::from(n))
                        .to_string()
                } else {
                    std::net::Ipv4Addr::from(0x0a01_0080 + n).to_string()
                }
            };
            let (server, device) = if v6 {
                (SERVERS_V6[0], PHONE_V6)
            } else {
                (SERVERS_V4[0], PHONE_V4)
            };
            let by_destination: BTreeSet<u32> = (0..256)
                .map(|n| leaf_of(Segment::tcp(server, &address(n), 443, 40000)))
                .collect();
            let by_source: BTreeSet<u32> = (0..256)
                .map(|n| leaf_of(Segment::tcp(&address(n), device, 443, 40000)))
                .collect();
            for (what, leaves) in [("destination", by_destination), ("source", by_source)] {
                assert!(
                    leaves.len() >= 140,
                    "v6 {v6}: {} leaves by {what}",
                    leaves.len()
                );
            }
        }
        // 1,024 random flows in 256 leaves: about 251 used, at most about 12 in one.
        let mut rng = StdRng::seed_from_u64(0x13_01);
        let mut per_leaf: BTreeMap<u32, usize> = BTreeMap::new();
        for _ in 0..1024 {
            let client = std::net::Ipv4Addr::from(0x0a00_0000 | (rng.random::<u32>() & 0xffff));
            let packet = Segment::udp(
                SERVERS_V4[rng.random_range(0..3)],
                &client.to_string(),
                rng.random(),
                rng.random(),
            );
            *per_leaf.entry(leaf_of(packet)).or_default() += 1;
        }
        let fullest = per_leaf.values().max().copied().unwrap_or(0);
        println!(
            "1,024 random flows: {} of 256 leaves used, at most {fullest} in one",
            per_leaf.len()
        );
        assert!(per_leaf.len() >= 240, "{} leaves used", per_leaf.len());
        assert!(fullest <= 16, "{fullest} flows in one leaf");
    })
    .expect("entering the namespace");
}

#[test]
fn fragments_icmp_extension_headers_and_frames_that_are_not_ip_go_to_a_leaf_by_what_they_have() {
    let ns = namespace();
    ns.enter(|| {
        let mut egress = Steer::new(Some(DEFAULT_FAIR_LEAVES), Some(DEFAULT_FLOW_LEAVES));
        let lan = egress.lan;
        let leaves = DEFAULT_FLOW_LEAVES;

        // An IPv4 datagram in fragments: the first (ports present, MF set) and a later one
        // (offset, no ports) share the leaf of the addresses and protocol alone; were the
        // first hashed with its ports, the datagram's fragments would be split.
        let datagram = Segment::udp(SERVERS_V4[0], PHONE_V4, 4500, 4500).payload(&[7; 64]);
        let expected = flow_leaf(&flow_of(&datagram, IPPROTO_UDP, false), leaves);
        for (offset, more) in [(0, true), (8, true), (185, false)] {
            let mut bytes = datagram.build();
            make_ipv4_fragment(&mut bytes, offset, more);
            let what = format!("fragment at {offset}, more {more}");
            assert_eq!(egress.flow_leaf(&bytes, lan, &what), expected, "{what}");
        }

        // ICMP, IPv4 and IPv6: the bytes where ports would be (type, code, checksum, echo id
        // and sequence) change from packet to packet but not the leaf.
        for (segment, protocol) in [
            (Segment::udp(SERVERS_V4[2], PHONE_V4, 0, 0), IPPROTO_ICMP),
            (Segment::udp(SERVERS_V6[2], PHONE_V6, 0, 0), IPPROTO_ICMPV6),
        ] {
            let expected = flow_leaf(&flow_of(&segment, u32::from(protocol), false), leaves);
            for id in [1u16, 0x1234, 0xfffe] {
                let mut bytes = segment.clone().payload(&[9; 56]).build();
                let l3 = l3_offset(&bytes);
                let transport = if segment.src.is_ipv4() {
                    bytes[l3 + 9] = protocol;
                    recompute_ipv4_checksum(&mut bytes);
                    l3 + 20
                } else {
                    bytes[l3 + 6] = protocol;
                    l3 + 40
                };
                bytes[transport..transport + 4].copy_from_slice(&id.to_be_bytes().repeat(2));
                let what = format!("ICMP {protocol} id {id}");
                assert_eq!(egress.flow_leaf(&bytes, lan, &what), expected, "{what}");
            }
        }

        // IPv6 with a destination options header before UDP: the program does not walk the
        // chain, so the flow is its addresses and the first next header.
        let segment = Segment::udp(SERVERS_V6[1], PHONE_V6, 443, 40000);
        let mut bytes = segment.build();
        insert_ipv6_extensions(
            &mut bytes,
            &[Ipv6Extension {
                kind: DEST_OPTIONS,
                len: 8,
            }],
        );
        let expected = flow_leaf(&flow_of(&segment, u32::from(DEST_OPTIONS), false), leaves);
        assert_eq!(
            egress.flow_leaf(&bytes, lan, "IPv6 + destination options"),
            expected
        );

        // An ARP request: not IP, yet it must land in a leaf (the normal class is an inner
        // class now), the one of its EtherType.
        let mut arp = vec![0xff; 6];
        arp.extend([0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]);
        arp.extend([0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend([0u8; 20]);
        let expected = flow_leaf(
            &FlowWords {
                protocol: 0x0806,
                ..FlowWords::default()
            },
            leaves,
        );
        assert_eq!(egress.flow_leaf(&arp, lan, "ARP"), expected);
    })
    .expect("entering the namespace");
}

#[test]
fn with_flows_on_bulk_still_goes_to_the_bulk_class_and_with_flows_off_the_rest_to_the_normal_class()
{
    let ns = namespace();
    ns.enter(|| {
        // Flows on, fairness off: bulk to the bulk class itself.
        let mut egress = Steer::new(None, Some(DEFAULT_FLOW_LEAVES));
        let bulk_class = egress.lan_steering.bulk_class;
        for packet in [
            Segment::tcp(SERVERS_V4[0], PHONE_V4, 443, 40000),
            Segment::udp(SERVERS_V6[0], PHONE_V6, 443, 40000).vlan(TPID_8021Q, 3),
        ] {
            let packet = packet.tos(TOS_LE);
            assert_eq!(egress.class(&packet, egress.lan), bulk_class, "{packet:?}");
        }
        // Flows off: a packet that is not bulk, or not IP, goes to the normal class itself.
        let mut egress = Steer::new(Some(DEFAULT_FAIR_LEAVES), None);
        let normal_class = egress.lan_steering.normal_class;
        let mut arp = vec![0xff; 6];
        arp.extend([0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]);
        arp.extend([0u8; 28]);
        assert_eq!(egress.class_of_bytes(&arp, egress.lan, "ARP"), normal_class);
        let packet = Segment::udp(SERVERS_V4[0], PHONE_V4, 53, 40000);
        assert_eq!(egress.class(&packet, egress.lan), normal_class);
    })
    .expect("entering the namespace");
}
