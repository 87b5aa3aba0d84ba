//! `policy set` and `classifier run` write the same configuration: the policy's rules, and
//! run's switch that hands DNS to it. Both are read-modify-writes, so without one writer at a
//! time (docs/design.md, 'One writer at a time') a `policy set` that read the configuration
//! before `run` switched learning on writes it back switched off, and `run` waits for DNS
//! answers that never come; or `run`, stopping, writes back rules read before the last
//! `policy set`. Here a burst of `policy set` runs while `run` starts, and another while it
//! stops, several times; after each, the configuration must hold both: the last rules set,
//! and learning on exactly while `run` runs.
//!
//! `run` hands DNS over only while a resolver is named (docs/design.md, 'DNS learning'): the
//! config here names one.
//!
//! A guard more than a proof: each read-modify-write lasts microseconds, so with the lock
//! taken out this test still passed 3 runs out of 3 (2026-11-30). The lock's effect is shown
//! by `cli_writers.rs`, whose writers lose updates at once without it.

use classifier_testkit as support;

use classifier::{
    ClassifierMaps, PinDir,
    control::policy,
    load::{ListNames, rules},
};
use classifier_common::config::CONFIG_LEARN_DNS;
use support::{cli::Cli, faults::Daemon, hosts::TwoHosts};

const ROUNDS: usize = 6;
/// `policy set`s per burst, made through the library function the CLI calls
/// (`control::policy::change`) so that they come tens of microseconds apart, as fast as the
/// state allows, and a burst covers `run`'s start or stop.
const SETS: usize = 400;
/// The two policies `policy set` alternates between.
const POLICIES: [&str; 2] = ["list:apple=LE", "list:apple=CS1"];
/// The policy the last of a burst of `SETS` sets.
const LAST: &str = POLICIES[(SETS - 1) % 2];

/// The rules in force, and whether learning is on.
fn state(cli: &Cli) -> (Vec<String>, bool) {
    let maps = ClassifierMaps::open_pinned(&PinDir::new(cli.pin_dir())).unwrap();
    let names = ListNames::read(&maps).unwrap();
    let config = maps.config().unwrap();
    let rules = rules::decode(&config, &names)
        .iter()
        .map(ToString::to_string)
        .collect();
    (rules, config.flags & CONFIG_LEARN_DNS != 0)
}

fn burst_of_policy_sets(cli: &Cli) {
    let pin_dir = PinDir::new(cli.pin_dir());
    for n in 0..SETS {
        policy::change(&pin_dir, &[POLICIES[n % 2].to_owned()], None).expect("policy set");
    }
}

#[test]
fn policy_set_beside_run_starting_and_stopping_loses_nothing() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    let server = hosts.server.name();
    cli.run(&["--netns", server, "attach", "s0"]).ok();
    let config = std::env::temp_dir().join(format!("{server}-writers.toml"));
    std::fs::write(
        &config,
        "[[dns.trusted_resolvers]]\naddress = \"192.0.2.53\"\ninterfaces = [\"s0\"]\n\
         [dns.lookup]\nenabled = false\n",
    )
    .unwrap();
    for round in 0..ROUNDS {
        let mut run = std::thread::scope(|scope| {
            let setter = scope.spawn(|| burst_of_policy_sets(&cli));
            let mut run = Daemon::start_with_config(
                &cli,
                &config,
                &["--netns", server, "run", "s0", "--keep-attached"],
            );
            run.wait_for_log("learning from DNS answers", 20);
            setter.join().expect("the policy sets");
            run
        });
        assert_eq!(
            state(&cli),
            (vec![LAST.to_owned()], true),
            "round {round}, run started: the last policy set and learning on"
        );
        std::thread::scope(|scope| {
            let setter = scope.spawn(|| burst_of_policy_sets(&cli));
            run.signal(libc::SIGTERM);
            assert!(run.wait().success(), "round {round}:\n{}", run.log());
            setter.join().expect("the policy sets");
        });
        assert_eq!(
            state(&cli),
            (vec![LAST.to_owned()], false),
            "round {round}, run stopped: the last policy set and learning off"
        );
    }
    let _ = std::fs::remove_file(config);
}
