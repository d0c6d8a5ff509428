//! The harness's use of the layers below: builder resolution and connection
//! ([`crate::client`]), a check's exec ([`crate::check`]), the strategy wrap, and the mapping of a
//! [`SolveReport`] to a check's outcome.

use crate::check::{self, Check, CheckReport, ProbeExit};
use crate::client::{
    Client, ConnectOptions, ProbeRequest, Probed, ResolveOptions, SolveError, SolveOptions,
    SolveReport, VertexReport, connect_only, probe_connected,
};
use crate::harness::Test;
use crate::harness::errors::{BackendError, PrepareError};
use crate::harness::probes::Probes;
use crate::llb::Platform;
use crate::proto::pb;
use crate::protocol::SuiteSettings;
use crate::protocol::events::Header;
use crate::protocol::settings::STRATEGY;
use crate::report::{CheckRecord, ErrorKind, Outcome, TAIL_LIMIT, tail};

/// How many lines of a failed input step's log the error report shows.
const INPUT_LOG_LINES: usize = 40;

/// A connected builder with its strategy and the probe, shared by every check of the run.
pub(crate) struct Backend {
    probed: Probed,
    /// The run's header (what `cargo buildtest` shows as status lines).
    header: Header,
    /// The probe per platform (each check mounts the one for its input's platform).
    probes: Probes,
    /// The platform inputs are solved for unless they pin their own (`BUILDTEST_PLATFORM`).
    platform: Platform,
}

/// One check, ready to solve.
pub(crate) struct Prepared {
    pub(crate) definition: pb::Definition,
    /// Digest of the check's exec vertex.
    pub(crate) vertex: Option<String>,
    /// The input the check runs on (for its input's cache verdict, [`Backend::input_verdict`]).
    pub(crate) input: Option<crate::llb::State>,
}

impl Backend {
    /// Connects and probes as `cargo buildtest` does ([`crate::client::connect_and_probe`]; the builder from the
    /// environment: `BUILDKIT_HOST`, `DOCKER_HOST`, …), then delivers the probe.
    pub(crate) async fn connect(settings: &SuiteSettings) -> Result<Backend, BackendError> {
        Self::connect_with(settings, None).await
    }

    /// Connects and probes one node of `BUILDTEST_NODES` (see [`crate::harness::nodes`]).
    pub(crate) async fn connect_node(
        settings: &SuiteSettings,
        node: &crate::protocol::settings::BuilderChoice,
    ) -> Result<Backend, BackendError> {
        Self::connect_with(settings, Some(node)).await
    }

    async fn connect_with(
        settings: &SuiteSettings,
        node: Option<&crate::protocol::settings::BuilderChoice>,
    ) -> Result<Backend, BackendError> {
        use crate::protocol::settings::BuilderChoice;
        let mut resolve = ResolveOptions {
            tls: settings.tls.clone(),
            ..ResolveOptions::from_env()
        };
        match node {
            Some(BuilderChoice::Addr(a)) => resolve.addr = Some(a.clone()),
            Some(BuilderChoice::Named(n)) => resolve.builder = Some(n.clone()),
            None => {}
        }
        let request = ProbeRequest {
            resolve,
            connect: ConnectOptions {
                max_concurrent_solves: settings.jobs.max(1),
                ..ConnectOptions::default()
            },
            strategy: settings.strategy,
            strategy_from: Some(STRATEGY.var.to_owned()),
        };
        let client = connect_only(&request).await?;
        let platform = settings.run_platform();
        let toolchain = settings
            .probe_toolchain_image
            .as_deref()
            .unwrap_or(crate::check::DEFAULT_TOOLCHAIN_IMAGE);
        // The capability probe and the probe's delivery are independent: both at once.
        let (probed, probes) = tokio::join!(
            probe_connected(client.clone(), &request),
            Probes::deliver(
                &client,
                settings.probe,
                &platform,
                toolchain,
                settings.timeout
            ),
        );
        let probed = probed?;
        let probes = probes?;
        let header = Header::new(&probed, probed.builder().reason.to_string(), settings);
        Ok(Backend {
            probed,
            header,
            probes,
            platform,
        })
    }

