//! `classifier run` in the lab: DNS answers crossing the router teach a CDN address; a
//! download from it is marked until the address expires; the metrics endpoint is scraped
//! and parsed; SIGTERM detaches.

use classifier_testkit as support;

use std::{
    net::{SocketAddr, UdpSocket},
    process::{Child, Command},
    time::Duration,
};

use classifier_lab::{self as lab, Lab, traffic};
use simple_dns::{CLASS, Name, Packet, Question, ResourceRecord, rdata};
use support::{
    cli::Cli,
    nft::nft_counters,
    wait::{wait_for, wait_until},
};

const CDN: &str = "198.18.77.77";
const METRICS_PORT: u16 = 9417;

/// Counts, in the client, the downloads from the CDN address by their source port, and
/// those among them not marked LE.
const CLIENT_RULES: &str = "table inet verify {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        ip saddr 198.18.77.77 tcp sport 8200 counter
        ip saddr 198.18.77.77 tcp sport 8200 ip dscp != 1 counter
        ip saddr 198.18.77.77 tcp sport 8201 counter
        ip saddr 198.18.77.77 tcp sport 8201 ip dscp 1 counter
    }
}";

/// Answers every query with a CNAME chain into Apple's CDN names ending at `CDN`, TTL 1 s.
fn dns_server(lab: &Lab) -> std::thread::JoinHandle<()> {
    let socket = lab
        .server
        .enter(|| UdpSocket::bind((lab::SERVER_OTHER_V4, 53)))
        .unwrap()
        .expect("binding the DNS server");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buffer) {
            let Ok(query) = Packet::parse(&buffer[..n]) else {
                continue;
            };
            let mut reply = Packet::new_reply(query.id());
            let name = "updates.cdn-apple.com";
            reply.questions.push(Question::new(
                Name::new_unchecked(name),
                simple_dns::TYPE::A.into(),
                CLASS::IN.into(),
                false,
            ));
            for (owner, target) in [
                (name, "updates.cdn-apple.com.akadns.net"),
                ("updates.cdn-apple.com.akadns.net", "a1.cdn.example.net"),
            ] {
                reply.answers.push(ResourceRecord::new(
                    Name::new_unchecked(owner),
                    CLASS::IN,
                    300,
                    rdata::RData::CNAME(rdata::CNAME(Name::new_unchecked(target))),
                ));
            }
            reply.answers.push(ResourceRecord::new(
                Name::new_unchecked("a1.cdn.example.net"),
                CLASS::IN,
                1,
                rdata::RData::A(rdata::A::from(CDN.parse::<std::net::Ipv4Addr>().unwrap())),
            ));
            let _ = socket.send_to(&reply.build_bytes_vec().unwrap(), peer);
        }
    })
}

/// One DNS lookup from the client, through the router.
fn lookup(lab: &Lab) {
    support::dns_client::lookup(lab, "updates.cdn-apple.com", 7);
}

fn scrape(lab: &Lab) -> Option<String> {
    support::metrics::scrape(&lab.router, METRICS_PORT).ok()
}

/// The prefix list row of the CDN address, if it is listed.
fn cdn_row(cli: &Cli) -> Option<serde_json::Value> {
    let prefixes = cli.run(&["prefixes", "list", "--json"]).ok().json();
    prefixes
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["prefix"] == format!("{CDN}/32"))
        .cloned()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn download(lab: &Lab, port: u16) -> u64 {
    let server = SocketAddr::new(CDN.parse().unwrap(), port);
    let client = lab::CLIENT_V4.parse().unwrap();
    traffic::download(
        &lab.client,
        client,
        &lab.server,
        server,
        Duration::from_millis(300),
    )
    .expect("download")
}

