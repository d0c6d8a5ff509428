//! The run: every check of every selected test becomes one solve, started up front on one
//! shared tokio runtime and bounded by `BUILDTEST_JOBS`; each libtest trial only waits for
//! its checks' records, so concurrency spans all checks of all tests, not one test at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{Semaphore, oneshot};

use crate::client::ExportTargets;
use crate::client::one_line_chain;
use crate::harness::backend::{Backend, Prepared};
use crate::harness::cache::RunCache;
use crate::harness::errors::BackendError;
use crate::harness::gate::{ExportJob, export_record};
use crate::harness::inputs::{Served, TestInputs, check_input, describe, transfer_error};
use crate::harness::metadata::{self, ConfigCache};
use crate::harness::nodes::{Again, Nodes, input_key};
use crate::harness::registry::{self, TestDef};
use crate::harness::resolve::{Plan, Resolution};
use crate::harness::solve_path::CheckSolver;

use crate::protocol::{SuiteSettings, sort_records};
use crate::report::{CheckRecord, ErrorKind, Outcome, ResultsFile};

/// What every record of this process shares.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordContext {
    pub(crate) suite: String,
    pub(crate) strategy: Option<String>,
    pub(crate) builder: Option<String>,
}

impl RecordContext {
    pub(crate) fn record(
        &self,
        def: &TestDef,
        test: &str,
        check: u32,
        label: &str,
        outcome: Outcome,
    ) -> CheckRecord {
        let mut r = CheckRecord::new(&self.suite, test, check, label, outcome);
        r.strategy.clone_from(&self.strategy);
        r.builder.clone_from(&self.builder);
        r.file = Some(def.file.to_owned());
        r.line = Some(def.line);
        r
    }
}

/// Where finished records go: the results file (as they arrive) and memory (for JUnit and
/// the summary).
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    file: Option<Arc<ResultsFile>>,
    records: Arc<Mutex<Vec<CheckRecord>>>,
}

impl Sink {
    pub(crate) fn new(file: Option<ResultsFile>) -> Self {
        Sink {
            file: file.map(Arc::new),
            records: Arc::default(),
        }
    }

    /// Appends to the results file and to memory under one lock, so [`Sink::exit_with`] never
    /// ends the process halfway through a line.
    pub(crate) fn push(&self, record: CheckRecord) {
        let mut records = self.lock();
        if let Some(Err(err)) = self.file.as_ref().map(|file| file.append(&record)) {
            eprintln!("buildtest: warning: failed to {}", one_line_chain(&err));
        }
        records.push(record);
    }

    /// Every record pushed so far, sorted by test then check.
    pub(crate) fn records(&self) -> Vec<CheckRecord> {
        sorted(self.lock().clone())
    }

