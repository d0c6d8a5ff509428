//! The run's cache: `BUILDTEST_CACHE_FROM` imported on every solve, `BUILDTEST_CACHE_TO` exported
//! **once per suite binary**, after its checks ran.
//!
//! The export happens at the end of the gateway build the checks were solved in: for each
//! input whose every check passed, that input's verdict ([`Backend::input_verdict`]: "these
//! checks passed on this input", buildable only there), and the passing checks of the other
//! inputs themselves, under one root the build returns; BuildKit exports that result's cache
//! (`mode=min` unless given). Where the checks were solved by `Control.Solve`, one more solve
//! exports the passing checks themselves (`mode=max` unless given). Checks that failed or could
//! not run are not in that graph, an input with a failing check gets no verdict, and BuildKit
//! never caches a failed exec: a failure is never exported as passing, whatever the strategy.
//!
//! On import, each input's verdict is looked up first ([`Group`]): found, it answers all the
//! input's checks without solving them.
//!
//! `type=local` entries travel through the run's session ([`ContentStores`]); after the export the
//! cache manifest is recorded in `DIR/index.json` under the suite's tag
//! ([`CacheEntry::for_suite`]). A `type=local` import becomes one import per manifest of
//! `DIR/index.json` (every suite's, or only `tag=`'s).

use std::time::Instant;

use crate::client::cache::{self, CacheKind, layout};
use crate::client::{CacheEntry, ContentStats, ContentStores, SolveOptions, one_line_chain};
use crate::harness::backend::Backend;
use crate::harness::input_verdicts::{Group, Solved, group_verdict_parts, split_groups};
use crate::harness::nodes::Nodes;
use crate::proto::control::{CacheOptions, CacheOptionsEntry};
use crate::proto::pb;
use crate::protocol::SuiteSettings;

/// A cache setting that cannot be used (before anything runs), or an export that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CacheError {
    /// The builder cannot do what was asked.
    #[error(transparent)]
    Unsupported(#[from] cache::CacheUnsupported),
    /// Asking the builder what it can do failed.
    #[error("ask the builder whether it can export cache")]
    Support(#[source] crate::client::ClientError),
    /// A local cache directory could not be read or prepared.
    #[error("use the local cache directory {dir}")]
    Layout {
        /// The directory.
        dir: String,
        /// Why.
        #[source]
        source: layout::LayoutError,
    },
    /// Creating an export directory failed.
    #[error("create the cache directory {dir}")]
    Create {
        /// The directory.
        dir: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The export solve failed.
    #[error("export the cache ({entries}): {message}")]
    Export {
        /// The entries.
        entries: String,
        /// Why.
        message: String,
    },
    /// `--cache-to` on a run over several nodes: each node holds only its own checks' results.
    #[error(
        "export the cache from a run on {nodes} nodes: each node holds only the results of the \
         checks placed on it, and one export would re-run the others; export from a one-node run \
         (one --addr/--builder), or drop --cache-to (--cache-from works on several nodes)"
    )]
    SeveralNodes {
        /// How many nodes answered.
        nodes: usize,
    },
    /// The passing checks' graphs could not be merged.
    #[error("build the cache export's graph: {0}")]
    Graph(String),
}

/// The run's cache plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunCache {
    imports: Vec<CacheEntry>,
    exports: Vec<CacheEntry>,
    stores: ContentStores,
    /// The session's secrets: the verdicts' permission, served only while exporting.
    secrets: crate::client::Secrets,
    /// Lines to show before the run (imports found, or not).
    pub(crate) notes: Vec<String>,
}

