//! Solving plain definitions inside a gateway build: `LLBBridge.Solve{Definition, Evaluate}`.
//!
//! Each such solve is a sub-request of the build's one job, so it needs no `Control.Solve` and no
//! `Status` stream of its own (the build's stream reports its vertices): the lever for running
//! many checks in one build.

use std::time::Duration;

use super::build::GatewayBuild;
use super::errors::GatewayError;
use crate::client::VertexReport;
use crate::client::details::classify;
use crate::client::errors::SolveError;
use crate::client::graph::Graph;
use crate::proto::frontend::SolveRequest;
use crate::proto::pb;

/// How long a failure waits for the build's Status stream to report the failing vertex.
const STATUS_GRACE: Duration = Duration::from_millis(500);

impl GatewayBuild {
    /// Build `definition` now, inside this gateway build (`LLBBridge.Solve` with `Evaluate`; needs
    /// the capability `gateway.solve.evaluate`). A failure is classified as a `Control.Solve`'s
    /// would be: `check_vertices` are the vertices under test (the root when empty). The
    /// vertices' logs are in [`GatewayBuild::vertices`] / [`GatewayBuild::vertex_done`].
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
        cache_imports: Vec<crate::proto::control::CacheOptionsEntry>,
    ) -> Result<(), SolveError> {
        if !self.caps.has("gateway.solve.evaluate") {
            return Err(SolveError::Unsupported {
                what: "evaluating a definition inside a gateway build".to_owned(),
                message: "the gateway lacks the capability `gateway.solve.evaluate`".to_owned(),
            });
        }
        let graph = Graph::new(&definition);
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
            .map_err(gateway_to_solve)?;
        let failed_before: Vec<String> = self.failed_digests();
        let Err(status) = self.bridge.clone().solve(call).await else {
            return Ok(());
        };
        if let Some(reason) = self.ended() {
            return Err(gateway_to_solve(GatewayError::BuildEnded {
                build_ref: self.build_ref.clone(),
                reason,
            }));
        }
        let deadline = tokio::time::Instant::now() + STATUS_GRACE;
        loop {
            let fresh = self
                .failed_digests()
                .iter()
                .any(|d| !failed_before.contains(d));
            if fresh || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let tracker = self
            .shared
            .tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Err(classify(&status, &graph, &tracker, check_vertices))
    }

    /// The vertex `digest` once the build's Status stream has reported it done (completed, cached
    /// or failed), waiting at most `timeout`; `None` if it was not reported done by then.
    pub async fn vertex_done(&self, digest: &str, timeout: Duration) -> Option<VertexReport> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = {
                let tracker = self
                    .shared
                    .tracker
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                tracker
                    .vertex(digest)
                    .filter(|v| v.completed.is_some() || v.cached || v.error.is_some())
                    .cloned()
            };
            if found.is_some() || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Digests of the vertices that have failed so far in this build.
    pub(crate) fn failed_digests(&self) -> Vec<String> {
        let tracker = self
            .shared
            .tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tracker.failed().map(|v| v.digest.clone()).collect()
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
