//! Solving plain definitions inside a gateway build: `LLBBridge.Solve{Definition, Evaluate}`.
//!
//! Each such solve is a sub-request of the build's one job, so it needs no `Control.Solve` and no
//! `Status` stream of its own (the build's stream reports its vertices): the lever for running
//! many checks in one build.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::build::GatewayBuild;
use super::errors::GatewayError;
use crate::client::VertexReport;
use crate::client::details::{classify, decode_details};
use crate::client::errors::{BuilderError, SolveError};
use crate::client::events::Tracker;
use crate::client::graph::Graph;
use crate::client::solve::SolveReport;
use crate::proto::control::CacheOptionsEntry;
use crate::proto::frontend::SolveRequest;
use crate::proto::pb;

/// How long a failure waits for the build's Status stream to report the failing vertex.
const STATUS_GRACE: Duration = Duration::from_millis(500);

/// How long [`GatewayBuild::evaluate_report`] waits, after a definition was built, for the Status
/// stream to report its vertices under test done (their logs and cache flag).
const DONE_GRACE: Duration = Duration::from_secs(5);

impl GatewayBuild {
    /// Build `definition` now, inside this gateway build (`LLBBridge.Solve` with `Evaluate`; needs
    /// the capability `gateway.solve.evaluate`). A failure is classified as a `Control.Solve`'s
    /// would be: `check_vertices` are the vertices under test (the root when empty). Only the
    /// vertices of `definition` are considered, so a failure of another definition evaluated at
    /// the same time in this build is never attributed to this one. The vertices' logs are in
    /// [`GatewayBuild::vertices`] / [`GatewayBuild::vertex_done`], or use
    /// [`GatewayBuild::evaluate_report`].
    pub async fn evaluate(
        &self,
        definition: pb::Definition,
        check_vertices: &[String],
    ) -> Result<(), SolveError> {
        self.evaluate_with_cache(definition, check_vertices, Vec::new())
            .await
    }

    /// [`GatewayBuild::evaluate`] importing `cache_imports` (`SolveRequest.CacheImports`): the
    /// daemon resolves each import once per build, however many definitions use it.
    pub async fn evaluate_with_cache(
        &self,
        definition: pb::Definition,
        check_vertices: &[String],
        cache_imports: Vec<CacheOptionsEntry>,
    ) -> Result<(), SolveError> {
        let graph = Graph::new(&definition);
        self.evaluate_in(definition, &graph, check_vertices, cache_imports)
            .await
            .map_err(|(e, _)| e)
    }

    /// Evaluate `definition` as one check of a run (what `Control.Solve` gives as a
    /// [`SolveReport`], from inside this build): retried up to `transient_retries` times after a
    /// [`BuilderError::Transient`]; once built (or failed in a vertex under test), waits until
    /// the Status stream has reported the vertices under test done. The report's vertices are
    /// `definition`'s only (with their logs); its ref is the build's.
    pub async fn evaluate_report(
        &self,
        definition: pb::Definition,
        check_vertices: &[String],
        cache_imports: Vec<CacheOptionsEntry>,
        transient_retries: u32,
    ) -> SolveReport {
        let started = Instant::now();
        let graph = Graph::new(&definition);
        let mut retries = 0;
        let (result, error_details) = loop {
            match self
                .evaluate_in(
                    definition.clone(),
                    &graph,
                    check_vertices,
                    cache_imports.clone(),
                )
                .await
            {
                Ok(()) => break (Ok(()), None),
                Err((SolveError::Builder(BuilderError::Transient { .. }), _))
                    if retries < transient_retries =>
                {
                    retries += 1;
                }
                Err((e, details)) => break (Err(e), details),
            }
        };
        if matches!(result, Ok(()) | Err(SolveError::ExecFailed { .. })) {
            let targets: Vec<&str> = if check_vertices.is_empty() {
                graph.root().into_iter().collect()
            } else {
                check_vertices.iter().map(String::as_str).collect()
            };
            for digest in targets {
                self.vertex_done(digest, DONE_GRACE).await;
            }
        }
        let (vertices, warnings) = self.with_tracker(|t| t.subset_of(graph.digests()).finish());
        SolveReport {
            solve_ref: self.build_ref.clone(),
            result,
            vertices,
            warnings,
            error_details,
            retries,
            elapsed: started.elapsed(),
            exporter_response: BTreeMap::new(),
        }
    }

