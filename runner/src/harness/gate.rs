//! Performing a test's gated exports (see [`crate::harness::export`] for the rules): wait for
//! every check's record, then, only if all passed, one solve per export with its exporter; one
//! record per export (`export: image NAME`), which passes with what was written or fails naming
//! the checks that blocked it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;

use crate::client::export::{forget_temp, remove_temp, temp_sibling, track_temp};
use crate::client::{
    ExportTarget, ExportTargets, ExporterSpec, FileSendTarget, LocalDirs, SessionOptions,
    SolveError, SolveOptions, one_line_chain,
};
use crate::harness::Test;
use crate::harness::backend::Backend;
use crate::harness::export::{Export, ExportKind};
use crate::harness::registry::TestDef;
use crate::harness::run::{RecordContext, Sink};
use crate::proto::pb;
use crate::report::{CheckRecord, ErrorKind, ExportRecord, Outcome};

/// One test's exports, waiting for its checks.
pub(crate) struct ExportJob {
    pub(crate) backend: Arc<Backend>,
    /// What the builder can export, or why that could not be learned.
    pub(crate) targets: Arc<Result<ExportTargets, String>>,
    pub(crate) test: Test,
    pub(crate) name: String,
    pub(crate) def: &'static TestDef,
    pub(crate) ctx: RecordContext,
    /// Relative export paths are resolved against this.
    pub(crate) root: PathBuf,
    /// The local directories the test's graph reads (its inputs and the probe's), served again
    /// by the session of an export that writes through FileSend.
    pub(crate) dirs: BTreeMap<String, PathBuf>,
    /// The run's session shared key (the current directory), so the daemon's copies are reused.
    pub(crate) shared_key: String,
    pub(crate) timeout: Duration,
    /// The check records, as the check solves finish.
    pub(crate) checks: Vec<oneshot::Receiver<CheckRecord>>,
    /// Where the check records go on to (the trial).
    pub(crate) forward: Vec<oneshot::Sender<CheckRecord>>,
    /// One per export: its record.
    pub(crate) exports: Vec<oneshot::Sender<CheckRecord>>,
}

/// The base record of export `i` (0-based) of a test with `checks` checks.
pub(crate) fn export_record(
    ctx: &RecordContext,
    def: &TestDef,
    name: &str,
    checks: usize,
    i: usize,
    export: &Export,
    gate: &str,
) -> CheckRecord {
    let number = u32::try_from(checks + i + 1).unwrap_or(u32::MAX);
    let mut record = ctx.record(def, name, number, &export.label(), Outcome::Error);
    record.export = Some(Box::new(ExportRecord {
        kind: export.target().name().to_owned(),
        target: match export.kind() {
            ExportKind::Image(name) => name.clone(),
            _ => export
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        },
        gate: gate.to_owned(),
        ..ExportRecord::default()
    }));
    record
}

impl ExportJob {
    /// Waits for the checks (forwarding each record), then performs or blocks every export.
    pub(crate) async fn run(self, session: Option<String>, sink: Sink) {
        let ExportJob {
            backend,
            targets,
            test,
            name,
            def,
            ctx,
            root,
            dirs,
            shared_key,
            timeout,
            checks,
            forward,
            exports,
        } = self;
        let mut records = Vec::with_capacity(checks.len());
        for (rx, tx) in checks.into_iter().zip(forward) {
            let record = rx.await.unwrap_or_else(|_| {
                let mut r = CheckRecord::new("", "", 0, "check", Outcome::Error);
                r.error_kind = Some(ErrorKind::Builder);
                r.message = Some("the check's task ended without a result".to_owned());
                r
            });
            let _ = tx.send(record.clone());
            records.push(record);
        }
        let blocking: Vec<&CheckRecord> = records
            .iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .collect();
        for (i, (export, tx)) in test.exports.iter().zip(exports).enumerate() {
            let mut record = export_record(
                &ctx,
                def,
                &name,
                test.checks.len(),
                i,
                export,
                backend.gate(),
            );
            if let Some(why) = refusal(&targets, export.target()) {
                record.error_kind = Some(ErrorKind::Setup);
                record.message = Some(format!("failed to {why}"));
            } else if !blocking.is_empty() || records.is_empty() {
                block(&mut record, &blocking, records.len());
            } else {
                let started = Instant::now();
                record.started_at_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .and_then(|d| u64::try_from(d.as_millis()).ok());
                let performed = tokio::time::timeout(
                    timeout,
                    perform(
                        &backend,
                        &targets,
                        &test,
                        &name,
                        export,
                        &root,
                        Sessions {
                            run: session.clone(),
                            dirs: &dirs,
                            shared_key: &shared_key,
                        },
                    ),
                )
                .await;
                match performed {
                    Ok(Ok(done)) => {
                        record.outcome = Outcome::Pass;
                        record.error_kind = None;
                        record.cached = done.cached;
                        if let Some(info) = &mut record.export {
                            info.digest = done.digest;
                            info.path = done.path.map(|p| p.display().to_string());
                            info.size = done.size;
                        }
                    }
                    Ok(Err(failure)) => {
                        record.error_kind = Some(failure.kind);
                        record.message = Some(
                            failure
                                .message
                                .lines()
                                .next()
                                .unwrap_or_default()
                                .to_owned(),
                        );
                        record.report = Some(failure.message);
                    }
                    Err(_) => {
                        record.error_kind = Some(ErrorKind::Timeout);
                        record.message = Some(format!(
                            "the export did not finish within {timeout:.0?} (BUILDTEST_TIMEOUT or Test::timeout); nothing was written"
                        ));
                    }
                }
                record.duration_ms =
                    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            }
            sink.push(record.clone());
            let _ = tx.send(record);
        }
    }
}