    /// One line for stderr: the run's header (the value `cargo buildtest` shows as status
    /// lines) and how the probe travels.
    pub(crate) fn describe(&self) -> String {
        format!("{}; probes {}", self.header.line(), self.probes.note())
    }

    /// The builder, for records.
    pub(crate) fn builder_name(&self) -> String {
        self.probed.builder().to_string()
    }

    /// The strategy, for records.
    pub(crate) fn strategy_name(&self) -> String {
        self.probed.strategy.name().to_owned()
    }

    /// Builds check `index` (0-based) of `test` into the graph to solve: the check's exec on
    /// the input (with the probe for the platform the input is solved for: its own, else the
    /// run's), attached by the strategy with id `<test name>/<n>`.
    pub(crate) fn prepare(
        &self,
        test: &Test,
        name: &str,
        index: usize,
        no_cache: bool,
        check: &Check,
    ) -> Result<Prepared, PrepareError> {
        let platform = test.input.platform.as_ref().unwrap_or(&self.platform);
        let probe = self.probes.for_platform(platform)?.clone();
        let mut exec = check.to_exec(&test.input, &probe)?;
        if no_cache {
            exec = exec.ignore_cache();
        }
        let vertex = exec
            .marshal(&self.platform)
            .map_err(|source| PrepareError::Marshal {
                what: "the check",
                source,
            })?
            .head()
            .map(str::to_owned);
        let id = format!("{name}/{}", index + 1);
        // `discard`'s no-op exec runs the probe too (a check that `/` exists), not `true` from
        // the image's PATH, so it works on images without a shell or coreutils.
        let noop_args = noop_probe_args()?;
        let graph = self
            .probed
            .strategy
            .wrap_with_noop(&test.input, &id, exec, move |input| {
                // The probe runs as root, whatever user the image's config names (as in checks).
                input
                    .run(noop_args)
                    .user("")
                    .mount_readonly(check::PROBE_MOUNT, probe)
            });
        let definition = graph
            .marshal(&self.platform)
            .map_err(|source| PrepareError::Marshal {
                what: "the test's graph",
                source,
            })?
            .into_proto();
        Ok(Prepared {
            definition,
            vertex,
            input: Some(test.input.clone()),
        })
    }

    /// Whether exports are gated in the graph (`passthrough`: `input.requires(id, [checks])`) or
    /// by the runner (`legacy`).
    pub(crate) fn gate(&self) -> &'static str {
        if self.probed.strategy == crate::client::Strategy::Passthrough {
            "passthrough"
        } else {
            "legacy"
        }
    }

    /// The graph a gated export of `test` solves: on a passthrough builder
    /// `input.requires("<name>/export", [every check's exec])`, whose output is the input and
    /// which BuildKit cannot produce unless every check passes; elsewhere the input itself (the
    /// runner gates: it solves this only after every check passed). See
    /// [`crate::harness::export`].
    pub(crate) fn export_definition(
        &self,
        test: &Test,
        name: &str,
    ) -> Result<pb::Definition, PrepareError> {
        let passthrough = self.gate() == "passthrough";
        let mut execs = Vec::with_capacity(test.checks.len());
        if passthrough {
            let platform = test.input.platform.as_ref().unwrap_or(&self.platform);
            let probe = self.probes.for_platform(platform)?;
            for check in &test.checks {
                execs.push(check.to_exec(&test.input, probe)?);
            }
        }
        let graph = crate::harness::gate::gate_graph(
            &test.input,
            &format!("{name}/export"),
            execs,
            passthrough,
        );
        Ok(graph
            .marshal(&self.platform)
            .map_err(|source| PrepareError::Marshal {
                what: "the export's graph",
                source,
            })?
            .into_proto())
    }

    /// The platform checks run for.
    /// The probe for the platform inputs are solved for.
    pub(crate) fn run_probe(&self) -> Result<crate::llb::State, PrepareError> {
        Ok(self.probes.for_platform(&self.platform)?.clone())
    }

    pub(crate) fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The connected client.
    pub(crate) fn client(&self) -> &Client {
        &self.probed.client
    }

    /// The local directories the probe itself is read from (its `session` delivery): name → path.
    pub(crate) fn probe_dirs(&self) -> std::collections::BTreeMap<String, std::path::PathBuf> {
        self.probes.dirs()
    }

    /// Solves one prepared check (with the run's session when its input reads local
    /// directories) and fills `record` from the report.
    pub(crate) async fn solve(
        &self,
        prepared: &Prepared,
        session: Option<String>,
        cache: Option<crate::proto::control::CacheOptions>,
        record: &mut CheckRecord,
    ) {
        let options = SolveOptions {
            check_vertices: prepared.vertex.iter().cloned().collect(),
            session,
            cache,
            ..SolveOptions::default()
        };
        let report = self
            .probed
            .client
            .solve_and_wait(prepared.definition.clone(), options)
            .await;
        record_report(prepared, &report, record);
    }
}

