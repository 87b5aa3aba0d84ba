//! `classifier-lab`: the demo lab (run it with `cargo xtask demo`). Builds three network
//! namespaces, attaches the classifier to the router, runs real MPTCP and Apple traffic,
//! prints a report, and removes everything, also on Ctrl-C.

use std::process::ExitCode;

use classifier_lab as lab;

fn main() -> ExitCode {
    // The demo's pin directory is /sys/fs/bpf/classifier-lab-PID (`demo::pin_dir`).
    lab::remove_all_on_interrupt(format!("classifier-lab-{}", std::process::id()));
    match lab::unless_interrupted(lab::demo::run()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
