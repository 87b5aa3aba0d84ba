//! The demo's contention verdict: what the two downloads' goodputs show, said only when the
//! figures show it. Computed from the figures as the report prints them (0.1 Mbit/s), so
//! that a reader, or a test, redoes the verdict from the report alone.

use crate::storm::summary::GOODPUT_PER_WIRE;

/// A measuring window starts and ends mid-transfer (connection set-up, slow start): a
/// download within 10 % of its share on the wire, in goodput, has it.
const WINDOW_EDGES: f64 = 0.9;

/// Two downloads share the link when each gets at least this part of it.
const SHARE: f64 = 0.3;

/// Goodput, Mbit/s, of the two downloads run side by side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Downloads {
    pub apple_mbit: f64,
    pub normal_mbit: f64,
}

impl Downloads {
    /// Rounded as the report prints them.
    fn shown(self) -> Self {
        let shown = |mbit: f64| (mbit * 10.0).round() / 10.0;
        Self {
            apple_mbit: shown(self.apple_mbit),
            normal_mbit: shown(self.normal_mbit),
        }
    }
}

/// The contention phase's figures: a link shaped to `rate_mbit` with a bulk floor of
/// `floor_percent`, the downloads without and with the classifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contention {
    pub rate_mbit: f64,
    pub floor_percent: f64,
    pub without: Downloads,
    pub with: Downloads,
}

/// What the figures show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Without the classifier both downloads are in the normal class, a flow leaf each: each
    /// gets a fair part of the link.
    pub shared_without: bool,
    /// With it, the normal download gets what the bulk floor leaves.
    pub normal_gets_the_rest: bool,
    /// With it, the Apple download still gets its floor.
    pub apple_keeps_its_floor: bool,
}

impl Contention {
    /// The figures rounded as the report prints them.
    pub fn shown(rate_mbit: u64, floor_percent: u8, without: Downloads, with: Downloads) -> Self {
        Self {
            rate_mbit: rate_mbit as f64,
            floor_percent: f64::from(floor_percent),
            without: without.shown(),
            with: with.shown(),
        }
    }

    /// The floor in goodput: the shaper counts frames, the downloads payload.
    pub fn floor_goodput(&self) -> f64 {
        self.rate_mbit * self.floor_percent / 100.0 * GOODPUT_PER_WIRE
    }

    /// What the floor leaves the normal class, in goodput.
    pub fn rest_goodput(&self) -> f64 {
        self.rate_mbit * (100.0 - self.floor_percent) / 100.0 * GOODPUT_PER_WIRE
    }

    pub fn verdict(&self) -> Verdict {
        let share = SHARE * self.rate_mbit * GOODPUT_PER_WIRE;
        Verdict {
            shared_without: self.without.apple_mbit >= share && self.without.normal_mbit >= share,
            normal_gets_the_rest: self.with.normal_mbit >= WINDOW_EDGES * self.rest_goodput(),
            apple_keeps_its_floor: self.with.apple_mbit >= WINDOW_EDGES * self.floor_goodput(),
        }
    }

    /// The verdict in a sentence, with the figures it rests on.
    pub fn sentence(&self) -> String {
        let verdict = self.verdict();
        let percent = |mbit: f64| format!("{:.0} %", mbit / self.rate_mbit * 100.0);
        let (without, with) = (self.without, self.with);
        let shared = if verdict.shared_without {
            "share the link"
        } else {
            "do not share the link"
        };
        let normal = if verdict.normal_gets_the_rest {
            format!(
                "the normal download gets the rest of the link ({})",
                percent(with.normal_mbit)
            )
        } else {
            format!(
                "the normal download gets only {}, not the rest of the link ({} or more)",
                percent(with.normal_mbit),
                percent(WINDOW_EDGES * self.rest_goodput())
            )
        };
        let apple = if verdict.apple_keeps_its_floor {
            "keeps its floor"
        } else {
            "falls below its floor"
        };
        format!(
            "Without the classifier the two downloads {shared} ({} and {}); with it {normal}, \
             and the Apple download {apple} ({:.1} Mbit/s, the floor {:.1} Mbit/s of goodput).",
            percent(without.apple_mbit),
            percent(without.normal_mbit),
            with.apple_mbit,
            self.floor_goodput()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Contention, Downloads, Verdict};

    fn contention(without: (f64, f64), with: (f64, f64)) -> Contention {
        let downloads = |(apple_mbit, normal_mbit)| Downloads {
            apple_mbit,
            normal_mbit,
        };
        Contention::shown(50, 10, downloads(without), downloads(with))
    }

    /// The figures of README's report.
    const WITHOUT: (f64, f64) = (23.9, 23.9);
    const WITH: (f64, f64) = (4.8, 43.0);

    #[test]
    fn the_report_s_figures_show_the_link_shared_then_the_rest_to_normal_and_the_floor_kept() {
        let figures = contention(WITHOUT, WITH);
        assert_eq!(
            figures.verdict(),
            Verdict {
                shared_without: true,
                normal_gets_the_rest: true,
                apple_keeps_its_floor: true,
            }
        );
        assert_eq!(
            figures.sentence(),
            "Without the classifier the two downloads share the link (48 % and 48 %); with it \
             the normal download gets the rest of the link (86 %), and the Apple download keeps \
             its floor (4.8 Mbit/s, the floor 4.8 Mbit/s of goodput)."
        );
    }

    #[test]
    fn an_apple_download_held_under_its_floor_is_said_to_be() {
        let figures = contention(WITHOUT, (3.0, 44.0));
        assert!(!figures.verdict().apple_keeps_its_floor);
        assert!(figures.verdict().normal_gets_the_rest);
        assert!(
            figures
                .sentence()
                .ends_with("the Apple download falls below its floor (3.0 Mbit/s, the floor 4.8 Mbit/s of goodput)."),
            "{}",
            figures.sentence()
        );
    }

    #[test]
    fn a_shaper_that_does_not_steer_apple_to_bulk_gives_normal_no_more() {
        // Both downloads in the normal class, with the classifier as without it.
        let figures = contention(WITHOUT, WITHOUT);
        let verdict = figures.verdict();
        assert!(!verdict.normal_gets_the_rest);
        assert!(
            verdict.apple_keeps_its_floor,
            "23.9 Mbit/s is above the floor"
        );
        assert!(
            figures.sentence().contains(
                "the normal download gets only 48 %, not the rest of the link (77 % or more)"
            ),
            "{}",
            figures.sentence()
        );
    }

    #[test]
    fn a_run_without_the_classifier_that_still_marks_does_not_share_the_link() {
        let figures = contention(WITH, WITH);
        assert!(!figures.verdict().shared_without);
        assert!(
            figures
                .sentence()
                .starts_with("Without the classifier the two downloads do not share the link"),
            "{}",
            figures.sentence()
        );
    }

    #[test]
    fn the_verdict_is_of_the_figures_as_printed() {
        // The floor's threshold is 0.9 × 4.78 = 4.30 Mbit/s: 4.34 is above it, but the report
        // prints 4.3, which is below.
        let below = contention(WITHOUT, (4.34, 43.04));
        assert_eq!((below.with.apple_mbit, below.with.normal_mbit), (4.3, 43.0));
        assert!(!below.verdict().apple_keeps_its_floor);
        let kept = contention(WITHOUT, (4.36, 43.0));
        assert_eq!(kept.with.apple_mbit, 4.4);
        assert!(kept.verdict().apple_keeps_its_floor);
    }
}