/// Fills `record` from the report of solving `prepared` (by `Control.Solve` or inside a gateway
/// build: see [`crate::harness::solve_path`]).
pub(crate) fn record_report(prepared: &Prepared, report: &SolveReport, record: &mut CheckRecord) {
    fill(report, prepared.vertex.as_deref(), record);
    if let Some(text) = record.message.as_deref()
        && let Some(explained) = oversized(&prepared.definition, text)
    {
        record.error_kind = Some(ErrorKind::Input);
        record.message = Some(one_line(&explained));
        record.report = Some(explained);
    }
}

/// The message-size limit of a builder that has not raised it (buildkitd's and the Docker
/// engine's gRPC default): a check's whole Definition travels in one Solve request.
const DAEMON_MESSAGE_LIMIT: usize = 4 << 20;

/// When the builder refused the Solve request as too large (`grpc: received message larger than
/// max`): which part of the check's graph is that large, the limit, and what to do instead.
fn oversized(definition: &pb::Definition, error: &str) -> Option<String> {
    use prost::Message as _;
    if !error.contains("received message larger than max") {
        return None;
    }
    let total = definition.encoded_len();
    let largest = definition
        .def
        .iter()
        .max_by_key(|op| op.len())
        .map(|op| (op.len(), describe_op(op)))?;
    Some(format!(
        "send the check's graph to the builder: it is {total} bytes, over the builder's gRPC \
         message limit ({DAEMON_MESSAGE_LIMIT} bytes, 4 MiB, unless the daemon raised it); its \
         largest op is {} ({} bytes). Data written inline into the graph (`FileAction::mkfile` \
         contents, `State::from_definition`) travels with every check's Solve: build large files \
         into the input image instead (an image or a Dockerfile step that creates or fetches them)\n\
         the builder said: {}",
        largest.1,
        largest.0,
        one_line(error)
    ))
}

/// A serialized op, for people: `mkfile /path (N bytes of data)`, the image, the exec's argv.
fn describe_op(bytes: &[u8]) -> String {
    use prost::Message as _;
    let Ok(op) = pb::Op::decode(bytes) else {
        return "an op".to_owned();
    };
    match op.op {
        Some(pb::op::Op::File(file)) => {
            let biggest = file
                .actions
                .iter()
                .filter_map(|a| match &a.action {
                    Some(pb::file_action::Action::Mkfile(m)) => Some((m.data.len(), &m.path)),
                    _ => None,
                })
                .max_by_key(|(len, _)| *len);
            match biggest {
                Some((len, path)) => format!("a file op writing `{path}` ({len} bytes of data)"),
                None => "a file op".to_owned(),
            }
        }
        Some(pb::op::Op::Source(src)) => format!("source `{}`", src.identifier),
        Some(pb::op::Op::Exec(exec)) => format!(
            "exec `{}`",
            exec.meta
                .map(|m| crate::client::shell_words(&m.args))
                .unwrap_or_default()
        ),
        _ => "an op".to_owned(),
    }
}

/// A hint for a failed input step whose cause users meet often: `FileAction::mkdir` under a
/// parent that does not exist (the daemon names its own host path).
fn input_hint(step: &str, message: &str) -> Option<String> {
    if !(message.contains("mkdir ") && message.contains("no such file or directory")) {
        return None;
    }
    let path = step.strip_prefix("mkdir ").map(str::trim).unwrap_or(step);
    Some(format!(
        "the parent directory of `{path}` does not exist in the input: create the parents too with \
         `FileAction::mkdir(path, mode).make_parents(true)`, or create the parent first"
    ))
}

