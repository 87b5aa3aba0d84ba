//! What the learner writes, against the loaded program's own maps (docs/design.md, 'DNS
//! learning'): a flow whose first packet raced the answer is decided again once the address
//! is written; a renewal moves nothing; a full learned-address table refuses the address,
//! counts it, and leaves neither a record nor a prefix behind; `forget` takes records and
//! prefixes together.

mod support;

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use classifier::{
    control::{
        forget::{Forget, forget_learned},
        lists::ListNames,
    },
    dns::{
        Answer, DomainLists, Learned, Learner, LearnerSettings, MOVE_INTERVAL, Question, Refusal,
        Source, key_of,
    },
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
    let maps = &mut kernel.classifier.maps;
    maps.set_list_name(0, "apple").unwrap();
    // The phone's SYN reaches the router before `run` has written the address.
    let syn = Segment::tcp("192.0.2.10", CDN, 40000, 443).syn().build();
    let data = Segment::tcp(CDN, "192.0.2.10", 443, 40000).build();
    assert_eq!(kernel.run(&syn).report.lists, 0);
    let mut learner = learner();
    let maps = &mut kernel.classifier.maps;
    let taught = learner.teach(maps, &answer(CDN), source(), 1_000);
    assert_eq!((taught.count, taught.new, taught.refused), (1, 1, None));
    // The flow still holds the decision made without the address.
    assert_eq!(kernel.run(&data).report.lists, 0, "the race, as it was");
    let maps = &mut kernel.classifier.maps;
    let moved = Instant::now();
    assert!(
        learner.reclassify_if_new(maps, moved),
        "a new address moves the generation"
    );
    kernel
        .run(&data)
        .assert_output(&with_dscp(&data, DSCP_LISTED));
    // A renewal is nothing new: no generation moves, no flow is decided again.
    let maps = &mut kernel.classifier.maps;
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
    let maps = &mut kernel.classifier.maps;
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
        maps.insert_learned(key_of(addr.into(), 7), filler).unwrap();
    }
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
        maps,
        &names,
        &Forget {
            list: Some(7),
            prefixes: vec!["10.0.0.0/32".parse().unwrap()],
        },
    )
    .unwrap();
    assert_eq!(gone.total(), 1);
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
    let maps = &mut kernel.classifier.maps;
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
