//! The per-check result record and the JSON-lines results file (schema in the module docs of
//! [`crate::report`]).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The version of the record schema written in every record's `schema` field.
pub const SCHEMA_VERSION: u32 = 1;

/// The most bytes of a log (stdout or stderr) or report kept in a record: the tail is kept.
pub const TAIL_LIMIT: usize = 64 * 1024;

/// The environment variable naming the JSON-lines results file the harness appends to.
pub const RESULTS_ENV: &str = "BUILDTEST_RESULTS";

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The check's exec succeeded (possibly from BuildKit's cache).
    Pass,
    /// The check's exec ran and failed: an assertion did not hold.
    Fail,
    /// The check could not be judged: its input failed to build, the builder failed or went
    /// away, or the check timed out.
    Error,
    /// The test is `#[ignore]`d and was not run.
    Ignored,
}

impl Outcome {
    /// The lowercase name used in records and on the console.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
            Outcome::Ignored => "ignored",
        }
    }
}

/// Why a check ended in [`Outcome::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// A vertex of the test's input (not the check's exec) failed to build.
    Input,
    /// The builder could not be reached, refused the request or went away.
    Builder,
    /// The check did not finish within its timeout.
    Timeout,
    /// The test could not be turned into a build graph (its fn panicked, a check is
    /// invalid, the graph does not marshal…).
    Setup,
}

impl ErrorKind {
    /// A short description, used as JUnit's error `type`.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorKind::Input => "input failed",
            ErrorKind::Builder => "builder error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Setup => "setup error",
        }
    }
}

/// The result of one check (one exec, one edge, one JUnit testcase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// Always [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The test binary (one JUnit testsuite): `<package>::<target>` when run by cargo.
    pub suite: String,
    /// The test's name: the fn's module path without the crate name.
    pub test: String,
    /// The check's 1-based position in the test.
    pub check: u32,
    /// The check's label (`cmd: curl --version`, `file: /etc/passwd`).
    pub label: String,
    /// How the check ended.
    pub outcome: Outcome,
    /// For errors: what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// Whether BuildKit answered the check from its cache: its exec vertex was reported cached,
    /// or (with an imported cache) its input's verdict was, which answers every check of the
    /// input without solving it.
    #[serde(default)]
    pub cached: bool,
    /// Wall time from the start of the check's solve to its end, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// When the check's solve started, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// The check exec's exit code when it failed: the *probe's* (1: an assertion did not hold,
    /// 2: the spec was refused, 3: the command could not be started), not the command's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The command's own exit code (a `cmd` check whose command ran), as the probe reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_exit_code: Option<i32>,
    /// The full report: for failures the probe's expected-vs-actual text, for errors the
    /// failing step and its log tail (bounded to [`TAIL_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// A one-line summary of a failure or error (or the reason of an ignored test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The tail of the check exec's stdout log.
    #[serde(default)]
    pub stdout: String,
    /// The tail of the check exec's stderr log.
    #[serde(default)]
    pub stderr: String,
    /// The digest of the check's exec vertex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertex: Option<String>,
    /// The strategy that attached the check to its input (`passthrough`, `direct`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// The builder the check ran on (with several nodes: the node's entry in `BUILDTEST_NODES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// Set when the check ran on another node than the one its input was placed on: why
    /// (`re-run on node B because node A was lost mid-run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved: Option<String>,
    /// The source file of the test fn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line of the test fn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Set when the record is a gated export's (`Test::export`), not a check's: what was
    /// written, or which checks blocked it. Its `check` number follows the test's checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Box<ExportRecord>>,
}

/// What a gated export wrote (pass), or why it wrote nothing (fail: blocked by checks; error:
/// the export itself failed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExportRecord {
    /// `image`, `docker-tar`, `oci-tar` or `local-dir`.
    pub kind: String,
    /// The image name or the path as the test wrote it.
    pub target: String,
    /// The image digest the builder reported (`containerimage.digest`; on a Docker engine the
    /// image id), when an image was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The absolute path written, for file exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The size in bytes of the file written (for a directory: the sum of its files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The checks that blocked it (`3: cmd: curl --version`), when it was not performed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
    /// How it was gated: `passthrough` (in the graph) or `legacy` (by the runner).
    #[serde(default)]
    pub gate: String,
}

impl ExportRecord {
    /// What was written, for summaries: `image myapp:tested sha256:…`, `docker-tar /p/a.tar
    /// (1234 bytes)`.
    pub fn written(&self) -> String {
        let mut text = format!(
            "{} {}",
            self.kind,
            self.path.as_deref().unwrap_or(&self.target)
        );
        if let Some(digest) = &self.digest {
            text.push(' ');
            text.push_str(digest);
        }
        if let Some(size) = self.size {
            let _ = write!(text, " ({size} bytes)");
        }
        text
    }
}

impl CheckRecord {
    /// A record with the identifying fields set and everything else empty.
    pub fn new(suite: &str, test: &str, check: u32, label: &str, outcome: Outcome) -> Self {
        CheckRecord {
            schema: SCHEMA_VERSION,
            suite: suite.to_owned(),
            test: test.to_owned(),
            check,
            label: label.to_owned(),
            outcome,
            error_kind: None,
            cached: false,
            duration_ms: 0,
            started_at_ms: None,
            exit_code: None,
            command_exit_code: None,
            report: None,
            message: None,
            stdout: String::new(),
            stderr: String::new(),
            vertex: None,
            strategy: None,
            builder: None,
            moved: None,
            file: None,
            line: None,
            export: None,
        }
    }

