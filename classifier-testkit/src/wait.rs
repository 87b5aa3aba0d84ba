//! Waiting for a condition under a deadline instead of sleeping and hoping: the test goes on
//! as soon as the condition holds, and fails naming what it waited for when it never does.

use std::{
    fmt::Display,
    time::{Duration, Instant},
};

/// How often a condition is checked: a poll interval, not a synchronisation.
const POLL: Duration = Duration::from_millis(20);

/// Waits up to `within` for `condition`; panics naming `what` if it never holds. `what` is
/// formatted only then, so it may read what it shows (a log) at that moment.
pub fn wait_until(within: Duration, what: impl Display, mut condition: impl FnMut() -> bool) {
    wait_for(within, what, || condition().then_some(()));
}

/// Waits up to `within` for `probe` to give a value, and returns it; panics naming `what` if
/// it never does.
pub fn wait_for<T>(
    within: Duration,
    what: impl Display,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < within,
            "timed out after {:.1} s waiting for {what}",
            within.as_secs_f64()
        );
        std::thread::sleep(POLL);
    }
}
