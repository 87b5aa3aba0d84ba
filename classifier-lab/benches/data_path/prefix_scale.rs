//! Prefix scale: load time through the CLI, kernel memory, and per-packet cost (LPM path and
//! flow cache) at 1 k to 1 M IPv4 prefixes and 100 k IPv6.

use std::{process::Command, time::Duration};

use anyhow::{Context as _, Result, ensure};
use classifier::{
    PinDir,
    config_file::ConfigFile,
    control::state::{self, InitialState},
    load::names::{MAP_PREFIXES_V4, MAP_PREFIXES_V6},
};
use classifier_lab::Baseline;

use crate::{
    cli, packets, per_packet, prefix_lists,
    table::{Section, Table, Target, count, ns},
    timing::{Cost, Programs},
};

/// A classifier whose maps are pinned in a private directory, as `attach` makes them, but
/// attached nowhere; the directory is removed on drop.
struct Pinned {
    programs: Programs<classifier::load::Pinned>,
    pin_dir: PinDir,
}

impl Pinned {
    fn new(name: &str) -> Result<Self> {
        let pin_dir = PinDir::new(format!(
            "/sys/fs/bpf/classifier-bench-{}-{name}",
            std::process::id()
        ));
        pin_dir.prepare()?;
        let classifier =
            state::load_pinned(&pin_dir, &InitialState::read(&ConfigFile::default())?)?;
        Ok(Self {
            programs: Programs {
                classifier,
                baseline: Baseline::load()?,
            },
            pin_dir,
        })
    }

    /// The kernel memory of the prefix tries, as the kernel accounts it (`bytes_memlock`).
    fn trie_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for map in [MAP_PREFIXES_V4, MAP_PREFIXES_V6] {
            let path = self.pin_dir.map(map);
            let output = Command::new("bpftool")
                .args(["-j", "map", "show", "pinned"])
                .arg(&path)
                .output()
                .context("running bpftool")?;
            ensure!(
                output.status.success(),
                "bpftool map show {}",
                path.display()
            );
            let info: serde_json::Value = serde_json::from_slice(&output.stdout)?;
            total += info["bytes_memlock"]
                .as_u64()
                .context("bpftool gave no bytes_memlock")?;
        }
        Ok(total)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.pin_dir.path());
    }
}

struct Scale {
    name: &'static str,
    prefixes: Vec<ipnet::IpNet>,
    apple: &'static str,
    established: fn() -> Vec<u8>,
}

struct Measured {
    load: Duration,
    memory: u64,
    first: per_packet::FirstPackets,
    established: Cost,
}

fn measure(scale: &Scale) -> Result<Measured> {
    let pinned = Pinned::new(scale.name)?;
    let file = std::env::temp_dir().join(format!(
        "classifier-bench-{}-{}.txt",
        std::process::id(),
        scale.name
    ));
    prefix_lists::write(&file, &scale.prefixes)?;
    let load = cli::replace(pinned.pin_dir.path(), &file);
    let _ = std::fs::remove_file(&file);
    let load = load?;
    let memory = pinned.trie_bytes()?;
    let established = pinned.programs.repeated(&(scale.established)())?;
    let first = per_packet::first_packet_cost(&pinned.programs, scale.apple)?;
    Ok(Measured {
        load,
        memory,
        first,
        established,
    })
}

fn with_overhead(cost: Cost) -> String {
    format!("{} ({})", ns(cost.classifier), ns(cost.overhead()))
}

fn bytes(value: u64) -> String {
    if value >= 1 << 20 {
        format!("{:.1} MiB", value as f64 / f64::from(1 << 20))
    } else {
        format!("{:.0} KiB", value as f64 / 1024.0)
    }
}

pub fn run() -> Result<Section> {
    let mut section = Section::new(
        "Prefix scale",
        "For each size, a fresh pinned state (as `attach` creates it, attached nowhere) gets \
         the list through `classifier prefixes replace FILE`, the command an operator runs; \
         *load* is that command's wall time (reading and checking the file, planning the \
         hitless change, writing the tries). The list is the shipped `apple` list plus random \
         distinct prefixes with routing-table lengths (IPv4 60 % /24, 30 % /16–/23, 10 % \
         /25–/32; IPv6 70 % /48), never covering the benchmark's own addresses. *Memory* is \
         the kernel's accounting of both tries (`bpftool map show`, `bytes_memlock`). The \
         packet costs are measured on the same maps, as in the per-packet section: a first \
         packet to an Apple server (single shot: LPM lookup and flow insert) and a packet of \
         an established flow to it (the flow cache).",
    );
    let scales = [
        (1_000, false),
        (10_000, false),
        (100_000, false),
        (1_000_000, false),
        (100_000, true),
    ];
    let mut table = Table::new(
        "prefix scale (ns per packet are medians; overhead over the baseline in brackets)",
        &[
            "list",
            "prefixes",
            "load",
            "trie memory",
            "first packet, table filling",
            "first packet, table full",
            "established (cache)",
        ],
    );
    let mut established_at = Vec::new();
    let mut load_1m = None;
    for (size, v6) in scales {
        let scale = if v6 {
            Scale {
                name: "v6-100k",
                prefixes: prefix_lists::ipv6(size, 6),
                apple: packets::APPLE_V6,
                established: packets::apple_v6,
            }
        } else {
            Scale {
                name: "v4",
                prefixes: prefix_lists::ipv4(size, 4),
                apple: packets::APPLE_V4,
                established: packets::apple_v4,
            }
        };
        let measured = measure(&scale)?;
        if !v6 {
            established_at.push((size, measured.established.overhead()));
            if size == 1_000_000 {
                load_1m = Some(measured.load);
            }
        }
        table.row(vec![
            if v6 { "IPv6" } else { "IPv4" }.to_owned(),
            count(size as u64),
            format!("{:.3} s", measured.load.as_secs_f64()),
            bytes(measured.memory),
            with_overhead(measured.first.filling),
            with_overhead(measured.first.full),
            with_overhead(measured.established),
        ]);
    }
    section.table(table);
    let load_1m = load_1m.expect("the 1 M size ran");
    section.target(Target {
        what: "1 M IPv4 prefixes loaded",
        goal: "≤ 5 s",
        measured: format!("{:.2} s", load_1m.as_secs_f64()),
        met: load_1m <= Duration::from_secs(5),
    });
    let small = established_at.first().expect("sizes ran").1;
    let large = established_at.last().expect("sizes ran").1;
    section.target(Target {
        what: "established-flow overhead at 1 M prefixes vs 1 k",
        goal: "within 10 %",
        measured: format!(
            "{} vs {} ns ({:+.1} %)",
            ns(large),
            ns(small),
            (large - small) / small * 100.0
        ),
        met: large <= small * 1.10,
    });
    Ok(section)
}