/// argv of a probe run that checks nothing the image could lack (`/` exists): the `discard`
/// strategy's no-op exec.
pub(crate) fn noop_probe_args() -> Result<Vec<String>, check::CheckError> {
    let mut args = vec![check::PROBE_PATH.to_owned()];
    args.extend(Check::from(check::file("/").exists()).probe_args()?);
    Ok(args)
}

/// Maps a solve's report to the check's outcome (pass / fail / error), its logs and report.
pub(crate) fn fill(report: &SolveReport, vertex: Option<&str>, record: &mut CheckRecord) {
    let check_vertex = vertex.and_then(|d| report.vertex(d));
    let parsed = check_vertex.and_then(|v| CheckReport::parse(&v.stderr));
    record.command_exit_code = parsed.as_ref().and_then(command_exit_code);
    if let Some(v) = check_vertex {
        let stderr = CheckReport::strip(&v.stderr);
        record.stdout = tail(&String::from_utf8_lossy(&v.stdout), TAIL_LIMIT);
        record.stderr = tail(&String::from_utf8_lossy(&stderr), TAIL_LIMIT);
        record.cached = v.cached;
    }
    match &report.result {
        Ok(()) => {
            record.outcome = Outcome::Pass;
            record.error_kind = None;
        }
        Err(SolveError::ExecFailed {
            exit_code, message, ..
        }) => {
            record.outcome = Outcome::Fail;
            record.error_kind = None;
            record.cached = false;
            record.exit_code = *exit_code;
            let exit = exit_code.map(|code| ProbeExit::from_code(code).describe());
            match parsed {
                Some(parsed) => {
                    record.message = Some(parsed.summary.clone());
                    let mut details = parsed.details();
                    if default_exit_code_failed(&parsed) {
                        details.push_str(DEFAULT_EXIT_CODE_NOTE);
                    }
                    record.report = Some(tail(&details, TAIL_LIMIT));
                }
                None => {
                    // No report block: the probe did not run or its log was clipped.
                    let exit = exit.unwrap_or_else(|| "the check failed".to_owned());
                    record.message = Some(one_line(&format!("{exit}: {message}")));
                    record.report = Some(tail(
                        &format!("{exit}: {message}\n{}", record.stderr),
                        TAIL_LIMIT,
                    ));
                }
            }
        }
        Err(err @ SolveError::InputFailed { vertex, name, .. }) => {
            record.outcome = Outcome::Error;
            record.error_kind = Some(ErrorKind::Input);
            record.message = Some(format!("the input failed to build at step `{name}`"));
            let log = report.vertex(vertex).map(log_tail).unwrap_or_default();
            let hint = match &err {
                SolveError::InputFailed { message, .. } => input_hint(name, message),
                _ => None,
            };
            if let Some(hint) = &hint {
                record.message = Some(format!(
                    "the input failed to build at step `{name}`: {hint}"
                ));
            }
            let hint = hint.map(|h| format!("{h}\n")).unwrap_or_default();
            record.report = Some(tail(&format!("{hint}failed to {err}\n{log}"), TAIL_LIMIT));
        }
        Err(err @ SolveError::ImageNotFound { .. }) => {
            record.outcome = Outcome::Error;
            record.error_kind = Some(ErrorKind::Input);
            record.message = Some(one_line(&format!("failed to {err}")));
            record.report = Some(format!("failed to {err}"));
        }
        Err(
            err @ SolveError::Other {
                vertex: Some(v), ..
            },
        ) if Some(v.as_str()) != vertex => {
            record.outcome = Outcome::Error;
            record.error_kind = Some(ErrorKind::Input);
            record.message = Some(one_line(&format!("failed to {err}")));
            let log = report.vertex(v).map(log_tail).unwrap_or_default();
            record.report = Some(tail(&format!("failed to {err}\n{log}"), TAIL_LIMIT));
        }
        Err(err) => {
            record.outcome = Outcome::Error;
            record.error_kind = Some(ErrorKind::Builder);
            record.message = Some(one_line(&format!("failed to {err}")));
            record.report = Some(format!("failed to {err}"));
        }
    }
}

