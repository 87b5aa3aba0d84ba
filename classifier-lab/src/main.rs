//! `classifier-lab`: the demo lab (run it with `cargo xtask demo`). Builds three network
//! namespaces, attaches the classifier to the router, runs real MPTCP and Apple traffic,
//! prints a report, and removes everything, also on Ctrl-C.
//!
//! `classifier-lab [--hook xdp|tc]`: the classifier's hook, native XDP by default.

use std::process::ExitCode;

use classifier::Hook;
use classifier_lab as lab;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hook = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["--hook", "xdp"] => Hook::Xdp,
        ["--hook", "tc"] => Hook::Tc,
        _ => {
            eprintln!(
                "error: `{}`: the demo takes only --hook xdp or --hook tc",
                args.join(" ")
            );
            return ExitCode::from(2);
        }
    };
    // The demo's pin directory is /sys/fs/bpf/classifier-lab-PID (`demo::pin_dir`).
    lab::remove_all_on_interrupt(format!("classifier-lab-{}", std::process::id()));
    match lab::unless_interrupted(lab::demo::run(hook)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