/// The graph an export solves: `input.requires(id, checks)` when the builder has the passthrough
/// op (its output is `input`, and BuildKit cannot produce it unless every check exec succeeds),
/// else `input` itself (the runner gates). `checks` are the check execs built on `input`.
pub(crate) fn gate_graph(
    input: &crate::llb::State,
    id: &str,
    checks: Vec<crate::llb::State>,
    passthrough: bool,
) -> crate::llb::State {
    if passthrough {
        input.requires(id, checks)
    } else {
        input.clone()
    }
}

/// Why this builder cannot perform `target`, if it cannot.
fn refusal(targets: &Result<ExportTargets, String>, target: ExportTarget) -> Option<String> {
    match targets {
        Ok(targets) => targets.refusal(target),
        Err(why) => Some(why.clone()),
    }
}

/// Marks `record` as blocked by the checks that did not pass.
fn block(record: &mut CheckRecord, blocking: &[&CheckRecord], total: usize) {
    record.outcome = Outcome::Fail;
    record.error_kind = None;
    let names: Vec<String> = blocking
        .iter()
        .map(|r| format!("{}: {} ({})", r.check, r.label, r.outcome.as_str()))
        .collect();
    if names.is_empty() {
        record.message = Some("not exported: the test has no checks to gate it".to_owned());
    } else {
        record.message = Some(format!(
            "not exported: blocked by {} of {total} checks: {}",
            names.len(),
            names.join(", ")
        ));
    }
    let mut report = String::from("nothing was written; the checks that did not pass:\n");
    for name in &names {
        report.push_str("  ");
        report.push_str(name);
        report.push('\n');
    }
    record.report = Some(report);
    if let Some(info) = &mut record.export {
        info.blocked_by = names;
    }
}

/// What an export wrote.
struct Done {
    digest: Option<String>,
    path: Option<PathBuf>,
    size: Option<u64>,
    /// Every op of the exported graph was answered from the cache.
    cached: bool,
}

/// Why an export wrote nothing.
struct Failure {
    kind: ErrorKind,
    message: String,
}

impl Failure {
    fn builder(message: String) -> Failure {
        Failure {
            kind: ErrorKind::Builder,
            message,
        }
    }
}

/// The sessions an export solve may use.
struct Sessions<'a> {
    /// The run's session (local inputs), if it has one.
    run: Option<String>,
    /// What a dedicated FileSend session must serve too.
    dirs: &'a BTreeMap<String, PathBuf>,
    shared_key: &'a str,
}

/// How an export is written on this builder.
enum Route {
    /// An exporter that needs nothing from the client (`moby`, `image` push).
    Direct(ExporterSpec),
    /// `moby` (untagged), then the engine's image save into the file.
    MobyThenSave,
    /// An exporter streaming a file through the session's FileSend (`docker`, `oci`, `tar`);
    /// `unpack`: the stream is a tar to unpack into the destination directory.
    FileSend {
        exporter: ExporterSpec,
        unpack: bool,
    },
}