/// Said under a failed `exit_code` assertion expecting 0: the assertion every `cmd` check makes
/// unless the test set another.
const DEFAULT_EXIT_CODE_NOTE: &str = "\n    note: `exit_code(0)` is asserted by every cmd check unless `.exit_code(n)` expects another code";

/// The command's exit code, from the probe's `exit_code` assertion (its actual value when it
/// failed, else the expected one).
fn command_exit_code(report: &CheckReport) -> Option<i32> {
    let a = report.assertions.iter().find(|a| a.name == "exit_code")?;
    a.actual
        .as_deref()
        .unwrap_or(&a.expected)
        .trim()
        .parse()
        .ok()
}

/// Whether what failed includes the `exit_code` assertion expecting 0.
fn default_exit_code_failed(report: &CheckReport) -> bool {
    report
        .assertions
        .iter()
        .any(|a| a.name == "exit_code" && !a.held && a.expected.trim() == "0")
}

/// The last lines of a vertex's output (stdout then stderr), indented under a heading.
fn log_tail(v: &VertexReport) -> String {
    let mut log = String::from_utf8_lossy(&v.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&v.stderr));
    let lines: Vec<&str> = log.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(INPUT_LOG_LINES);
    let mut out = format!("last {} lines of `{}`:\n", lines.len() - start, v.name);
    for line in &lines[start..] {
        out.push_str("  | ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The first line of `text`, for one-line messages.
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::client::BuilderError;

    const CHECK: &str = "sha256:check";
    const INPUT: &str = "sha256:input";

    fn vertex(digest: &str, name: &str, stdout: &str, stderr: &str, cached: bool) -> VertexReport {
        VertexReport {
            digest: digest.to_owned(),
            name: name.to_owned(),
            cached,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            ..VertexReport::default()
        }
    }

    fn outcome(result: Result<(), SolveError>, vertices: Vec<VertexReport>) -> CheckRecord {
        let report = SolveReport {
            solve_ref: "r".to_owned(),
            result,
            vertices,
            warnings: Vec::new(),
            error_details: None,
            retries: 0,
            elapsed: Duration::ZERO,
            exporter_response: std::collections::BTreeMap::new(),
        };
        let mut record = CheckRecord::new("s", "t", 1, "cmd: x", Outcome::Error);
        fill(&report, Some(CHECK), &mut record);
        record
    }

    #[test]
    fn a_cached_success_is_a_cached_pass() {
        let r = outcome(Ok(()), vec![vertex(CHECK, "cmd: x", "", "", true)]);
        assert_eq!(
            (r.outcome, r.cached, r.error_kind),
            (Outcome::Pass, true, None)
        );
    }

    #[test]
    fn a_failed_check_exec_is_a_failure_with_the_probe_report() {
        let stderr = "warning from the command\n\
            ##buildtest-probe begin v1 cmd \"x\"\n\
            ##buildtest-probe fail exit_code\n\
            ##buildtest-probe expected 0\n\
            ##buildtest-probe actual 2\n\
            ##buildtest-probe summary 1 of 1 assertions failed: exit_code: expected 0, got 2\n\
            ##buildtest-probe end fail 1/1\n";
        let err = SolveError::ExecFailed {
            vertex: CHECK.to_owned(),
            command: "x".to_owned(),
            exit_code: Some(1),
            message: "exit code: 1".to_owned(),
        };
        let r = outcome(
            Err(err),
            vec![vertex(CHECK, "cmd: x", "out\n", stderr, false)],
        );
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.exit_code, Some(1));
        assert_eq!(r.command_exit_code, Some(2));
        assert_eq!(
            r.failure_detail(),
            "the command exited 2; probe: an assertion did not hold"
        );
        assert_eq!(
            r.message.as_deref(),
            Some("1 of 1 assertions failed: exit_code: expected 0, got 2")
        );
        assert_eq!(
            r.report.as_deref(),
            Some(
                "exit_code: expected 0\n    actual: 2\n    note: `exit_code(0)` is asserted by every \
                 cmd check unless `.exit_code(n)` expects another code"
            )
        );
        assert_eq!(r.stdout, "out\n");
        assert_eq!(
            r.stderr, "warning from the command\n",
            "report lines are stripped"
        );
    }

    #[test]
    fn a_failed_check_without_a_report_says_how_it_exited() {
        let err = SolveError::ExecFailed {
            vertex: CHECK.to_owned(),
            command: "x".to_owned(),
            exit_code: Some(3),
            message: "exit code: 3".to_owned(),
        };
        let r = outcome(Err(err), vec![]);
        assert_eq!(r.outcome, Outcome::Fail);
        let message = r.message.unwrap();
        assert!(
            message.starts_with("the command could not be started"),
            "{message}"
        );
    }

    #[test]
    fn a_failed_input_is_an_error_naming_the_step_with_its_log_tail() {
        let err = SolveError::InputFailed {
            vertex: INPUT.to_owned(),
            name: "RUN make".to_owned(),
            message: "exit code: 2".to_owned(),
        };
        let log: String = (1..=60).map(|i| format!("line {i}\n")).collect();
        let r = outcome(Err(err), vec![vertex(INPUT, "RUN make", &log, "", false)]);
        assert_eq!(
            (r.outcome, r.error_kind),
            (Outcome::Error, Some(ErrorKind::Input))
        );
        assert_eq!(
            r.message.as_deref(),
            Some("the input failed to build at step `RUN make`")
        );
        let report = r.report.unwrap();
        assert!(
            report.contains("last 40 lines of `RUN make`:\n  | line 21\n"),
            "{report}"
        );
        assert!(report.ends_with("  | line 60\n"), "{report}");
        assert!(!report.contains("line 20\n"), "{report}");
    }

    #[test]
    fn mkdir_under_a_missing_parent_names_make_parents() {
        let err = SolveError::InputFailed {
            vertex: INPUT.to_owned(),
            name: "mkdir /usr/local/bin".to_owned(),
            message:
                "mkdir /var/lib/docker/overlay2/abc/merged/usr/local/bin: no such file or directory"
                    .to_owned(),
        };
        let r = outcome(Err(err), vec![]);
        let message = r.message.unwrap();
        assert!(
            message.contains("the parent directory of `/usr/local/bin` does not exist"),
            "{message}"
        );
        assert!(message.contains("make_parents(true)"), "{message}");
        assert!(
            r.report.unwrap().contains("/var/lib/docker/overlay2"),
            "the daemon's words stay"
        );
    }

    #[test]
    fn an_oversized_definition_names_its_largest_input_and_the_limit() {
        use crate::llb::{FileAction, Platform, State};
        let big = vec![b'x'; 5 << 20];
        let def = State::scratch()
            .file(FileAction::mkfile("/data/blob.bin", 0o644, big))
            .marshal(&Platform::linux_amd64())
            .unwrap()
            .into_proto();
        let text = oversized(
            &def,
            "failed to solve: grpc: received message larger than max (5243000 vs. 4194304)",
        )
        .unwrap();
        assert!(
            text.contains("a file op writing `/data/blob.bin` (5242880 bytes of data)"),
            "{text}"
        );
        assert!(text.contains("4194304 bytes, 4 MiB"), "{text}");
        assert!(text.contains("into the input image"), "{text}");
        assert!(oversized(&def, "some other error").is_none());
    }

    #[test]
    fn builder_failures_and_missing_images_are_errors() {
        let lost = SolveError::Builder(BuilderError::ConnectionLost {
            message: "eof".to_owned(),
        });
        let r = outcome(Err(lost), vec![]);
        assert_eq!(
            (r.outcome, r.error_kind),
            (Outcome::Error, Some(ErrorKind::Builder))
        );
        let missing = SolveError::ImageNotFound {
            image: "docker.io/x/y:1".to_owned(),
            vertex: INPUT.to_owned(),
            message: "no such host".to_owned(),
        };
        let r = outcome(Err(missing), vec![]);
        assert_eq!(
            (r.outcome, r.error_kind),
            (Outcome::Error, Some(ErrorKind::Input))
        );
        assert!(r.message.unwrap().contains("docker.io/x/y:1"));
    }
}
