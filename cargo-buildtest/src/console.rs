//! Presentation: status lines, per-check lines, failure details and the summary for people (on
//! stderr, with an indicatif bar on a terminal), or JSON lines for tools (on stdout).
//!
//! Human lines follow nextest's shape: a right-aligned status word, the time in brackets, then
//! the suite, the test and the check (`#2 cmd: curl --version`), and `(cached)` when BuildKit
//! reused the check's result.
//!
//! With `--message-format json` every event is one JSON object on a line of stdout: the
//! protocol's [`Event`]s (see `buildtest::protocol::events` for the table and the version).
//!
//! Status lines (cargo's build output, `Building`), warnings and errors stay on stderr.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use buildtest::protocol::count;
use buildtest::protocol::events::{Event, Header};
use buildtest::report::{CheckRecord, Outcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::{Color, MessageFormat, Progress};
use crate::summary::Summary;

/// Lines from the end of a log shown under a failure.
pub const LOG_TAIL_LINES: usize = 20;

/// Where output goes and how it looks.
#[derive(Debug)]
pub struct Console {
    format: MessageFormat,
    quiet: bool,
    color: bool,
    bar: Option<ProgressBar>,
    /// Set by a header of a run on several nodes: check lines then name each check's node.
    several_nodes: std::sync::atomic::AtomicBool,
}

impl Console {
    /// A console for the given flags. `CI` set or stderr not a terminal turns `auto` progress
    /// into plain lines.
    pub fn new(format: MessageFormat, progress: Progress, color: Color) -> Console {
        let stderr_tty = std::io::stderr().is_terminal();
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        let color = match color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => stderr_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        let use_bar = format == MessageFormat::Human
            && match progress {
                Progress::Tty => true,
                Progress::Auto => stderr_tty && !ci,
                Progress::Plain | Progress::Quiet => false,
            };
        let bar = use_bar
            .then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()))
            .filter(|bar| !bar.is_hidden());
        Console {
            format,
            quiet: progress == Progress::Quiet,
            color,
            bar,
            several_nodes: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether output is JSON.
    pub fn is_json(&self) -> bool {
        self.format == MessageFormat::Json
    }

    /// A cargo-style status line (`    Building 3 suites`) on stderr.
    pub fn status(&self, verb: &str, message: &str) {
        let verb = self.paint(&format!("{verb:>12}"), "1;32");
        self.line(&format!("{verb} {message}"));
    }

    /// A warning on stderr.
    pub fn warn(&self, message: &str) {
        let label = self.paint("warning", "1;33");
        self.line(&format!("{label}: {message}"));
    }

    /// An error on stderr (`error: failed to …`).
    pub fn error(&self, message: &str) {
        let label = self.paint("error", "1;31");
        self.line(&format!("{label}: failed to {message}"));
    }

    /// Writes an event on stdout (JSON mode only).
    pub fn event(&self, event: &Event) {
        if !self.is_json() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", event.to_line());
        let _ = out.flush();
    }

    /// The `--list` output: `suite:` then one indented test per line on stdout (or one JSON
    /// event per suite).
    pub fn list(&self, suite: &str, tests: &[String]) {
        if self.is_json() {
            self.event(&Event::SuiteList {
                suite: suite.to_owned(),
                tests: tests.to_vec(),
            });
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{suite}:");
        for test in tests {
            let _ = writeln!(out, "    {test}");
        }
    }

    /// The run header: builder, how it was chosen, BuildKit version, strategy, jobs.
    pub fn header(&self, h: &Header) {
        if h.reason.contains(buildtest::protocol::settings::NODES.var) {
            self.several_nodes
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if self.is_json() {
            self.event(&Event::Header(h.clone()));
            return;
        }
        for (verb, text) in header_lines(h) {
            self.status(verb, &text);
        }
        if let Some(bar) = &self.bar {
            bar.set_style(
                ProgressStyle::with_template("{spinner:.green} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.reset_elapsed();
            bar.enable_steady_tick(Duration::from_millis(120));
        }
    }

    /// Shows that `suite` started (updates the bar).
    pub fn suite_started(&self, suite: &str, summary: &Summary) {
        self.event(&Event::SuiteStarted {
            suite: suite.to_owned(),
        });
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{suite}: {}", summary.progress_line()));
        }
    }

    /// One finished check.
    pub fn check(&self, record: &CheckRecord, summary: &Summary) {
        if self.is_json() {
            self.event(&Event::Check(record.clone()));
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{}: {}", record.suite, summary.progress_line()));
        }
        if self.quiet && matches!(record.outcome, Outcome::Pass | Outcome::Ignored) {
            return;
        }
        self.line(&self.check_line(record));
    }

    /// `        PASS [   0.123s] suite test #n label (cached)`.
    pub fn check_line(&self, r: &CheckRecord) -> String {
        let (word, code) = match (r.outcome, r.export.is_some()) {
            (Outcome::Pass, true) => ("EXPORTED", "1;32"),
            (Outcome::Fail, true) => ("BLOCKED", "1;31"),
            (outcome, _) => match outcome {
                Outcome::Pass => ("PASS", "1;32"),
                Outcome::Fail => ("FAIL", "1;31"),
                Outcome::Error => ("ERROR", "1;35"),
                Outcome::Ignored => ("IGNORED", "1;33"),
            },
        };
        let status = self.paint(&format!("{word:>12}"), code);
        let time = if r.outcome == Outcome::Ignored {
            " ".repeat(11)
        } else {
            format!("[{:>8.3}s]", ms(r.duration_ms))
        };
        let cached = if r.cached {
            self.paint(" (cached)", "2")
        } else {
            String::new()
        };
        let detail = match (&r.outcome, &r.message, &r.export) {
            (Outcome::Ignored, Some(m), _) if !m.is_empty() => format!(": {m}"),
            (Outcome::Pass, _, Some(export)) => {
                format!(": {} (gate: {})", export.written(), export.gate)
            }
            (_, Some(m), Some(_)) => format!(": {m}"),
            _ => String::new(),
        };
        let node = match (&r.builder, &r.moved) {
            (_, Some(moved)) => format!(" ({moved})"),
            (Some(node), None)
                if self
                    .several_nodes
                    .load(std::sync::atomic::Ordering::Relaxed) =>
            {
                format!(" (node {node})")
            }
            _ => String::new(),
        };
        format!(
            "{status} {time} {} {}{cached}{node}{detail}",
            r.suite,
            check_name(r)
        )
    }

    /// Failure details: for every failed check, and once for every error shared by several checks
    /// of a suite (one broken input, an unreachable builder), its report and log tails.
    pub fn failure_details(&self, records: &[&CheckRecord]) {
        if self.is_json() || records.is_empty() {
            return;
        }
        let mut text = String::new();
        for group in group_errors(records) {
            let r = group[0];
            let word = match (r.outcome, r.export.is_some()) {
                (Outcome::Fail, true) => "BLOCKED",
                (Outcome::Fail, false) => "FAIL",
                _ => "ERROR",
            };
            let who = if group.len() == 1 {
                format!("{} {}", r.suite, check_name(r))
            } else {
                let names: Vec<String> = group.iter().map(|r| check_name(r)).collect();
                format!(
                    "{} {} sharing one error: {}",
                    r.suite,
                    count(group.len(), "check"),
                    names.join(", ")
                )
            };
            let head = self.paint(&format!("--- {word}: {who}"), "1;31");
            text.push('\n');
            text.push_str(&head);
            match (r.outcome, r.error_kind) {
                (Outcome::Fail, _) if r.export.is_some() => {
                    text.push_str(" (export blocked)");
                }
                (Outcome::Fail, _) => {
                    let _ = write!(text, " ({})", r.failure_detail());
                }
                (_, Some(kind)) => {
                    let _ = write!(text, " ({})", kind.describe());
                }
                _ => {}
            }
            text.push('\n');
            let report = r
                .report
                .as_deref()
                .or(r.message.as_deref())
                .unwrap_or("(no report)");
            text.push_str(report.trim_end());
            text.push('\n');
            for (name, log) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
                if log.trim().is_empty()
                    || r.report
                        .as_deref()
                        .is_some_and(|rep| rep.contains(log.trim()))
                {
                    continue;
                }
                let (tail, cut) = last_lines(log, LOG_TAIL_LINES);
                let note = if cut > 0 {
                    format!(", last {LOG_TAIL_LINES} lines")
                } else {
                    String::new()
                };
                text.push_str(&self.paint(&format!("--- {name}{note} ---"), "2"));
                text.push('\n');
                text.push_str(tail.trim_end());
                text.push('\n');
            }
        }
        self.line(text.trim_end_matches('\n'));
    }

    /// The final summary (and the list of failures).
    pub fn summary(&self, s: &Summary, elapsed: Duration, extra: &[String]) {
        self.finish_bar();
        if self.is_json() {
            self.event(&Event::Summary(s.counts_event(elapsed)));
            return;
        }
        let mut text = String::from("------------\n");
        let word = self.paint(
            &format!("{:>12}", "Summary"),
            if s.ok() { "1;32" } else { "1;31" },
        );
        let _ = write!(
            text,
            "{word} [{:>8.3}s] {}",
            elapsed.as_secs_f64(),
            s.summary_line()
        );
        for r in s.problems() {
            text.push('\n');
            text.push_str(&self.check_line(r));
        }
        let exports: Vec<&CheckRecord> =
            s.records().iter().filter(|r| r.export.is_some()).collect();
        if !exports.is_empty() {
            text.push_str("\n     Exports");
            for r in exports {
                text.push('\n');
                text.push_str(&self.check_line(r));
            }
        }
        for line in extra {
            text.push('\n');
            text.push_str(line);
        }
        self.line(&text);
    }

    /// Stops the progress bar (before final output or on errors).
    pub fn finish_bar(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) if !bar.is_finished() => bar.suspend(|| eprintln!("{text}")),
            _ => eprintln!("{text}"),
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\u{1b}[{code}m{text}\u{1b}[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Failed checks one by one; errors grouped (in order of first appearance) when several checks of
/// a suite have the same kind and report — one broken input shown once, with every check it hit.
pub fn group_errors<'a>(records: &[&'a CheckRecord]) -> Vec<Vec<&'a CheckRecord>> {
    let mut groups: Vec<Vec<&CheckRecord>> = Vec::new();
    for r in records {
        let same = |g: &&mut Vec<&CheckRecord>| {
            let first = g[0];
            r.outcome == Outcome::Error
                && first.outcome == Outcome::Error
                && first.suite == r.suite
                && first.error_kind == r.error_kind
                && first.report == r.report
                && first.message == r.message
        };
        match groups.iter_mut().find(same) {
            Some(group) => group.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
}

/// `test #n label`: how a check is named on the console.
pub fn check_name(r: &CheckRecord) -> String {
    if r.check == 0 {
        r.test.clone()
    } else {
        format!("{} #{} {}", r.test, r.check, r.label)
    }
}

fn ms(duration_ms: u64) -> f64 {
    Duration::from_millis(duration_ms).as_secs_f64()
}

/// The last `n` lines of `text`, and how many lines were cut.
pub fn last_lines(text: &str, n: usize) -> (&str, usize) {
    let lines = text.trim_end_matches('\n').lines().count();
    if lines <= n {
        return (text, 0);
    }
    let skip = lines - n;
    let mut start = 0;
    for (i, (at, _)) in text.match_indices('\n').enumerate() {
        if i + 1 == skip {
            start = at + 1;
            break;
        }
    }
    (&text[start..], skip)
}

/// The header as status lines: `Builder`, `BuildKit`, `Strategy`, `Jobs`, `Starting` (the human
/// rendering of the value the JSON `header` event carries, and the harness's one stderr line).
pub fn header_lines(h: &Header) -> Vec<(&'static str, String)> {
    let version = h
        .buildkit
        .as_deref()
        .unwrap_or("unknown (the builder does not report it)");
    let cache = if h.no_cache {
        ", checks re-run without cache"
    } else {
        ""
    };
    vec![
        ("Builder", format!("{} (chosen by {})", h.builder, h.reason)),
        ("BuildKit", version.to_owned()),
        (
            "Strategy",
            format!("{} ({})", h.strategy, h.strategy_reason),
        ),
        (
            "Jobs",
            format!(
                "{} concurrent solves per suite, {}s timeout per check{cache}",
                h.jobs, h.timeout_s
            ),
        ),
        (
            "Platform",
            format!(
                "{} (check probes embedded for {})",
                if h.platform.is_empty() {
                    "linux/amd64"
                } else {
                    &h.platform
                },
                if h.probes.is_empty() {
                    "linux/amd64"
                } else {
                    &h.probes
                }
            ),
        ),
        (
            "Starting",
            format!(
                "{} across {}",
                count(h.tests, "test"),
                count(h.suites, "suite")
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console() -> Console {
        Console::new(MessageFormat::Human, Progress::Plain, Color::Never)
    }

    #[test]
    fn check_lines_show_status_time_and_cache() {
        let mut r = CheckRecord::new("pkg::suite", "a::t", 2, "cmd: true", Outcome::Pass);
        r.duration_ms = 1234;
        r.cached = true;
        assert_eq!(
            console().check_line(&r),
            "        PASS [   1.234s] pkg::suite a::t #2 cmd: true (cached)"
        );
        r.outcome = Outcome::Ignored;
        r.cached = false;
        r.message = Some("slow".into());
        assert_eq!(
            console().check_line(&r),
            "     IGNORED             pkg::suite a::t #2 cmd: true: slow"
        );
    }

    #[test]
    fn one_error_shared_by_several_checks_is_one_group() {
        let mut a = CheckRecord::new("s", "t", 1, "cmd: a", Outcome::Error);
        a.error_kind = Some(buildtest::report::ErrorKind::Input);
        a.report = Some("failed to pull image `x`".into());
        let mut b = a.clone();
        b.check = 2;
        let mut c = a.clone();
        c.test = "u".into();
        let mut other = a.clone();
        other.report = Some("another input".into());
        let fail = CheckRecord::new("s", "t", 3, "cmd: c", Outcome::Fail);
        let fail2 = CheckRecord::new("s", "t", 4, "cmd: d", Outcome::Fail);
        let records = [&a, &fail, &b, &other, &c, &fail2];
        let groups = group_errors(&records);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 1, 1, 1], "failures are never grouped");
        assert_eq!(groups[0][2].test, "u");
    }

    #[test]
    fn last_lines_cuts_from_the_front() {
        assert_eq!(last_lines("a\nb\nc\n", 2), ("b\nc\n", 1));
        assert_eq!(last_lines("a\nb", 5), ("a\nb", 0));
    }
}
