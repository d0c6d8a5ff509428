//! Typed progress of a solve, from BuildKit's `Status` stream.
//!
//! The stream repeats vertex records as they change; [`Tracker`] turns them into one
//! [`SolveEvent::VertexStarted`] and one [`SolveEvent::VertexCompleted`] (or
//! [`SolveEvent::VertexError`]) per vertex, passes logs (stream 1 = stdout, 2 = stderr) and warnings
//! through, and keeps per-vertex [`VertexReport`]s for the final [`super::SolveReport`].

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::proto::control::StatusResponse;

/// Which output stream a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// Stream 1.
    Stdout,
    /// Stream 2.
    Stderr,
    /// Any other stream number.
    Other(i64),
}

impl LogStream {
    /// From BuildKit's stream number.
    pub fn from_number(n: i64) -> Self {
        match n {
            1 => LogStream::Stdout,
            2 => LogStream::Stderr,
            n => LogStream::Other(n),
        }
    }
}

/// A warning BuildKit attached to a vertex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Vertex digest.
    pub vertex: String,
    /// Level.
    pub level: i64,
    /// Short message.
    pub short: String,
    /// Detail lines.
    pub detail: Vec<String>,
    /// More-info URL.
    pub url: String,
}

/// One thing that happened during a solve.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SolveEvent {
    /// A vertex started.
    VertexStarted {
        /// Op digest.
        digest: String,
        /// Vertex name.
        name: String,
    },
    /// A vertex completed without error (`cached`: its result came from the cache).
    VertexCompleted {
        /// Op digest.
        digest: String,
        /// Vertex name.
        name: String,
        /// Result came from the cache.
        cached: bool,
        /// Run time, when started and completed are known.
        duration: Option<Duration>,
    },
    /// A vertex failed.
    VertexError {
        /// Op digest.
        digest: String,
        /// Vertex name.
        name: String,
        /// BuildKit's error string.
        error: String,
    },
    /// Output of a vertex.
    Log {
        /// Op digest.
        vertex: String,
        /// stdout or stderr.
        stream: LogStream,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A warning.
    Warning(Warning),
}

/// Everything known about one vertex at the end of a solve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VertexReport {
    /// Op digest.
    pub digest: String,
    /// Vertex name.
    pub name: String,
    /// Input digests.
    pub inputs: Vec<String>,
    /// Result came from the cache.
    pub cached: bool,
    /// When it started.
    pub started: Option<SystemTime>,
    /// When it completed.
    pub completed: Option<SystemTime>,
    /// Its error, if it failed.
    pub error: Option<String>,
    /// Its stdout (stream 1).
    pub stdout: Vec<u8>,
    /// Its stderr (stream 2).
    pub stderr: Vec<u8>,
}

impl VertexReport {
    /// Run time, when started and completed are known.
    pub fn duration(&self) -> Option<Duration> {
        self.completed?.duration_since(self.started?).ok()
    }
}

/// Folds `StatusResponse`s into events and vertex reports.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    vertices: BTreeMap<String, VertexReport>,
    order: Vec<String>,
    /// Each vertex's index in `order`.
    position: BTreeMap<String, usize>,
    started_sent: std::collections::BTreeSet<String>,
    done_sent: std::collections::BTreeSet<String>,
    warnings: Vec<Warning>,
}

