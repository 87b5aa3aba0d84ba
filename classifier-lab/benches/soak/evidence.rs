//! What the soak records at the first sign of a stall, while the stuck connection still
//! exists: `ss -tiM` for it and its subflows, the MPTcp and Tcp counters (`nstat`) of every
//! host, the classifier's `flows --json` entry for it and `stats --json`, the kernel log, and
//! three seconds of the flow captured on both sides of the router: the server's capture goes
//! through `classifier analyze`, and the two are compared packet by packet, to tell whether
//! the bytes that arrived are the bytes that were sent, apart from the DSCP.

use std::{
    collections::HashMap,
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use classifier_lab::{Lab, Netns, traffic::Flow};

/// How long the stuck flow is captured.
const CAPTURE: Duration = Duration::from_secs(3);

/// Where the evidence goes: `target/soak-evidence/<unix time>-<n>-<kind>/`.
pub fn directory(kind: &str, n: usize) -> PathBuf {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name: String = kind
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .join("target/soak-evidence")
        .join(format!("{seconds}-{n}-{name}"))
}

/// The classifier's command line and state, to ask for `flows` and `stats`.
pub struct Classifier<'a> {
    pub binary: &'a Path,
    pub pin_dir: &'a str,
}

impl Classifier<'_> {
    fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let output = Command::new(self.binary)
            .env("CLASSIFIER_PIN_DIR", self.pin_dir)
            .args(["--config", "/dev/null"])
            .args(args)
            .output()?;
        anyhow::ensure!(output.status.success(), "classifier {args:?} failed");
        Ok(serde_json::from_slice(&output.stdout)?)
    }
}

/// Records everything about `flow` (the stuck one, if the stalled load has a flow) in `dir`,
/// with `why` at the top of `README.txt`.
/// `ports` are the server ports the stalled load uses: its live connections are listed and
/// captured too, since by the time a slow sample is seen the flow in flight may be another.
pub fn record(
    lab: &Lab,
    classifier: &Classifier<'_>,
    (flow, ports): (Option<&Flow>, Option<(u16, u16)>),
    why: &str,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut readme = format!(
        "{why}\nflow: {}\nload average: {}\n",
        flow.map_or("none in flight".to_owned(), Flow::to_string),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    // The capture first, while the connection is still stuck.
    let port = flow.map(|flow| flow.server.port());
    let (low, high) = ports.or(port.map(|port| (port, port))).unzip();
    let captures = low
        .zip(high)
        .map(|(low, high)| capture(lab, &format!("tcp portrange {low}-{high}"), dir));
    for (host, ns) in [("client", &lab.client), ("server", &lab.server)] {
        // The flow, even closed (TIME-WAIT), and the load's live connections.
        let mut text = String::new();
        if let Some(port) = port {
            let filter = format!("( sport = :{port} or dport = :{port} )");
            text += &run_in(ns, "ss", &["-tiMnae", &filter]);
        }
        if let (Some(low), Some(high)) = (low, high) {
            let filter = format!(
                "( sport >= :{low} and sport <= :{high} ) or ( dport >= :{low} and dport <= :{high} )"
            );
            text += &run_in(ns, "ss", &["-tiMne", "exclude", "time-wait", &filter]);
        }
        write(dir, &format!("ss-{host}.txt"), &text)?;
        write(dir, &format!("mptcp-{host}.txt"), &mptcp_settings(ns))?;
    }
    for (host, ns) in [
        ("client", &lab.client),
        ("router", &lab.router),
        ("server", &lab.server),
    ] {
        let counters = ns
            .nstat(&["MPTcp", "Tcp"])
            .map(|counters| {
                counters
                    .iter()
                    .map(|(name, value)| format!("{name} {value}\n"))
                    .collect::<String>()
            })
            .unwrap_or_else(|error| format!("nstat failed: {error}\n"));
        write(dir, &format!("nstat-{host}.txt"), &counters)?;
        write(
            dir,
            &format!("links-{host}.txt"),
            &run_in(ns, "ip", &["-s", "link"]),
        )?;
    }
    let flows = classifier.json(&["flows", "--json"]);
    if let (Ok(serde_json::Value::Array(flows)), Some(low), Some(high)) = (&flows, low, high) {
        writeln!(
            readme,
            "flows the classifier remembers to ports {low}-{high}, by MPTCP state: {}",
            by_mptcp_state(flows, low..=high)
        )?;
    }
    let entry = match (&flows, port) {
        (Ok(serde_json::Value::Array(flows)), Some(port)) => {
            let ends_with = |value: &serde_json::Value| {
                value
                    .as_str()
                    .is_some_and(|end| end.ends_with(&format!(":{port}")))
            };
            serde_json::Value::Array(
                flows
                    .iter()
                    .filter(|flow| ends_with(&flow["server"]) || ends_with(&flow["client"]))
                    .cloned()
                    .collect(),
            )
        }
        (Ok(flows), _) => flows.clone(),
        (Err(error), _) => serde_json::Value::String(format!("{error:#}")),
    };
    write(dir, "flows.json", &serde_json::to_string_pretty(&entry)?)?;
    let stats = classifier
        .json(&["stats", "--json"])
        .unwrap_or_else(|error| serde_json::Value::String(format!("{error:#}")));
    write(dir, "stats.json", &serde_json::to_string_pretty(&stats)?)?;
    write(dir, "dmesg.txt", &kernel_log())?;
    if let (Some(captures), Some(flow)) = (captures, flow) {
        let server_ip = match flow.server.ip() {
            std::net::IpAddr::V4(ip) => ip.octets(),
            std::net::IpAddr::V6(_) => [0; 4],
        };
        match captures.and_then(|captures| captures.finish(classifier, dir, server_ip)) {
            Ok(verdict) => writeln!(readme, "capture: {verdict}")?,
            Err(error) => writeln!(readme, "capture failed: {error:#}")?,
        }
    }
    write(dir, "README.txt", &readme)
}

/// "yes 812, no 181": how many of `flows` to a server port in `ports` are in each state.
fn by_mptcp_state(flows: &[serde_json::Value], ports: std::ops::RangeInclusive<u16>) -> String {
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    for flow in flows {
        let port = flow["server"]
            .as_str()
            .and_then(|end| end.rsplit(':').next())
            .and_then(|port| port.parse::<u16>().ok());
        if port.is_some_and(|port| ports.contains(&port)) {
            let state = flow["mptcp"].as_str().unwrap_or("?").to_owned();
            *states.entry(state).or_default() += 1;
        }
    }
    states
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// A command's stdout, or why it failed: evidence is recorded whatever each part gives.
fn run_in(ns: &Netns, program: &str, args: &[&str]) -> String {
    match ns.exec(program, args) {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(error) => format!("{program} {args:?} failed: {error}\n"),
    }
}

fn mptcp_settings(ns: &Netns) -> String {
    [
        run_in(ns, "ip", &["mptcp", "limits"]),
        run_in(ns, "ip", &["mptcp", "endpoint"]),
        run_in(ns, "sysctl", &["net.mptcp"]),
    ]
    .concat()
}

/// The last lines of the kernel log, with times.
fn kernel_log() -> String {
    match Command::new("dmesg").arg("-T").output() {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stdout);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(200)..].join("\n")
        }
        Err(error) => format!("dmesg failed: {error}"),
    }
}

