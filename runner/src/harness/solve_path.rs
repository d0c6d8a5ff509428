//! How each check is solved (`BUILDTEST_SOLVE`): one `Control.Solve` per check, or one
//! `LLBBridge.Solve` (evaluate) per check inside a gateway build kept open for the run.
//!
//! A `Control.Solve` is a job of its own on the daemon, with its own Status stream; a gateway
//! build is one job whose Status stream reports every check evaluated in it, so a check costs one
//! gRPC call instead of two streams and a job (BENCHMARKS.md measures both). Both give a
//! [`crate::client::SolveReport`] that [`crate::harness::backend`] maps to the check's record the
//! same way, so a check's outcome does not depend on the path.
//!
//! `auto` takes the gateway on every node whose gateway has `gateway.solve.evaluate`, unless
//! `BUILDTEST_NO_CACHE` is set; `gateway` refuses to start where a node cannot (exit 2, before
//! anything is solved). The build of a node is opened when the run is planned; when the run's
//! session is served on that node (local directories, the probe or a local cache import), the
//! first check opens one linked to the session instead (the daemon reads a build's local sources
//! through the session named by its `Control.Solve`).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::client::gateway::{GatewayBuild, GatewayOptions};
use crate::client::one_line_chain;
use crate::harness::backend::{Backend, Prepared};
use crate::harness::errors::SolvePathError;
use crate::harness::nodes::Nodes;
use crate::protocol::SuiteSettings;
use crate::protocol::settings::SolvePath;
use crate::report::{CheckRecord, ErrorKind, Outcome};

/// The gateway capability that lets a build evaluate definitions.
const EVALUATE_CAP: &str = "gateway.solve.evaluate";

/// Solve again after BuildKit's known transient internal errors, as `Control.Solve` does.
const TRANSIENT_RETRIES: u32 = 2;

/// How long [`CheckSolver::finish`] waits for the last check's task to let go of a build.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// What the run's checks are solved with, per node.
pub(crate) struct CheckSolver {
    nodes: Vec<NodeSolver>,
}

/// One node's path.
struct NodeSolver {
    /// The node's name (several nodes) or `None` (one builder).
    name: Option<String>,
    backend: Arc<Backend>,
    /// Whether its checks are evaluated inside a gateway build.
    gateway: bool,
    /// Whether `BUILDTEST_SOLVE=gateway` asked for it (a build that cannot be opened later is
    /// then every check's error, not a fall-back to `Control.Solve`).
    forced: bool,
    /// Why this path, for the run's line.
    reason: String,
    /// The build opened when planning (no session), until a check takes it.
    planned: Mutex<Option<GatewayBuild>>,
    /// The run's session on this node, once the run knows it.
    session: OnceLock<Option<String>>,
    /// The node's build for the run: `None` until the first check, then the build or why
    /// there is none.
    build: tokio::sync::Mutex<Option<Result<Arc<GatewayBuild>, String>>>,
    /// The run's cache export, when it is to be done by this node's build
    /// ([`CheckSolver::export_on_first_node`]): its `Control.Solve` carries the exports, and
    /// [`CheckSolver::finish`] leaves the build to [`CheckSolver::take_export_build`].
    cache_export: OnceLock<crate::proto::control::CacheOptions>,
}

impl CheckSolver {
    /// Every check by `Control.Solve` (no builder was reached: nothing is solved anyway).
    pub(crate) fn control() -> CheckSolver {
        CheckSolver { nodes: Vec::new() }
    }

