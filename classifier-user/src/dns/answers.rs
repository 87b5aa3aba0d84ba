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
    pub question: Question,
    pub learned: Vec<Learned>,
}

/// The answer in `message`: every A/AAAA record teaches its address, when the question or any
/// name of a CNAME in the answer is under a list's suffix. None when `message` is malformed:
/// it does not parse, is no response, or has not exactly one question.
pub fn answer_of(message: &[u8], domains: &DomainLists) -> Option<Answer> {
    let packet = Packet::parse(message).ok()?;
    if !packet.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let question = only_question(&packet)?;
    let mut lists = domains.lists_of(&question.name);
    for answer in &packet.answers {
        if let RData::CNAME(target) = &answer.rdata {
            lists |= domains.lists_of(&answer.name.to_string());
            lists |= domains.lists_of(&target.0.to_string());
        }
    }
    let learned = if lists == 0 {
        Vec::new()
    } else {
        packet
            .answers
            .iter()
            .filter_map(|answer| {
                let addr = match &answer.rdata {
                    RData::A(a) => IpAddr::V4(Ipv4Addr::from(a.address)),
                    RData::AAAA(aaaa) => IpAddr::V6(Ipv6Addr::from(aaaa.address)),
                    _ => return None,
                };
                Some(Learned {
                    addr,
                    lists,
                    name: question.name.clone(),
                    ttl: answer.ttl,
                })
            })
            .collect()
    };
    Some(Answer {
        id: packet.id(),
        question,
        learned,
    })
}

/// The addresses `message` would teach, were it matched; nothing when it is malformed.
pub fn learned_from(message: &[u8], domains: &DomainLists) -> Vec<Learned> {
    answer_of(message, domains).map_or_else(Vec::new, |answer| answer.learned)
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