/// tcpdump on the client's two links and the server's, running.
struct Captures {
    children: Vec<(Child, PathBuf)>,
}

/// Starts tcpdump with `filter` on c0 and c1 (before the router) and s0 (after it), and
/// returns once all three are listening.
fn capture(lab: &Lab, filter: &str, dir: &Path) -> Result<Captures> {
    let mut children = Vec::new();
    for (ns, device) in [
        (&lab.client, "c0"),
        (&lab.client, "c1"),
        (&lab.server, "s0"),
    ] {
        let file = dir.join(format!("{device}.pcap"));
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "tcpdump", "-i", device, "-n"])
            .args(["-c", "100000", "-w"])
            .arg(&file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tcpdump")?;
        // tcpdump says "listening on" once its socket is open.
        let stderr = child.stderr.take().context("tcpdump's stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let started = Instant::now();
        let listening = lines.any(|line| line.is_ok_and(|line| line.contains("listening on")));
        if !listening || started.elapsed() > Duration::from_secs(10) {
            bail!("tcpdump on {device} did not start");
        }
        children.push((child, file));
    }
    Ok(Captures { children })
}

impl Captures {
    /// Stops the captures after `CAPTURE`, analyzes the server's and compares the sides.
    fn finish(
        mut self,
        classifier: &Classifier<'_>,
        dir: &Path,
        server_ip: [u8; 4],
    ) -> Result<String> {
        // The capture's length, not a synchronisation: whatever crosses in it is recorded.
        std::thread::sleep(CAPTURE);
        for (child, _) in &mut self.children {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let _ = child.wait();
        }
        let server = &self.children[2].1;
        let analysis = Command::new(classifier.binary)
            .args(["--config", "/dev/null", "analyze"])
            .arg(server)
            .args(["--policy", "list:apple=LE", "mptcp=LE"])
            .output()?;
        write(
            dir,
            "analyze.txt",
            &format!(
                "{}{}",
                String::from_utf8_lossy(&analysis.stdout),
                String::from_utf8_lossy(&analysis.stderr)
            ),
        )?;
        let sent: Vec<&Path> = self.children[..2]
            .iter()
            .map(|(_, p)| p.as_path())
            .collect();
        compare(&sent, server, server_ip)
    }
}

