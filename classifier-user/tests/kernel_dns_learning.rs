//! What the learner writes, against the loaded program's own maps (docs/design.md, 'DNS
//! learning'): a flow whose first packet raced the answer is decided again once the address
//! is written; a renewal moves nothing; a full learned-address table refuses the address,
//! counts it, and leaves neither a record nor a prefix behind; `forget` takes records and
//! prefixes together.

use classifier_testkit as support;

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use classifier::{
    control::{
        forget::{Forget, forget_learned},
        learning::Learning,
    },
    dns::{
        Answer, DomainLists, Learned, Learner, LearnerSettings, MOVE_INTERVAL, Question, Refusal,
        Source, key_of,
    },
    load::ListNames,
};
use classifier_common::dns::{LEARNED_FROM_ANSWER, LEARNED_NAME_LEN, LearnedEntry, MAX_LEARNED};
use support::{
    DSCP_LISTED, Kernel,
    packet::{Segment, with_dscp},
};

const CDN: &str = "198.18.77.77";
const RESOLVER: &str = "198.51.100.53";

/// An answer (trusted: `teach` is what passive and active learning both call once they
/// trust it) that teaches `addr` to the apple list (bit 0).
fn answer(addr: &str) -> Answer {
    Answer {
        id: 1,
        rcode: 0,
        question: Question {
            name: "updates.cdn-apple.com".to_owned(),
            qtype: 1,
            qclass: 1,
        },
        learned: vec![Learned {
            addr: addr.parse().unwrap(),
            lists: 1,
            name: "updates.cdn-apple.com".to_owned(),
            ttl: 300,
        }],
        off_chain: 0,
    }
}

fn learner() -> Learner {
    Learner::new(
        DomainLists::default(),
        LearnerSettings::new(Duration::from_secs(60)),
    )
}

fn source() -> Source {
    Source::Answer(RESOLVER.parse().unwrap())
}

#[test]
fn a_flow_that_raced_the_answer_is_decided_again() {
    let mut kernel = Kernel::load_xdp_only();
    kernel
        .classifier
        .writer()
        .set_list_name(0, "apple")
        .unwrap();
    // The phone's SYN reaches the router before `run` has written the address.
    let syn = Segment::tcp("192.0.2.10", CDN, 40000, 443).syn().build();
    let data = Segment::tcp(CDN, "192.0.2.10", 443, 40000).build();
    assert_eq!(kernel.run(&syn).report.lists, 0);
    let mut learner = learner();
    let maps = &mut Learning::new(kernel.classifier.writer());
    let taught = learner.teach(maps, &answer(CDN), source(), 1_000);
    assert_eq!((taught.count, taught.new, taught.refused), (1, 1, None));
    // The flow still holds the decision made without the address.
    assert_eq!(kernel.run(&data).report.lists, 0, "the race, as it was");
    let maps = &mut Learning::new(kernel.classifier.writer());
    let moved = Instant::now();
    assert!(
        learner.reclassify_if_new(maps, moved),
        "a new address moves the generation"
    );
    kernel
        .run(&data)
        .assert_output(&with_dscp(&data, DSCP_LISTED));
    // A renewal is nothing new: no generation moves, no flow is decided again.
    let maps = &mut Learning::new(kernel.classifier.writer());
    let generation = maps.generation().unwrap();
    let taught = learner.teach(maps, &answer(CDN), source(), 1_010);
    assert_eq!((taught.count, taught.new), (1, 0));
    assert!(!learner.reclassify_if_new(maps, moved + MOVE_INTERVAL));
    assert_eq!(maps.generation().unwrap(), generation);
    // Another new address soon after: it waits for the interval, then moves it once.
    learner.teach(maps, &answer("198.18.77.78"), source(), 1_010);
    assert!(!learner.reclassify_if_new(maps, moved + MOVE_INTERVAL / 2));
    assert_eq!(
        maps.generation().unwrap(),
        generation,
        "moved within the interval"
    );
    assert!(learner.reclassify_if_new(maps, moved + MOVE_INTERVAL));
}

