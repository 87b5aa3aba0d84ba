//! `classifier-lab`: the demo lab (run it with `cargo xtask demo`). Builds three network
//! namespaces, attaches the classifier to the router, runs real MPTCP and Apple traffic,
//! prints a report, and removes everything, also on Ctrl-C.

use std::{
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

/// Set by the Ctrl-C handler before it removes the lab.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let pin_dir = classifier::lab::demo::pin_dir();
    let handler = ctrlc::set_handler(move || {
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted: removing the lab");
        classifier::lab::remove_all();
        let _ = std::fs::remove_dir_all(&pin_dir);
        std::process::exit(130);
    });
    if let Err(error) = handler {
        eprintln!("warning: no Ctrl-C handler ({error}); an interrupted run may leave namespaces");
    }
    let outcome = classifier::lab::demo::run();
    // Removing the namespaces under the running demo makes it fail; that failure is the
    // interruption's, so leave the exit (130) to the handler rather than report it.
    if INTERRUPTED.load(Ordering::SeqCst) {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