/// An IPv4 packet as the router may change it: DSCP, TTL and header checksum zeroed.
fn normalized(frame: &[u8]) -> Option<Vec<u8>> {
    const ETH: usize = 14;
    let ip = frame.get(ETH..)?;
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let mut ip = ip.to_vec();
    ip[1] &= 0x03;
    ip[8] = 0;
    ip[10] = 0;
    ip[11] = 0;
    Some(ip)
}

/// The normalized IPv4 packets of some captures with their capture times.
fn packets(paths: &[&Path]) -> Result<Vec<(Duration, Vec<u8>)>> {
    let mut packets = Vec::new();
    for path in paths {
        for record in classifier::analyze::capture::records(path)? {
            if let Some(packet) = record.frame.ok().as_deref().and_then(normalized) {
                packets.push((record.timestamp, packet));
            }
        }
    }
    Ok(packets)
}

/// The time every capture was running, from the first and last packet each saw, less a
/// margin for a packet on its way between two of them.
fn common_window(captures: &[&[(Duration, Vec<u8>)]]) -> (Duration, Duration) {
    const MARGIN: Duration = Duration::from_millis(50);
    let ends = captures.iter().filter_map(|packets| {
        let first = packets.iter().map(|(time, _)| *time).min()?;
        let last = packets.iter().map(|(time, _)| *time).max()?;
        Some((first, last))
    });
    let (start, end) = ends.fold((Duration::ZERO, Duration::MAX), |(start, end), (f, l)| {
        (start.max(f), end.min(l))
    });
    (start + MARGIN, end.saturating_sub(MARGIN))
}

/// Where an IPv4 packet belongs: its identification, its addresses and the first 12 bytes of
/// its transport header (ports, and TCP's sequence and acknowledgement numbers: a server's
/// pure ACKs all share one sequence number).
fn place(packet: &[u8]) -> Vec<u8> {
    let header = usize::from(packet[0] & 0x0f) * 4;
    let end = (header + 12).min(packet.len()).max(20);
    [
        &packet[4..6],
        &packet[12..20],
        &packet[header.min(end)..end],
    ]
    .concat()
}

/// What became of the packets one side sent (`from` its address) and the other captured
/// while both captures ran.
#[derive(Default)]
struct Arrived {
    /// Captured by the sender byte for byte, apart from what routing and marking change.
    same: usize,
    /// The sender captured a packet in the same place with other bytes.
    changed: usize,
    /// The sender's capture missed it (tcpdump drops under load).
    unseen: usize,
}

fn arrived_as_sent(
    sent: &[(Duration, Vec<u8>)],
    arrived: &[(Duration, Vec<u8>)],
    window: (Duration, Duration),
    from: impl Fn(&[u8]) -> bool,
) -> Arrived {
    let mut unmatched: HashMap<&[u8], usize> = HashMap::new();
    let mut places = std::collections::HashSet::new();
    for (_, packet) in sent {
        *unmatched.entry(packet.as_slice()).or_default() += 1;
        places.insert(place(packet));
    }
    let mut result = Arrived::default();
    let inside = |time: &Duration| window.0 <= *time && *time <= window.1;
    for (_, packet) in arrived
        .iter()
        .filter(|(time, packet)| inside(time) && from(packet))
    {
        if let Some(n) = unmatched.get_mut(packet.as_slice()).filter(|n| **n > 0) {
            *n -= 1;
            result.same += 1;
        } else if places.contains(&place(packet)) {
            result.changed += 1;
        } else {
            result.unseen += 1;
        }
    }
    result
}

/// Whether what crossed the router in either direction arrived as it was sent.
fn compare(client: &[&Path], server: &Path, server_ip: [u8; 4]) -> Result<String> {
    let at_client = packets(client)?;
    let at_server = packets(&[server])?;
    let window = common_window(&[&at_client, &at_server]);
    let from_server = |packet: &[u8]| packet[12..16] == server_ip;
    let up = arrived_as_sent(&at_client, &at_server, window, |packet| {
        !from_server(packet)
    });
    let down = arrived_as_sent(&at_server, &at_client, window, from_server);
    let say = |arrived: &Arrived| {
        format!(
            "{} as sent, {} changed, {} not in the sender's capture",
            arrived.same, arrived.changed, arrived.unseen
        )
    };
    Ok(format!(
        "IPv4 packets that arrived while all captures ran ({:.1} s), compared with the \
         sender's capture apart from DSCP, TTL and the IPv4 checksum: client to server {}; \
         server to client {}",
        window.1.saturating_sub(window.0).as_secs_f64(),
        say(&up),
        say(&down)
    ))
}