/// What the builds of the run's Dockerfile inputs need from its cache
/// ([`RunCache::frontend_cache`]).
///
/// The imports go to the Dockerfile frontend itself (`cache-imports`): without them its steps
/// execute again on a fresh builder, and the checks on the result, keyed on executed steps, miss
/// the import. That is not enough: the checks must also be loaded **in the gateway build that
/// built the Dockerfile**, and all Dockerfiles must be built in that one build. Measured on
/// Docker 26.1.5 (BuildKit v0.13.2) with the Dockerfile example (3 Dockerfiles, 13 checks) after
/// a prune: every Dockerfile step was answered from the import in each case, and the checks
/// were found in it
///
/// - 0 of 13 times when [`RunCache::prefetch`] loaded them in a build of its own;
/// - 1 to 4 of 13 when each Dockerfile had its own build and its checks were loaded there;
/// - 13 of 13 when the Dockerfiles and then every check were solved in one build.
///
/// (Each gateway build imports the cache anew; the Dockerfiles share steps, and a step first
/// solved for one build apparently does not lead to the imported checks in another.)
#[derive(Debug, Clone, Default)]
pub(crate) struct FrontendCache {
    /// The imports, given to the Dockerfile frontend.
    pub(crate) imports: Vec<CacheOptionsEntry>,
    /// Build every Dockerfile in one gateway build and keep it open for
    /// [`RunCache::prefetch`].
    pub(crate) shared_build: bool,
}

/// What an export did.
#[derive(Debug, Clone)]
pub(crate) struct Exported {
    pub(crate) checks: usize,
    /// Groups of checks (by input) exported as one verdict each.
    pub(crate) groups: usize,
    /// Checks answered from an import that were not exported again.
    pub(crate) dropped: usize,
    pub(crate) seconds: f64,
    pub(crate) content: ContentStats,
    pub(crate) entries: String,
}

impl RunCache {
    /// Checks the settings against the builder and reads the local imports' indexes.
    pub(crate) async fn plan(
        settings: &SuiteSettings,
        nodes: &Nodes,
        suite: &str,
    ) -> Result<RunCache, CacheError> {
        let mut plan = RunCache::default();
        if settings.cache_to.is_empty() && settings.cache_from.is_empty() {
            return Ok(plan);
        }
        if !settings.cache_to.is_empty() && nodes.nodes.len() > 1 {
            return Err(CacheError::SeveralNodes {
                nodes: nodes.nodes.len(),
            });
        }
        let backend = &nodes.primary().backend;
        if !settings.cache_to.is_empty() {
            let support = backend
                .client()
                .cache_support()
                .await
                .map_err(CacheError::Support)?;
            support.check(&backend.builder_name(), &settings.cache_to)?;
        }
        for entry in &settings.cache_to {
            let entry = entry.for_suite(suite);
            if let (CacheKind::Local, Some(dir)) = (entry.kind, entry.local_dir()) {
                std::fs::create_dir_all(&dir).map_err(|source| CacheError::Create {
                    dir: dir.display().to_string(),
                    source,
                })?;
                plan.stores.insert_local(&dir.display().to_string(), &dir);
            }
            plan.exports.push(entry);
        }
        for entry in &settings.cache_from {
            let Some(dir) = entry.local_dir() else {
                plan.imports.push(entry.for_suite(suite));
                continue;
            };
            let wanted = entry.attrs.get("tag");
            let manifests = layout::manifests(&dir).map_err(|source| CacheError::Layout {
                dir: dir.display().to_string(),
                source,
            })?;
            let mut found = 0;
            for (tag, digest) in manifests {
                if wanted.is_some_and(|w| *w != tag) {
                    continue;
                }
                let mut one = entry.clone();
                one.attrs.remove("tag");
                one.attrs.insert("digest".to_owned(), digest);
                plan.imports.push(one);
                found += 1;
            }
            if found == 0 {
                plan.notes.push(format!(
                    "nothing to import from {} yet (no manifest{} in its index.json); the checks run without it",
                    dir.display(),
                    wanted.map(|t| format!(" tagged `{t}`")).unwrap_or_default()
                ));
            } else {
                plan.stores.insert_local(&dir.display().to_string(), &dir);
                plan.notes.push(format!(
                    "importing from {} ({found} manifest{})",
                    dir.display(),
                    if found == 1 { "" } else { "s" }
                ));
            }
        }
        Ok(plan)
    }

    /// Whether the solves need the session (a `type=local` entry, or an export: the verdicts'
    /// permission is a session secret).
    pub(crate) fn needs_session(&self) -> bool {
        !self.stores.is_empty() || !self.exports.is_empty()
    }

