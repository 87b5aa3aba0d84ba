//! Live update under load: `prefixes replace` with a 100 k list while traffic flows through
//! the lab's router, counting at the server every packet that arrived with the wrong DSCP.

use std::{
    net::UdpSocket,
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Duration,
};

use anyhow::Result;
use classifier::{PinDir, config_file::ConfigFile};
use classifier_lab::{CLIENT_V4, Lab, SERVER_APPLE_V4, SERVER_OTHER_V4, nft::Counters};
use ipnet::IpNet;

use crate::{
    cli, prefix_lists,
    table::{Section, Table, Target, count, median},
};

const PREFIXES: usize = 100_000;
const REPLACES: usize = 4;
const PORT: u16 = 6000;

/// At the server: the Apple stream, those of it not LE, the normal stream, those of it not
/// left at DSCP 0.
const SERVER_RULES: &str = "table inet verify {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        ip daddr 17.253.0.10 udp dport 6000 counter
        ip daddr 17.253.0.10 udp dport 6000 ip dscp != 1 counter
        ip daddr 198.51.100.10 udp dport 6000 counter
        ip daddr 198.51.100.10 udp dport 6000 ip dscp != 0 counter
    }
}";

/// Two lists that both cover the Apple server, through different prefixes, so that a
/// replace that is not hitless would let packets through unmarked.
fn lists() -> [Vec<IpNet>; 2] {
    let cover = |prefixes: &[&str]| -> Vec<IpNet> {
        prefixes
            .iter()
            .map(|p| p.parse().expect("a prefix"))
            .collect()
    };
    let mut old = prefix_lists::ipv4(PREFIXES, 10);
    old.extend(cover(&["17.0.0.0/8", "2620:149::/32"]));
    let mut new = prefix_lists::ipv4(PREFIXES, 11);
    new.extend(cover(&["17.253.0.0/16", "17.128.0.0/9", "2620:149::/32"]));
    [old, new]
}

fn write_list(path: &Path, prefixes: &[IpNet]) -> Result<()> {
    let text: String = prefixes.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(path, text)?;
    Ok(())
}

/// Sends to both servers, alternating, one datagram every `pause`, until `stop`; returns how
/// many went to each.
fn send(lab: &Lab, stop: &AtomicBool) -> Result<u64> {
    let socket = lab.client.enter(|| UdpSocket::bind((CLIENT_V4, 0)))??;
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for server in [SERVER_APPLE_V4, SERVER_OTHER_V4] {
            socket.send_to(&sent.to_be_bytes(), (server, PORT))?;
        }
        sent += 1;
        thread::sleep(Duration::from_micros(40));
    }
    Ok(sent)
}

pub fn run() -> Result<Section> {
    let mut section = Section::new(
        "Live update under load",
        format!(
            "The lab (client ⇄ router ⇄ server), the classifier attached to the router \
             (native XDP, policy `list:apple=LE`). Two lists of {} random IPv4 prefixes \
             each, different, both covering the Apple server 17.253.0.10 but through \
             different prefixes (17.0.0.0/8 in one; 17.253.0.0/16 and 17.128.0.0/9 in the \
             other), so that a replace which is not hitless lets packets through unmarked. \
             While the client sends two UDP streams through the router, one to the Apple \
             server and one to a server in no list, `classifier prefixes replace` swaps the \
             lists {REPLACES} times. nftables counters in the server count, before anything \
             else sees the packets, those that arrived with the wrong DSCP: Apple packets \
             not LE, other packets not 0.",
            count(PREFIXES as u64)
        ),
    );
    let lab = Lab::new()?;
    let pin_dir = PinDir::new(format!(
        "/sys/fs/bpf/classifier-bench-{}-live",
        std::process::id()
    ));
    let config = ConfigFile {
        policy: Some(vec!["list:apple=LE".to_owned()]),
        ..ConfigFile::default()
    };
    lab.attach_classifier(&pin_dir, &config)?;
    let result = measure(&lab, &pin_dir);
    let _ = lab.detach_classifier(&pin_dir);
    let _ = std::fs::remove_dir_all(pin_dir.path());
    let (times, sent, arrived) = result?;

    let mut table = Table::new(
        "prefixes replace under load",
        &[
            "replaces",
            "prefixes written each",
            "time per replace (median)",
            "slowest",
            "datagrams sent",
            "arrived",
            "misclassified",
        ],
    );
    let mut seconds: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    let slowest = seconds.iter().copied().fold(0.0, f64::max);
    let misclassified = arrived[1] + arrived[3];
    table.row(vec![
        REPLACES.to_string(),
        format!(
            "{} in, {} out",
            count(PREFIXES as u64),
            count(PREFIXES as u64)
        ),
        format!("{:.2} s", median(&mut seconds)),
        format!("{slowest:.2} s"),
        count(sent * 2),
        count(arrived[0] + arrived[2]),
        count(misclassified),
    ]);
    section.table(table);
    section.target(Target {
        what: "`replace` of 100 k prefixes under load",
        goal: "0 packets misclassified",
        measured: format!(
            "{} of {} (Apple not LE: {}, others marked: {})",
            misclassified,
            count(arrived[0] + arrived[2]),
            arrived[1],
            arrived[3]
        ),
        met: misclassified == 0,
    });
    Ok(section)
}

/// The replace times, the datagrams sent per stream, and the server's four counters.
fn measure(lab: &Lab, pin_dir: &PinDir) -> Result<(Vec<Duration>, u64, Vec<u64>)> {
    let files = [0, 1].map(|n| {
        std::env::temp_dir().join(format!(
            "classifier-bench-{}-live-{n}.txt",
            std::process::id()
        ))
    });
    let lists = lists();
    for (file, list) in files.iter().zip(&lists) {
        write_list(file, list)?;
    }
    let result = (|| {
        cli::replace(pin_dir.path(), &files[0])?;
        let counters = Counters::load(&lab.server, SERVER_RULES)?;
        let stop = AtomicBool::new(false);
        let (times, sent) = thread::scope(|scope| -> Result<_> {
            let sender = scope.spawn(|| send(lab, &stop));
            thread::sleep(Duration::from_millis(300));
            let mut times = Vec::new();
            for n in 0..REPLACES {
                let time = cli::replace(pin_dir.path(), &files[(n + 1) % 2]);
                match time {
                    Ok(time) => times.push(time),
                    Err(error) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(error);
                    }
                }
            }
            thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
            let sent = sender.join().expect("the sender thread")?;
            Ok((times, sent))
        })?;
        thread::sleep(Duration::from_millis(200));
        Ok((times, sent, counters.read()?))
    })();
    for file in &files {
        let _ = std::fs::remove_file(file);
    }
    result
}