#[test]
fn a_full_table_refuses_the_address_and_leaves_nothing_half_written() {
    let mut kernel = Kernel::load_xdp_only();
    let mut writer = kernel.classifier.writer();
    // Fill LEARNED with records of another list, as another learning list at its cap would.
    let filler = LearnedEntry {
        expires_at: u64::MAX,
        learned_at: 0,
        source: LEARNED_FROM_ANSWER,
        resolver_version: 4,
        _pad: [0; 6],
        resolver: [0; 16],
        name: [0; LEARNED_NAME_LEN],
    };
    for n in 0..MAX_LEARNED {
        let addr = Ipv4Addr::from(0x0a00_0000 + n);
        writer
            .insert_learned(key_of(addr.into(), 7), filler)
            .unwrap();
    }
    let maps = &mut Learning::new(writer);
    let mut learner = learner();
    let taught = learner.teach(maps, &answer(CDN), source(), 1_000);
    assert_eq!(taught.refused, Some(Refusal::TableFull));
    assert_eq!(taught.count, 0);
    assert_eq!(
        maps.learned_entry(&key_of(CDN.parse().unwrap(), 0))
            .unwrap(),
        None
    );
    assert_eq!(
        maps.exact_prefix(format!("{CDN}/32").parse().unwrap())
            .unwrap(),
        None,
        "a prefix without its record"
    );
    // Room again: forgetting one record of the other list lets the address in.
    let names = ListNames::read(maps).unwrap();
    let gone = forget_learned(
        &mut kernel.classifier.writer(),
        &names,
        &Forget {
            list: Some(7),
            prefixes: vec!["10.0.0.0/32".parse().unwrap()],
        },
    )
    .unwrap();
    assert_eq!(gone.total(), 1);
    let maps = &mut Learning::new(kernel.classifier.writer());
    let taught = learner.teach(maps, &answer(CDN), source(), 1_000);
    assert_eq!((taught.count, taught.refused), (1, None));
    assert!(
        maps.exact_prefix(format!("{CDN}/32").parse().unwrap())
            .unwrap()
            .is_some()
    );
}

#[test]
fn forbidden_addresses_are_refused_and_the_rest_learned() {
    let mut kernel = Kernel::load_xdp_only();
    let maps = &mut Learning::new(kernel.classifier.writer());
    let mut learner = learner();
    let mut two = answer("127.0.0.1");
    two.learned.push(answer(CDN).learned[0].clone());
    let taught = learner.teach(maps, &two, source(), 1_000);
    assert_eq!(
        (taught.count, taught.refused),
        (1, Some(Refusal::Forbidden))
    );
    assert_eq!(maps.learned().unwrap().len(), 1);
}

/// The passive rules, datagram by datagram, on the program's own maps with two attached
/// interfaces (`lan0`, `wan0`) recorded as `attach` records them: who may teach.
mod passive {
    use classifier::{
        MapWriter,
        config_file::TrustedResolver,
        dns::{Direction, DnsDatagram, Observed, Trust},
    };
    use classifier_common::control::{Attachment, IFNAME_LEN};
    use simple_dns::{CLASS, Name, Packet, Question, ResourceRecord, TYPE, rdata::RData};

    use super::*;

    const LAN: u32 = 10;
    const WAN: u32 = 20;
    const NAMED: &str = "198.51.100.53";

    fn attach(maps: &mut MapWriter<'_>, link: u32, name: &str, ifindex: u32) {
        let mut padded = [0u8; IFNAME_LEN];
        padded[..name.len()].copy_from_slice(name.as_bytes());
        let attachment = Attachment {
            name: padded,
            mode: 0,
            netns_inode: 0,
            attached_at: 0,
            counter_slot: 0,
            ifindex,
        };
        maps.insert_attachment(link, attachment).unwrap();
    }

