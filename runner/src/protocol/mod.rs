//! The contract between `cargo buildtest` and its suite binaries, defined once and used by both
//! ends (the CLI reaches it as `buildtest::protocol`, like cargo-insta reaches insta's support
//! module; it is not part of the API test authors use).
//!
//! - **Settings** ([`settings`]): flags, environment and configuration become one
//!   [`SuiteSettings`]; the CLI writes it into each suite binary's environment, the harness reads
//!   it back. One table ([`settings::SETTINGS`]), one grammar, one error per bad value.
//! - **Records** ([`crate::report`]): each suite appends one JSON line per check to
//!   `BUILDTEST_RESULTS`; [`crate::report::read_records`] and [`crate::report::parse_record`]
//!   read them back.
//! - **Events** ([`events`]): what `cargo buildtest --message-format json` prints.
//! - **Exit codes** ([`exit`]): both programs' tables.
//! - **Counts** ([`Counts`]): how records are counted and ordered, for both summaries.
//! - **Nested cargo** ([`cargo_env`]): the variables `cargo buildtest` removes before running
//!   `cargo` and the suites (the CLI's, here so the harness's own tests can use it too).

pub mod cargo_env;
pub mod events;
pub mod exit;
pub mod settings;

use std::collections::BTreeSet;

use crate::report::{CheckRecord, Outcome};

pub use settings::{SettingError, SuiteSettings};

/// `word` or `words`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// `n word(s)`.
pub fn count(n: usize, word: &str) -> String {
    format!("{n} {}", plural(n, word))
}

/// Sorts records by suite, test, then check (the order of summaries and JUnit).
pub fn sort_records(records: &mut [CheckRecord]) {
    records.sort_by(|a, b| (&a.suite, &a.test, a.check).cmp(&(&b.suite, &b.test, b.check)));
}

/// How a set of records counts: checks and tests that ran, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Checks that ran (not ignored).
    pub checks: usize,
    /// Tests that ran (with at least one record that is not `ignored`).
    pub tests: usize,
    /// Passed checks.
    pub passed: usize,
    /// Passed checks BuildKit reported cached.
    pub cached: usize,
    /// Failed checks.
    pub failed: usize,
    /// Errored checks.
    pub errored: usize,
    /// Tests not run because they are ignored.
    pub ignored: usize,
    /// Gated exports performed (`export` records that passed).
    pub exported: usize,
    /// Gated exports not performed: blocked by a check, or failed.
    pub not_exported: usize,
}

impl Counts {
    /// Counts `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a CheckRecord>) -> Counts {
        let mut c = Counts::default();
        let mut ran = BTreeSet::new();
        let mut ignored = BTreeSet::new();
        for r in records {
            let test = (r.suite.as_str(), r.test.as_str());
            if r.export.is_some() {
                match r.outcome {
                    Outcome::Pass => c.exported += 1,
                    Outcome::Ignored => {}
                    Outcome::Fail | Outcome::Error => c.not_exported += 1,
                }
                continue;
            }
            match r.outcome {
                Outcome::Ignored => {
                    ignored.insert(test);
                    continue;
                }
                Outcome::Pass => {
                    c.passed += 1;
                    c.cached += usize::from(r.cached);
                }
                Outcome::Fail => c.failed += 1,
                Outcome::Error => c.errored += 1,
            }
            c.checks += 1;
            ran.insert(test);
        }
        c.tests = ran.len();
        c.ignored = ignored.difference(&ran).count();
        c
    }

    /// No check failed or errored, and no export was blocked or failed.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.errored == 0 && self.not_exported == 0
    }

    /// `3 checks in 2 tests run: 2 passed (1 cached), 1 failed, 0 errored, 1 test ignored`.
    pub fn line(&self) -> String {
        let exports = if self.exported + self.not_exported > 0 {
            format!(
                "; {} of {} written",
                self.exported,
                count(self.exported + self.not_exported, "export")
            )
        } else {
            String::new()
        };
        format!(
            "{} in {} run: {} passed ({} cached), {} failed, {} errored, {} ignored{exports}",
            count(self.checks, "check"),
            count(self.tests, "test"),
            self.passed,
            self.cached,
            self.failed,
            self.errored,
            count(self.ignored, "test"),
        )
    }

    /// Exports were asked for and not all were written.
    pub fn exports_missing(&self) -> bool {
        self.not_exported > 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(test: &str, check: u32, outcome: Outcome, cached: bool) -> CheckRecord {
        let mut r = CheckRecord::new("s", test, check, "cmd: x", outcome);
        r.cached = cached;
        r
    }

    #[test]
    fn ignored_tests_are_not_counted_as_run() {
        let records = [
            rec("a", 1, Outcome::Pass, true),
            rec("a", 2, Outcome::Fail, false),
            rec("b", 1, Outcome::Error, false),
            rec("c", 1, Outcome::Ignored, false),
            rec("c", 2, Outcome::Ignored, false),
        ];
        let c = Counts::of(&records);
        assert_eq!((c.checks, c.tests, c.ignored), (3, 2, 1));
        assert_eq!(
            c.line(),
            "3 checks in 2 tests run: 1 passed (1 cached), 1 failed, 1 errored, 1 test ignored"
        );
        let one = Counts::of(&records[..1]);
        assert_eq!(
            one.line(),
            "1 check in 1 test run: 1 passed (1 cached), 0 failed, 0 errored, 0 tests ignored"
        );
    }
}