    /// What the build that exports carries (`None`: nothing to export): `mode=min` unless an
    /// entry says otherwise, as buildx — the verdicts' one result goes out, the inputs' and the
    /// checks' records as keys only (see [`RunCache::export`]).
    pub(crate) fn export_options(&self) -> Option<CacheOptions> {
        (!self.exports.is_empty())
            .then(|| cache::cache_options(&[], &with_mode(&self.exports, "min")))
    }

    /// Whether every check's solve must name the session: a `type=local` entry (the daemon reads
    /// and writes its content store through it).
    pub(crate) fn solves_need_session(&self) -> bool {
        !self.stores.is_empty()
    }

    /// The secrets the run's sessions serve.
    pub(crate) fn secrets(&self) -> crate::client::Secrets {
        self.secrets.clone()
    }

    /// The content stores the session serves.
    pub(crate) fn stores(&self) -> ContentStores {
        self.stores.clone()
    }

    /// What every check's solve carries.
    pub(crate) fn import_options(&self) -> Option<CacheOptions> {
        (!self.imports.is_empty()).then(|| cache::cache_options(&self.imports, &[]))
    }

    /// What the Dockerfile inputs' builds import (the same entries as the checks' solves; their
    /// `type=local` ones are served by the session the builds are linked to, which serves
    /// [`RunCache::stores`]), and whether they share one build kept open for
    /// [`RunCache::prefetch`]: when it will run, i.e. [`RunCache::can_prefetch`] on one node.
    pub(crate) fn frontend_cache(&self, several_nodes: bool) -> FrontendCache {
        FrontendCache {
            imports: cache::cache_options(&self.imports, &[]).imports,
            shared_build: self.can_prefetch() && !several_nodes,
        }
    }

    /// What the builder read from local imports so far (`None` without local imports).
    pub(crate) fn import_line(&self) -> Option<String> {
        let local = self
            .imports
            .iter()
            .filter(|e| e.kind == CacheKind::Local)
            .count();
        (local > 0).then(|| {
            format!(
                "the builder read {} bytes from the imported directories",
                self.stores.stats().bytes_read
            )
        })
    }