fn time(ts: &Option<prost_types::Timestamp>) -> Option<SystemTime> {
    let ts = ts.as_ref()?;
    let secs = u64::try_from(ts.seconds).ok()?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

impl Tracker {
    /// Apply one status message; returns the new events in order.
    pub(crate) fn apply(&mut self, status: StatusResponse) -> Vec<SolveEvent> {
        let mut events = Vec::new();
        for v in status.vertexes {
            let entry = self.vertices.entry(v.digest.clone()).or_insert_with(|| {
                self.position.insert(v.digest.clone(), self.order.len());
                self.order.push(v.digest.clone());
                VertexReport {
                    digest: v.digest.clone(),
                    ..VertexReport::default()
                }
            });
            if !v.name.is_empty() {
                entry.name = v.name.clone();
            }
            if !v.inputs.is_empty() {
                entry.inputs = v.inputs.clone();
            }
            entry.cached |= v.cached;
            entry.started = time(&v.started).or(entry.started);
            entry.completed = time(&v.completed).or(entry.completed);
            if !v.error.is_empty() {
                entry.error = Some(v.error.clone());
            }
            let report = entry.clone();
            if report.started.is_some() && self.started_sent.insert(v.digest.clone()) {
                events.push(SolveEvent::VertexStarted {
                    digest: v.digest.clone(),
                    name: report.name.clone(),
                });
            }
            if let Some(error) = &report.error {
                if self.done_sent.insert(v.digest.clone()) {
                    events.push(SolveEvent::VertexError {
                        digest: v.digest.clone(),
                        name: report.name.clone(),
                        error: error.clone(),
                    });
                }
            } else if (report.completed.is_some() || report.cached)
                && self.done_sent.insert(v.digest.clone())
            {
                events.push(SolveEvent::VertexCompleted {
                    digest: v.digest.clone(),
                    name: report.name.clone(),
                    cached: report.cached,
                    duration: report.duration(),
                });
            }
        }
        for log in status.logs {
            let stream = LogStream::from_number(log.stream);
            let entry = self.vertices.entry(log.vertex.clone()).or_insert_with(|| {
                self.position.insert(log.vertex.clone(), self.order.len());
                self.order.push(log.vertex.clone());
                VertexReport {
                    digest: log.vertex.clone(),
                    ..VertexReport::default()
                }
            });
            match stream {
                LogStream::Stdout => entry.stdout.extend_from_slice(&log.msg),
                LogStream::Stderr => entry.stderr.extend_from_slice(&log.msg),
                LogStream::Other(_) => {}
            }
            events.push(SolveEvent::Log {
                vertex: log.vertex,
                stream,
                data: log.msg,
            });
        }
        for w in status.warnings {
            let warning = Warning {
                vertex: w.vertex,
                level: w.level,
                short: String::from_utf8_lossy(&w.short).into_owned(),
                detail: w
                    .detail
                    .iter()
                    .map(|d| String::from_utf8_lossy(d).into_owned())
                    .collect(),
                url: w.url,
            };
            self.warnings.push(warning.clone());
            events.push(SolveEvent::Warning(warning));
        }
        events
    }

    /// The vertex with this digest.
    pub(crate) fn vertex(&self, digest: &str) -> Option<&VertexReport> {
        self.vertices.get(digest)
    }

    /// Vertices that reported an error, in first-seen order.
    pub(crate) fn failed(&self) -> impl Iterator<Item = &VertexReport> {
        self.order
            .iter()
            .filter_map(|d| self.vertices.get(d))
            .filter(|v| v.error.is_some())
    }

    /// A tracker of the vertices among `digests` (in first-seen order, with their warnings): one
    /// definition's part of a stream that reports several (a gateway build's). Costs what
    /// `digests` holds, not what the stream reported.
    pub(crate) fn subset_of<'a>(&self, digests: impl IntoIterator<Item = &'a str>) -> Tracker {
        let mut found: Vec<(usize, &str)> = digests
            .into_iter()
            .filter_map(|d| self.position.get(d).map(|&i| (i, d)))
            .collect();
        found.sort_unstable();
        found.dedup();
        let mut sub = Tracker::default();
        for (_, d) in found {
            let Some(v) = self.vertices.get(d) else {
                continue;
            };
            sub.position.insert(d.to_owned(), sub.order.len());
            sub.order.push(d.to_owned());
            sub.vertices.insert(d.to_owned(), v.clone());
            if self.started_sent.contains(d) {
                sub.started_sent.insert(d.to_owned());
            }
            if self.done_sent.contains(d) {
                sub.done_sent.insert(d.to_owned());
            }
        }
        sub.warnings = self
            .warnings
            .iter()
            .filter(|w| sub.vertices.contains_key(&w.vertex))
            .cloned()
            .collect();
        sub
    }

    /// All vertices so far, in first-seen order.
    pub(crate) fn snapshot(&self) -> Vec<VertexReport> {
        self.order
            .iter()
            .filter_map(|d| self.vertices.get(d))
            .cloned()
            .collect()
    }

    /// All vertices in first-seen order, and the warnings.
    pub(crate) fn finish(mut self) -> (Vec<VertexReport>, Vec<Warning>) {
        let vertices = self
            .order
            .iter()
            .filter_map(|d| self.vertices.remove(d))
            .collect();
        (vertices, self.warnings)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::control::{Vertex, VertexLog};

    fn ts(s: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: s,
            nanos: 0,
        })
    }

    #[test]
    fn vertex_updates_become_one_start_and_one_completion() {
        let mut t = Tracker::default();
        let v = |started, completed, cached| Vertex {
            digest: "sha256:a".into(),
            name: "exec".into(),
            started,
            completed,
            cached,
            ..Vertex::default()
        };
        let e1 = t.apply(StatusResponse {
            vertexes: vec![v(ts(10), None, false)],
            ..Default::default()
        });
        assert_eq!(
            e1,
            vec![SolveEvent::VertexStarted {
                digest: "sha256:a".into(),
                name: "exec".into()
            }]
        );
        let log = VertexLog {
            vertex: "sha256:a".into(),
            stream: 2,
            msg: b"oops\n".to_vec(),
            ..Default::default()
        };
        let e2 = t.apply(StatusResponse {
            vertexes: vec![v(ts(10), None, false)],
            logs: vec![log],
            ..Default::default()
        });
        assert_eq!(e2.len(), 1);
        let e3 = t.apply(StatusResponse {
            vertexes: vec![v(ts(10), ts(12), false)],
            ..Default::default()
        });
        assert!(
            matches!(&e3[..], [SolveEvent::VertexCompleted { cached: false, duration: Some(d), .. }] if d.as_secs() == 2)
        );
        assert!(
            t.apply(StatusResponse {
                vertexes: vec![v(ts(10), ts(12), false)],
                ..Default::default()
            })
            .is_empty()
        );
        let (vertices, _) = t.finish();
        assert_eq!(vertices[0].stderr, b"oops\n");
    }

    #[test]
    fn a_subset_keeps_only_the_vertices_asked_for() {
        let mut t = Tracker::default();
        let v = |d: &str, error: &str| Vertex {
            digest: d.into(),
            error: error.into(),
            completed: ts(1),
            ..Default::default()
        };
        t.apply(StatusResponse {
            vertexes: vec![
                v("sha256:a", "exit code: 1"),
                v("sha256:b", ""),
                v("sha256:c", ""),
            ],
            ..Default::default()
        });
        let sub = t.subset_of(["sha256:c", "sha256:b", "sha256:x"]);
        assert_eq!(sub.failed().count(), 0, "a's failure is not b's or c's");
        let digests: Vec<String> = sub.snapshot().into_iter().map(|v| v.digest).collect();
        assert_eq!(digests, ["sha256:b", "sha256:c"]);
        assert_eq!(t.failed().count(), 1);
    }

    #[test]
    fn errors_and_cache_hits() {
        let mut t = Tracker::default();
        let failed = Vertex {
            digest: "sha256:f".into(),
            error: "exit code: 3".into(),
            completed: ts(1),
            ..Default::default()
        };
        let cached = Vertex {
            digest: "sha256:c".into(),
            cached: true,
            ..Default::default()
        };
        let events = t.apply(StatusResponse {
            vertexes: vec![failed, cached],
            ..Default::default()
        });
        assert!(
            matches!(&events[0], SolveEvent::VertexError { error, .. } if error == "exit code: 3")
        );
        assert!(matches!(
            &events[1],
            SolveEvent::VertexCompleted { cached: true, .. }
        ));
        assert_eq!(t.failed().count(), 1);
    }
}
