//! Running the suite binaries one after the other and collecting their check records.
//!
//! Each binary runs with `BUILDTEST_RESULTS` naming a fresh JSON-lines file; while it runs the
//! file is read as it grows, so every check is shown as soon as it finishes. When the binary
//! exits, the file is read once more with the report layer's reader (the authoritative list).
//! A binary that exits unsuccessfully without reporting some of its listed tests gets one
//! `error` record per missing test, so the summary and JUnit never silently lose a test.
//! Ctrl-C kills the running binary and ends the run with what had finished.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use buildtest::protocol::events::Event;
use buildtest::protocol::{SuiteSettings, sort_records};
use buildtest::report::{self, CheckRecord, ErrorKind, Outcome};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::watch;

use crate::console::Console;
use crate::discover::Suite;
use crate::errors::ExpectedError;
use crate::summary::Summary;

/// How often the results file is polled while a binary runs.
const POLL: Duration = Duration::from_millis(100);
/// Bytes of a binary's own stdout/stderr kept for diagnostics.
const OUTPUT_TAIL: usize = 16 * 1024;

/// A suite to run, with the tests it listed for the same selection.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The built suite.
    pub suite: Suite,
    /// Its tests, as listed.
    pub tests: Vec<String>,
}

/// What every binary of the run gets.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// libtest arguments selecting tests (`--ignored`, filters …).
    pub selection: Vec<String>,
    /// The settings every binary runs with (each gets its own results file and suite name).
    pub suite: SuiteSettings,
    /// Keep going after a suite with failing checks.
    pub no_fail_fast: bool,
}

/// Sets the returned receiver to `true` on the first Ctrl-C (SIGINT).
pub fn interrupt_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(true);
        }
    });
    rx
}

/// Runs the planned suites in order, adding their records to `summary` and showing each check.
pub async fn run_suites(
    plan: &[Planned],
    opts: &RunOptions,
    console: &Console,
    summary: &mut Summary,
    mut interrupt: watch::Receiver<bool>,
) -> Result<(), ExpectedError> {
    let scratch = tempfile::Builder::new()
        .prefix("cargo-buildtest-")
        .tempdir()
        .map_err(|source| ExpectedError::Io {
            action: "create a temporary directory",
            path: std::env::temp_dir(),
            source,
        })?;
    let mut stop = false;
    for (index, planned) in plan.iter().enumerate() {
        let name = planned.suite.target.name();
        if *interrupt.borrow() {
            summary.interrupted = true;
        }
        if stop || summary.interrupted {
            summary.skipped_suites.push(name);
            continue;
        }
        let results = scratch.path().join(format!("suite-{index}.jsonl"));
        run_one(planned, &results, opts, console, summary, &mut interrupt).await?;
        if !opts.no_fail_fast && summary.current().iter().any(is_problem) {
            stop = true;
        }
    }
    if stop && !summary.skipped_suites.is_empty() {
        console.warn(&format!(
            "{} not run after failures (use --no-fail-fast to run them all)",
            buildtest::protocol::count(summary.skipped_suites.len(), "suite")
        ));
    }
    Ok(())
}

fn is_problem(r: &CheckRecord) -> bool {
    matches!(r.outcome, Outcome::Fail | Outcome::Error)
}