    /// Chooses each node's path from `BUILDTEST_SOLVE` (and `BUILDTEST_NO_CACHE`), opening the
    /// gateway build of every node that takes the gateway. Fails when `gateway` was asked for and
    /// a node cannot evaluate definitions in a gateway build.
    pub(crate) async fn plan(
        settings: &SuiteSettings,
        nodes: &Nodes,
    ) -> Result<CheckSolver, SolvePathError> {
        let several = nodes.nodes.len() > 1;
        let mut out = Vec::with_capacity(nodes.nodes.len());
        for node in &nodes.nodes {
            let backend = Arc::clone(&node.backend);
            let mut solver = NodeSolver {
                name: several.then(|| node.name.clone()),
                backend: Arc::clone(&backend),
                gateway: false,
                forced: settings.solve == SolvePath::Gateway,
                reason: String::new(),
                planned: Mutex::new(None),
                session: OnceLock::new(),
                build: tokio::sync::Mutex::new(None),
                cache_export: OnceLock::new(),
            };
            match (settings.solve, settings.no_cache) {
                (SolvePath::Control, _) => {
                    solver.reason = "BUILDTEST_SOLVE=control".to_owned();
                }
                (SolvePath::Auto, true) => {
                    solver.reason = "auto: BUILDTEST_NO_CACHE is set".to_owned();
                }
                (path, _) => {
                    let opened = backend
                        .client()
                        .gateway_build_with(GatewayOptions::default())
                        .await;
                    let builder = backend.builder_name();
                    match opened {
                        Ok(build) if build.caps().has(EVALUATE_CAP) => {
                            solver.gateway = true;
                            solver.reason = match path {
                                SolvePath::Gateway => "BUILDTEST_SOLVE=gateway".to_owned(),
                                _ => format!("auto: the builder's gateway has {EVALUATE_CAP}"),
                            };
                            *lock(&solver.planned) = Some(build);
                        }
                        Ok(build) => {
                            let reason = build
                                .caps()
                                .disabled
                                .iter()
                                .find(|(id, _)| id == EVALUATE_CAP)
                                .map(|(_, r)| format!(": {r}"))
                                .unwrap_or_default();
                            let _ = build.finish().await;
                            if path == SolvePath::Gateway {
                                return Err(SolvePathError::NoEvaluate { builder, reason });
                            }
                            solver.reason =
                                format!("auto: the builder's gateway lacks {EVALUATE_CAP}{reason}");
                        }
                        Err(source) => {
                            if path == SolvePath::Gateway {
                                return Err(SolvePathError::Open { builder, source });
                            }
                            solver.reason = format!(
                                "auto: no gateway build could be opened: {}",
                                one_line_chain(&source)
                            );
                        }
                    }
                }
            }
            out.push(solver);
        }
        Ok(CheckSolver { nodes: out })
    }

