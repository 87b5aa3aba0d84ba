//! Forwarding: a router namespace between a client and a server, with nothing, the
//! baseline XDP program, the classifier at XDP, the baseline tc program, the classifier at tc
//! (TCX ingress), or the equivalent nftables rules on its ingress.

use std::{
    os::unix::process::CommandExt as _,
    process::{Child, Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use aya::programs::{LinkOrder, TcAttachType, XdpMode, tc::TcAttachOptions};
use classifier::{
    PinDir,
    config_file::ConfigFile,
    control::{attach::HookChoice, state::SHIPPED_APPLE_LIST},
};
use classifier_lab::{Baseline, Lab, Netns, ROUTER_INGRESS, ROUTER_TO_CLIENT, ROUTER_TO_SERVER};

use crate::{
    packets::APPLE_V4,
    table::{Section, Table, Target, median},
};

const ROUNDS: usize = 7;
/// The TCP stream's length, and the fixed UDP load's: per-task CPU times over a few seconds
/// move by a few tenths of a microsecond per packet on this shared machine, so the UDP run is
/// the longer one.
const SECONDS: u32 = 4;
const UDP_SECONDS: u32 = 8;
/// The fixed offered load for CPU per packet: 1,400-byte UDP datagrams at 400 Mbit/s
/// (about 35,700 packets/s).
const UDP_MBITS: u32 = 400;
const UDP_LENGTH: &str = "1400";
/// CPUs: the sending side on one, the receiving side on the other (see the method).
const SENDER_CPU: &str = "1";
const RECEIVER_CPU: &str = "0";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    Nothing,
    Baseline,
    Classifier,
    TcBaseline,
    ClassifierTc,
    Nftables,
}

impl Setup {
    const ALL: [Self; 6] = [
        Self::Nothing,
        Self::Baseline,
        Self::Classifier,
        Self::TcBaseline,
        Self::ClassifierTc,
        Self::Nftables,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Nothing => "no program",
            Self::Baseline => "XDP baseline (XDP_PASS only)",
            Self::Classifier => "classifier (XDP)",
            Self::TcBaseline => "tc baseline (TC_ACT_OK only)",
            Self::ClassifierTc => "classifier (tc)",
            Self::Nftables => "nftables (netdev ingress)",
        }
    }
}

/// The same classification in nftables, at the earliest hook it has (netdev ingress, right
/// after XDP): the shipped `apple` prefixes as interval sets, MPTCP by its option.
fn nft_rules() -> String {
    let (v4, v6): (Vec<String>, Vec<String>) = SHIPPED_APPLE_LIST
        .lines()
        .filter_map(|line| line.split('#').next())
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .partition(|prefix| !prefix.contains(':'));
    format!(
        "table netdev classify {{
  set apple4 {{ type ipv4_addr; flags interval; elements = {{ {} }} }}
  set apple6 {{ type ipv6_addr; flags interval; elements = {{ {} }} }}
  chain ingress {{
    type filter hook ingress devices = {{ {} }} priority 0; policy accept;
    ip saddr @apple4 ip dscp set 1
    ip daddr @apple4 ip dscp set 1
    ip6 saddr @apple6 ip6 dscp set 1
    ip6 daddr @apple6 ip6 dscp set 1
    tcp option mptcp exists ip dscp set 1
    tcp option mptcp exists ip6 dscp set 1
  }}
}}",
        v4.join(", "),
        v6.join(", "),
        ROUTER_INGRESS.join(", ")
    )
}

fn classifier_pin_dir() -> PinDir {
    PinDir::new(format!(
        "/sys/fs/bpf/classifier-bench-{}-forwarding",
        std::process::id()
    ))
}

/// What is on the router's ingress while it lives.
enum Installed {
    Nothing,
    Baseline(Baseline),
    Classifier(PinDir),
    Nftables,
}

fn install(lab: &Lab, setup: Setup) -> Result<Installed> {
    Ok(match setup {
        Setup::Nothing => Installed::Nothing,
        Setup::Baseline => {
            let mut baseline = Baseline::load()?;
            let program = baseline.xdp_mut()?;
            lab.router.enter(|| -> Result<()> {
                for device in ROUTER_INGRESS {
                    program.attach(device, XdpMode::Driver)?;
                }
                Ok(())
            })??;
            Installed::Baseline(baseline)
        }
        Setup::TcBaseline => {
            let mut baseline = Baseline::load_tc()?;
            let program = baseline.tc_mut()?;
            lab.router.enter(|| -> Result<()> {
                for device in ROUTER_INGRESS {
                    program.attach_with_options(
                        device,
                        TcAttachType::Ingress,
                        TcAttachOptions::TcxOrder(LinkOrder::default()),
                    )?;
                }
                Ok(())
            })??;
            Installed::Baseline(baseline)
        }
        Setup::Classifier | Setup::ClassifierTc => {
            let pin_dir = classifier_pin_dir();
            let config = ConfigFile {
                policy: Some(vec!["list:apple=LE".to_owned(), "mptcp=LE".to_owned()]),
                ..ConfigFile::default()
            };
            let mode = if setup == Setup::ClassifierTc {
                HookChoice::Tc
            } else {
                HookChoice::XdpNative
            };
            lab.attach_classifier_in(&pin_dir, &config, mode)?;
            Installed::Classifier(pin_dir)
        }
        Setup::Nftables => {
            lab.router.load_nft(&nft_rules())?;
            Installed::Nftables
        }
    })
}

