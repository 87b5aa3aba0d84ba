//! The test inventory (xtask/test-inventory.txt): every test binary `cargo test` runs and
//! the fewest tests each must pass, so that a test file that stops being built, or a binary
//! that quietly loses tests, fails `cargo xtask test` instead of shrinking its totals.
//!
//! Plain text, one binary a line, because a line is what a reviewer reads in the diff of the
//! commit that adds or removes a test, and three whitespace-separated fields need no parser
//! crate in xtask.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::test_binaries::{Binary, Counts, Tally};

/// Where the inventory lives, from the workspace's root.
pub const FILE: &str = "xtask/test-inventory.txt";

const HEADER: &str = "\
# Every test binary `cargo test` runs, and the fewest tests each must pass: `cargo xtask test`
# fails naming a binary that did not run, passed fewer, or is not listed here.
# Adding or removing a test updates this file in the same commit: `cargo xtask inventory`
# writes it from `cargo test -- --list` (nothing runs), `--check` only compares.
# crate, source of its tests (src/lib.rs, src/main.rs, tests/NAME.rs or doc-tests), minimum.
";

/// The binaries and their minimums.
#[derive(Debug, PartialEq, Eq)]
pub struct Inventory(BTreeMap<Binary, u64>);

/// Which of a binary's counts the inventory is held to.
#[derive(Clone, Copy)]
pub enum Measure {
    /// A run: the tests that passed.
    Passed,
    /// `cargo test -- --list`: the tests there are.
    Listed,
}

impl Measure {
    fn of(self, counts: &Counts) -> u64 {
        match self {
            Self::Passed => counts.passed,
            Self::Listed => counts.listed,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Listed => "has",
        }
    }
}

impl Inventory {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut binaries = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let where_ = format!("{FILE}:{}", index + 1);
            let [crate_name, source, minimum] = line.split_whitespace().collect::<Vec<_>>()[..]
            else {
                bail!("{where_}: `{line}`: expected three fields: crate, source, minimum");
            };
            let minimum = minimum
                .parse()
                .with_context(|| format!("{where_}: `{minimum}` is not a number of tests"))?;
            let binary = Binary {
                crate_name: crate_name.to_owned(),
                source: source.to_owned(),
            };
            if binaries.insert(binary, minimum).is_some() {
                bail!("{where_}: {crate_name} {source} is listed twice");
            }
        }
        Ok(Self(binaries))
    }

    /// The inventory of what a `--list` found: each binary's tests, all of them required.
    pub fn listed(tally: &Tally) -> Self {
        Self(
            tally
                .binaries
                .iter()
                .map(|(binary, counts)| (binary.clone(), counts.listed))
                .collect(),
        )
    }

    pub fn minimum(&self, binary: &Binary) -> Option<u64> {
        self.0.get(binary).copied()
    }

    pub fn render(&self) -> String {
        let width = |field: fn(&Binary) -> usize| self.0.keys().map(field).max().unwrap_or(0);
        let (crates, sources) = (width(|b| b.crate_name.len()), width(|b| b.source.len()));
        let mut text = HEADER.to_owned();
        for (binary, minimum) in &self.0 {
            text += &format!(
                "{:<crates$}  {:<sources$}  {minimum}\n",
                binary.crate_name, binary.source
            );
        }
        text
    }

    /// What does not hold, one line per binary. `everything`: cargo test ran every binary (it
    /// had no arguments), so one the inventory lists and the run lacks is missing. A binary
    /// whose tests a name filter left out is not held to its minimum.
    pub fn problems(&self, tally: &Tally, measure: Measure, everything: bool) -> Vec<String> {
        let verb = measure.verb();
        let mut problems = Vec::new();
        for (binary, counts) in &tally.binaries {
            let count = measure.of(counts);
            match self.minimum(binary) {
                None => problems.push(format!(
                    "{binary}: not in the inventory ({verb} {count} tests): add it in the commit \
                     that adds its tests (`cargo xtask inventory`)"
                )),
                Some(minimum) if count < minimum && counts.filtered_out == 0 => {
                    problems.push(format!(
                        "{binary}: {verb} {count} tests, the inventory expects at least \
                         {minimum} (a test removed on purpose lowers it in the same commit)"
                    ))
                }
                Some(_) => {}
            }
        }
        if everything {
            for (binary, minimum) in &self.0 {
                if !tally.binaries.iter().any(|(ran, _)| ran == binary) {
                    problems.push(format!(
                        "{binary}: did not run, the inventory expects at least {minimum} tests \
                         (a test file removed or renamed updates it in the same commit)"
                    ));
                }
            }
        }
        problems
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_owned()
}

pub fn read() -> anyhow::Result<Inventory> {
    let path = workspace().join(FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {}: `cargo xtask inventory` writes it",
            path.display()
        )
    })?;
    Inventory::parse(&text)
}

