//! The JSON events `cargo buildtest --message-format json` prints: one object per line on stdout,
//! its kind in `type`, every object carrying the format's version in `format`.
//!
//! | `type` | when | fields |
//! |---|---|---|
//! | `header` | connected, before the first suite | `builder`, `reason`, `buildkit`, `strategy`, `strategy_reason`, `jobs`, `timeout_s`, `no_cache`, `suites`, `tests` |
//! | `suite-started` | a suite binary starts | `suite` |
//! | `check` | a check finished | the check record ([`crate::report`]: `suite`, `test`, `check`, `label`, `outcome`, `duration_ms`, `cached`, …) |
//! | `suite-finished` | a suite binary exited | `suite`, `exit_code`, `interrupted` |
//! | `summary` | the end of the run | `checks`, `tests`, `passed`, `failed`, `errored`, `ignored`, `cached`, `duration_ms`, `suites`, `skipped_suites`, `interrupted` |
//! | `suite-list` | `--list` only, one per suite | `suite`, `tests` |
//!
//! Version [`FORMAT_VERSION`]: new fields may be added without changing it; readers ignore
//! unknown fields. [`Event::to_line`] writes a line, [`Event::from_line`] reads one back.

use serde::{Deserialize, Serialize};

use crate::client::Probed;
use crate::protocol::SuiteSettings;
use crate::report::CheckRecord;

/// The prefix of the line a suite binary prints on stderr after a run that served local
/// directories through its session: `buildtest: local files sent: N bytes in F files (T transfers,
/// S s)`, plus `; of which the probe: P bytes` when the probe travelled that way. `cargo buildtest`
/// shows it after the suite (`Sent` status line).
pub const LOCAL_FILES_SENT: &str = "buildtest: local files sent: ";

/// The prefix of the line a suite binary prints on stderr for each image whose config it applies
/// to the checks and `run` steps on it: `buildtest: image config applied: <image> (env N, workdir
/// /srv, user app)`. `cargo buildtest` shows it as a `Config` status line.
pub const IMAGE_CONFIG_APPLIED: &str = "buildtest: image config applied: ";

/// The prefix of the line a suite binary prints on stderr for each Dockerfile input it built:
/// `buildtest: Dockerfile built: Dockerfile <file> (context <dir>…) (config applied: …)`.
/// `cargo buildtest` shows it as a `Built` status line.
pub const DOCKERFILE_BUILT: &str = "buildtest: Dockerfile built: ";

/// The prefix of a suite binary's stderr lines about BuildKit's cache (`importing from DIR (N
/// manifests)`, `exported (ENTRIES): N passing checks in S s; …`). `cargo buildtest` shows them
/// after the suite (`Cache` status lines).
pub const CACHE_LINE: &str = "buildtest: cache: ";

/// The prefix of the line a suite binary prints on stderr saying how its checks are solved
/// (`BUILDTEST_SOLVE`): `gateway (auto: …)` or `control (…)`, per node when there are several.
/// `cargo buildtest` shows it after the suite (a `Solved` status line).
pub const SOLVE_LINE: &str = "buildtest: checks solved: ";

/// The version of the event format (the `format` field of every event).
pub const FORMAT_VERSION: u32 = 1;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    /// Connected and probed, before the first suite.
    Header(Header),
    /// A suite binary starts.
    SuiteStarted {
        /// The suite.
        suite: String,
    },
    /// A check finished.
    Check(CheckRecord),
    /// A suite binary exited.
    SuiteFinished {
        /// The suite.
        suite: String,
        /// Its exit code (`None` when killed by a signal).
        exit_code: Option<i32>,
        /// Whether the run was interrupted.
        interrupted: bool,
    },
    /// The end of the run.
    Summary(SummaryCounts),
    /// `--list`: one suite's tests.
    SuiteList {
        /// The suite.
        suite: String,
        /// Its tests, as listed.
        tests: Vec<String>,
    },
}

/// The run's builder and settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The builder (transport and address).
    pub builder: String,
    /// Why it was chosen (the setting that named it, or the client's own reason).
    pub reason: String,
    /// BuildKit's version, when the builder reports it.
    pub buildkit: Option<String>,
    /// The strategy in use.
    pub strategy: String,
    /// Why that strategy.
    pub strategy_reason: String,
    /// What the capability probe found (`passthrough: no, merge/diff: no, …`).
    #[serde(default)]
    pub caps: String,
    /// Concurrent solves per suite.
    pub jobs: usize,
    /// Per-check timeout in seconds.
    pub timeout_s: f64,
    /// Whether checks re-run without the cache.
    pub no_cache: bool,
    /// The platform inputs are solved for unless they pin their own (`BUILDTEST_PLATFORM`).
    #[serde(default)]
    pub platform: String,
    /// The platforms this build embeds a check probe for (`linux/amd64, linux/arm64`, or `none`).
    #[serde(default)]
    pub probes: String,
    /// Suites about to run.
    pub suites: usize,
    /// Tests about to run (as listed).
    pub tests: usize,
}