fn remove(lab: &Lab, installed: Installed) -> Result<()> {
    match installed {
        Installed::Nothing => {}
        // Dropping the program detaches it.
        Installed::Baseline(baseline) => drop(baseline),
        Installed::Classifier(pin_dir) => {
            lab.detach_classifier(&pin_dir)?;
            let _ = std::fs::remove_dir_all(pin_dir.path());
        }
        Installed::Nftables => {
            lab.router
                .exec("nft", &["delete", "table", "netdev", "classify"])?;
        }
    }
    Ok(())
}

/// An iperf3 server in the server namespace, on the sender's opposite CPU; killed on drop.
struct Server(Child);

impl Server {
    fn start(ns: &Netns) -> Result<Self> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns.name(), "taskset", "-c", RECEIVER_CPU])
            .args(["iperf3", "--server", "--bind", APPLE_V4, "--port", "5201"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe. The server dies with this process, also when
        // an interrupt ends it without running Drop.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            })
        };
        let child = command
            .spawn()
            .context("starting iperf3 (installed by `cargo xtask setup`)")?;
        thread::sleep(Duration::from_millis(300));
        Ok(Self(child))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn iperf(lab: &Lab, seconds: u32, extra: &[&str]) -> Result<serde_json::Value> {
    let seconds = seconds.to_string();
    let mut args = vec![
        "taskset", "-c", SENDER_CPU, "iperf3", "--client", APPLE_V4, "--port", "5201", "--time",
        &seconds, "--json",
    ];
    args.extend_from_slice(extra);
    let output = lab.client.exec(args[0], &args[1..])?;
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    if let Some(error) = json["error"].as_str() {
        bail!("iperf3: {error}");
    }
    Ok(json)
}

/// CPU time, in nanoseconds, of every ksoftirqd thread: softirq work the kernel moved
/// out of the sending task's context.
fn ksoftirqd_ns() -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc")?.filter_map(Result::ok) {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.starts_with("ksoftirqd/") {
            let schedstat = std::fs::read_to_string(entry.path().join("schedstat"))?;
            total += schedstat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .context("reading a ksoftirqd schedstat")?;
        }
    }
    Ok(total)
}