#[test]
fn run_learns_from_dns_serves_metrics_and_detaches_on_sigterm() {
    let lab = Lab::new().expect("lab");
    lab.server
        .ip(&["addr", "add", &format!("{CDN}/32"), "dev", "s0"])
        .unwrap();
    lab.router
        .ip(&["route", "add", CDN, "via", "203.0.113.10", "dev", "r2"])
        .unwrap();
    let cli = Cli::new();
    let config = std::env::temp_dir().join(format!("{}-run.toml", lab.router.name()));
    // The lab's resolver, beyond the uplink, named as an operator would (docs/design.md,
    // 'DNS learning'); no lookups of Apple's real names, which it does not know.
    std::fs::write(
        &config,
        format!(
            "dns_min_ttl = 2\n[[dns.trusted_resolvers]]\naddress = \"{}\"\n\
             interfaces = [\"r2\"]\n[dns.lookup]\nenabled = false\n",
            lab::SERVER_OTHER_V4
        ),
    )
    .unwrap();
    // A file, not a pipe nobody reads: at debug level, loading alone logs more than a pipe
    // holds (64 KiB), and a full pipe blocks the daemon's next log line.
    let log = config.with_extension("log");
    let daemon = Daemon(
        Command::new(support::cli::binary())
            .env("CLASSIFIER_PIN_DIR", cli.pin_dir())
            .env("RUST_LOG", "debug")
            .arg("--config")
            .arg(&config)
            .args(["--netns", lab.router.name(), "run", "r0", "r1", "r2"])
            .args(["--metrics", &format!("127.0.0.1:{METRICS_PORT}")])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until(Duration::from_secs(10), "the metrics endpoint", || {
        scrape(&lab).is_some()
    });
    let counters = nft_counters(&lab.client, CLIENT_RULES);
    let server = dns_server(&lab);

    lookup(&lab);
    let learned = wait_for(
        Duration::from_secs(5),
        "run to learn 198.18.77.77/32 from the answer",
        || cdn_row(&cli),
    );
    assert_eq!(learned["learned"][0]["list"], "apple");
    assert_eq!(learned["learned"][0]["name"], "updates.cdn-apple.com");
    assert!(download(&lab, 8200) > 10_000);

    let metrics = scrape(&lab).expect("metrics");
    let body = metrics.split("\r\n\r\n").nth(1).unwrap_or_default();
    println!(
        "{}",
        body.lines()
            .filter(|l| l.contains("learned") || l.contains("r2"))
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for line in body
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(
            name.starts_with("classifier_")
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "metric name `{name}` breaks the conventions"
        );
    }
    assert!(
        body.contains("classifier_learned_prefixes{list=\"apple\"} 1"),
        "{body}"
    );
    assert!(body.contains("# TYPE classifier_packets counter"));
    let listed_on_r2 = body
        .lines()
        .find(|l| l.starts_with("classifier_packets_total{interface=\"r2\",class=\"listed\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(listed_on_r2 > 0, "listed packets on r2: {body}");
    assert!(body.ends_with("# EOF\n"));

    // Past the 2 s minimum: forgotten, and a new download is not marked.
    wait_until(
        Duration::from_secs(10),
        "run to forget 198.18.77.77/32 after its TTL",
        || cdn_row(&cli).is_none(),
    );
    assert!(download(&lab, 8201) > 10_000);
    let [first, first_unmarked, second, second_marked] = counters()[..] else {
        panic!("four counters expected")
    };
    println!(
        "first download {first} packets ({first_unmarked} unmarked), second {second} ({second_marked} marked)"
    );
    assert!(first > 0 && second > 0);
    assert_eq!(first_unmarked, 0, "the download after the lookup is marked");
    assert_eq!(second_marked, 0, "after expiry a new flow is not");

    // SIGTERM: stop, detach.
    let mut daemon = daemon;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.0.id() as i32, libc::SIGTERM) };
    let status = daemon.0.wait().unwrap();
    assert!(status.success(), "run exited with {status}");
    for device in ["r0", "r1", "r2"] {
        assert!(
            !lab.router.has_xdp(device).unwrap(),
            "{device} still attached"
        );
    }
    let _ = std::fs::remove_file(config);
    let _ = std::fs::remove_file(log);
    drop(server);
}