fn route(export: &Export, docker: bool) -> Route {
    match (export.kind(), docker) {
        (ExportKind::Image(image), true) => Route::Direct(ExporterSpec::moby(Some(image))),
        (ExportKind::Image(image), false) => Route::Direct(ExporterSpec::image_push(image)),
        (ExportKind::DockerTar(_) | ExportKind::OciTar(_), true) => Route::MobyThenSave,
        (ExportKind::DockerTar(_), false) => Route::FileSend {
            exporter: ExporterSpec::file("docker"),
            unpack: false,
        },
        (ExportKind::OciTar(_), false) => Route::FileSend {
            exporter: ExporterSpec::file("oci"),
            unpack: false,
        },
        (ExportKind::LocalDir(_), _) => Route::FileSend {
            exporter: ExporterSpec::file("tar"),
            unpack: true,
        },
    }
}

/// The one solve of an export (and, for a tar from a Docker engine, the image save).
async fn perform(
    backend: &Backend,
    targets: &Result<ExportTargets, String>,
    test: &Test,
    name: &str,
    export: &Export,
    root: &Path,
    sessions: Sessions<'_>,
) -> Result<Done, Failure> {
    let docker = targets.as_ref().is_ok_and(|t| t.docker_engine);
    let definition = backend.export_definition(test, name).map_err(|e| Failure {
        kind: ErrorKind::Setup,
        message: format!("failed to {}", one_line_chain(&e)),
    })?;
    let config = test.input.image_config().map(image_config_json);
    let with_config = |mut exporter: ExporterSpec| {
        if let Some(config) = &config
            && exporter.kind != "tar"
        {
            exporter
                .attrs
                .insert("containerimage.config".to_owned(), config.clone());
        }
        exporter
    };
    let ops = op_digests(&definition);
    let dest = export.resolved_path(root);
    if let Some(parent) = dest.as_deref().and_then(Path::parent) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Failure {
                kind: ErrorKind::Setup,
                message: format!("failed to create {}: {e}", parent.display()),
            })?;
    }
    let client = backend.client();
    let solve = |exporter: ExporterSpec, session: Option<String>| {
        solve_export(
            client,
            definition.clone(),
            with_config(exporter),
            session,
            config.clone(),
        )
    };
    let finish = |solved: &Solved| -> Result<(Option<String>, bool), Failure> {
        if let Err(failure) = &solved.result {
            return Err(Failure {
                kind: failure.kind,
                message: failure.message.clone(),
            });
        }
        let seen: Vec<bool> = ops
            .iter()
            .filter_map(|d| {
                solved
                    .vertices
                    .iter()
                    .find(|v| &v.digest == d)
                    .map(|v| v.cached)
            })
            .collect();
        let digest = solved
            .exporter_response
            .get("containerimage.digest")
            .or_else(|| solved.exporter_response.get("containerimage.config.digest"))
            .cloned();
        Ok((digest, seen.iter().all(|c| *c)))
    };
    match route(export, docker) {
        Route::Direct(exporter) => {
            let report = solve(exporter, sessions.run.clone()).await;
            let (digest, cached) = finish(&report)?;
            Ok(Done {
                digest,
                path: None,
                size: None,
                cached,
            })
        }
        Route::MobyThenSave => {
            let report = solve(ExporterSpec::moby(None), sessions.run.clone()).await;
            let (digest, cached) = finish(&report)?;
            let Some(id) = digest.clone() else {
                return Err(Failure::builder(
                    "failed to find the exported image: the builder's answer named no image digest"
                        .to_owned(),
                ));
            };
            let dest = dest.unwrap_or_else(|| root.join("export.tar"));
            let size = client
                .docker_save_image(&id, &dest)
                .await
                .map_err(|e| Failure::builder(format!("failed to {}", one_line_chain(&e))))?;
            Ok(Done {
                digest,
                path: Some(dest),
                size: Some(size),
                cached,
            })
        }
        Route::FileSend { exporter, unpack } => {
            let dest = dest.unwrap_or_else(|| root.join("export"));
            let file = temp_sibling(&dest);
            track_temp(&file);
            let result = async {
                let target = FileSendTarget::new(&file);
                let served = LocalDirs::new();
                for (name, path) in sessions.dirs {
                    served.insert(name.clone(), path.clone());
                }
                let session = client
                    .start_session(SessionOptions {
                        shared_key: sessions.shared_key.to_owned(),
                        dirs: served,
                        file_send: Some(target.clone()),
                        ..SessionOptions::default()
                    })
                    .await
                    .map_err(|e| Failure::builder(format!("failed to {e}")))?;
                let report = solve(exporter, Some(session.id().to_owned())).await;
                let _ = session.close().await;
                let (digest, cached) = finish(&report)?;
                if !target.complete() {
                    return Err(Failure::builder(
                        "failed to receive the export: the builder sent no file through the session"
                            .to_owned(),
                    ));
                }
                let size = if unpack {
                    unpack_into_place(&file, &dest).await?
                } else {
                    tokio::fs::rename(&file, &dest).await.map_err(|e| {
                        Failure::builder(format!(
                            "failed to move the export into place at {}: {e}",
                            dest.display()
                        ))
                    })?;
                    target.bytes()
                };
                Ok(Done {
                    digest,
                    path: Some(dest.clone()),
                    size: Some(size),
                    cached,
                })
            }
            .await;
            remove_temp(&file);
            result
        }
    }
}

