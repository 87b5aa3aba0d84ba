//! cargo test's output read per test binary. cargo names each binary on stderr ("Running
//! tests/cli_json.rs (target/debug/deps/cli_json-HASH)", "Doc-tests classifier") just before
//! running it, and the binary writes its results to stdout; read as one stream, in order,
//! every result belongs to the binary named last.

use std::fmt;

/// A test binary as cargo names it: its crate and where its tests come from (`src/lib.rs`,
/// `src/main.rs`, `tests/NAME.rs`, or `doc-tests`). The crate alone is ambiguous: a package's
/// library and binary share it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binary {
    pub crate_name: String,
    pub source: String,
}

impl fmt::Display for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.crate_name, self.source)
    }
}

/// What one binary reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    /// Left out by a name filter: the binary did not run all its tests.
    pub filtered_out: u64,
    /// Under `--list`: the tests it has.
    pub listed: u64,
}

/// Every binary seen so far, in the order cargo ran them.
#[derive(Debug, Default)]
pub struct Tally {
    pub binaries: Vec<(Binary, Counts)>,
}

impl Tally {
    /// Reads one line of cargo test's output (stdout and stderr together).
    pub fn line(&mut self, line: &str) {
        if let Some(binary) = binary_named(line) {
            self.binaries.push((binary, Counts::default()));
        } else if let Some(result) = line.strip_prefix("test result: ") {
            let counts = self.current();
            counts.passed += count_of(result, "passed");
            counts.failed += count_of(result, "failed");
            counts.ignored += count_of(result, "ignored");
            counts.filtered_out += count_of(result, "filtered out");
        } else if let Some(listed) = listed(line) {
            self.current().listed += listed;
        }
    }

    /// The binary named last; results before any name are kept under a name of their own,
    /// which no inventory lists, so they fail the check instead of vanishing.
    fn current(&mut self) -> &mut Counts {
        if self.binaries.is_empty() {
            let unnamed = Binary {
                crate_name: "(unnamed)".to_owned(),
                source: "results before any `Running` line".to_owned(),
            };
            self.binaries.push((unnamed, Counts::default()));
        }
        &mut self.binaries.last_mut().expect("just pushed").1
    }

    pub fn total(&self) -> Counts {
        self.binaries
            .iter()
            .fold(Counts::default(), |sum, (_, c)| Counts {
                passed: sum.passed + c.passed,
                failed: sum.failed + c.failed,
                ignored: sum.ignored + c.ignored,
                filtered_out: sum.filtered_out + c.filtered_out,
                listed: sum.listed + c.listed,
            })
    }

    /// One row per binary: what it passed, failed and skipped, and the inventory's minimum.
    pub fn table(&self, minimum: impl Fn(&Binary) -> Option<u64>) -> String {
        let width = self
            .binaries
            .iter()
            .map(|(b, _)| b.to_string().len())
            .max()
            .unwrap_or(0)
            .max("test binary".len());
        let mut table = format!(
            "{:<width$}  passed  failed  skipped  minimum\n",
            "test binary"
        );
        for (binary, counts) in &self.binaries {
            let minimum = minimum(binary).map_or("-".to_owned(), |m| m.to_string());
            table += &format!(
                "{:<width$}  {:>6}  {:>6}  {:>7}  {:>7}\n",
                binary.to_string(),
                counts.passed,
                counts.failed,
                counts.ignored,
                minimum
            );
        }
        table
    }
}

/// The binary a "Running ..." or "Doc-tests ..." line names.
fn binary_named(line: &str) -> Option<Binary> {
    let line = line.trim_start();
    if let Some(crate_name) = line.strip_prefix("Doc-tests ") {
        return Some(Binary {
            crate_name: crate_name.trim().to_owned(),
            source: "doc-tests".to_owned(),
        });
    }
    // "Running unittests src/lib.rs (target/debug/deps/classifier-0123abcd)"
    let (source, path) = line.strip_prefix("Running ")?.split_once(" (")?;
    let file = path.strip_suffix(')')?.rsplit('/').next()?;
    // The file is the crate's name, a dash and cargo's hash of its build.
    let (crate_name, _hash) = file.rsplit_once('-')?;
    Some(Binary {
        crate_name: crate_name.to_owned(),
        source: source
            .strip_prefix("unittests ")
            .unwrap_or(source)
            .to_owned(),
    })
}

