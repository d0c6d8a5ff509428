//! One solve: `Control.Solve` (a fresh ref, the Definition, no exporter, the session id if given, internal: no
//! build-history record) together with `Control.Status` for the same ref, as typed events and a
//! final [`SolveReport`].
//!
//! Solves share the client's connection; at most [`super::ConnectOptions::max_concurrent_solves`] run
//! at once (the rest wait for a permit). **Dropping a [`Solve`] cancels it**: its task is aborted, which
//! drops both RPC futures, so HTTP/2 resets the streams and the daemon sees the request context
//! cancelled and stops the job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::control::{Client, control_client};
use super::details::{ErrorDetails, classify, decode_details};
use super::errors::{BuilderError, SolveError};
use super::events::{SolveEvent, Tracker, VertexReport, Warning};
use super::graph::Graph;
use crate::proto::control::{SolveRequest, StatusRequest, StatusResponse};
use crate::proto::pb;

/// How long to keep reading `Status` after `Solve` returned (the daemon normally closes it at once).
const STATUS_DRAIN: Duration = Duration::from_secs(3);

/// Options of one solve.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// Digests of the vertices under test. A failure of one of them is [`SolveError::ExecFailed`],
    /// of any other vertex [`SolveError::InputFailed`]. Empty: the root vertex is under test.
    pub check_vertices: Vec<String>,
    /// Give up (and cancel) after this long, retries included.
    pub timeout: Option<Duration>,
    /// Use this ref instead of a fresh random one.
    pub solve_ref: Option<String>,
    /// Solve again (with a fresh ref) this many times when the builder fails with a known transient
    /// internal error ([`BuilderError::Transient`]); default 2.
    pub transient_retries: u32,
    /// The id of the client's session ([`super::Session::id`]), sent as `SolveRequest.Session`; needed
    /// when the definition reads local sources. `None`: no session (every other solve).
    pub session: Option<String>,
    /// An exporter for the solve's result ([`super::export::ExporterSpec`]), sent in the
    /// `SolveRequest` fields every BuildKit reads (3/4); `None`: nothing is exported.
    pub exporter: Option<super::export::ExporterSpec>,
}

impl Default for SolveOptions {
    fn default() -> Self {
        Self {
            check_vertices: Vec::new(),
            timeout: None,
            solve_ref: None,
            transient_retries: 2,
            session: None,
            exporter: None,
        }
    }
}

/// The end of a solve.
#[derive(Debug, Clone)]
pub struct SolveReport {
    /// The solve's ref.
    pub solve_ref: String,
    /// Success, or why it failed.
    pub result: Result<(), SolveError>,
    /// Every vertex the Status stream mentioned, in first-seen order, with its logs.
    pub vertices: Vec<VertexReport>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// The typed details BuildKit attached to the failure, if it failed with a gRPC status.
    pub error_details: Option<ErrorDetails>,
    /// How many times the solve was retried after a transient builder failure.
    pub retries: u32,
    /// Wall time from sending the request (after waiting for a permit) to the end.
    pub elapsed: Duration,
    /// The exporter's answer (`containerimage.digest`, `image.name`, …) when the solve had an
    /// exporter and succeeded; empty otherwise.
    pub exporter_response: std::collections::BTreeMap<String, String>,
}

impl SolveReport {
    /// The vertex with this digest.
    pub fn vertex(&self, digest: &str) -> Option<&VertexReport> {
        self.vertices.iter().find(|v| v.digest == digest)
    }

    /// The vertex with this digest was answered from the cache.
    pub fn cached(&self, digest: &str) -> bool {
        self.vertex(digest).is_some_and(|v| v.cached)
    }
}

/// A running solve. Read its events with [`Solve::next_event`], then [`Solve::wait`] for the report.
/// Dropping it cancels the solve on the builder.
#[derive(Debug)]
pub struct Solve {
    solve_ref: String,
    events: mpsc::UnboundedReceiver<SolveEvent>,
    task: Option<JoinHandle<SolveReport>>,
}

impl Drop for Solve {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Solve {
    /// The solve's ref (the `Solve`/`Status` request key).
    pub fn solve_ref(&self) -> &str {
        &self.solve_ref
    }

    /// The next event; `None` once the solve has finished and all events were read.
    pub async fn next_event(&mut self) -> Option<SolveEvent> {
        self.events.recv().await
    }