    /// The run's lines for stderr (after [`crate::protocol::events::SOLVE_LINE`]): one, or one
    /// per node when there are several.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| {
                let what = if n.gateway {
                    "gateway: one gateway build for the run, each check an LLBBridge.Solve (evaluate) inside it"
                } else {
                    "control: one Control.Solve per check"
                };
                let line = format!("{what} ({})", n.reason);
                match &n.name {
                    Some(name) => format!("node {name}: {line}"),
                    None => line,
                }
            })
            .collect()
    }

    /// The run's session per node (in the nodes' order; `None` where none is served): a node's
    /// build is linked to its session.
    pub(crate) fn set_sessions(&self, sessions: &[Option<String>]) {
        for (node, session) in self.nodes.iter().zip(sessions) {
            let _ = node.session.set(session.clone());
        }
    }

    /// Solves one prepared check on `backend`'s node by that node's path and fills `record`.
    pub(crate) async fn solve(
        &self,
        backend: &Backend,
        prepared: &Prepared,
        session: Option<String>,
        cache: Option<crate::proto::control::CacheOptions>,
        record: &mut CheckRecord,
    ) {
        let node = self
            .nodes
            .iter()
            .find(|n| std::ptr::eq(Arc::as_ptr(&n.backend), backend));
        let build = match node {
            Some(node) if node.gateway => node.build().await,
            _ => Ok(None),
        };
        match build {
            Ok(Some(build)) => {
                let imports = cache.map(|c| c.imports).unwrap_or_default();
                let checks: Vec<String> = prepared.vertex.iter().cloned().collect();
                let report = build
                    .evaluate_report(
                        prepared.definition.clone(),
                        &checks,
                        imports,
                        TRANSIENT_RETRIES,
                    )
                    .await;
                crate::harness::backend::record_report(prepared, &report, record);
            }
            Ok(None) => backend.solve(prepared, session, cache, record).await,
            Err(message) => {
                record.outcome = Outcome::Error;
                record.error_kind = Some(ErrorKind::Builder);
                record.message = Some(message);
            }
        }
    }

    /// Has the run's cache export done by the first node's build (one node, on the gateway
    /// path): the build is opened with `exports` on its `Control.Solve`, so that the graphs the
    /// export returns are resolved in the same build — the same images and directory contents —
    /// as the checks it stands for. Returns whether it will be.
    pub(crate) fn export_on_first_node(
        &self,
        exports: crate::proto::control::CacheOptions,
    ) -> bool {
        match self.nodes.as_slice() {
            [node] if node.gateway => node.cache_export.set(exports).is_ok(),
            _ => false,
        }
    }

    /// The first node's build, opened with the cache exports ([`CheckSolver::export_on_first_node`]),
    /// once the checks let go of it (opened now when no check needed it). `None` when the
    /// export is not done by a build (or it could not be opened).
    pub(crate) async fn take_export_build(&self) -> Option<GatewayBuild> {
        let node = self.nodes.first()?;
        node.cache_export.get()?;
        let build = node.build().await.ok().flatten()?;
        let mut slot = node.build.lock().await;
        *slot = None;
        drop(slot);
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        let mut build = build;
        loop {
            match Arc::try_unwrap(build) {
                Ok(owned) => return Some(owned),
                Err(_) if tokio::time::Instant::now() >= deadline => return None,
                Err(shared) => {
                    build = shared;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }

    /// Ends every node's gateway build (`LLBBridge.Return`), after the run's last check; not the
    /// one that does the cache export ([`CheckSolver::take_export_build`]).
    pub(crate) async fn finish(&self) {
        for node in &self.nodes {
            let planned = lock(&node.planned).take();
            if let Some(build) = planned {
                let _ = build.finish().await;
            }
            if node.cache_export.get().is_some() {
                continue;
            }
            let Some(Ok(build)) = node.build.lock().await.take() else {
                continue;
            };
            // A check's task may still hold it for a moment after sending its record.
            let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
            let mut build = build;
            loop {
                match Arc::try_unwrap(build) {
                    Ok(owned) => {
                        let _ = owned.finish().await;
                        break;
                    }
                    // Dropping the last reference cancels the build instead.
                    Err(_) if tokio::time::Instant::now() >= deadline => break,
                    Err(shared) => {
                        build = shared;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }
    }
}

impl NodeSolver {
    /// The node's build for the run (opened by the first check that needs it): `Ok(None)` to
    /// solve by `Control.Solve` instead (`auto`, when it could not be opened), `Err` when
    /// `gateway` was asked for and it could not.
    async fn build(&self) -> Result<Option<Arc<GatewayBuild>>, String> {
        let mut slot = self.build.lock().await;
        if slot.is_none() {
            let session = self.session.get().cloned().flatten();
            let planned = lock(&self.planned).take();
            let cache = self.cache_export.get().cloned();
            let opened = match (planned, session) {
                (Some(build), None) if cache.is_none() => Ok(build),
                (planned, session) => {
                    // The planned build has no session (nor the cache export): end it, open one
                    // linked to the session.
                    if let Some(old) = planned {
                        tokio::spawn(old.finish());
                    }
                    self.backend
                        .client()
                        .gateway_build_with(GatewayOptions {
                            session,
                            cache,
                            ..GatewayOptions::default()
                        })
                        .await
                }
            };
            *slot = Some(opened.map(Arc::new).map_err(|err| {
                format!(
                    "failed to open a gateway build on {} for the run's checks: {}",
                    self.backend.builder_name(),
                    one_line_chain(&err)
                )
            }));
            if let Some(Err(message)) = slot.as_ref() {
                eprintln!(
                    "buildtest: warning: {message}; {}",
                    if self.forced {
                        "every check on it is an error (BUILDTEST_SOLVE=gateway)"
                    } else {
                        "solving its checks by Control.Solve (auto)"
                    }
                );
            }
        }
        match slot.as_ref() {
            Some(Ok(build)) => Ok(Some(Arc::clone(build))),
            Some(Err(message)) if self.forced => Err(message.clone()),
            _ => Ok(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