/// CPU time, in nanoseconds, of this process's waited-for children (user + system).
fn children_ns() -> u64 {
    // SAFETY: getrusage writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let ns = |time: libc::timeval| time.tv_sec as u64 * 1_000_000_000 + time.tv_usec as u64 * 1000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

struct Sample {
    gbits: f64,
    /// CPU time per packet on the forwarding path at the fixed UDP load, in microseconds.
    cpu_us: f64,
    udp_packets: u64,
}

fn sample(lab: &Lab) -> Result<Sample> {
    let tcp = iperf(lab, SECONDS, &[])?;
    let gbits = tcp["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 gave no throughput")?
        / 1e9;
    let (task_before, softirq_before) = (children_ns(), ksoftirqd_ns()?);
    let udp = iperf(
        lab,
        UDP_SECONDS,
        &[
            "--udp",
            "--bitrate",
            &format!("{UDP_MBITS}M"),
            "--length",
            UDP_LENGTH,
        ],
    )?;
    let cpu_ns = (children_ns() - task_before) + (ksoftirqd_ns()? - softirq_before);
    let sum = &udp["end"]["sum"];
    let sent = sum["packets"].as_u64().context("iperf3 gave no packets")?;
    let lost = sum["lost_packets"].as_u64().unwrap_or(0);
    let received = sent.saturating_sub(lost).max(1);
    Ok(Sample {
        gbits,
        cpu_us: cpu_ns as f64 / received as f64 / 1000.0,
        udp_packets: received,
    })
}

/// Every setup in turn, `ROUNDS` times: the samples of each setup, in `Setup::ALL` order.
fn measure_setups(lab: &Lab) -> Result<Vec<Vec<Sample>>> {
    let mut samples: Vec<Vec<Sample>> = Setup::ALL.iter().map(|_| Vec::new()).collect();
    for round in 0..ROUNDS {
        for (index, setup) in Setup::ALL.iter().enumerate() {
            let installed = install(lab, *setup)?;
            let measured = sample(lab);
            remove(lab, installed)?;
            let measured = measured?;
            println!(
                "  round {}: {:<30} {:.2} Gbit/s, {:.2} µs CPU per packet",
                round + 1,
                setup.name(),
                measured.gbits,
                measured.cpu_us
            );
            samples[index].push(measured);
        }
    }
    Ok(samples)
}

pub fn run() -> Result<Section> {
    let mut section = Section::new(
        "Forwarding",
        format!(
            "The lab's three namespaces (client ⇄ router ⇄ server, veth pairs), with TSO, GSO \
             and GRO off on every veth so that each packet is MTU-sized, as on a router NIC, \
             and the router forwards packet by packet. Six setups on the router's ingress \
             interfaces, measured in rounds that alternate them ({ROUNDS} rounds, medians): \
             nothing; the baseline XDP program (only XDP_PASS, native mode: what XDP on a veth \
             costs by itself); the classifier (native XDP, policy `list:apple=LE mptcp=LE`); \
             the baseline tc program (only TC_ACT_OK, at TCX ingress: what a tc program costs \
             by itself); the classifier at tc (`attach --hook tc`, the same policy); \
             and nftables doing the same classification at its earliest hook, netdev ingress: \
             the shipped `apple` prefixes as interval sets, `ip saddr/daddr @apple4 ip dscp \
             set 1`, `tcp option mptcp exists ip dscp set 1`, and the IPv6 equivalents. The \
             traffic goes from the client to the Apple server (17.253.0.10), so every packet \
             is classified and rewritten to LE by both.\n\n\
             *Throughput*: one iperf3 TCP stream, {SECONDS} s. *CPU per packet*: iperf3 UDP at a \
             fixed offered load ({UDP_MBITS} Mbit/s of {UDP_LENGTH}-byte datagrams), {UDP_SECONDS} s; \
             the CPU time of the sending process (getrusage of the waited-for iperf3 client) \
             plus that of the ksoftirqd threads, over the run, divided by the datagrams \
             received. This kernel accounts CPU time by ticks without IRQ time accounting, so \
             the softirq work done in the sender's context, which on veths is the router's \
             whole forwarding path, is charged to the sender's task; what the kernel defers \
             is charged to ksoftirqd. Both are per-task times, so other work on this shared \
             machine does not enter them. The figure includes the sender's own work, the same \
             in every setup, so the difference between setups is what the router's ingress \
             costs.\n\n\
             *The 2 cores*: the sender (iperf3 client) is pinned to CPU {SENDER_CPU} and the \
             receiver (iperf3 server) to CPU {RECEIVER_CPU}. A veth delivers a packet to its \
             peer on the sending CPU, so the router's whole forwarding path (XDP or nftables, \
             routing, the second veth) runs in softirq on the sender's CPU: the sender and \
             the router share CPU {SENDER_CPU}, exactly as in every setup, and the receiver has \
             the other core to itself so that it never limits the rate. That makes the \
             throughput a measure of the per-packet work on the forwarding CPU, which is \
             what differs between setups."
        ),
    );
    let lab = Lab::new()?;
    for (ns, device) in [
        (&lab.client, "c0"),
        (&lab.router, ROUTER_TO_CLIENT),
        (&lab.router, ROUTER_TO_SERVER),
        (&lab.server, "s0"),
    ] {
        ns.plain_frames(device)?;
    }
    let _server = Server::start(&lab.server)?;
    let measured = measure_setups(&lab);
    // An attach that failed half way may have left its pinned state.
    let _ = std::fs::remove_dir_all(classifier_pin_dir().path());
    let samples = measured?;
    let mut table = Table::new(
        "forwarding through the router (medians)",
        &[
            "setup",
            "TCP throughput",
            "vs no program",
            "CPU per packet",
            "(rounds: min–max)",
            "over no program",
            "UDP packets",
        ],
    );
    let summary: Vec<(f64, f64, u64)> = samples
        .iter()
        .map(|runs| {
            (
                median(&mut runs.iter().map(|s| s.gbits).collect::<Vec<_>>()),
                median(&mut runs.iter().map(|s| s.cpu_us).collect::<Vec<_>>()),
                runs.iter().map(|s| s.udp_packets).sum::<u64>() / runs.len() as u64,
            )
        })
        .collect();
    let (none_gbits, none_cpu, _) = summary[0];
    for ((setup, (gbits, cpu, packets)), runs) in Setup::ALL.iter().zip(&summary).zip(&samples) {
        let cpus = runs.iter().map(|s| s.cpu_us);
        let (low, high) = (
            cpus.clone().fold(f64::MAX, f64::min),
            cpus.fold(0.0, f64::max),
        );
        table.row(vec![
            setup.name().to_owned(),
            format!("{gbits:.2} Gbit/s"),
            format!("{:.1} %", gbits / none_gbits * 100.0),
            format!("{cpu:.2} µs"),
            format!("{low:.2}–{high:.2} µs"),
            format!("{:+.2} µs", cpu - none_cpu),
            crate::table::count(*packets),
        ]);
    }
    section.table(table);
    let (baseline_gbits, baseline_cpu, _) = summary[1];
    let (classifier_gbits, classifier_cpu, _) = summary[2];
    let (tc_baseline_gbits, tc_baseline_cpu, _) = summary[3];
    let (tc_gbits, tc_cpu, _) = summary[4];
    let (nft_gbits, nft_cpu, _) = summary[5];
    section.target(Target {
        what: "forwarding throughput with the classifier",
        goal: "≥ 97 % of no program",
        measured: format!(
            "{:.1} % (of the XDP baseline: {:.1} %)",
            classifier_gbits / none_gbits * 100.0,
            classifier_gbits / baseline_gbits * 100.0
        ),
        met: classifier_gbits >= none_gbits * 0.97,
    });
    section.notes = format!(
        "On a veth, attaching any XDP program changes the receive path: veth hands each \
         packet to XDP through `veth_convert_skb_to_xdp_buff()`, which copies the packet into \
         a fresh page whenever the skb is cloned (as TCP's are: the sender keeps the original \
         for retransmission) or has less than 256 bytes of headroom (every locally sent \
         packet), and then runs NAPI on the peer. The baseline program, which does nothing, \
         shows that cost alone: {:.1} % of the throughput with no program in this run. A NIC \
         driver runs XDP on its receive buffer before any skb exists, so it has no such copy; \
         on these veths the classifier's own share is best read against the baseline.",
        baseline_gbits / none_gbits * 100.0
    ) + &format!(
        "\n\nSplit that way, in this run: veth's XDP path by itself (the baseline over no \
         program) {:.1} % of the throughput and {:+.2} µs of CPU per packet; the classifier \
         over the baseline {:.1} % of the throughput and {:+.2} µs per packet; nftables over no \
         program {:.1} % and {:+.2} µs. BPF_PROG_TEST_RUN puts the classifier's own cost at \
         about 0.08 µs (per-packet section); the CPU figures here move by a few tenths of a \
         microsecond from round to round (printed as the benchmark runs), which is why they \
         are medians of {ROUNDS} rounds.",
        baseline_gbits / none_gbits * 100.0,
        baseline_cpu - none_cpu,
        classifier_gbits / baseline_gbits * 100.0,
        classifier_cpu - baseline_cpu,
        nft_gbits / none_gbits * 100.0,
        nft_cpu - none_cpu,
    );
    section.target(Target {
        what: "router CPU per packet, classifier vs nftables",
        goal: "less than nftables",
        measured: format!(
            "{:+.2} vs {:+.2} µs over no program",
            classifier_cpu - none_cpu,
            nft_cpu - none_cpu
        ),
        met: classifier_cpu < nft_cpu,
    });
    section.target(Target {
        what: "forwarding throughput with the classifier at tc (`--hook tc`)",
        goal: "≥ 97 % of no program",
        measured: format!(
            "{:.1} % (of the tc baseline: {:.1} %)",
            tc_gbits / none_gbits * 100.0,
            tc_gbits / tc_baseline_gbits * 100.0
        ),
        met: tc_gbits >= none_gbits * 0.97,
    });
    section.target(Target {
        what: "router CPU per packet, classifier at tc vs nftables",
        goal: "less than nftables",
        measured: format!(
            "{:+.2} vs {:+.2} µs over no program (the tc baseline: {:+.2} µs)",
            tc_cpu - none_cpu,
            nft_cpu - none_cpu,
            tc_baseline_cpu - none_cpu
        ),
        met: tc_cpu < nft_cpu,
    });
    section.notes += &format!(
        "\n\nAt tc the packet is already an skb and veth's XDP copy never happens: the tc \
         baseline keeps {:.1} % of the throughput of no program and the classifier at tc \
         {:.1} %, {:+.2} µs of CPU per packet over no program ({:+.2} µs over the tc \
         baseline). This is the hook `attach` picks where a driver has no native XDP.",
        tc_baseline_gbits / none_gbits * 100.0,
        tc_gbits / none_gbits * 100.0,
        tc_cpu - none_cpu,
        tc_cpu - tc_baseline_cpu,
    );
    Ok(section)
}