    /// Wait for the end (unread events are dropped; the report holds their content).
    pub async fn wait(mut self) -> SolveReport {
        let solve_ref = self.solve_ref.clone();
        let Some(task) = self.task.take() else {
            return failed_report(solve_ref, "solve already awaited");
        };
        match task.await {
            Ok(report) => report,
            Err(e) => failed_report(solve_ref, &format!("solve task ended abnormally: {e}")),
        }
    }
}

fn failed_report(solve_ref: String, message: &str) -> SolveReport {
    SolveReport {
        solve_ref,
        result: Err(SolveError::Other {
            code: tonic::Code::Internal,
            vertex: None,
            message: message.to_owned(),
        }),
        vertices: Vec::new(),
        warnings: Vec::new(),
        error_details: None,
        retries: 0,
        elapsed: Duration::ZERO,
        exporter_response: std::collections::BTreeMap::new(),
    }
}

/// A fresh solve ref: 25 lowercase base-32 characters, like BuildKit's identity IDs.
pub fn new_ref() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha256::new();
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.update(now.as_nanos().to_le_bytes());
    let stack_marker = 0u8;
    hasher.update((&raw const stack_marker as usize).to_le_bytes());
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    hasher
        .finalize()
        .iter()
        .take(25)
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect()
}

impl Client {
    /// Start solving `definition`. Returns at once; the solve waits for a permit of the client's
    /// concurrency bound, then runs `Solve` and `Status` concurrently.
    pub fn solve(&self, definition: pb::Definition, options: SolveOptions) -> Solve {
        let solve_ref = options.solve_ref.clone().unwrap_or_else(new_ref);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(
            self.clone(),
            solve_ref.clone(),
            definition,
            options,
            tx,
        ));
        Solve {
            solve_ref,
            events: rx,
            task: Some(task),
        }
    }

    /// Solve and wait for the report, ignoring events.
    pub async fn solve_and_wait(
        &self,
        definition: pb::Definition,
        options: SolveOptions,
    ) -> SolveReport {
        self.solve(definition, options).wait().await
    }
}

async fn run(
    client: Client,
    solve_ref: String,
    definition: pb::Definition,
    options: SolveOptions,
    tx: mpsc::UnboundedSender<SolveEvent>,
) -> SolveReport {
    let Ok(_permit) = client.inner.solves.clone().acquire_owned().await else {
        return failed_report(solve_ref, "the client's solve semaphore was closed");
    };
    let started = Instant::now();
    let graph = Graph::new(&definition);
    let mut definition = definition;
    sanitize(&mut definition);
    let deadline = options.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut attempt_ref = solve_ref;
    let mut retries = 0;
    loop {
        let attempt = attempt(
            &client,
            &attempt_ref,
            definition.clone(),
            &graph,
            &options,
            deadline,
            &tx,
        )
        .await;
        let transient = matches!(
            attempt.result,
            Err(SolveError::Builder(BuilderError::Transient { .. }))
        );
        if transient && retries < options.transient_retries {
            retries += 1;
            attempt_ref = new_ref();
            continue;
        }
        let (vertices, warnings) = attempt.tracker.finish();
        return SolveReport {
            solve_ref: attempt_ref,
            result: attempt.result,
            vertices,
            warnings,
            error_details: attempt.details,
            retries,
            elapsed: started.elapsed(),
            exporter_response: attempt.exporter_response,
        };
    }
}

/// One `Solve` + `Status` exchange.
struct Attempt {
    result: Result<(), SolveError>,
    tracker: Tracker,
    details: Option<ErrorDetails>,
    exporter_response: std::collections::BTreeMap<String, String>,
}