/// Unpacks the tar at `archive` into a temporary sibling directory of `dest`, then puts it in
/// place of `dest` (an earlier directory there is replaced whole). Returns the bytes of the
/// regular files written.
async fn unpack_into_place(archive: &Path, dest: &Path) -> Result<u64, Failure> {
    let archive = archive.to_owned();
    let dest = dest.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = temp_sibling(&dest);
        track_temp(&dir);
        let result = (|| {
            let failed = |what: String| Failure::builder(format!("failed to {what}"));
            std::fs::create_dir(&dir)
                .map_err(|e| failed(format!("create {}: {e}", dir.display())))?;
            let file = std::fs::File::open(&archive)
                .map_err(|e| failed(format!("open {}: {e}", archive.display())))?;
            let mut tar = tar::Archive::new(file);
            tar.set_preserve_permissions(true);
            tar.set_preserve_mtime(true);
            tar.set_overwrite(true);
            tar.unpack(&dir).map_err(|e| {
                failed(format!(
                    "unpack the exported filesystem into {}: {e}",
                    dir.display()
                ))
            })?;
            let size = tree_size(&dir);
            let old = temp_sibling(&dest);
            let had_old = std::fs::symlink_metadata(&dest).is_ok();
            if had_old {
                std::fs::rename(&dest, &old).map_err(|e| {
                    failed(format!("move the earlier {} aside: {e}", dest.display()))
                })?;
            }
            if let Err(e) = std::fs::rename(&dir, &dest) {
                if had_old {
                    let _ = std::fs::rename(&old, &dest);
                }
                return Err(failed(format!(
                    "move the export into place at {}: {e}",
                    dest.display()
                )));
            }
            if had_old {
                let _ = std::fs::remove_dir_all(&old);
                let _ = std::fs::remove_file(&old);
            }
            Ok(size)
        })();
        if result.is_err() {
            remove_temp(&dir);
        } else {
            forget_temp(&dir);
        }
        result
    })
    .await
    .map_err(|e| Failure::builder(format!("failed to unpack the export: {e}")))?
}

/// The bytes of the regular files under `dir`.
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => tree_size(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// How an export solve ended.
struct Solved {
    result: Result<(), Failure>,
    exporter_response: BTreeMap<String, String>,
    vertices: Vec<crate::client::VertexReport>,
}

/// One export solve: a plain `Control.Solve` with the exporter, or, when the image config must
/// travel with the result (`config`), a gateway build returning the definition with
/// `containerimage.config` in its metadata (a Docker engine's `moby` exporter reads the config
/// only from there).
async fn solve_export(
    client: &crate::client::Client,
    definition: pb::Definition,
    exporter: ExporterSpec,
    session: Option<String>,
    config: Option<String>,
) -> Solved {
    let Some(config) = config.filter(|_| exporter.kind != "tar") else {
        let options = SolveOptions {
            session,
            exporter: Some(exporter),
            ..SolveOptions::default()
        };
        let report = client.solve_and_wait(definition, options).await;
        return Solved {
            result: report.result.as_ref().map_err(solve_failure).map(|_| ()),
            exporter_response: report.exporter_response.clone(),
            vertices: report.vertices,
        };
    };
    let options = crate::client::gateway::GatewayOptions {
        session,
        exporter: Some(exporter),
        ..Default::default()
    };
    let failed = |e: crate::client::gateway::GatewayError| Solved {
        result: Err(Failure::builder(format!(
            "failed to export: {}; nothing was written",
            one_line_chain(&e)
        ))),
        exporter_response: BTreeMap::new(),
        vertices: Vec::new(),
    };
    let build = match client.gateway_build_with(options).await {
        Ok(build) => build,
        Err(e) => return failed(e),
    };
    let metadata = BTreeMap::from([("containerimage.config".to_owned(), config.into_bytes())]);
    match build.finish_with(definition, metadata).await {
        Ok(done) => Solved {
            result: Ok(()),
            exporter_response: done.exporter_response,
            vertices: done.vertices,
        },
        Err(e) => failed(e),
    }
}

/// An export solve's failure: the input (a vertex failed) or the builder/exporter.
fn solve_failure(err: &SolveError) -> Failure {
    let kind = match err {
        SolveError::InputFailed { .. } | SolveError::ImageNotFound { .. } => ErrorKind::Input,
        SolveError::ExecFailed { .. } => ErrorKind::Input,
        _ => ErrorKind::Builder,
    };
    Failure {
        kind,
        message: format!("failed to export: {err}; nothing was written"),
    }
}

/// The OCI image config document carrying `config` (for the exporter's `containerimage.config`:
/// the image keeps the input's Env, Cmd, User, … when the input state carries its config).
fn image_config_json(config: &crate::llb::ImageConfig) -> String {
    serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
    })
    .to_string()
}