    async fn evaluate_in(
        &self,
        definition: pb::Definition,
        graph: &Graph,
        check_vertices: &[String],
        cache_imports: Vec<CacheOptionsEntry>,
    ) -> Result<(), (SolveError, Option<crate::client::ErrorDetails>)> {
        if !self.caps.has("gateway.solve.evaluate") {
            return Err((
                SolveError::Unsupported {
                    what: "evaluating a definition inside a gateway build".to_owned(),
                    message: "the gateway lacks the capability `gateway.solve.evaluate`".to_owned(),
                },
                None,
            ));
        }
        let mut definition = definition;
        crate::client::sanitize(&mut definition);
        let call = self
            .request(SolveRequest {
                definition: Some(definition),
                allow_result_return: true,
                allow_result_array_ref: true,
                evaluate: true,
                cache_imports,
                ..SolveRequest::default()
            })
            .map_err(|e| (gateway_to_solve(e), None))?;
        let Err(status) = self.bridge.clone().solve(call).await else {
            return Ok(());
        };
        if let Some(reason) = self.ended() {
            return Err((
                gateway_to_solve(GatewayError::BuildEnded {
                    build_ref: self.build_ref.clone(),
                    reason,
                }),
                None,
            ));
        }
        let details = Some(decode_details(&status));
        // Failures that name no vertex (the builder's own) need nothing from the stream.
        let early = classify(&status, graph, &Tracker::default(), check_vertices);
        if matches!(
            early,
            SolveError::Builder(_) | SolveError::Unsupported { .. }
        ) {
            return Err((early, details));
        }
        // The failing vertex of this definition, with its logs, as the build's stream reports it.
        self.wait_for_status(STATUS_GRACE, |t| {
            graph
                .digests()
                .any(|d| t.vertex(d).is_some_and(|v| v.error.is_some()))
        })
        .await;
        let error = self.with_tracker(|t| {
            classify(
                &status,
                graph,
                &t.subset_of(graph.digests()),
                check_vertices,
            )
        });
        Err((error, details))
    }

    /// The vertex `digest` once the build's Status stream has reported it done (completed, cached
    /// or failed), waiting at most `timeout` (woken by each Status message); `None` if it was
    /// not reported done by then.
    pub async fn vertex_done(&self, digest: &str, timeout: Duration) -> Option<VertexReport> {
        let done = |v: &VertexReport| v.completed.is_some() || v.cached || v.error.is_some();
        self.wait_for_status(timeout, |t| t.vertex(digest).is_some_and(done))
            .await;
        self.with_tracker(|t| t.vertex(digest).filter(|v| done(v)).cloned())
    }

    /// Waits until `ready` holds for the build's tracker, at most `timeout`; re-checked whenever a
    /// Status message arrives. Whether it held.
    pub(crate) async fn wait_for_status(
        &self,
        timeout: Duration,
        ready: impl Fn(&Tracker) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before the first look, so an update between the look and the wait wakes it.
        let mut updates = self.shared.updates.subscribe();
        loop {
            if self.with_tracker(&ready) {
                return true;
            }
            match tokio::time::timeout_at(deadline, updates.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return self.with_tracker(&ready),
            }
        }
    }

    /// `f` of the build's tracker, under its lock.
    pub(crate) fn with_tracker<T>(&self, f: impl FnOnce(&Tracker) -> T) -> T {
        let tracker = self
            .shared
            .tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&tracker)
    }

    /// Digests of the vertices that have failed so far in this build.
    pub(crate) fn failed_digests(&self) -> Vec<String> {
        self.with_tracker(|t| t.failed().map(|v| v.digest.clone()).collect())
    }
}

fn gateway_to_solve(e: GatewayError) -> SolveError {
    match e {
        GatewayError::Builder(b) => SolveError::Builder(b),
        other => SolveError::Other {
            code: tonic::Code::Internal,
            vertex: None,
            message: other.to_string(),
        },
    }
}