    fn message(id: u16, answer: Option<&str>) -> Vec<u8> {
        let mut packet = match answer {
            Some(_) => Packet::new_reply(id),
            None => Packet::new_query(id),
        };
        packet.questions.push(Question::new(
            Name::new_unchecked("mesu.apple.com"),
            TYPE::A.into(),
            CLASS::IN.into(),
            false,
        ));
        if let Some(addr) = answer {
            packet.answers.push(ResourceRecord::new(
                Name::new_unchecked("mesu.apple.com"),
                CLASS::IN,
                300,
                RData::A(addr.parse::<Ipv4Addr>().unwrap().into()),
            ));
        }
        packet.build_bytes_vec().unwrap()
    }

    fn datagram(ifindex: u32, src: &str, dst: &str, message: Vec<u8>) -> DnsDatagram {
        DnsDatagram {
            direction: if src.ends_with(":53") {
                Direction::Answer
            } else {
                Direction::Query
            },
            ifindex,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            message,
        }
    }

    fn setup(require_query: bool) -> (Kernel, Learner) {
        let mut kernel = Kernel::load_xdp_only();
        let maps = &mut kernel.classifier.writer();
        attach(maps, 1, "lan0", LAN);
        attach(maps, 2, "wan0", WAN);
        let mut domains = DomainLists::default();
        domains.add(0, "apple.com");
        let mut settings = LearnerSettings::new(Duration::from_secs(60));
        settings.trust = Trust::Named(vec![TrustedResolver {
            address: NAMED.parse().unwrap(),
            interfaces: vec!["wan0".to_owned()],
            require_query,
        }]);
        (kernel, Learner::new(domains, settings))
    }

    #[test]
    fn only_a_named_resolver_on_its_interface_answering_a_lan_query_teaches() {
        let (mut kernel, mut learner) = setup(true);
        let maps = &mut Learning::new(kernel.classifier.writer());
        let mut observe = |d: DnsDatagram| learner.observe(maps, &d, 1_000);
        let resolver = format!("{NAMED}:53");
        // A LAN query; its answer arrives on wan0 to the router's public address (NAT).
        let query = datagram(LAN, "10.0.0.7:40000", &resolver, message(1, None));
        assert_eq!(observe(query.clone()), Observed::Query);
        let answer = |id, to: &str| datagram(WAN, &resolver, to, message(id, Some(CDN)));
        assert_eq!(
            observe(answer(1, "203.0.113.1:61000")),
            Observed::Learned(1)
        );
        // A second answer to the same query: a forgery racing the real one.
        assert_eq!(
            observe(answer(1, "203.0.113.1:61000")),
            Observed::Refused(Refusal::Unmatched)
        );
        // The same answer from the LAN side: the self-made pair.
        assert_eq!(observe(query), Observed::Query);
        let from_lan = datagram(LAN, &resolver, "10.0.0.7:40000", message(1, Some(CDN)));
        assert_eq!(observe(from_lan), Observed::Refused(Refusal::Untrusted));
        // A host on the resolver's own side makes the query and its answer both.
        let wan_query = datagram(WAN, "203.0.113.9:40000", &resolver, message(2, None));
        assert_eq!(observe(wan_query), Observed::Ignored);
        assert_eq!(
            observe(answer(2, "203.0.113.9:40000")),
            Observed::Refused(Refusal::Unmatched)
        );
        // An answer from anyone else, on the right interface: the own-resolver attack.
        let own = datagram(
            WAN,
            "203.0.113.66:53",
            "203.0.113.1:61001",
            message(3, Some(CDN)),
        );
        assert_eq!(observe(own), Observed::Refused(Refusal::Untrusted));
    }

    #[test]
    fn a_resolver_that_requires_no_query_teaches_on_its_interface_only() {
        let (mut kernel, mut learner) = setup(false);
        let maps = &mut Learning::new(kernel.classifier.writer());
        let resolver = format!("{NAMED}:53");
        let on = |ifindex| {
            datagram(
                ifindex,
                &resolver,
                "203.0.113.1:5353",
                message(9, Some(CDN)),
            )
        };
        assert_eq!(
            learner.observe(maps, &on(LAN), 1_000),
            Observed::Refused(Refusal::Untrusted)
        );
        assert_eq!(learner.observe(maps, &on(WAN), 1_000), Observed::Learned(1));
    }
}