/// The digests (`sha256:` + hex of the op's bytes) of every op of `definition` that BuildKit can
/// answer from its cache: not the sources (an image or local source is resolved again on every
/// solve and never reported cached) and not the terminal op.
fn op_digests(definition: &pb::Definition) -> Vec<String> {
    use prost::Message as _;
    definition
        .def
        .iter()
        .filter(|bytes| {
            pb::Op::decode(&bytes[..]).is_ok_and(|op| {
                op.op
                    .as_ref()
                    .is_some_and(|o| !matches!(o, pb::op::Op::Source(_)))
            })
        })
        .map(|op| format!("sha256:{}", hex::encode(Sha256::digest(op))))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::llb::{Platform, State};

    fn image() -> State {
        State::image("docker.io/library/alpine:3.20")
    }

    fn check(script: &str) -> State {
        image().run(["/bin/sh", "-c", script]).root()
    }

    /// The passthrough gate is byte for byte the Go client's `requires_two` vector
    /// (`../shared/golden-llb/requires_two.pb`: sha256 and length from its README).
    #[test]
    fn the_passthrough_gate_matches_the_go_clients_requires_two_vector() {
        let gate = gate_graph(
            &image(),
            "suite",
            vec![check("test -f /etc/os-release"), check("test -x /bin/sh")],
            true,
        );
        let bytes = gate.marshal(&Platform::linux_amd64()).unwrap().to_bytes();
        assert_eq!(bytes.len(), 1521);
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            "e66bd4e8d73cc852d303380c86a0e0e4ce0b271c72759f7346776c5c5a2aa7f3"
        );
    }

    /// Without the passthrough op the export solves the input itself: the same digests the
    /// checks built, so the export is answered from the cache.
    #[test]
    fn the_legacy_gate_exports_the_input_itself() {
        let gate = gate_graph(&image(), "suite", vec![check("true")], false);
        let platform = Platform::linux_amd64();
        assert_eq!(
            gate.marshal(&platform).unwrap().to_bytes(),
            image().marshal(&platform).unwrap().to_bytes()
        );
    }

    #[test]
    fn cacheable_ops_leave_out_sources_and_the_terminal() {
        let def = image()
            .run(["true"])
            .root()
            .marshal(&Platform::linux_amd64())
            .unwrap()
            .into_proto();
        assert_eq!(def.def.len(), 3);
        let ops = op_digests(&def);
        assert_eq!(ops.len(), 1, "{ops:?}");
    }

    #[test]
    fn a_blocked_export_names_the_checks_that_blocked_it() {
        let mut record = CheckRecord::new("s", "t", 3, "export: image a:b", Outcome::Error);
        record.export = Some(Box::default());
        let mut failed = CheckRecord::new("s", "t", 2, "cmd: false", Outcome::Fail);
        failed.exit_code = Some(1);
        let errored = CheckRecord::new("s", "t", 1, "file: /x", Outcome::Error);
        block(&mut record, &[&errored, &failed], 2);
        assert_eq!(record.outcome, Outcome::Fail);
        assert_eq!(
            record.message.as_deref(),
            Some(
                "not exported: blocked by 2 of 2 checks: 1: file: /x (error), 2: cmd: false (fail)"
            )
        );
        assert_eq!(
            record.export.unwrap().blocked_by,
            ["1: file: /x (error)", "2: cmd: false (fail)"]
        );
    }
}
