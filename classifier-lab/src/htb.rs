//! HTB's own counts per class, from `tc -s class show`: what each class of the shaper sent
//! (whole frames, retransmissions included), dropped and holds queued. This iproute2 has no
//! JSON for classes (`tc -j` prints the text), so the text is read here, once, for the tests
//! and the storm.

use std::{fmt, str::FromStr};

use classifier::{
    Error,
    control::shape::{CLASS_BULK, CLASS_NORMAL, ROOT_MAJOR},
};

use crate::{Netns, io_error};

/// A class handle, `major:minor`, both hexadecimal as tc prints them (`1:2003`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClassId {
    pub major: u32,
    pub minor: u32,
}

impl ClassId {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }
}

/// The classes `classifier shape` makes: HTB counts a packet in its leaf's ancestors too, so
/// each holds its leaves (the flow leaves of the normal class, the fair leaves of the bulk).
pub const NORMAL: ClassId = ClassId::new(ROOT_MAJOR, CLASS_NORMAL);
pub const BULK: ClassId = ClassId::new(ROOT_MAJOR, CLASS_BULK);

impl FromStr for ClassId {
    type Err = ();

    /// `1:2003`; an empty major (`:1`, an mq class) is 0.
    fn from_str(text: &str) -> Result<Self, ()> {
        let (major, minor) = text.split_once(':').ok_or(())?;
        let hex = |part: &str| match part {
            "" => Ok(0),
            _ => u32::from_str_radix(part, 16).map_err(drop),
        };
        Ok(Self::new(hex(major)?, hex(minor)?))
    }
}

impl fmt::Display for ClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}:{:x}", self.major, self.minor)
    }
}

/// One class and its counters at the moment tc read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    pub id: ClassId,
    /// None for a class at the root.
    pub parent: Option<ClassId>,
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub dropped: u64,
    /// Packets queued in the class (its leaf qdisc, for a leaf).
    pub backlog_packets: u64,
}

/// Text that is not `tc -s class show` as this parser knows it: which line, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// 1-based.
    pub line: usize,
    pub reason: &'static str,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Reads `tc -s class show` text. Each class is a block: `class KIND ID (root | parent ID)
/// ...`, then ` Sent B bytes P pkt (dropped D, ...)` and ` backlog Xb Np ...`, then lines of
/// the kind's own (HTB's tokens) that are not read. A class without its Sent or backlog line
/// is an error, not a class with no traffic.
pub fn parse(text: &str) -> Result<Vec<Class>, Unreadable> {
    let lines: Vec<(usize, Vec<&str>)> = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.split_whitespace().collect()))
        .filter(|(_, words): &(usize, Vec<&str>)| !words.is_empty())
        .collect();
    if let Some((line, _)) = lines.first().filter(|(_, words)| words[0] != "class") {
        return Err(Unreadable {
            line: *line,
            reason: "text before the first class",
        });
    }
    lines
        .chunk_by(|_, (_, next)| next[0] != "class")
        .map(class)
        .collect()
}

/// One class's block: its `class` line and the lines up to the next.
fn class(block: &[(usize, Vec<&str>)]) -> Result<Class, Unreadable> {
    let (header, words) = &block[0];
    let at = |line: usize| move |reason| Unreadable { line, reason };
    let id = |text: &str, line: usize, what| text.parse::<ClassId>().map_err(|()| at(line)(what));
    let mut class = match words.as_slice() {
        ["class", _kind, class_id, rest @ ..] => Class {
            id: id(class_id, *header, "a class id that is not major:minor")?,
            parent: match rest {
                ["root", ..] => None,
                ["parent", parent, ..] => {
                    Some(id(parent, *header, "a parent that is not major:minor")?)
                }
                _ => return Err(at(*header)("a class with neither `root` nor `parent`")),
            },
            sent_bytes: 0,
            sent_packets: 0,
            dropped: 0,
            backlog_packets: 0,
        },
        _ => return Err(at(*header)("a class line without kind and id")),
    };
    let find = |first: &str, missing| {
        block
            .iter()
            .find(|(_, words)| words[0] == first)
            .ok_or_else(|| at(*header)(missing))
    };
    let (line, sent) = find("Sent", "a class without its Sent line")?;
    let number = |text: &str| {
        text.trim_end_matches(',')
            .parse()
            .map_err(|_| at(*line)("a count that is not a number"))
    };
    match sent.as_slice() {
        [
            "Sent",
            bytes,
            "bytes",
            packets,
            "pkt",
            "(dropped",
            dropped,
            ..,
        ] => {
            class.sent_bytes = number(bytes)?;
            class.sent_packets = number(packets)?;
            class.dropped = number(dropped)?;
        }
        _ => return Err(at(*line)("a Sent line of another shape")),
    }
    let (line, backlog) = find("backlog", "a class without its backlog line")?;
    class.backlog_packets = backlog
        .get(2)
        .and_then(|packets| packets.strip_suffix('p')?.parse().ok())
        .ok_or_else(|| at(*line)("a backlog that is not N packets"))?;
    Ok(class)
}

/// The classes of `device` in `netns`, as `tc -s class show` lists them.
pub fn classes(netns: &Netns, device: &str) -> Result<Vec<Class>, Error> {
    let output = netns.exec("tc", &["-s", "class", "show", "dev", device])?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse(&text).map_err(|unreadable| {
        io_error(format!("reading tc's classes of {device}"))(std::io::Error::other(format!(
            "{unreadable} of:\n{text}"
        )))
    })
}