async fn attempt(
    client: &Client,
    solve_ref: &str,
    definition: pb::Definition,
    graph: &Graph,
    options: &SolveOptions,
    deadline: Option<tokio::time::Instant>,
    tx: &mpsc::UnboundedSender<SolveEvent>,
) -> Attempt {
    let mut tracker = Tracker::default();
    let mut solve_control = control_client(client.inner.channel.clone());
    let mut status_control = solve_control.clone();
    let request = SolveRequest {
        r#ref: solve_ref.to_owned(),
        definition: Some(definition),
        // Not a build the user asked for: BuildKit >= v0.11 keeps no build-history record for it
        // (one per check would flood `docker buildx history`, and cost Docker 26 ~13 ms per Solve).
        // Older daemons do not know the field and ignore it.
        internal: true,
        session: options.session.clone().unwrap_or_default(),
        exporter: options
            .exporter
            .as_ref()
            .map(|e| e.kind.clone())
            .unwrap_or_default(),
        exporter_attrs: options
            .exporter
            .as_ref()
            .map(|e| e.attrs.clone())
            .unwrap_or_default(),
        ..SolveRequest::default()
    };
    let solve_fut = solve_control.solve(request);
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<StatusResponse>();
    let status_req = StatusRequest {
        r#ref: solve_ref.to_owned(),
    };
    let status_fut = async move {
        let mut stream = status_control.status(status_req).await?.into_inner();
        while let Some(msg) = stream.message().await? {
            if raw_tx.send(msg).is_err() {
                break;
            }
        }
        Ok::<(), tonic::Status>(())
    };
    tokio::pin!(solve_fut);
    tokio::pin!(status_fut);
    let far = || tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(far));
    tokio::pin!(sleep);

    let mut solve_result: Option<Result<(), tonic::Status>> = None;
    let mut exporter_response = std::collections::BTreeMap::new();
    let mut status_done = false;
    let mut drain_until: Option<tokio::time::Instant> = None;
    let mut timed_out = false;
    loop {
        if solve_result.is_some() && status_done {
            break;
        }
        let drain = tokio::time::sleep_until(drain_until.unwrap_or_else(far));
        tokio::select! {
            r = &mut solve_fut, if solve_result.is_none() => {
                solve_result = Some(r.map(|answer| {
                    exporter_response = answer.into_inner().exporter_response;
                }));
                drain_until = Some(tokio::time::Instant::now() + STATUS_DRAIN);
            }
            _ = &mut status_fut, if !status_done => {
                // Status errors are not the solve's result; the Solve RPC says how it ended.
                status_done = true;
            }
            Some(msg) = raw_rx.recv() => {
                for event in tracker.apply(msg) {
                    let _ = tx.send(event);
                }
            }
            () = &mut sleep, if deadline.is_some() && solve_result.is_none() => {
                timed_out = true;
                break;
            }
            () = drain, if drain_until.is_some() => break,
        }
    }
    while let Ok(msg) = raw_rx.try_recv() {
        for event in tracker.apply(msg) {
            let _ = tx.send(event);
        }
    }
    let mut details = None;
    let result = match solve_result {
        _ if timed_out => Err(BuilderError::Timeout(options.timeout.unwrap_or_default()).into()),
        Some(Ok(())) => Ok(()),
        Some(Err(status)) => {
            details = Some(decode_details(&status));
            Err(classify(&status, graph, &tracker, &options.check_vertices))
        }
        None => Err(SolveError::Other {
            code: tonic::Code::Internal,
            vertex: None,
            message: "solve did not finish".to_owned(),
        }),
    };
    Attempt {
        result,
        tracker,
        details,
        exporter_response,
    }
}

/// Drop `source.locations` entries that carry no location (and an empty `source`).
///
/// prost omits empty message values in map entries, which Go decodes as a nil `*pb.Locations`;
/// BuildKit's `resultProxy.wrapError` (llbsolver/bridge.go, v0.8.3 and v0.13.2 alike) dereferences it
/// when a vertex fails, and the **daemon panics** (SIGSEGV), taking down every build on it. An empty
/// entry means nothing, so removing it changes no op and no digest.
pub(crate) fn sanitize(definition: &mut pb::Definition) {
    if let Some(source) = &mut definition.source {
        source.locations.retain(|_, l| !l.locations.is_empty());
        if source.locations.is_empty() && source.infos.is_empty() {
            definition.source = None;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_source_locations_are_not_sent() {
        let mut def = pb::Definition::default();
        let mut source = pb::Source::default();
        source
            .locations
            .insert("sha256:a".into(), pb::Locations::default());
        def.source = Some(source.clone());
        sanitize(&mut def);
        assert_eq!(def.source, None);
        let located = pb::Locations {
            locations: vec![pb::Location::default()],
        };
        source.locations.insert("sha256:b".into(), located.clone());
        source.infos.push(pb::SourceInfo::default());
        def.source = Some(source);
        sanitize(&mut def);
        let kept = def.source.unwrap();
        assert_eq!(kept.locations.len(), 1);
        assert_eq!(kept.locations["sha256:b"], located);
    }

    #[test]
    fn refs_are_fresh_and_well_formed() {
        let a = new_ref();
        let b = new_ref();
        assert_ne!(a, b);
        assert_eq!(a.len(), 25);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)),
            "{a}"
        );
    }
}
