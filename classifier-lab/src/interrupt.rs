//! Ctrl-C in the programs that build labs (the demo, the benchmarks, the soak): everything
//! they made is removed and they exit 130, whatever they were doing.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

/// Set by the handler before it removes anything.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// On Ctrl-C, removes the namespaces this process made, then the pinned state and the
/// temporary files named `prefix`, or `prefix` then `-` or `.` and more, and exits 130.
/// `prefix` carries the process id, so that another process's state is never taken.
pub fn remove_all_on_interrupt(prefix: String) {
    let handler = ctrlc::set_handler(move || {
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted: removing the lab and {prefix}*");
        crate::remove_all();
        for dir in [PathBuf::from("/sys/fs/bpf"), std::env::temp_dir()] {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if is_named(&entry.file_name().to_string_lossy(), &prefix) {
                    let path = entry.path();
                    let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
                }
            }
        }
        std::process::exit(130);
    });
    if let Err(error) = handler {
        eprintln!("warning: no Ctrl-C handler ({error}); an interrupted run may leave namespaces");
    }
}

/// `name` is `prefix`, or `prefix` followed by `-` or `.`: `classifier-bench-12` names
/// `classifier-bench-12-live` but not `classifier-bench-123`.
fn is_named(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.']))
}

/// `outcome`, unless Ctrl-C came: removing the lab under a running program makes it fail,
/// and that failure is the interruption's, so this waits for the handler's exit (130)
/// instead of letting the program report it.
pub fn unless_interrupted<T>(outcome: T) -> T {
    if INTERRUPTED.load(Ordering::SeqCst) {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::is_named;

    #[test]
    fn another_process_s_names_are_not_ours() {
        assert!(is_named("classifier-bench-12", "classifier-bench-12"));
        assert!(is_named("classifier-bench-12-live", "classifier-bench-12"));
        assert!(is_named("classifier-bench-12.pcap", "classifier-bench-12"));
        assert!(!is_named("classifier-bench-123", "classifier-bench-12"));
        assert!(!is_named(
            "classifier-bench-123-live",
            "classifier-bench-12"
        ));
    }
}