    /// How a failed check ended, with the command's exit code and the probe's verdict kept
    /// apart: `the command exited 2; probe: an assertion did not hold`.
    pub fn failure_detail(&self) -> String {
        let metadata = crate::check::METADATA_LABEL;
        if self.exit_code.is_none()
            && (self.label == metadata || self.label.starts_with(&format!("{metadata}: ")))
        {
            return "the image config did not match; no exec ran".to_owned();
        }
        let probe = match self.exit_code {
            Some(code) => crate::check::ProbeExit::from_code(code).describe(),
            None => "the check failed".to_owned(),
        };
        match self.command_exit_code {
            Some(code) => format!("the command exited {code}; probe: {probe}"),
            None => format!("probe: {probe}"),
        }
    }

    /// The JSON line for this record (no trailing newline).
    pub fn to_json_line(&self) -> Result<String, RecordError> {
        serde_json::to_string(self).map_err(RecordError::Encode)
    }
}

/// Keeps at most `limit` bytes of the end of `text` (on a char boundary), noting how much was
/// dropped on a first line.
pub fn tail(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {start} bytes cut …]\n{}", &text[start..])
}

/// Errors of the results file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Opening or writing the file failed.
    #[error("write results file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading the file failed.
    #[error("read results file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a record.
    #[error("parse line {line} of results file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A record has a schema version this library does not read.
    #[error(
        "read line {line} of results file {path}: schema {found} is not supported (expected {SCHEMA_VERSION})"
    )]
    Schema {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The version found.
        found: u32,
    },
    /// A record could not be encoded.
    #[error("encode a result record")]
    Encode(#[source] serde_json::Error),
}

/// An append-only JSON-lines results file shared by several processes: each record is one
/// `write` of one whole line to a file opened with `O_APPEND`, so lines of concurrent writers
/// never interleave.
#[derive(Debug)]
pub struct ResultsFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl ResultsFile {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, RecordError> {
        let path = path.into();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| RecordError::Write {
                path: path.clone(),
                source,
            })?;
        Ok(ResultsFile {
            path,
            file: Mutex::new(file),
        })
    }

    /// Opens the file named by [`RESULTS_ENV`], if that variable is set and not empty.
    pub fn from_env() -> Option<Result<Self, RecordError>> {
        let path = std::env::var_os(RESULTS_ENV).filter(|p| !p.is_empty())?;
        Some(Self::open(PathBuf::from(path)))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line.
    pub fn append(&self, record: &CheckRecord) -> Result<(), RecordError> {
        let mut line = record.to_json_line()?;
        line.push('\n');
        let mut file = match self.file.lock() {
            Ok(file) => file,
            Err(poisoned) => poisoned.into_inner(),
        };
        file.write_all(line.as_bytes())
            .map_err(|source| RecordError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

/// A line of a results file that is not a record this library reads.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Not JSON, or not a record.
    #[error("parse a result record")]
    Parse(#[source] serde_json::Error),
    /// Another schema version.
    #[error("read a result record: schema {found} is not supported (expected {SCHEMA_VERSION})")]
    Schema {
        /// The version found (0 when missing).
        found: u32,
    },
}

/// The one reader of a results-file line (the harness writes it with
/// [`CheckRecord::to_json_line`]).
pub fn parse_record(line: &str) -> Result<CheckRecord, LineError> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(LineError::Parse)?;
    let found = value.get("schema").and_then(serde_json::Value::as_u64);
    if found != Some(u64::from(SCHEMA_VERSION)) {
        return Err(LineError::Schema {
            found: found.and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
        });
    }
    serde_json::from_value(value).map_err(LineError::Parse)
}

/// Reads every record of a JSON-lines results file (blank lines are skipped).
pub fn read_records(path: &Path) -> Result<Vec<CheckRecord>, RecordError> {
    let read_err = |source| RecordError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read_err)?;
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_record(&line).map_err(|err| match err {
            LineError::Parse(source) => RecordError::Parse {
                path: path.to_owned(),
                line: index + 1,
                source,
            },
            LineError::Schema { found } => RecordError::Schema {
                path: path.to_owned(),
                line: index + 1,
                found,
            },
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("short", 10), "short");
        let t = tail("ééééé", 3); // 10 bytes; the cut lands inside a char
        assert!(t.ends_with('é'), "{t}");
        assert!(t.starts_with("[… 8 bytes cut …]\n"), "{t}");
    }

    #[test]
    fn records_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let mut pass = CheckRecord::new("pkg::suite", "a::t", 1, "cmd: true", Outcome::Pass);
        pass.cached = true;
        let mut fail = CheckRecord::new("pkg::suite", "a::t", 2, "file: /x", Outcome::Fail);
        fail.exit_code = Some(1);
        fail.report = Some("expected: exists\n  actual: absent".into());
        {
            let a = ResultsFile::open(&path).unwrap();
            let b = ResultsFile::open(&path).unwrap(); // a second writer appends too
            a.append(&pass).unwrap();
            b.append(&fail).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(r#"{"schema":1,"suite":"pkg::suite","test":"a::t","check":1"#));
        assert!(text.contains(r#""outcome":"fail""#));
        assert_eq!(read_records(&path).unwrap(), vec![pass, fail]);
    }

    #[test]
    fn other_schema_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, "{\"schema\":2,\"suite\":\"s\"}\n").unwrap();
        let err = read_records(&path).unwrap_err();
        assert!(
            err.to_string().contains("schema 2 is not supported"),
            "{err}"
        );
    }
}