/// The N of `--list`'s closing "N tests, M benchmarks" ("1 test, 0 benchmarks").
fn listed(line: &str) -> Option<u64> {
    let (tests, benchmarks) = line.split_once(", ")?;
    if !benchmarks.ends_with(" benchmarks") && !benchmarks.ends_with(" benchmark") {
        return None;
    }
    let (number, word) = tests.split_once(' ')?;
    matches!(word, "test" | "tests")
        .then(|| number.parse().ok())
        .flatten()
}

/// The number before `word` in "ok. 6 passed; 0 failed; 0 ignored; 0 filtered out; ...".
fn count_of(result: &str, word: &str) -> u64 {
    result
        .split(';')
        .filter_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .split_once(' ')
        })
        .find(|(_, name)| *name == word)
        .and_then(|(number, _)| number.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{Binary, Counts, Tally};

    fn binary(crate_name: &str, source: &str) -> Binary {
        Binary {
            crate_name: crate_name.to_owned(),
            source: source.to_owned(),
        }
    }

    fn tally(output: &str) -> Tally {
        let mut tally = Tally::default();
        output.lines().for_each(|line| tally.line(line));
        tally
    }

    /// A run's output as cargo and libtest print it, stderr and stdout interleaved.
    const RUN: &str = "\
   Compiling xtask v0.1.0 (/work/xtask)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 9.40s
     Running unittests src/lib.rs (target/debug/deps/classifier_lab-39b45ea8c54e18c1)

running 2 tests
test stall::tests::rates_are_per_second_of_each_sample ... ok
test storm::report::tests::jain_is_one_for_equals_and_one_over_n_for_one_taker ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

     Running unittests src/main.rs (target/debug/deps/classifier_lab-b8c62aa79ca23d62)

running 0 tests

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

     Running tests/cli_json.rs (/build/target/debug/deps/cli_json-4f017bba321b0bce)

running 3 tests
test a ... ok
test b ... FAILED
test c ... ok

failures:

---- b stdout ----
thread 'b' panicked at classifier-user/tests/cli_json.rs:10:5:
    b

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 4 filtered out; finished in 1.20s

error: test failed, to rerun pass `-p classifier-user --test cli_json`
   Doc-tests classifier_lab

running 0 tests

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn results_belong_to_the_binary_named_last() {
        let tally = tally(RUN);
        let names: Vec<String> = tally.binaries.iter().map(|(b, _)| b.to_string()).collect();
        assert_eq!(
            names,
            [
                "classifier_lab src/lib.rs",
                "classifier_lab src/main.rs",
                "cli_json tests/cli_json.rs",
                "classifier_lab doc-tests",
            ]
        );
        assert_eq!(tally.binaries[0].1.passed, 2);
        assert_eq!(tally.binaries[1].1, Counts::default());
        assert_eq!(
            tally.binaries[2].1,
            Counts {
                passed: 2,
                failed: 1,
                filtered_out: 4,
                ..Counts::default()
            }
        );
        let total = tally.total();
        assert_eq!((total.passed, total.failed, total.ignored), (4, 1, 0));
    }

    #[test]
    fn a_list_counts_each_binary_s_tests() {
        let tally = tally(
            "     Running tests/lab_demo.rs (target/debug/deps/lab_demo-7d5e96f317d3e0f5)\n\
             ctrl_c_removes_the_lab: test\n\
             the_demo_prints_its_report: test\n\
             \n\
             2 tests, 0 benchmarks\n\
             \x20    Running tests/lab_stall.rs (target/debug/deps/lab_stall-b6573060f8a0683e)\n\
             the_stall_detector_fails: test\n\
             \n\
             1 test, 0 benchmarks\n\
             \x20  Doc-tests classifier\n\
             0 tests, 0 benchmarks\n",
        );
        let listed: Vec<(Binary, u64)> = tally
            .binaries
            .into_iter()
            .map(|(b, c)| (b, c.listed))
            .collect();
        assert_eq!(
            listed,
            [
                (binary("lab_demo", "tests/lab_demo.rs"), 2),
                (binary("lab_stall", "tests/lab_stall.rs"), 1),
                (binary("classifier", "doc-tests"), 0),
            ]
        );
    }

    #[test]
    fn results_before_any_binary_are_kept_under_a_name_of_their_own() {
        let tally = tally("test result: ok. 5 passed; 0 failed; 0 ignored\n");
        assert_eq!(tally.binaries.len(), 1);
        assert_eq!(tally.binaries[0].0.crate_name, "(unnamed)");
        assert_eq!(tally.binaries[0].1.passed, 5);
    }
}
