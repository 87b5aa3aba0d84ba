//! One writer at a time (docs/design.md, 'One writer at a time'): CLI writers run
//! concurrently from separate processes, and nothing any of them wrote is lost.
//!
//! Without the writer lock both tests lose writes: a `prefixes replace` that read the tries
//! before a `prefixes add` overwrites or deletes the added prefix, and the generation bump of
//! a prefix change writes back a config read before a `policy set`.

use classifier_testkit as support;

use std::{
    collections::BTreeSet,
    fs,
    os::fd::AsRawFd as _,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use classifier_lab::{Netns, veth};
use support::cli::Cli;

/// A namespace with a veth pair (a0, b0) and the classifier attached to a0.
fn attached() -> (Netns, Cli) {
    let ns = Netns::create("clst-w").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    cli.run(&["--netns", ns.name(), "attach", "a0"]).ok();
    (ns, cli)
}

fn scratch(cli: &Cli, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(cli.pin_dir().file_name().unwrap());
    fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A file of 4,096 /24s covering 10.0.0.0/12, and an empty one: replacing a list with one
/// and then the other writes (or deletes) every one of them, long enough for a concurrent
/// writer to land in the middle.
fn big_and_empty(cli: &Cli) -> [std::path::PathBuf; 2] {
    let big = scratch(cli, "big.txt");
    let text: String = (0..4096)
        .map(|n| format!("10.{}.{}.0/24\n", n / 256, n % 256))
        .collect();
    fs::write(&big, text).unwrap();
    let empty = scratch(cli, "empty.txt");
    fs::write(&empty, "# nothing\n").unwrap();
    [big, empty]
}

/// Runs `prefixes replace` alternately with each file while `other_writer` is set, then once
/// more with the first; returns how many replaces ran.
fn replace_while(cli: &Cli, files: &[std::path::PathBuf; 2], other_writer: &AtomicBool) -> usize {
    let mut replaces = 0;
    while other_writer.load(Ordering::Relaxed) {
        let file = files[replaces % 2].to_str().unwrap();
        cli.run(&["prefixes", "replace", file, "--list", "big"])
            .ok();
        replaces += 1;
    }
    let file = files[0].to_str().unwrap();
    cli.run(&["prefixes", "replace", file, "--list", "big"])
        .ok();
    replaces + 1
}

fn prefixes_of(cli: &Cli, list: &str) -> BTreeSet<String> {
    let rows = cli
        .run(&["prefixes", "list", "--list", list, "--json"])
        .ok()
        .json();
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|row| {
            row["lists"]
                .as_array()
                .unwrap()
                .iter()
                .any(|name| name == list)
        })
        .map(|row| row["prefix"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn prefix_adds_beside_replaces_are_all_kept() {
    let (_ns, cli) = attached();
    let files = big_and_empty(&cli);
    // Inside the big file's /24s, so the replaces write every entry the adds write.
    let added: BTreeSet<String> = (0..60)
        .map(|n| format!("10.{}.{}.0/24", n % 16, n * 4))
        .collect();
    let adding = AtomicBool::new(true);
    let replaces = std::thread::scope(|scope| {
        let replacing = scope.spawn(|| replace_while(&cli, &files, &adding));
        for prefix in &added {
            cli.run(&["prefixes", "add", prefix, "--list", "mine"]).ok();
        }
        adding.store(false, Ordering::Relaxed);
        replacing.join().unwrap()
    });
    println!("{} adds beside {replaces} replaces", added.len());
    assert!(
        replaces >= 4,
        "the replaces ran beside the adds: {replaces}"
    );

    let mine = prefixes_of(&cli, "mine");
    let lost: Vec<&String> = added.difference(&mine).collect();
    assert!(lost.is_empty(), "adds lost: {lost:?}");
    assert_eq!(mine.len(), added.len());
    assert_eq!(
        prefixes_of(&cli, "big").len(),
        4096,
        "the last replace put the big file in"
    );
}

#[test]
fn policy_sets_beside_prefix_changes_are_all_kept() {
    let (_ns, cli) = attached();
    let generation = |cli: &Cli| {
        cli.run(&["status", "--json"]).ok().json()["policy"]["generation"]
            .as_u64()
            .expect("the generation in status")
    };
    let before = generation(&cli);
    let sets = 150;
    let setting = AtomicBool::new(true);
    // Small prefix changes, each one quick read-modify-write of the config (the generation
    // bump), as often as they come.
    let changes = std::thread::scope(|scope| {
        let changing = scope.spawn(|| {
            let mut changes = 0;
            while setting.load(Ordering::Relaxed) || changes % 2 == 1 {
                let verb = if changes % 2 == 0 { "add" } else { "remove" };
                cli.run(&["prefixes", verb, "192.0.2.0/24", "--list", "other"])
                    .ok();
                changes += 1;
            }
            changes
        });
        for dscp in 0..sets {
            let rule = format!("list:apple={}", dscp % 64);
            cli.run(&["policy", "set", &rule, "mptcp=keep"]).ok();
        }
        setting.store(false, Ordering::Relaxed);
        changing.join().unwrap()
    });
    println!("{sets} policy sets beside {changes} prefix changes");
    // Every change bumps the generation once: a write lost to another writer's stale
    // read-modify-write shows as a missing bump (docs/design.md, 'Live updates: the
    // generation protocol').
    assert_eq!(
        generation(&cli) - before,
        sets + changes,
        "bumps lost: a writer wrote back a config read before another writer's change"
    );
    let policy = cli.run(&["policy", "show", "--json"]).ok().json();
    assert_eq!(
        policy["rules"],
        serde_json::json!([format!("list:apple={}", (sets - 1) % 64), "mptcp=keep"]),
        "the last policy set is the policy"
    );
}

/// A writer that cannot get the lock gives up after the deadline and names the holder.
#[test]
fn a_writer_waits_for_the_lock_then_names_its_holder() {
    let (_ns, cli) = attached();
    let dir = fs::File::open(cli.pin_dir()).expect("opening the pin directory");
    // SAFETY: the fd is open for as long as `dir` lives.
    let locked = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(locked, 0, "locking the pin directory");
    let started = Instant::now();
    let ran = cli.run(&["prefixes", "add", "192.0.2.0/24"]);
    let waited = started.elapsed();
    let ran = ran.fails(1, &format!("another writer, pid {} (", std::process::id()));
    assert!(ran.stderr.contains("more than 10 s"), "{}", ran.stderr);
    assert!(
        waited >= Duration::from_secs(10),
        "gave up after {waited:?}"
    );
    // Readers never wait.
    cli.run(&["prefixes", "list"]).ok();
    cli.run(&["stats"]).ok();
    drop(dir);
    cli.run(&["prefixes", "add", "192.0.2.0/24"]).ok();
    assert!(prefixes_of(&cli, "apple").contains("192.0.2.0/24"));
}
