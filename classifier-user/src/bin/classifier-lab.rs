//! `classifier-lab`: the demo lab (run it with `cargo xtask demo`). Builds three network
//! namespaces, attaches the classifier to the router, runs real MPTCP and Apple traffic,
//! prints a report, and removes everything, also on Ctrl-C.

use std::process::ExitCode;

fn main() -> ExitCode {
    let pin_dir = classifier::lab::demo::pin_dir();
    let handler = ctrlc::set_handler(move || {
        eprintln!("\ninterrupted: removing the lab");
        classifier::lab::remove_all();
        let _ = std::fs::remove_dir_all(&pin_dir);
        std::process::exit(130);
    });
    if let Err(error) = handler {
        eprintln!("warning: no Ctrl-C handler ({error}); an interrupted run may leave namespaces");
    }
    match classifier::lab::demo::run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
