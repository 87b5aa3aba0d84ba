//! One metrics scrape of `classifier run`, and `classifier devices`, with 100,000 flows in the
//! table: the whole table read in batches and aggregated by device (docs/design.md, 'Devices').

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use aya::maps::{HashMap, Map, MapData};
use classifier::{
    Classifier, ClassifierMaps, PinDir,
    config_file::ConfigFile,
    control::state::{self, InitialState},
    daemon::{Metrics, scrape_text},
    load::{Pinned, names::MAP_FLOWS_TCP_V4},
};
use classifier_common::{FlowEntry, FlowKeyV4};
use classifier_testkit::packet::Segment;

use crate::{
    cli,
    table::{Section, Table, Target, count, median},
};

/// Flows in the table: `DEVICES` phones with `FLOWS_PER_DEVICE` downloads each, all from
/// the Apple server (in the `apple` list).
const DEVICES: u32 = 1_000;
const FLOWS_PER_DEVICE: u32 = 100;
const FLOWS: u32 = DEVICES * FLOWS_PER_DEVICE;
const APPLE_SERVER: &str = "17.253.0.10";
/// Timed repetitions of each measurement (the median and the slowest are reported).
const ROUNDS: usize = 9;
const GOAL: Duration = Duration::from_millis(200);

fn milliseconds(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e3)
}

/// CPU time of this thread, in the kernel (the bpf(2) calls) and out of it.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Wall time, median and slowest, and the median CPU time of this thread.
struct Times {
    median: Duration,
    slowest: Duration,
    cpu: Duration,
}

/// `ROUNDS` runs of `work`, after one untimed.
fn timed(mut work: impl FnMut() -> Result<()>) -> Result<Times> {
    work()?;
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..ROUNDS {
        let (started, cpu_before) = (Instant::now(), thread_cpu());
        work()?;
        wall.push(started.elapsed().as_secs_f64());
        cpu.push((thread_cpu() - cpu_before).as_secs_f64());
    }
    let slowest = wall.iter().copied().fold(0.0, f64::max);
    Ok(Times {
        median: Duration::from_secs_f64(median(&mut wall)),
        slowest: Duration::from_secs_f64(slowest),
        cpu: Duration::from_secs_f64(median(&mut cpu)),
    })
}

/// The pinned state with the shipped lists and policy, its flow table filled by the kernel
/// program from one SYN per flow (BPF_PROG_TEST_RUN).
fn filled(pin_dir: &PinDir) -> Result<Classifier<Pinned>> {
    pin_dir.prepare()?;
    let classifier = state::load_pinned(pin_dir, &InitialState::read(&ConfigFile::default())?)?;
    for device in 0..DEVICES {
        let client = std::net::Ipv4Addr::from(0x0a40_0000 + device).to_string();
        for flow in 0..FLOWS_PER_DEVICE {
            let syn = Segment::tcp(&client, APPLE_SERVER, 1024 + flow as u16, 443)
                .syn()
                .build();
            classifier.test_run(&syn)?;
        }
    }
    Ok(classifier)
}

struct Measured {
    scrape: Times,
    batched: Times,
    one_by_one: Times,
    cli: Times,
}

fn measure(pin_dir: &PinDir) -> Result<Measured> {
    let _classifier = filled(pin_dir)?;
    let maps = ClassifierMaps::open_pinned(pin_dir)?;
    let flows = maps.flow_count();
    ensure!(
        flows == FLOWS as usize,
        "{flows} flows in the table, {FLOWS} made"
    );
    let registry = Metrics::registry(ClassifierMaps::open_pinned(pin_dir)?);
    let text = scrape_text(&registry)?;
    let expected = format!("classifier_devices{{list=\"apple\"}} {DEVICES}");
    ensure!(
        text.lines().any(|line| line == expected),
        "the scrape does not say `{expected}`"
    );
    let scrape = timed(|| scrape_text(&registry).map(drop).map_err(Into::into))?;
    let batched = timed(|| maps.flows().map(drop).map_err(Into::into))?;
    // The read scrapes made before: two bpf(2) calls per flow (next key, then its value).
    // The flows are IPv4 TCP, all in that table.
    let one_by_one_map: HashMap<MapData, FlowKeyV4, FlowEntry> = HashMap::try_from(
        Map::from_map_data(MapData::from_pin(pin_dir.map(MAP_FLOWS_TCP_V4))?)?,
    )?;
    let one_by_one = timed(|| {
        let read = one_by_one_map.iter().filter_map(Result::ok).count();
        ensure!(read == FLOWS as usize, "{read} flows read one by one");
        Ok(())
    })?;
    let cli = timed(|| {
        cli::timed(
            Some(pin_dir.path()),
            &[
                "devices".as_ref(),
                "--list".as_ref(),
                "apple".as_ref(),
                "--json".as_ref(),
                "--interval".as_ref(),
                "0".as_ref(),
            ],
        )
        .map(drop)
    })?;
    Ok(Measured {
        scrape,
        batched,
        one_by_one,
        cli,
    })
}

pub fn run() -> Result<Section> {
    let mut section = Section::new(
        "Metrics scrape with 100,000 flows",
        format!(
            "The flow table filled with {} flows by the kernel program itself (one SYN per flow \
             through BPF_PROG_TEST_RUN, on maps pinned as `attach` pins them, the shipped lists \
             and policy): {} phones with {} downloads each from an address of the `apple` \
             list. *scrape* is one metrics scrape as `classifier run` answers it, without the \
             HTTP around it: every metric family, the flow table read in batches of 4,096 \
             (BPF_MAP_LOOKUP_BATCH) and aggregated into `classifier_devices` (checked to say \
             {} for apple). *batched read* is the flow table's read alone; *one by one* is the \
             read scrapes made before, two bpf(2) calls per flow (the next key, then its \
             value), on the same table. *classifier devices* is the whole process, `classifier \
             devices --list apple --json --interval 0` (one read). Each is run once untimed, \
             then {ROUNDS} times: the median and the slowest wall time, and the median CPU time \
             of the thread that ran it (in the kernel and out; not for the separate process), \
             which a busy machine inflates much less than the wall time.",
            count(u64::from(FLOWS)),
            count(u64::from(DEVICES)),
            FLOWS_PER_DEVICE,
            count(u64::from(DEVICES)),
        ),
    );
    let pin_dir = PinDir::new(format!(
        "/sys/fs/bpf/classifier-bench-{}-scrape",
        std::process::id()
    ));
    let result = measure(&pin_dir);
    let _ = std::fs::remove_dir_all(pin_dir.path());
    let measured = result.context("the scrape benchmark")?;
    let mut table = Table::new(
        format!("ms, {} flows", count(u64::from(FLOWS))),
        &["what", "median", "slowest", "CPU (median)"],
    );
    for (what, times, in_process) in [
        ("scrape", &measured.scrape, true),
        ("batched read", &measured.batched, true),
        ("one by one (before)", &measured.one_by_one, true),
        ("classifier devices", &measured.cli, false),
    ] {
        table.row(vec![
            what.to_owned(),
            milliseconds(times.median),
            milliseconds(times.slowest),
            if in_process {
                milliseconds(times.cpu)
            } else {
                "-".to_owned()
            },
        ]);
    }
    section.table(table);
    let scrape = &measured.scrape;
    section.target(Target {
        what: "one metrics scrape, 100,000 flows",
        goal: "< 200 ms",
        measured: format!(
            "{} ms (slowest {} ms)",
            milliseconds(scrape.median),
            milliseconds(scrape.slowest)
        ),
        met: scrape.slowest < GOAL,
    });
    Ok(section)
}