/// The bytes `id` sent, from `classes`; an error names the class missing.
pub fn sent_bytes(classes: &[Class], id: ClassId) -> Result<u64, Error> {
    classes
        .iter()
        .find(|class| class.id == id)
        .map(|class| class.sent_bytes)
        .ok_or_else(|| {
            io_error(format!("reading tc's class {id}"))(std::io::Error::other(format!(
                "no class {id} among {:?}",
                classes.iter().map(|class| class.id).collect::<Vec<_>>()
            )))
        })
}

/// Bytes sent so far by the normal and the bulk class of the shaper on `device`.
pub fn normal_and_bulk_bytes(netns: &Netns, device: &str) -> Result<(u64, u64), Error> {
    let classes = classes(netns, device)?;
    Ok((sent_bytes(&classes, NORMAL)?, sent_bytes(&classes, BULK)?))
}

/// The children of `parent` that sent something, in tc's order.
pub fn busy_children(classes: &[Class], parent: ClassId) -> Vec<&Class> {
    classes
        .iter()
        .filter(|class| class.parent == Some(parent) && class.sent_bytes > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tc -s class show` of iproute2 6.1: a shaper's root, normal and bulk classes, a
    /// fair leaf and a flow leaf, 300 datagrams of 1,400 bytes offered to the flow leaf
    /// (ceil 1 Mbit/s, a pfifo of 64): 79 sent, 63 queued, 160 dropped.
    const SAMPLE: &str = "\
class htb 1:1a3 parent 1:20 prio 0 rate 70Kbit ceil 20Mbit burst 1599b cburst 1600b 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 2857140 ctokens: 10000

class htb 1:1 root rate 20Mbit ceil 20Mbit burst 1600b cburst 1600b 
 Sent 112562 bytes 79 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 987 ctokens: 987

class htb 1:10 parent 1:1 rate 18Mbit ceil 20Mbit burst 1597b cburst 1600b 
 Sent 112562 bytes 79 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 71 borrowed: 0 giants: 0
 tokens: 1095 ctokens: 987

class htb 1:20 parent 1:1 rate 2Mbit ceil 20Mbit burst 1600b cburst 1600b 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 100000 ctokens: 10000

class htb 1:2000 parent 1:10 leaf 2000: prio 0 rate 70Kbit ceil 1Mbit burst 1599b cburst 1600b 
 Sent 112562 bytes 79 pkt (dropped 160, overlimits 76 requeues 0) 
 backlog 89494b 63p requeues 0
 lended: 8 borrowed: 71 giants: 0
 tokens: -1556083 ctokens: -179994
";

    #[test]
    fn every_class_with_its_parent_and_counters() {
        let classes = parse(SAMPLE).unwrap();
        let ids: Vec<String> = classes.iter().map(|class| class.id.to_string()).collect();
        assert_eq!(ids, ["1:1a3", "1:1", "1:10", "1:20", "1:2000"]);
        assert_eq!(classes[1].parent, None, "1:1 is at the root");
        assert_eq!(
            classes[4],
            Class {
                id: ClassId::new(1, 0x2000),
                parent: Some(NORMAL),
                sent_bytes: 112_562,
                sent_packets: 79,
                dropped: 160,
                backlog_packets: 63,
            }
        );
        assert_eq!(classes[0].parent, Some(BULK));
        assert_eq!(sent_bytes(&classes, NORMAL).unwrap(), 112_562);
        assert_eq!(sent_bytes(&classes, BULK).unwrap(), 0);
        assert!(sent_bytes(&classes, ClassId::new(1, 0x30)).is_err());
    }

    #[test]
    fn busy_children_are_those_of_the_parent_that_sent() {
        let classes = parse(SAMPLE).unwrap();
        let busy: Vec<ClassId> = busy_children(&classes, NORMAL)
            .iter()
            .map(|class| class.id)
            .collect();
        assert_eq!(busy, [ClassId::new(1, 0x2000)]);
        assert!(
            busy_children(&classes, BULK).is_empty(),
            "1:1a3 sent nothing"
        );
    }

    #[test]
    fn no_classes_is_an_empty_list() {
        assert_eq!(parse(""), Ok(Vec::new()));
    }

    #[test]
    fn a_class_whose_counters_are_missing_or_garbled_is_an_error() {
        let without_sent = "class htb 1:10 parent 1:1 rate 18Mbit\n backlog 0b 0p requeues 0\n";
        assert_eq!(
            parse(without_sent),
            Err(Unreadable {
                line: 1,
                reason: "a class without its Sent line"
            })
        );
        let garbled = SAMPLE.replace("Sent 112562 bytes", "Sent 11x562 bytes");
        assert_eq!(parse(&garbled).unwrap_err().line, 8);
        let no_parent = "class htb 1:10 rate 18Mbit\n";
        assert_eq!(parse(no_parent).unwrap_err().line, 1);
    }

    #[test]
    fn class_ids_are_hexadecimal() {
        assert_eq!("1:2003".parse(), Ok(ClassId::new(1, 0x2003)));
        assert_eq!(":1".parse(), Ok(ClassId::new(0, 1)));
        assert_eq!("1:2003".parse::<ClassId>().unwrap().to_string(), "1:2003");
        assert!("12003".parse::<ClassId>().is_err());
    }
}
