//! Counting outcomes over a run: every check record of every suite, in arrival order.

use std::fmt::Write as _;
use std::time::Duration;

use buildtest::protocol::events::SummaryCounts;
use buildtest::protocol::{Counts, count};
use buildtest::report::{CheckRecord, Outcome};

/// The records of a run and their counts.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    records: Vec<CheckRecord>,
    /// Suites that ran (in order), with how many of their records are in `records`.
    suites: Vec<(String, usize)>,
    /// Suites that were not run (fail-fast or interrupt).
    pub skipped_suites: Vec<String>,
    /// The run was interrupted.
    pub interrupted: bool,
    /// How the last suite said it solved its checks (`Solved` is shown again only when a suite
    /// says something else).
    pub solved: Option<String>,
}

impl Summary {
    /// Starts a suite: its records follow.
    pub fn start_suite(&mut self, suite: &str) {
        self.suites.push((suite.to_owned(), 0));
    }

    /// Adds a record of the current suite.
    pub fn push(&mut self, record: CheckRecord) {
        if let Some((_, n)) = self.suites.last_mut() {
            *n += 1;
        }
        self.records.push(record);
    }

    /// Replaces the records of the current suite (with the authoritative list read at its end).
    pub fn replace_current(&mut self, records: Vec<CheckRecord>) {
        let Some((_, n)) = self.suites.last_mut() else {
            return;
        };
        self.records.truncate(self.records.len() - *n);
        *n = records.len();
        self.records.extend(records);
    }

    /// The records of the current suite.
    pub fn current(&self) -> &[CheckRecord] {
        let n = self.suites.last().map_or(0, |(_, n)| *n);
        &self.records[self.records.len() - n..]
    }

    /// All records.
    pub fn records(&self) -> &[CheckRecord] {
        &self.records
    }

    /// `(suite, records)` for every suite that ran, for JUnit.
    pub fn by_suite(&self) -> Vec<(&str, &[CheckRecord])> {
        let mut out = Vec::new();
        let mut at = 0;
        for (name, n) in &self.suites {
            out.push((name.as_str(), &self.records[at..at + n]));
            at += n;
        }
        out
    }

    /// The protocol's counts of every record so far.
    pub fn counts(&self) -> Counts {
        Counts::of(&self.records)
    }

    /// Failed checks.
    pub fn failed(&self) -> usize {
        self.counts().failed
    }
    /// Errored checks.
    pub fn errored(&self) -> usize {
        self.counts().errored
    }

    /// No failures, no errors, not interrupted.
    pub fn ok(&self) -> bool {
        self.counts().ok() && !self.interrupted
    }

    /// Failed and errored records, in order.
    pub fn problems(&self) -> Vec<&CheckRecord> {
        self.records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Error))
            .collect()
    }

    /// `12 checks in 5 tests run: 9 passed (4 cached), 2 failed, 1 errored, 1 test ignored`.
    pub fn summary_line(&self) -> String {
        let mut line = self.counts().line();
        if !self.skipped_suites.is_empty() {
            let _ = write!(
                line,
                "; {} not run",
                count(self.skipped_suites.len(), "suite")
            );
        }
        if self.interrupted {
            line.push_str("; interrupted");
        }
        line
    }

    /// The short line on the progress bar.
    pub fn progress_line(&self) -> String {
        let c = self.counts();
        format!(
            "{} done: {} passed, {} failed, {} errored",
            count(c.checks, "check"),
            c.passed,
            c.failed,
            c.errored
        )
    }

    /// The `summary` event.
    pub fn counts_event(&self, elapsed: Duration) -> SummaryCounts {
        let c = self.counts();
        SummaryCounts {
            checks: c.checks,
            tests: c.tests,
            passed: c.passed,
            failed: c.failed,
            errored: c.errored,
            ignored: c.ignored,
            cached: c.cached,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            suites: self.suites.iter().map(|(s, _)| s.clone()).collect(),
            skipped_suites: self.skipped_suites.clone(),
            interrupted: self.interrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(suite: &str, test: &str, n: u32, outcome: Outcome, cached: bool) -> CheckRecord {
        let mut r = CheckRecord::new(suite, test, n, "cmd: x", outcome);
        r.cached = cached;
        r
    }

    #[test]
    fn counts_and_groups() {
        let mut s = Summary::default();
        s.start_suite("a");
        s.push(rec("a", "t", 1, Outcome::Pass, true));
        s.push(rec("a", "t", 2, Outcome::Fail, false));
        s.start_suite("b");
        s.push(rec("b", "u", 1, Outcome::Error, false));
        s.replace_current(vec![
            rec("b", "u", 1, Outcome::Error, false),
            rec("b", "v", 0, Outcome::Ignored, false),
        ]);
        assert_eq!(s.current().len(), 2);
        let c = s.counts();
        assert_eq!(
            (c.passed, c.failed, c.errored, c.ignored, c.cached),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(c.checks, 3);
        assert_eq!(c.tests, 2, "the ignored test did not run");
        let groups = s.by_suite();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1].1.len(), 2);
        assert!(!s.ok());
        assert_eq!(
            s.summary_line(),
            "3 checks in 2 tests run: 1 passed (1 cached), 1 failed, 1 errored, 1 test ignored"
        );
    }
}