    /// Loads the imported cache into the builder's own cache in **one** gateway build: every
    /// check's graph is evaluated there with the imports (failures are ignored: the checks' own
    /// solves report them), so the daemon resolves each import once instead of once per check
    /// solve, and the checks' own solves then need no import (they find what was loaded in the
    /// builder's cache). That build is `dockerfiles` when the run's Dockerfile inputs were built
    /// in one kept open ([`FrontendCache`] says why), else a new one; this ends it. Returns a
    /// line for stderr and the check vertices that were answered from the cache there (the
    /// others executed or failed in that build: a check's own solve then finds an executed one
    /// in the builder's cache, but it was not imported, so its record must not say cached).
    /// `Err` (with why) when the builder cannot (no `gateway.solve.evaluate`, BuildKit < v0.10):
    /// the solves then import themselves.
    pub(crate) async fn prefetch(
        &self,
        backend: &Backend,
        definitions: Vec<(pb::Definition, Option<String>)>,
        session: Option<String>,
        jobs: usize,
        dockerfiles: Option<crate::client::gateway::GatewayBuild>,
        groups: &[Group],
    ) -> Result<
        (
            String,
            std::collections::HashSet<String>,
            std::collections::HashSet<String>,
        ),
        String,
    > {
        use crate::client::gateway::GatewayOptions;
        let started = Instant::now();
        let imports = cache::cache_options(&self.imports, &[]).imports;
        let build = match dockerfiles {
            Some(build) => build,
            None => backend
                .client()
                .gateway_build_with(GatewayOptions {
                    session,
                    ..GatewayOptions::default()
                })
                .await
                .map_err(|e| one_line_chain(&e))?,
        };
        if !build.caps().has("gateway.solve.evaluate") {
            let _ = build.finish().await;
            return Err(
                "the builder's gateway cannot evaluate definitions (BuildKit < v0.10)".to_owned(),
            );
        }
        let build = std::sync::Arc::new(build);
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
        let count = definitions.len();
        // First the groups' verdicts: a verdict answered from the cache answers all its checks.
        let mut tasks = tokio::task::JoinSet::new();
        for (i, group) in groups.iter().enumerate() {
            let build = std::sync::Arc::clone(&build);
            let permits = std::sync::Arc::clone(&permits);
            let imports = imports.clone();
            let definition = group.verdict.definition.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let ok = build
                    .evaluate_with_cache(definition, &[], imports)
                    .await
                    .is_ok();
                (i, ok)
            });
        }
        let mut answered = std::collections::HashSet::new();
        let mut answered_groups = 0;
        while let Some(done) = tasks.join_next().await {
            let Ok((i, ok)) = done else { continue };
            let group = &groups[i];
            let Some(vertex) = &group.verdict.vertex else {
                continue;
            };
            if ok
                && build
                    .vertex_done(vertex, std::time::Duration::from_millis(200))
                    .await
                    .is_some_and(|v| v.cached)
            {
                answered.extend(group.vertices.iter().cloned());
                answered_groups += 1;
            }
        }
        let definitions: Vec<_> = definitions
            .into_iter()
            .filter(|(_, v)| !v.as_ref().is_some_and(|v| answered.contains(v)))
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        let vertices: Vec<String> = definitions.iter().filter_map(|(_, v)| v.clone()).collect();
        for (definition, _) in definitions {
            let build = std::sync::Arc::clone(&build);
            let permits = std::sync::Arc::clone(&permits);
            let imports = imports.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                build
                    .evaluate_with_cache(definition, &[], imports)
                    .await
                    .is_ok()
            });
        }
        while tasks.join_next().await.is_some() {}
        let mut cached = std::collections::HashSet::new();
        for vertex in vertices {
            if build
                .vertex_done(&vertex, std::time::Duration::from_millis(200))
                .await
                .is_some_and(|v| v.cached)
            {
                cached.insert(vertex);
            }
        }
        if let Ok(build) = std::sync::Arc::try_unwrap(build) {
            let _ = build.finish().await;
        }
        let line = format!(
            "loaded the imported cache in one build: {} of {count} checks answered from a cache (the import or the builder's own), {} of them by the verdicts of {answered_groups} of {} input{} ({:.2} s)",
            cached.len() + answered.len(),
            answered.len(),
            groups.len(),
            if groups.len() == 1 { "" } else { "s" },
            started.elapsed().as_secs_f64()
        );
        cached.extend(answered.iter().cloned());
        Ok((line, cached, answered))
    }

    /// Answers groups from the imported cache with one solve of each group's verdict on its
    /// node (with the imports), where [`RunCache::prefetch`] is not used (a registry import,
    /// several nodes, a builder without `gateway.solve.evaluate`). Returns a line for stderr and
    /// the check vertices answered: every check of a group whose verdict came from the cache.
    /// A verdict that is not there fails at once (only the export may build one, see
    /// [`Backend::input_verdict`]); its checks are then solved one by one.
    pub(crate) async fn answer_groups(
        &self,
        groups: Vec<Group>,
        sessions: &[Option<String>],
        jobs: usize,
    ) -> (String, std::collections::HashSet<String>) {
        let started = Instant::now();
        let Some(imports) = self.import_options() else {
            return (String::new(), Default::default());
        };
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let count = groups.len();
        for group in groups {
            let permits = std::sync::Arc::clone(&permits);
            let options = SolveOptions {
                session: sessions.get(group.node).cloned().flatten(),
                cache: Some(imports.clone()),
                ..SolveOptions::default()
            };
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let report = group
                    .backend
                    .client()
                    .solve_and_wait(group.verdict.definition.clone(), options)
                    .await;
                let hit = report.result.is_ok()
                    && group
                        .verdict
                        .vertex
                        .as_deref()
                        .and_then(|v| report.vertex(v))
                        .is_some_and(|v| v.cached);
                hit.then_some(group.vertices)
            });
        }
        let mut answered = std::collections::HashSet::new();
        let mut hits = 0;
        while let Some(done) = tasks.join_next().await {
            if let Ok(Some(vertices)) = done {
                answered.extend(vertices);
                hits += 1;
            }
        }
        let line = format!(
            "{} checks answered from the imported cache by the verdicts of {hits} of {count} input{} ({:.2} s)",
            answered.len(),
            if count == 1 { "" } else { "s" },
            started.elapsed().as_secs_f64()
        );
        (line, answered)
    }

    /// Whether [`RunCache::prefetch`] can stand in for per-solve imports: every import is
    /// `type=local`. Measured on Docker 26.1.5: after loading a `type=local` import in one build,
    /// the checks' own solves found every loaded check in the builder's cache; after loading a
    /// `type=registry` import the same way (4 of 5 checks found), they found none.
    pub(crate) fn can_prefetch(&self) -> bool {
        !self.imports.is_empty() && self.imports.iter().all(|e| e.kind == CacheKind::Local)
    }

    /// Whether anything is to be exported.
    pub(crate) fn exports(&self) -> bool {
        !self.exports.is_empty()
    }

    /// Exports the cache of the passing checks, once, after every check; records local
    /// manifests.
    ///
    /// With `build` — the build the checks were solved in, opened with the exports on its
    /// `Control.Solve` ([`crate::harness::solve_path::CheckSolver::export_on_first_node`]) — each
    /// input whose every check passed is exported as that input's verdict
    /// ([`Backend::input_verdict`]), built in that build, so on the same images and directory
    /// contents as its checks, with the session secret that only this step serves: a fresh
    /// runner then loads one result per input instead of one per check, and the export walks a
    /// few records per input instead of every check's. A verdict already answered from an import
    /// this run is kept only if the build still finds it (nothing can build one without the
    /// secret, which is not served then). The build returns the root of the verdicts and of the
    /// passing checks of the other inputs ([`Backend::export_root`]), and BuildKit exports its cache:
    /// `mode=min` unless the entry says otherwise, as buildx (the verdicts' one shared result;
    /// every other record, the checks of an input with a failure included, as a key only — with
    /// `mode=max` those checks' results and the inputs' layers go out too).
    ///
    /// Without such a build (the checks were solved by `Control.Solve`), one more solve exports
    /// the passing checks themselves, `mode=max` unless given (no verdicts: nothing would tie
    /// one to what its checks ran on); checks answered from an import are not exported then
    /// (they did not run).
    pub(crate) async fn export(
        &self,
        backend: &Backend,
        solved: Vec<Solved>,
        session: Option<String>,
        build: Option<crate::client::gateway::GatewayBuild>,
    ) -> Result<Exported, CacheError> {
        let started = Instant::now();
        let entries = self
            .exports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let (whole, mut loose) = split_groups(solved);
        let before = self.stores.stats();
        let graph = |e: crate::harness::errors::PrepareError| CacheError::Graph(one_line_chain(&e));
        // Without verdicts the checks' own results must go out: `mode=max` unless given.
        let options = cache::cache_options(&[], &with_mode(&self.exports, "max"));
        let mut checks = loose.len();
        let mut groups = 0;
        let mut dropped = 0;
        let response = match build {
            Some(build) => {
                let imports = self.import_options().map(|o| o.imports).unwrap_or_default();
                let mut roots = Vec::with_capacity(whole.len() + loose.len());
                for group in &whole {
                    let (input, vertices) = group_verdict_parts(group);
                    let verdict = backend.input_verdict(&input, &vertices).map_err(graph)?;
                    if group.iter().any(|s| s.answered) {
                        let found = build
                            .evaluate_with_cache(verdict.definition.clone(), &[], imports.clone())
                            .await
                            .is_ok()
                            && match &verdict.vertex {
                                Some(v) => build
                                    .vertex_done(v, std::time::Duration::from_secs(2))
                                    .await
                                    .is_some_and(|r| r.cached),
                                None => false,
                            };
                        if !found {
                            dropped += group.len();
                            continue;
                        }
                    }
                    checks += group.len();
                    groups += 1;
                    roots.push(verdict.definition);
                }
                roots.append(&mut loose);
                if roots.is_empty() {
                    let _ = build.finish().await;
                    None
                } else {
                    let root = match roots.len() {
                        1 => roots.remove(0),
                        _ => {
                            let all: Vec<&pb::Definition> = roots.iter().collect();
                            backend.export_root(&all).map_err(graph)?.definition
                        }
                    };
                    // The verdicts' permission, for this step only (see `Backend::input_verdict`).
                    self.secrets.insert(
                        crate::harness::input_verdicts::VERDICT_SECRET,
                        b"exporting".to_vec(),
                    );
                    let finished = build
                        .finish_with(root, std::collections::BTreeMap::new())
                        .await;
                    self.secrets
                        .remove(crate::harness::input_verdicts::VERDICT_SECRET);
                    let finished = finished.map_err(|err| CacheError::Export {
                        entries: entries.clone(),
                        message: one_line_chain(&err),
                    })?;
                    Some(finished.exporter_response)
                }
            }
            None => {
                for group in whole {
                    for s in group {
                        if s.answered {
                            dropped += 1;
                        } else {
                            loose.push(s.definition);
                        }
                    }
                }
                checks = loose.len();
                let root = match loose.len() {
                    0 => None,
                    1 => Some(loose.remove(0)),
                    _ => {
                        let all: Vec<&pb::Definition> = loose.iter().collect();
                        Some(backend.export_root(&all).map_err(graph)?.definition)
                    }
                };
                match root {
                    None => None,
                    Some(root) => {
                        let solve = SolveOptions {
                            session,
                            cache: Some(options.clone()),
                            ..SolveOptions::default()
                        };
                        let report = backend.client().solve_and_wait(root, solve).await;
                        if let Err(err) = &report.result {
                            return Err(CacheError::Export {
                                entries,
                                message: one_line_chain(err),
                            });
                        }
                        Some(report.exporter_response)
                    }
                }
            }
        };
        if let Some(response) = &response {
            for entry in &self.exports {
                let (CacheKind::Local, Some(dir)) = (entry.kind, entry.local_dir()) else {
                    continue;
                };
                let Some(manifest) = response.get("cache.manifest") else {
                    return Err(CacheError::Export {
                        entries,
                        message: "the builder returned no cache manifest (cache.manifest)"
                            .to_owned(),
                    });
                };
                let tag = entry
                    .attrs
                    .get("tag")
                    .cloned()
                    .unwrap_or_else(|| "latest".to_owned());
                layout::put(&dir, &tag, manifest).map_err(|source| CacheError::Layout {
                    dir: dir.display().to_string(),
                    source,
                })?;
            }
        }
        let after = self.stores.stats();
        Ok(Exported {
            checks,
            groups,
            dropped,
            seconds: started.elapsed().as_secs_f64(),
            content: ContentStats {
                bytes_written: after.bytes_written - before.bytes_written,
                blobs_written: after.blobs_written - before.blobs_written,
                bytes_read: after.bytes_read,
            },
            entries,
        })
    }
}