async fn run_one(
    planned: &Planned,
    results: &Path,
    opts: &RunOptions,
    console: &Console,
    summary: &mut Summary,
    interrupt: &mut watch::Receiver<bool>,
) -> Result<(), ExpectedError> {
    let suite = &planned.suite;
    let name = suite.target.name();
    std::fs::write(results, b"").map_err(|source| ExpectedError::Io {
        action: "create results file",
        path: results.to_path_buf(),
        source,
    })?;
    summary.start_suite(&name);
    console.suite_started(&name, summary);

    let mut cmd = Command::new(&suite.executable);
    // Our own crate's CARGO_PKG_* & co. are not the suite's (it gets its CARGO_MANIFEST_DIR).
    for name in crate::discover::inherited_crate_env() {
        cmd.env_remove(name);
    }
    cmd.args(&opts.selection)
        .current_dir(&suite.target.manifest_dir)
        .env("CARGO_MANIFEST_DIR", &suite.target.manifest_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let settings = SuiteSettings {
        results: Some(results.to_path_buf()),
        suite: Some(name.clone()),
        ..opts.suite.clone()
    };
    for (key, value) in settings.to_env() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let mut child = cmd.spawn().map_err(|source| ExpectedError::Spawn {
        command: suite.executable.display().to_string(),
        source,
    })?;
    let stdout = capture(child.stdout.take());
    let stderr = capture(child.stderr.take());

    let mut tail = Tail::new(results.to_path_buf());
    let status: Option<ExitStatus> = loop {
        tokio::select! {
            status = child.wait() => break status.ok(),
            _ = tokio::time::sleep(POLL) => {
                for record in tail.poll() {
                    show(record, &name, console, summary);
                }
            }
            _ = interrupt.changed() => {
                summary.interrupted = true;
                let _ = child.start_kill();
                let _ = child.wait().await;
                break None;
            }
        }
    };
    for record in tail.poll() {
        show(record, &name, console, summary);
    }
    let stderr_text = tail_text(&stderr.await_text().await);
    let stdout_text = tail_text(&stdout.await_text().await);
    // What the suite's session sent of the host's directories (and of the probe).
    if !console.is_json()
        && let Some(sent) = stderr_text
            .lines()
            .find_map(|l| l.strip_prefix(buildtest::protocol::events::LOCAL_FILES_SENT))
    {
        console.status("Sent", &format!("{name}: {sent}"));
    }
    // The image configs the suite applied and the Dockerfiles it built.
    if !console.is_json() {
        use buildtest::protocol::events::{DOCKERFILE_BUILT, IMAGE_CONFIG_APPLIED};
        for line in stderr_text.lines() {
            if let Some(applied) = line.strip_prefix(IMAGE_CONFIG_APPLIED) {
                console.status("Config", &format!("{name}: {applied}"));
            } else if let Some(built) = line.strip_prefix(DOCKERFILE_BUILT) {
                console.status("Built", &format!("{name}: {built}"));
            }
        }
    }
    // How the suite solved its checks (BUILDTEST_SOLVE): shown for the first suite, and again
    // only for a suite that says something else.
    let solved: Vec<&str> = stderr_text
        .lines()
        .filter_map(|l| l.strip_prefix(buildtest::protocol::events::SOLVE_LINE))
        .collect();
    if !solved.is_empty() {
        let text = solved.join("\n");
        if !console.is_json() && summary.solved.as_deref() != Some(text.as_str()) {
            for line in &solved {
                console.status("Solved", line);
            }
        }
        summary.solved = Some(text);
    }
    // What the suite imported and exported of BuildKit's cache.
    if !console.is_json() {
        for line in stderr_text
            .lines()
            .filter_map(|l| l.strip_prefix(buildtest::protocol::events::CACHE_LINE))
        {
            console.status("Cache", &format!("{name}: {line}"));
        }
    }

    // The authoritative list; fall back to what was seen live when the file is damaged.
    let mut records = match report::read_records(results) {
        Ok(records) => records,
        Err(err) => {
            console.warn(&format!(
                "failed to {} (keeping {} records read so far)",
                crate::errors::render_chain(&err),
                summary.current().len()
            ));
            summary.current().to_vec()
        }
    };
    for r in &mut records {
        r.suite.clone_from(&name);
    }
    if let Some(status) = status.filter(|s| !s.success() && !summary.interrupted) {
        {
            let missing = missing_tests(&planned.tests, &records);
            let output = if stderr_text.trim().is_empty() {
                &stdout_text
            } else {
                &stderr_text
            };
            for test in missing {
                let mut r = CheckRecord::new(&name, &test, 0, "suite binary", Outcome::Error);
                r.error_kind = Some(ErrorKind::Setup);
                r.message = Some(format!(
                    "the suite binary exited with {status} before reporting this test"
                ));
                r.report = Some(format!(
                    "{} exited with {status} before reporting this test; its output ends with:\n{}",
                    suite.executable.display(),
                    output.trim_end()
                ));
                show(r.clone(), &name, console, summary);
                records.push(r);
            }
            if !records.iter().any(is_problem) {
                console.warn(&format!(
                    "{name} exited with {status} although none of its checks failed; its output ends with:\n{}",
                    output.trim_end()
                ));
            }
        }
    }
    // Completion order on the console; test then check order in the summary and JUnit.
    sort_records(&mut records);
    summary.replace_current(records);
    console.event(&Event::SuiteFinished {
        suite: name,
        exit_code: status.and_then(|s| s.code()),
        interrupted: summary.interrupted,
    });
    Ok(())
}

fn show(mut record: CheckRecord, suite: &str, console: &Console, summary: &mut Summary) {
    record.suite = suite.to_owned();
    summary.push(record);
    if let Some(r) = summary.current().last() {
        console.check(r, summary);
    }
}

/// The listed tests that have no record.
pub fn missing_tests(listed: &[String], records: &[CheckRecord]) -> Vec<String> {
    let seen: BTreeSet<&str> = records.iter().map(|r| r.test.as_str()).collect();
    listed
        .iter()
        .filter(|t| !seen.contains(t.as_str()))
        .cloned()
        .collect()
}

fn tail_text(bytes: &[u8]) -> String {
    report::tail(&String::from_utf8_lossy(bytes), OUTPUT_TAIL)
}

/// A pipe being drained in the background.
struct Captured(tokio::task::JoinHandle<Vec<u8>>);

impl Captured {
    async fn await_text(self) -> Vec<u8> {
        self.0.await.unwrap_or_default()
    }
}

fn capture<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Captured {
    Captured(tokio::spawn(async move {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
                if out.len() > 4 * OUTPUT_TAIL {
                    out.drain(..out.len() - OUTPUT_TAIL);
                }
            }
        }
        out
    }))
}

/// Reads complete lines appended to a results file since the last poll.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    /// Starts at the beginning of `path`.
    pub fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The records on lines completed since the last call (lines that do not parse are
    /// skipped here; the final read reports them).
    pub fn poll(&mut self) -> Vec<CheckRecord> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut fresh = Vec::new();
        if file.read_to_end(&mut fresh).is_err() {
            return Vec::new();
        }
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .filter_map(|line| report::parse_record(line).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tail_returns_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let a = CheckRecord::new("s", "t", 1, "cmd: a", Outcome::Pass);
        let b = CheckRecord::new("s", "t", 2, "cmd: b", Outcome::Fail);
        let line_a = a.to_json_line().unwrap();
        let line_b = b.to_json_line().unwrap();
        let mut tail = Tail::new(path.clone());
        assert!(tail.poll().is_empty(), "no file yet");
        let mut f = std::fs::File::create(&path).unwrap();
        write!(f, "{line_a}\n{}", &line_b[..10]).unwrap();
        assert_eq!(tail.poll(), vec![a]);
        writeln!(f, "{}", &line_b[10..]).unwrap();
        assert_eq!(tail.poll(), vec![b]);
        assert!(tail.poll().is_empty());
    }

    #[test]
    fn missing_tests_are_those_without_records() {
        let listed = vec!["a".to_owned(), "b".to_owned()];
        let records = vec![CheckRecord::new("s", "a", 1, "x", Outcome::Pass)];
        assert_eq!(missing_tests(&listed, &records), ["b"]);
    }
}