    /// Hands every record pushed so far to `finish`, then exits with `code`, holding the lock
    /// all along: no record arrives (or is half-written) in between.
    pub(crate) fn exit_with(&self, code: i32, finish: impl FnOnce(Vec<CheckRecord>)) -> ! {
        let records = self.lock();
        finish(sorted(records.clone()));
        std::process::exit(code)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CheckRecord>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn sorted(mut records: Vec<CheckRecord>) -> Vec<CheckRecord> {
    sort_records(&mut records);
    records
}

/// Records `ignored` for every check of a test that is not run.
pub(crate) fn record_ignored(ctx: &RecordContext, sink: &Sink, name: &str, def: &TestDef) {
    let reason = def.ignore_reason.map(str::to_owned);
    let labels: Vec<String> = match registry::build(def, name) {
        Ok(test) => test.checks.iter().map(crate::check::Check::label).collect(),
        Err(_) => vec!["test".to_owned()],
    };
    for (i, label) in labels.iter().enumerate() {
        let mut r = ctx.record(def, name, index(i), label, Outcome::Ignored);
        r.message.clone_from(&reason);
        sink.push(r);
    }
}

fn index(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// The records one trial waits for.
#[derive(Debug)]
pub(crate) struct TestHandle {
    checks: Vec<oneshot::Receiver<CheckRecord>>,
}

impl TestHandle {
    /// Blocks (on a libtest thread, outside the runtime) until every check has a record.
    pub(crate) fn wait(self) -> Vec<CheckRecord> {
        self.checks
            .into_iter()
            .map(|rx| {
                rx.blocking_recv().unwrap_or_else(|_| {
                    // The task was dropped without an answer: the runtime is shutting down.
                    let mut r = CheckRecord::new("", "", 0, "check", Outcome::Error);
                    r.error_kind = Some(ErrorKind::Builder);
                    r.message = Some("the check's task ended without a result".to_owned());
                    r
                })
            })
            .collect()
    }
}

/// All solves of a run, started when the session is created.
pub(crate) struct Session {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) handles: HashMap<String, TestHandle>,
    /// The client sessions serving the run's local directories (one per node), if any test
    /// reads one.
    pub(crate) served: Vec<Served>,
    /// The names of the probe's directories among them.
    probe_dirs: Vec<String>,
    /// The run's cache imports and exports.
    cache: RunCache,
    /// The solved checks with their graphs and outcomes (collected only when the cache is
    /// exported).
    passing: Arc<Mutex<Vec<crate::harness::input_verdicts::Solved>>>,
    /// The backend, for the cache export.
    backend: Option<Arc<Backend>>,
    /// How checks are solved (`BUILDTEST_SOLVE`); its gateway builds end after the last check.
    pub(crate) solver: Arc<CheckSolver>,
}

/// What a check needs done: a solve, or (a metadata check) reading the input's image config.
enum Work {
    Solve(Prepared),
    Metadata {
        /// The test's input as the test fn returned it.
        input: crate::llb::State,
        check: crate::check::Metadata,
    },
}

/// A prepared check waiting for its solve to be started.
struct Pending {
    backend: Arc<Backend>,
    /// The node it is placed on (index in [`Nodes`]).
    node: usize,
    /// What moving it to another node needs: its test, the check's index, the input's key.
    again: Option<Again>,
    work: Work,
    record: CheckRecord,
    timeout: std::time::Duration,
    /// The local sources its input reads (names), for the session's transfer errors.
    locals: Vec<String>,
    /// The digest of the test's input (orders solves when cache is imported).
    input: Option<String>,
    /// The test's input reads a local directory.
    local_input: bool,
    tx: oneshot::Sender<CheckRecord>,
}

impl Session {
    /// Prepares every check of `tests`, opens a client session if any of them reads a local
    /// directory, and starts every solve on `backend` (or, when the builder could not be
    /// reached, records the error for every check).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        runtime: tokio::runtime::Runtime,
        nodes: Result<Arc<Nodes>, BackendError>,
        config: &SuiteSettings,
        ctx: &RecordContext,
        sink: &Sink,
        tests: &[(String, &'static TestDef)],
        cache: RunCache,
        solver: Arc<CheckSolver>,
    ) -> Session {
        let nodes = nodes.map_err(|err| format!("failed to {}", one_line_chain(&err)));
        let backend = nodes
            .as_ref()
            .map(|n| Arc::clone(&n.primary().backend))
            .map_err(Clone::clone);
        let run_backend = backend.as_ref().ok().map(Arc::clone);
        let several = nodes.as_ref().is_ok_and(|n| n.nodes.len() > 1);
        // One session id for the run: each node gets its own session under it, so a graph naming
        // it (a Dockerfile's context, a local directory) solves on whichever node it is placed on.
        let session_id = crate::client::new_ref();
        let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
        let mut handles = HashMap::with_capacity(tests.len());
        let mut pending = Vec::new();
        let node_backends: Vec<Arc<Backend>> = nodes
            .as_ref()
            .map(|n| n.nodes.iter().map(|x| Arc::clone(&x.backend)).collect())
            .unwrap_or_default();
        // The probe's own directories when it travels through the session, of every node (how
        // the probe travels depends on each node's builder); a check reads its own node's.
        let probe_dirs: BTreeMap<String, std::path::PathBuf> =
            node_backends.iter().flat_map(|b| b.probe_dirs()).collect();
        // By node: its checks read the probe through the session.
        let node_probe: Arc<Vec<bool>> = Arc::new(
            node_backends
                .iter()
                .map(|b| !b.probe_dirs().is_empty())
                .collect(),
        );
        let mut dirs = BTreeMap::new();
        // Image configs for metadata checks, each resolved once per run.
        let configs = Arc::new(ConfigCache::default());
        let mut export_jobs: Vec<ExportJob> = Vec::new();
        let mut declared_exports = 0usize;
        let root = crate::harness::export::workspace_root();
        let built: Vec<_> = tests
            .iter()
            .map(|(name, def)| (name, def, registry::build(def, name)))
            .collect();
        // Image configs and Dockerfile results, once for the run, before any check is prepared.
        // Dockerfile contexts travel through the run's session, so it opens first when there are
        // any.
        // The run's sessions, by node (`None` until opened, or where opening failed).
        let mut served: Vec<Option<Served>> = Vec::new();
        let mut session_errors: Vec<Option<String>> = Vec::new();
        let mut resolution = match &backend {
            Ok(backend) => {
                let plan = Plan::of(
                    built
                        .iter()
                        .filter_map(|(_, _, t)| t.as_ref().ok())
                        .map(|t| &t.input),
                );
                let plan_dirs = plan.dirs();
                if !plan_dirs.is_empty() {
                    (served, session_errors) = open_sessions(
                        &runtime,
                        &node_backends,
                        &plan_dirs,
                        &cwd,
                        &cache,
                        &session_id,
                    );
                }
                let session = served.first().and_then(|s| s.as_ref().map(Served::id));
                let resolution = runtime.block_on(plan.resolve(
                    backend.client(),
                    backend.platform(),
                    session,
                    config.timeout,
                    cache.frontend_cache(several),
                ));
                for line in &resolution.lines {
                    eprintln!("{line}");
                }
                resolution
            }
            Err(_) => Resolution::default(),
        };
        for (name, def, test) in built {
            let mut checks = Vec::new();
            let (test, original_input) = match test {
                Ok(mut test) => match resolution.apply(&test.input) {
                    Ok(input) => {
                        test.input = check_input(&input);
                        (test, input)
                    }
                    Err(err) => {
                        let report = format!("failed to {}", one_line_chain(&err));
                        let message = report.lines().next().unwrap_or_default().to_owned();
                        for (i, check) in test.checks.iter().enumerate() {
                            let mut r =
                                ctx.record(def, name, index(i), &check.label(), Outcome::Error);
                            r.error_kind = Some(ErrorKind::Input);
                            r.message = Some(message.clone());
                            r.report = Some(report.clone());
                            checks.push(settled(sink, r));
                        }
                        handles.insert(name.clone(), TestHandle { checks });
                        continue;
                    }
                },
                Err(msg) => {
                    let mut r = ctx.record(def, name, 1, "test", Outcome::Error);
                    r.error_kind = Some(ErrorKind::Setup);
                    r.message = Some(msg);
                    checks.push(settled(sink, r));
                    handles.insert(name.clone(), TestHandle { checks });
                    continue;
                }
            };
            if test.checks.is_empty() {
                let mut r = ctx.record(def, name, 1, "test", Outcome::Error);
                r.error_kind = Some(ErrorKind::Setup);
                r.message = Some("the test has no checks: add one with `.check(...)`".to_owned());
                checks.push(settled(sink, r));
            }
            let timeout = test.timeout.unwrap_or(config.timeout);
            let input_digest = test
                .input
                .marshal(&crate::llb::Platform::linux_amd64())
                .ok()
                .and_then(|d| d.head().map(str::to_owned));
            // Several nodes: every check of this input goes to the node its digest is placed on.
            let key = if several {
                input_key(&original_input)
            } else {
                String::new()
            };
            let placed = match &nodes {
                Ok(nodes) if several => nodes.place(&key).unwrap_or(0),
                _ => 0,
            };
            let node_ctx;
            let ctx = match &nodes {
                Ok(nodes) if several => {
                    let node = &nodes.nodes[placed];
                    node_ctx = RecordContext {
                        builder: Some(node.name.clone()),
                        strategy: Some(node.backend.strategy_name()),
                        ..ctx.clone()
                    };
                    &node_ctx
                }
                _ => ctx,
            };
            let backend = match &nodes {
                Ok(nodes) => Ok(Arc::clone(&nodes.nodes[placed].backend)),
                Err(msg) => Err(msg.clone()),
            };
            let shared_test = several.then(|| Arc::new(test.clone()));
            let inputs = if backend.is_ok() {
                TestInputs::of(&test.input, &cwd)
            } else {
                TestInputs::default()
            };
            for (i, check) in test.checks.iter().enumerate() {
                let label = check.label();
                let base = ctx.record(def, name, index(i), &label, Outcome::Error);
                let backend = match &backend {
                    Ok(backend) => Arc::clone(backend),
                    Err(msg) => {
                        let mut r = base;
                        r.error_kind = Some(ErrorKind::Builder);
                        r.message = Some(msg.clone());
                        checks.push(settled(sink, r));
                        continue;
                    }
                };
                if let crate::check::Check::Metadata(m) = check {
                    // Evaluated from the image config by the runner: no exec, no local files.
                    if let Err(err) = check.validate() {
                        let mut r = base;
                        r.error_kind = Some(ErrorKind::Setup);
                        r.message = Some(format!("failed to {err}"));
                        checks.push(settled(sink, r));
                        continue;
                    }
                    let (tx, rx) = oneshot::channel();
                    checks.push(rx);
                    pending.push(Pending {
                        backend,
                        node: placed,
                        again: shared_test.as_ref().map(|t| Again {
                            test: Arc::clone(t),
                            name: name.clone(),
                            index: i,
                            key: key.clone(),
                        }),
                        work: Work::Metadata {
                            input: original_input.clone(),
                            check: m.clone(),
                        },
                        record: base,
                        timeout,
                        locals: Vec::new(),
                        input: None,
                        local_input: false,
                        tx,
                    });
                    continue;
                }
                if let Some(problem) = &inputs.problem {
                    let mut r = base;
                    r.error_kind = Some(ErrorKind::Setup);
                    r.message = Some(format!(
                        "failed to {}",
                        crate::client::one_line_chain(problem)
                    ));
                    checks.push(settled(sink, r));
                    continue;
                }
                let prepared = match backend.prepare(&test, name, i, config.no_cache, check) {
                    Ok(prepared) => prepared,
                    Err(err) => {
                        let mut r = base;
                        r.error_kind = Some(ErrorKind::Setup);
                        r.message = Some(format!("failed to {}", one_line_chain(&err)));
                        checks.push(settled(sink, r));
                        continue;
                    }
                };
                let (tx, rx) = oneshot::channel();
                checks.push(rx);
                let node_probe_dirs = backend.probe_dirs();
                pending.push(Pending {
                    backend,
                    node: placed,
                    again: shared_test.as_ref().map(|t| Again {
                        test: Arc::clone(t),
                        name: name.clone(),
                        index: i,
                        key: key.clone(),
                    }),
                    work: Work::Solve(prepared),
                    record: base,
                    timeout,
                    locals: inputs
                        .dirs
                        .keys()
                        .cloned()
                        .chain(node_probe_dirs.into_keys())
                        .collect(),
                    input: input_digest.clone(),
                    local_input: !inputs.dirs.is_empty(),
                    tx,
                });
            }
            let test_dirs = inputs.dirs;
            // Metadata checks read no files: a test with only those opens no session.
            if test.checks.iter().any(|c| !c.is_metadata()) {
                dirs.extend(test_dirs.clone());
            }
            declared_exports += test.exports.len();
            if !config.export {
                for (i, export) in test.exports.iter().enumerate() {
                    let gate = backend.as_ref().map_or("legacy", |b| b.gate());
                    let mut r = export_record(ctx, def, name, test.checks.len(), i, export, gate);
                    r.outcome = Outcome::Ignored;
                    r.error_kind = None;
                    r.message = Some(NOT_EXPORTING.to_owned());
                    checks.push(settled(sink, r));
                }
            }
            if config.export && !test.exports.is_empty() {
                match &backend {
                    Ok(backend) => {
                        let mut forward = Vec::new();
                        let mut receivers = Vec::new();
                        for _ in &checks {
                            let (tx, rx) = oneshot::channel();
                            forward.push(tx);
                            receivers.push(rx);
                        }
                        let mut exports = Vec::new();
                        for _ in &test.exports {
                            let (tx, rx) = oneshot::channel();
                            exports.push(tx);
                            receivers.push(rx);
                        }
                        let own = std::mem::replace(&mut checks, receivers);
                        export_jobs.push(ExportJob {
                            backend: Arc::clone(backend),
                            targets: Arc::new(Err(String::new())),
                            test: test.clone(),
                            name: name.clone(),
                            def,
                            ctx: ctx.clone(),
                            root: root.clone(),
                            dirs: test_dirs
                                .iter()
                                .chain(probe_dirs.iter())
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            shared_key: cwd.display().to_string(),
                            timeout,
                            checks: own,
                            forward,
                            exports,
                        });
                    }
                    Err(msg) => {
                        for (i, export) in test.exports.iter().enumerate() {
                            let mut r = export_record(
                                ctx,
                                def,
                                name,
                                test.checks.len(),
                                i,
                                export,
                                "legacy",
                            );
                            r.error_kind = Some(ErrorKind::Builder);
                            r.message = Some(msg.clone());
                            checks.push(settled(sink, r));
                        }
                    }
                }
            }
            handles.insert(name.clone(), TestHandle { checks });
        }
        if declared_exports > 0 && !config.export {
            eprintln!(
                "buildtest: {} declared by the selected tests not performed: exports run only with \
                 `cargo buildtest --export` or BUILDTEST_EXPORT=1",
                crate::protocol::count(declared_exports, "export")
            );
        }
        // What each node of the exporting tests can export, and how it gates, asked once per node.
        let mut asked: Vec<(Arc<Backend>, NodeTargets)> = Vec::new();
        for job in &mut export_jobs {
            if let Some((_, targets)) = asked.iter().find(|(b, _)| Arc::ptr_eq(b, &job.backend)) {
                job.targets = Arc::clone(targets);
                continue;
            }
            let backend = &job.backend;
            let targets = runtime
                .block_on(ExportTargets::of(backend.client()))
                .map_err(|e| {
                    format!(
                        "learn what {} can export: {}",
                        backend.builder_name(),
                        one_line_chain(&e)
                    )
                });
            let gate = match backend.gate() {
                "passthrough" => "passthrough (each export solves input.requires(id, [every check]) with the exporter)".to_owned(),
                _ => format!(
                    "legacy (the builder lacks passthroughop: the runner exports the input only after every check of its test passed, by one more solve of the same input, answered from the cache; strategy {})",
                    backend.strategy_name()
                ),
            };
            if several {
                eprintln!(
                    "buildtest: exports on {} gated: {gate}",
                    backend.builder_name()
                );
            } else {
                eprintln!("buildtest: exports gated: {gate}");
            }
            let targets = Arc::new(targets);
            job.targets = Arc::clone(&targets);
            asked.push((Arc::clone(backend), targets));
        }

        // One session for the whole run, opened only when some check reads a local directory.
        if !pending.is_empty() {
            dirs.extend(probe_dirs.clone());
        }
        // The session is opened for the cache's stores and for the export's verdict secret; the
        // checks' own solves name it only for the stores (the export's build names it itself).
        let cache_session = cache.needs_session() && !pending.is_empty();
        let solves_need_cache_session = cache.solves_need_session() && !pending.is_empty();
        if served.is_empty() {
            if let (false, Ok(_)) = (dirs.is_empty() && !cache_session, &nodes) {
                (served, session_errors) =
                    open_sessions(&runtime, &node_backends, &dirs, &cwd, &cache, &session_id);
            }
        } else {
            for s in served.iter().flatten() {
                s.serve(&dirs);
            }
        }
        // One session per node under one id (a check that moves to another node finds its files
        // there too); `None` for a node whose session did not open.
        let session_ids: Arc<Vec<Option<String>>> =
            Arc::new(served.iter().map(|s| s.as_ref().map(Served::id)).collect());
        let statuses: Vec<Option<_>> = served
            .iter()
            .map(|s| s.as_ref().map(Served::status))
            .collect();
        let status = statuses.first().cloned().flatten();
        // The cache export is done by the build the checks are solved in (one node, gateway).
        if let Some(exports) = cache.export_options()
            && !several
        {
            solver.export_on_first_node(exports);
        }
        solver.set_sessions(&session_ids);

        // `BUILDTEST_JOBS` concurrent solves per node (each node is its own builder).
        let node_count = nodes.as_ref().map_or(1, |n| n.nodes.len());
        let permits: Arc<Vec<Arc<Semaphore>>> = Arc::new(
            (0..node_count)
                .map(|_| Arc::new(Semaphore::new(config.jobs)))
                .collect(),
        );
        let passing: Arc<Mutex<Vec<crate::harness::input_verdicts::Solved>>> = Arc::default();
        let mut imports = cache.import_options();
        let mut prefetched: Option<Arc<std::collections::HashSet<String>>> = None;
        // With an imported cache, the checks of each input are first asked for as one verdict
        // (see `Backend::input_verdict`): a verdict found in the import answers all its checks.
        let groups = if imports.is_some() && !config.no_cache {
            crate::harness::input_verdicts::Group::collect(
                pending
                    .iter()
                    .filter_map(|p| match (&p.work, &p.input) {
                        (Work::Solve(prepared), Some(digest)) => {
                            let vertex = prepared.vertex.clone()?;
                            let input = prepared.input.clone()?;
                            Some((
                                Arc::clone(&p.backend),
                                p.node,
                                digest.clone(),
                                vertex,
                                input,
                            ))
                        }
                        _ => None,
                    })
                    .collect(),
            )
        } else {
            Vec::new()
        };
        let mut groups_done = false;
        let mut answered: Arc<std::collections::HashSet<String>> = Arc::default();
        // On several nodes every solve imports the cache itself (each node loads what it needs).
        if cache.can_prefetch()
            && !several
            && let Some(backend) = &run_backend
        {
            let definitions = pending
                .iter()
                .filter_map(|p| match &p.work {
                    Work::Solve(prepared) => {
                        Some((prepared.definition.clone(), prepared.vertex.clone()))
                    }
                    Work::Metadata { .. } => None,
                })
                .collect();
            let session = session_ids.first().cloned().flatten();
            let dockerfiles = resolution.take_build();
            match runtime.block_on(cache.prefetch(
                backend,
                definitions,
                session,
                config.jobs,
                dockerfiles,
                &groups,
            )) {
                Ok((line, cached, by_verdicts)) => {
                    eprintln!("{}{line}", crate::protocol::events::CACHE_LINE);
                    imports = None;
                    prefetched = Some(Arc::new(cached));
                    answered = Arc::new(by_verdicts);
                    groups_done = true;
                }
                Err(why) => eprintln!(
                    "{}every solve imports the cache itself: failed to load it in one build: {why}",
                    crate::protocol::events::CACHE_LINE
                ),
            }
        }
        if !groups_done && !groups.is_empty() {
            let (line, by_verdicts) =
                runtime.block_on(cache.answer_groups(groups, &session_ids, config.jobs));
            eprintln!("{}{line}", crate::protocol::events::CACHE_LINE);
            answered = Arc::new(by_verdicts);
        }
        let collect = cache.exports();
        // When every solve imports the cache itself (a registry import, or a builder that cannot
        // load it in one build), the checks of an input that reads a local directory are solved one
        // after another (other checks stay concurrent). Measured on Docker 26.1.5 (BuildKit
        // v0.13.2) with the cargo_bin example (a local directory copied onto an image): when
        // several solves reach such an input at once while it is answered from an imported cache,
        // only one of their checks is found in that cache and the others re-execute (9 of 14
        // cached, the same every time); solved one at a time, all 14 are. Checks on inputs without
        // local directories are all found concurrently (41 of 41 in the busybox example). The
        // first checks of such inputs run one after another too, as the inputs share parts (the
        // local directory).
        let mut leaders: HashMap<String, tokio::sync::watch::Receiver<bool>> = HashMap::new();
        // By node: the last input's first check (nodes do not wait for each other).
        let mut last_leader: HashMap<usize, tokio::sync::watch::Receiver<bool>> = HashMap::new();
        let session_errors = Arc::new(session_errors);
        for p in pending {
            // Answered by its input's verdict: it passed, from the cache, and is not solved.
            if let Work::Solve(prepared) = &p.work
                && let Some(vertex) = prepared.vertex.as_ref().filter(|v| answered.contains(*v))
            {
                let mut r = p.record;
                r.vertex = Some(vertex.clone());
                r.started_at_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .and_then(|d| u64::try_from(d.as_millis()).ok());
                r.outcome = Outcome::Pass;
                r.error_kind = None;
                r.cached = true;
                if collect && let Ok(mut passing) = passing.lock() {
                    passing.push(crate::harness::input_verdicts::Solved {
                        group: p.input.clone(),
                        vertex: prepared.vertex.clone(),
                        input: prepared.input.clone(),
                        definition: prepared.definition.clone(),
                        passed: true,
                        answered: true,
                    });
                }
                sink.push(r.clone());
                let _ = p.tx.send(r);
                continue;
            }
            let mut lead = None;
            let mut follow = None;
            if let (Some(_), Some(input), true) = (&imports, &p.input, p.local_input) {
                match leaders.get(input) {
                    Some(rx) => {
                        follow = Some(rx.clone());
                        let (tx, rx) = tokio::sync::watch::channel(false);
                        leaders.insert(input.clone(), rx);
                        lead = Some(tx);
                    }
                    None => {
                        let (tx, rx) = tokio::sync::watch::channel(false);
                        leaders.insert(input.clone(), rx.clone());
                        follow = last_leader.insert(p.node, rx);
                        lead = Some(tx);
                    }
                }
            }
            // The session a check needs on `node`: for its input's local directories, the cache's
            // stores, or that node's probe; the node's own error where its session did not open.
            let session_of = {
                let ids = Arc::clone(&session_ids);
                let errors = Arc::clone(&session_errors);
                let node_probe = Arc::clone(&node_probe);
                let input_session = p.local_input || solves_need_cache_session;
                move |node: usize| -> Result<Option<String>, String> {
                    if !(input_session || node_probe.get(node).copied().unwrap_or(false)) {
                        return Ok(None);
                    }
                    match ids.get(node).cloned().flatten() {
                        Some(id) => Ok(Some(id)),
                        None => Err(errors.get(node).cloned().flatten().unwrap_or_else(|| {
                            "failed to open a session on the check's node".to_owned()
                        })),
                    }
                }
            };
            let session = match session_of(p.node) {
                Ok(session) => session,
                Err(msg) => {
                    let mut r = p.record;
                    r.error_kind = Some(ErrorKind::Builder);
                    r.message = Some(msg);
                    sink.push(r.clone());
                    let _ = p.tx.send(r);
                    continue;
                }
            };
            let permits = Arc::clone(&permits);
            let sink = sink.clone();
            let status = statuses.get(p.node).cloned().flatten().or(status.clone());
            let configs = Arc::clone(&configs);
            let imports = imports.clone();
            let prefetched = prefetched.clone();
            let passing = Arc::clone(&passing);
            let group = p.input.clone();
            let nodes = nodes.as_ref().ok().filter(|_| several).map(Arc::clone);
            let no_cache = config.no_cache;
            let timeout = p.timeout;
            let solver = Arc::clone(&solver);
            runtime.spawn(async move {
                let base = p.record.clone();
                let definition = match (&p.work, collect) {
                    (Work::Solve(prepared), true) => Some((
                        prepared.definition.clone(),
                        prepared.vertex.clone(),
                        prepared.input.clone(),
                    )),
                    _ => None,
                };
                if let Some(mut leader) = follow {
                    // An error means the leader's task is gone: go ahead.
                    let _ = leader.wait_for(|done| *done).await;
                }
                // A metadata check's input and check, to evaluate it again on another node.
                let metadata_work = match &p.work {
                    Work::Metadata { input, check } => Some((input.clone(), check.clone())),
                    Work::Solve(_) => None,
                };
                let record = match p.work {
                    Work::Metadata { input, check } => {
                        metadata::evaluate(
                            p.backend.client(),
                            &configs,
                            &input,
                            &check,
                            p.timeout,
                            p.record,
                        )
                        .await
                    }
                    Work::Solve(prepared) => {
                        let node_permits = Arc::clone(&permits[p.node.min(node_count - 1)]);
                        match node_permits.acquire_owned().await {
                            // Queued on a node lost meanwhile: not solved there, moved below.
                            Ok(_) if nodes.as_ref().is_some_and(|n| n.is_lost(p.node)) => {
                                let mut r = p.record;
                                r.error_kind = Some(ErrorKind::Builder);
                                r.message = Some("the check's node was lost".to_owned());
                                r
                            }
                            Ok(_permit) => {
                                solve(
                                    &solver,
                                    &p.backend,
                                    prepared,
                                    p.record,
                                    p.timeout,
                                    session,
                                    imports.clone(),
                                )
                                .await
                            }
                            Err(_) => p.record,
                        }
                    }
                };
                // Moved when its node was lost; the lost node's permit is released by now, and a
                // moved check waits for a permit of the node it moves to.
                let mut record = match (&nodes, &p.again) {
                    (Some(nodes), Some(again)) => {
                        crate::harness::nodes::move_if_lost(
                            nodes,
                            p.node,
                            again,
                            base,
                            record,
                            no_cache,
                            &session_of,
                            |b, node, prepared, rec, session| {
                                let imports = imports.clone();
                                let permits = Arc::clone(&permits[node]);
                                let solver = Arc::clone(&solver);
                                let configs = Arc::clone(&configs);
                                let metadata_work = metadata_work.clone();
                                async move {
                                    match (prepared, metadata_work) {
                                        (Some(prepared), _) => {
                                            let Ok(_permit) = permits.acquire_owned().await else {
                                                return rec;
                                            };
                                            solve(
                                                &solver, &b, prepared, rec, timeout, session,
                                                imports,
                                            )
                                            .await
                                        }
                                        (None, Some((input, check))) => {
                                            metadata::evaluate(
                                                b.client(),
                                                &configs,
                                                &input,
                                                &check,
                                                timeout,
                                                rec,
                                            )
                                            .await
                                        }
                                        (None, None) => rec,
                                    }
                                }
                            },
                        )
                        .await
                    }
                    _ => record,
                };
                if let Some(lead) = lead {
                    let _ = lead.send(true);
                }
                // Executed while the imported cache was loaded, not imported: not cached.
                if let Some(found) = &prefetched
                    && !record.vertex.as_ref().is_some_and(|v| found.contains(v))
                {
                    record.cached = false;
                }
                if let Some((definition, vertex, input)) = definition
                    && let Ok(mut passing) = passing.lock()
                {
                    passing.push(crate::harness::input_verdicts::Solved {
                        group: group.clone(),
                        vertex,
                        input,
                        definition,
                        passed: record.outcome == Outcome::Pass,
                        answered: false,
                    });
                }
                if let (Outcome::Error, Some(status)) = (record.outcome, &status)
                    && let Some(why) = transfer_error(status, &p.locals)
                {
                    record.message = Some(match record.message.take() {
                        Some(msg) => format!("failed to send a local directory: {why}\n{msg}"),
                        None => format!("failed to send a local directory: {why}"),
                    });
                }
                sink.push(record.clone());
                let _ = p.tx.send(record);
            });
        }
        for job in export_jobs {
            let sink = sink.clone();
            let node = nodes
                .as_ref()
                .ok()
                .and_then(|n| {
                    n.nodes
                        .iter()
                        .position(|x| Arc::ptr_eq(&x.backend, &job.backend))
                })
                .unwrap_or(0);
            let session = session_ids.get(node).cloned().flatten();
            runtime.spawn(job.run(session, sink));
        }
        Session {
            runtime,
            handles,
            served: served.into_iter().flatten().collect(),
            probe_dirs: probe_dirs.into_keys().collect(),
            cache,
            passing,
            backend: run_backend,
            solver,
        }
    }

    /// Exports the run's cache (once, after every check finished), when asked to; says what it
    /// did on stderr. `false` when the export failed.
    pub(crate) fn export_cache(&mut self) -> bool {
        let Some(backend) = self.backend.clone() else {
            return true;
        };
        if let Some(line) = self.cache.import_line() {
            eprintln!("{}{line}", crate::protocol::events::CACHE_LINE);
        }
        if !self.cache.exports() {
            return true;
        }
        let passing = self
            .passing
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        let session = self.served.first().map(Served::id);
        match self.runtime.block_on(async {
            let build = self.solver.take_export_build().await;
            self.cache.export(&backend, passing, session, build).await
        }) {
            Ok(exported) => {
                eprintln!("{}{}", crate::protocol::events::CACHE_LINE, exported.line());
                true
            }
            Err(err) => {
                eprintln!("error: failed to {}", one_line_chain(&err));
                false
            }
        }
    }

    /// Closes the client session, if the run opened one, and says what it sent.
    pub(crate) fn close_inputs(&mut self) {
        for served in std::mem::take(&mut self.served) {
            let (stats, probe, err) = self.runtime.block_on(served.close(&self.probe_dirs));
            eprintln!("{}", describe(&stats, probe.as_ref()));
            if let Some(err) = err {
                eprintln!("warning: {err}");
            }
        }
    }
}

/// Opens the run's session, with id `id`, on every node of `backends`, serving `dirs` and the
/// cache's content stores: by node, the session (`None` where it did not open) and the error
/// where it did not.
fn open_sessions(
    runtime: &tokio::runtime::Runtime,
    backends: &[Arc<Backend>],
    dirs: &BTreeMap<String, std::path::PathBuf>,
    cwd: &std::path::Path,
    cache: &RunCache,
    id: &str,
) -> (Vec<Option<Served>>, Vec<Option<String>>) {
    backends
        .iter()
        .map(|backend| {
            match runtime.block_on(Served::open(
                backend.client(),
                dirs,
                cwd,
                cache.stores(),
                cache.secrets(),
                id,
            )) {
                Ok(served) => (Some(served), None),
                Err(err) => (None, Some(format!("failed to {}", one_line_chain(&err)))),
            }
        })
        .unzip()
}

/// What one node can export (or why that could not be learned), shared by its export jobs.
type NodeTargets = Arc<Result<ExportTargets, String>>;

/// Why a declared export was not performed on a plain run.
const NOT_EXPORTING: &str =
    "not performed: exports run only with `cargo buildtest --export` or BUILDTEST_EXPORT=1";

/// A check whose record is known before anything is solved.
fn settled(sink: &Sink, record: CheckRecord) -> oneshot::Receiver<CheckRecord> {
    let (tx, rx) = oneshot::channel();
    sink.push(record.clone());
    let _ = tx.send(record);
    rx
}

pub(crate) async fn solve(
    solver: &CheckSolver,
    backend: &Backend,
    prepared: Prepared,
    mut record: CheckRecord,
    timeout: std::time::Duration,
    session: Option<String>,
    cache: Option<crate::proto::control::CacheOptions>,
) -> CheckRecord {
    let started = Instant::now();
    record.started_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    record.vertex = prepared.vertex.clone();
    let solved = tokio::time::timeout(
        timeout,
        solver.solve(backend, &prepared, session, cache, &mut record),
    )
    .await;
    match solved {
        Ok(()) => {}
        Err(_) => {
            record.outcome = Outcome::Error;
            record.error_kind = Some(ErrorKind::Timeout);
            record.message = Some(format!(
                "the check did not finish within {timeout:.0?} (BUILDTEST_TIMEOUT or Test::timeout)"
            ));
        }
    }
    record.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    record
}