impl Header {
    /// The header of a run on `probed` with `settings`; `reason` says why that builder (the
    /// setting that named it, else the client's own reason). `suites` and `tests` start at 0.
    pub fn new(probed: &Probed, reason: String, settings: &SuiteSettings) -> Header {
        Header {
            builder: probed.builder().transport.to_string(),
            reason,
            buildkit: probed.buildkit_version(),
            strategy: probed.strategy.name().to_owned(),
            strategy_reason: probed.reason.to_string(),
            caps: probed.caps.to_string(),
            jobs: settings.jobs,
            timeout_s: settings.timeout.as_secs_f64(),
            no_cache: settings.no_cache,
            platform: settings.run_platform().to_string(),
            probes: embedded_probes(),
            suites: 0,
            tests: 0,
        }
    }

    /// The header on one line, as a suite binary prints it on stderr (`cargo buildtest` prints
    /// the same value as status lines).
    pub fn line(&self) -> String {
        let cache = if self.no_cache { ", no cache" } else { "" };
        format!(
            "builder {} (chosen by {}); {}; strategy {} ({}); {} jobs, {}s timeout per check{cache}; \
             platform {} (probes embedded: {})",
            self.builder,
            self.reason,
            self.caps,
            self.strategy,
            self.strategy_reason,
            self.jobs,
            self.timeout_s,
            self.platform,
            self.probes
        )
    }
}

/// The platforms this build embeds a check probe for, for [`Header::probes`].
pub fn embedded_probes() -> String {
    let names: Vec<&str> = crate::check::embedded_probe_platforms()
        .into_iter()
        .map(crate::check::ProbePlatform::name)
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryCounts {
    /// Checks that ran (not ignored).
    pub checks: usize,
    /// Tests that ran (at least one check not ignored).
    pub tests: usize,
    /// Passed checks.
    pub passed: usize,
    /// Failed checks.
    pub failed: usize,
    /// Errored checks.
    pub errored: usize,
    /// Ignored tests.
    pub ignored: usize,
    /// Passed checks BuildKit reported cached.
    pub cached: usize,
    /// The run's wall time.
    pub duration_ms: u64,
    /// Suites that ran, in order.
    pub suites: Vec<String>,
    /// Suites not run (fail-fast or interrupt).
    pub skipped_suites: Vec<String>,
    /// Whether the run was interrupted.
    pub interrupted: bool,
}

#[derive(Serialize, Deserialize)]
struct Envelope<E> {
    format: u32,
    #[serde(flatten)]
    event: E,
}

/// A line that is not an event of this format.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not JSON, or not an event.
    #[error("parse an event line")]
    Parse(#[source] serde_json::Error),
    /// Another version of the format.
    #[error("read an event line: format version {found}, expected {FORMAT_VERSION}")]
    Version {
        /// The version found.
        found: u32,
    },
}

impl Event {
    /// The event as one line of JSON (without the newline).
    pub fn to_line(&self) -> String {
        let envelope = Envelope {
            format: FORMAT_VERSION,
            event: self,
        };
        // Serializing these types cannot fail: every key is a string, every value plain data.
        serde_json::to_string(&envelope).unwrap_or_default()
    }

    /// Reads a line [`Event::to_line`] wrote.
    pub fn from_line(line: &str) -> Result<Event, EventError> {
        let envelope: Envelope<Event> = serde_json::from_str(line).map_err(EventError::Parse)?;
        if envelope.format != FORMAT_VERSION {
            return Err(EventError::Version {
                found: envelope.format,
            });
        }
        Ok(envelope.event)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::Outcome;

    #[test]
    fn events_round_trip_with_their_type_and_version() {
        let mut record = CheckRecord::new("s", "t", 1, "cmd: true", Outcome::Pass);
        record.cached = true;
        let events = [
            Event::Header(Header {
                builder: "b".into(),
                jobs: 2,
                timeout_s: 1.5,
                ..Header::default()
            }),
            Event::SuiteStarted { suite: "s".into() },
            Event::Check(record),
            Event::SuiteFinished {
                suite: "s".into(),
                exit_code: Some(0),
                interrupted: false,
            },
            Event::Summary(SummaryCounts::default()),
            Event::SuiteList {
                suite: "s".into(),
                tests: vec!["t".into()],
            },
        ];
        for event in events {
            let line = event.to_line();
            assert!(line.starts_with("{\"format\":1,\"type\":\""), "{line}");
            assert_eq!(Event::from_line(&line).unwrap(), event);
        }
        let line = r#"{"format":2,"type":"suite-started","suite":"s"}"#;
        assert!(matches!(
            Event::from_line(line),
            Err(EventError::Version { found: 2 })
        ));
    }
}
