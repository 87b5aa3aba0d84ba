//! Which addresses a DNS response teaches, for which lists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::{Packet, PacketFlag, rdata::RData};

/// Domain suffixes per list (bit).
#[derive(Clone, Debug, Default)]
pub struct DomainLists {
    suffixes: Vec<(u32, String)>,
}

/// An address a response taught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learned {
    pub addr: IpAddr,
    /// Lists (bits) it joins.
    pub lists: u32,
    /// The name that was asked for.
    pub name: String,
    pub ttl: u32,
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DomainLists {
    pub fn add(&mut self, list: u32, suffix: &str) {
        let suffix = normalize(suffix);
        if !suffix.is_empty() {
            self.suffixes.push((list, suffix));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.suffixes.is_empty()
    }

    /// The lists `name` belongs to: it equals a suffix or ends in `.suffix`.
    pub fn lists_of(&self, name: &str) -> u32 {
        let name = normalize(name);
        self.suffixes
            .iter()
            .filter(|(_, suffix)| {
                name == *suffix
                    || (name.len() > suffix.len()
                        && name.ends_with(suffix.as_str())
                        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.')
            })
            .fold(0, |lists, (list, _)| lists | (1 << list))
    }
}

/// What a query asked, and its answer repeats: the name (lower case, no final dot), type and
/// class. Case is ignored: resolvers that randomise it (DNS 0x20) echo it, others may not.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// A query: its transaction id and its only question. None for anything else (a response,
/// no question or several, not DNS).
pub fn query_of(message: &[u8]) -> Option<(u16, Question)> {
    let packet = Packet::parse(message).ok()?;
    if packet.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    Some((packet.id(), only_question(&packet)?))
}

fn only_question(packet: &Packet<'_>) -> Option<Question> {
    let [question] = &packet.questions[..] else {
        return None;
    };
    Some(Question {
        name: normalize(&question.qname.to_string()),
        qtype: question.qtype.into(),
        qclass: question.qclass.into(),
    })
}

/// An answer: its transaction id and question (to match it to its query), and the addresses
/// it would teach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub id: u16,
    /// The response code (0: no error).
    pub rcode: u8,
    pub question: Question,
    pub learned: Vec<Learned>,
    /// A/AAAA records whose owner is not on the chain that starts at the question: never
    /// learned, whatever name owns them (a resolver that adds them is answering something
    /// else, or lying).
    pub off_chain: usize,
}

/// CNAME links followed from the question, at most: real chains into CDNs are 2 to 4 long;
/// a loop or a longer chain stops here, with what it reached.
const MAX_CHAIN: usize = 16;

/// The answer in `message`. An address is learned only from an A/AAAA record whose owner is
/// on the CNAME chain that starts at the question (followed link by link through the
/// answer section), and only when some name on that chain is under a list's suffix; it joins
/// those lists, plus `question_lists` (the lists of a host name the operator named, which
/// active learning resolves). Its TTL is the least along its chain: a CNAME that expires
/// sooner ends the mapping sooner. None when `message` is malformed: it does not parse, is
/// no response, or has not exactly one question.
pub fn answer_of(message: &[u8], domains: &DomainLists, question_lists: u32) -> Option<Answer> {
    let packet = Packet::parse(message).ok()?;
    if !packet.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let question = only_question(&packet)?;
    // The chain: each name on it with the least TTL of the links that lead to it.
    let mut chain: Vec<(String, u32)> = vec![(question.name.clone(), u32::MAX)];
    let mut lists = question_lists | domains.lists_of(&question.name);
    while chain.len() <= MAX_CHAIN {
        let (current, ttl) = chain[chain.len() - 1].clone();
        let next = packet
            .answers
            .iter()
            .find_map(|record| match &record.rdata {
                RData::CNAME(target) if normalize(&record.name.to_string()) == current => {
                    Some((normalize(&target.0.to_string()), ttl.min(record.ttl)))
                }
                _ => None,
            });
        let Some(next) = next.filter(|(name, _)| !chain.iter().any(|(seen, _)| seen == name))
        else {
            break;
        };
        lists |= domains.lists_of(&next.0);
        chain.push(next);
    }
    let mut learned = Vec::new();
    let mut off_chain = 0;
    for record in &packet.answers {
        let addr = match &record.rdata {
            RData::A(a) => IpAddr::V4(Ipv4Addr::from(a.address)),
            RData::AAAA(aaaa) => IpAddr::V6(Ipv6Addr::from(aaaa.address)),
            _ => continue,
        };
        let owner = normalize(&record.name.to_string());
        let Some((_, chain_ttl)) = chain.iter().find(|(name, _)| *name == owner) else {
            off_chain += 1;
            continue;
        };
        if lists != 0 {
            learned.push(Learned {
                addr,
                lists,
                name: question.name.clone(),
                ttl: record.ttl.min(*chain_ttl),
            });
        }
    }
    Some(Answer {
        id: packet.id(),
        rcode: packet.rcode() as u8,
        question,
        learned,
        off_chain,
    })
}

/// The addresses `message` would teach, were it trusted; nothing when it is malformed.
pub fn learned_from(message: &[u8], domains: &DomainLists) -> Vec<Learned> {
    answer_of(message, domains, 0).map_or_else(Vec::new, |answer| answer.learned)
}

#[cfg(test)]
mod tests {
    use simple_dns::{CLASS, Name, Question, ResourceRecord, rdata};

    use super::*;

    fn domains() -> DomainLists {
        let mut domains = DomainLists::default();
        domains.add(0, "apple.com");
        domains.add(0, "akadns.net.");
        domains.add(1, "example.org");
        domains
    }

    /// A response to `question` with a CNAME chain and one A record at its end.
    fn response(question: &str, chain: &[&str], addr: Ipv4Addr, ttl: u32) -> Vec<u8> {
        let mut packet = Packet::new_reply(7);
        packet.questions.push(Question::new(
            Name::new_unchecked(question),
            simple_dns::TYPE::A.into(),
            CLASS::IN.into(),
            false,
        ));
        let mut owner = question;
        for target in chain {
            packet.answers.push(ResourceRecord::new(
                Name::new_unchecked(owner),
                CLASS::IN,
                300,
                RData::CNAME(rdata::CNAME(Name::new_unchecked(target))),
            ));
            owner = target;
        }
        packet.answers.push(ResourceRecord::new(
            Name::new_unchecked(owner),
            CLASS::IN,
            ttl,
            RData::A(rdata::A::from(addr)),
        ));
        packet.build_bytes_vec().unwrap()
    }

    /// What the learner counts as `malformed`: bytes that are not a DNS message, and a real
    /// answer cut anywhere short, teach nothing.
    #[test]
    fn a_message_that_does_not_parse_teaches_nothing() {
        let domains = domains();
        let whole = response("mesu.apple.com", &[], Ipv4Addr::new(17, 253, 0, 1), 60);
        assert!(
            answer_of(&whole, &domains, 0).is_some(),
            "the whole answer parses"
        );
        for cut in 0..whole.len() {
            assert!(
                answer_of(&whole[..cut], &domains, 0)
                    .is_none_or(|answer| answer.learned.is_empty()),
                "cut at {cut} of {} bytes taught an address",
                whole.len()
            );
        }
        for garbage in [&[0xffu8; 40][..], &[0u8; 3][..], b"not dns at all"] {
            assert!(answer_of(garbage, &domains, 0).is_none(), "{garbage:?}");
        }
    }

    #[test]
    fn suffixes_match_whole_labels() {
        let domains = domains();
        assert_eq!(domains.lists_of("apple.com"), 1);
        assert_eq!(domains.lists_of("updates.CDN.apple.com."), 1);
        assert_eq!(domains.lists_of("notapple.com"), 0);
        assert_eq!(domains.lists_of("www.example.org"), 2);
    }

    #[test]
    fn a_cname_chain_into_a_listed_domain_teaches_the_final_address() {
        let message = response(
            "swcdn.example.net",
            &["swcdn.apple.com.akadns.net", "a1.cdn.example.net"],
            Ipv4Addr::new(203, 0, 113, 77),
            20,
        );
        let learned = learned_from(&message, &domains());
        assert_eq!(
            learned,
            vec![Learned {
                addr: "203.0.113.77".parse().unwrap(),
                lists: 1,
                name: "swcdn.example.net".to_owned(),
                ttl: 20,
            }]
        );
    }

    #[test]
    fn only_records_on_the_chain_teach() {
        // A listed CNAME that is not on the question's chain teaches no address.
        let base = response(
            "www.example.net",
            &["cdn.example.net"],
            Ipv4Addr::new(192, 0, 2, 1),
            60,
        );
        let mut packet = Packet::parse(&base).unwrap();
        packet.answers.push(ResourceRecord::new(
            Name::new_unchecked("decoy.example.net"),
            CLASS::IN,
            300,
            RData::CNAME(rdata::CNAME(Name::new_unchecked("mesu.apple.com"))),
        ));
        packet.answers.push(ResourceRecord::new(
            Name::new_unchecked("victim.example.net"),
            CLASS::IN,
            300,
            RData::A(rdata::A::from(Ipv4Addr::new(198, 51, 100, 9))),
        ));
        let message = packet.build_bytes_vec().unwrap();
        let answer = answer_of(&message, &domains(), 0).unwrap();
        assert!(answer.learned.is_empty(), "{:?}", answer.learned);
        assert_eq!(answer.off_chain, 1);
    }

    #[test]
    fn a_chain_s_ttl_is_its_least() {
        // The CNAME lives 300 s in `response`; the address 20 s: 20. Then the other way.
        let message = response(
            "mesu.apple.com",
            &["a.example.net"],
            Ipv4Addr::LOCALHOST,
            20,
        );
        assert_eq!(learned_from(&message, &domains())[0].ttl, 20);
        let message = response(
            "mesu.apple.com",
            &["a.example.net"],
            Ipv4Addr::LOCALHOST,
            9999,
        );
        assert_eq!(learned_from(&message, &domains())[0].ttl, 300);
    }

    #[test]
    fn a_named_host_teaches_its_list_without_a_suffix() {
        let message = response("dl.example.net", &[], Ipv4Addr::new(192, 0, 2, 8), 60);
        assert!(learned_from(&message, &domains()).is_empty());
        let answer = answer_of(&message, &domains(), 1 << 3).unwrap();
        assert_eq!(answer.learned[0].lists, 1 << 3);
    }

    #[test]
    fn a_cname_loop_ends() {
        let message = response(
            "a.apple.com",
            &["b.example.net", "a.apple.com", "b.example.net"],
            Ipv4Addr::LOCALHOST,
            60,
        );
        assert!(answer_of(&message, &domains(), 0).is_some());
    }

    #[test]
    fn unrelated_answers_and_queries_teach_nothing() {
        let unrelated = response(
            "www.example.net",
            &["cdn.example.net"],
            Ipv4Addr::LOCALHOST,
            60,
        );
        assert!(learned_from(&unrelated, &domains()).is_empty());
        let query = Packet::new_query(1).build_bytes_vec().unwrap();
        assert!(learned_from(&query, &domains()).is_empty());
        assert!(learned_from(b"not dns at all", &domains()).is_empty());
    }
}