/// `cargo xtask inventory [--check]`: lists every test binary's tests with `cargo test --
/// --list` (builds, runs nothing) and writes the inventory, or with `check` compares it.
pub fn inventory(check: bool) -> anyhow::Result<()> {
    let mut command = Command::new("cargo");
    command
        .current_dir(workspace())
        .args(["test", "--", "--list"]);
    let (status, tally) = crate::test::tally(command)?;
    if !status.success() {
        bail!("cargo test -- --list failed ({status})");
    }
    let listed = Inventory::listed(&tally);
    if check {
        let problems = read()?.problems(&tally, Measure::Listed, true);
        if !problems.is_empty() {
            bail!("{FILE} does not hold:\n  {}", problems.join("\n  "));
        }
        println!("{FILE} holds: {} test binaries", listed.0.len());
        return Ok(());
    }
    let path = workspace().join(FILE);
    std::fs::write(&path, listed.render())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}: {} test binaries", path.display(), listed.0.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Inventory, Measure};
    use crate::test_binaries::Tally;

    const INVENTORY: &str = "\
# a comment
classifier      src/lib.rs         35
lab_demo        tests/lab_demo.rs  3

classifier      doc-tests          0
";

    fn tally(output: &str) -> Tally {
        let mut tally = Tally::default();
        output.lines().for_each(|line| tally.line(line));
        tally
    }

    const LIB: &str =
        "     Running unittests src/lib.rs (target/debug/deps/classifier-65b844c42b729518)";
    const DEMO: &str =
        "     Running tests/lab_demo.rs (target/debug/deps/lab_demo-7d5e96f317d3e0f5)";
    const DOC: &str = "   Doc-tests classifier";

    fn result(passed: u64, filtered_out: u64) -> String {
        format!(
            "test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; \
             {filtered_out} filtered out; finished in 0.01s"
        )
    }

    fn problems(output: &str, everything: bool) -> Vec<String> {
        Inventory::parse(INVENTORY)
            .unwrap()
            .problems(&tally(output), Measure::Passed, everything)
    }

    #[test]
    fn a_run_of_every_listed_binary_with_enough_tests_holds() {
        let output = [LIB, &result(36, 0), DEMO, &result(3, 0), DOC, &result(0, 0)].join("\n");
        assert_eq!(problems(&output, true), Vec::<String>::new());
    }

    #[test]
    fn a_missing_binary_fails_naming_it() {
        let output = [LIB, &result(35, 0), DOC, &result(0, 0)].join("\n");
        assert_eq!(
            problems(&output, true),
            [
                "lab_demo tests/lab_demo.rs: did not run, the inventory expects at least 3 tests \
                 (a test file removed or renamed updates it in the same commit)"
            ]
        );
        // Arguments to cargo test may leave binaries out.
        assert_eq!(problems(&output, false), Vec::<String>::new());
    }

    #[test]
    fn a_binary_that_passed_fewer_fails_naming_it_unless_a_filter_left_tests_out() {
        let output = [LIB, &result(35, 0), DEMO, &result(2, 0), DOC, &result(0, 0)].join("\n");
        assert_eq!(
            problems(&output, true),
            [
                "lab_demo tests/lab_demo.rs: passed 2 tests, the inventory expects at least 3 (a \
                 test removed on purpose lowers it in the same commit)"
            ]
        );
        let filtered = [DEMO, &result(1, 2)].join("\n");
        assert_eq!(problems(&filtered, false), Vec::<String>::new());
    }

    #[test]
    fn a_binary_the_inventory_does_not_list_fails_naming_it() {
        let new = "     Running tests/cli_new.rs (target/debug/deps/cli_new-0123456789abcdef)";
        let output = [LIB, &result(35, 0), new, &result(1, 3)].join("\n");
        assert_eq!(
            problems(&output, false),
            [
                "cli_new tests/cli_new.rs: not in the inventory (passed 1 tests): add it in the \
                 commit that adds its tests (`cargo xtask inventory`)"
            ]
        );
    }

    #[test]
    fn the_written_inventory_reads_back_as_what_was_listed() {
        let listed = tally(&[DEMO, "a: test", "b: test", "", "2 tests, 0 benchmarks"].join("\n"));
        let inventory = Inventory::listed(&listed);
        assert_eq!(Inventory::parse(&inventory.render()).unwrap(), inventory);
        assert_eq!(
            inventory.problems(&listed, Measure::Listed, true),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_malformed_line_names_the_file_and_line() {
        let error = Inventory::parse("# comment\nlab_demo tests/lab_demo.rs three\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "xtask/test-inventory.txt:2: `three` is not a number of tests"
        );
        let error = Inventory::parse("lab_demo 3\n").unwrap_err().to_string();
        assert_eq!(
            error,
            "xtask/test-inventory.txt:1: `lab_demo 3`: expected three fields: crate, source, \
             minimum"
        );
    }
}