/// `entries` with `mode=MODE` where they say no mode (`type=inline` has none).
fn with_mode(entries: &[CacheEntry], mode: &str) -> Vec<CacheEntry> {
    entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if e.kind != CacheKind::Inline {
                e.attrs
                    .entry("mode".to_owned())
                    .or_insert_with(|| mode.to_owned());
            }
            e
        })
        .collect()
}

impl Exported {
    /// One line for stderr.
    pub(crate) fn line(&self) -> String {
        let written = if self.content.blobs_written > 0 {
            format!(
                "; {} blobs, {} bytes written to local directories",
                self.content.blobs_written, self.content.bytes_written
            )
        } else {
            String::new()
        };
        let dropped = if self.dropped > 0 {
            format!(
                "; {} check{} answered from the import not exported again (not found in the build, or no build to check it in)",
                self.dropped,
                if self.dropped == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        if self.checks == 0 {
            return format!("not exported ({}): no check passed{dropped}", self.entries);
        }
        format!(
            "exported ({}): {} passing check{} in {:.2} s{written} ({} input{} whose checks all passed as one verdict each){dropped}",
            self.entries,
            self.checks,
            if self.checks == 1 { "" } else { "s" },
            self.seconds,
            self.groups,
            if self.groups == 1 { "" } else { "s" },
        )
    }
}
