//! The capability probe: does this builder accept `passthroughop`, and `mergeop`/`diffop`?
//!
//! Version strings are unreliable (Debian's engines report `v0.0.0+unknown`, and Docker 20.10 does
//! not implement `Control.Info`), so the probe solves tiny graphs that need each capability:
//!
//! - passthrough: `scratch+mkdir /buildtest-cap-probe` `.requires("buildtest-cap-probe", [scratch+mkdir /x])`;
//! - merge/diff: `merge([a, diff(a, b)])` of two such file ops.
//!
//! A builder without the capability refuses the graph at load time (`unknown API capability
//! passthroughop`, or, without caps metadata, an op it cannot decode); both mean "unsupported". Any
//! builder or transport failure is an error, not "unsupported". The result is computed once per
//! [`Client`] (shared by its clones).

use std::fmt;

use super::control::Client;
use super::errors::{ClientError, SolveError};
use super::solve::SolveOptions;
use crate::llb::{self, FileAction, Platform, State};
use crate::proto::types::BuildkitVersion;

/// What the builder supports, as probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    /// The passthrough op (BuildKit v0.31+).
    pub passthrough: bool,
    /// Why passthrough is unsupported (the daemon's message), when it is.
    pub passthrough_refusal: Option<String>,
    /// Merge and diff ops (BuildKit v0.10+).
    pub merge_diff: bool,
    /// Why merge/diff are unsupported, when they are.
    pub merge_diff_refusal: Option<String>,
    /// `Control.Info`'s version, when implemented (`None` on BuildKit < v0.11, e.g. Docker 20.10).
    pub version: Option<BuildkitVersion>,
    /// A Docker engine's own version (`GET /version`): its embedded BuildKit's version follows from
    /// it when `Control.Info` cannot tell (Debian's engines report `v0.0.0+unknown`).
    pub engine: Option<String>,
}

impl fmt::Display for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "passthrough: {}, merge/diff: {}",
            yes_no(self.passthrough),
            yes_no(self.merge_diff)
        )?;
        match &self.version {
            Some(v) => write!(f, ", buildkit {} {}", v.package, v.version),
            None => f.write_str(", buildkit version unknown (Control.Info not implemented)"),
        }?;
        match &self.engine {
            Some(engine) => write!(f, ", docker engine {engine}"),
            None => Ok(()),
        }
    }
}

/// The graph that needs `passthroughop`.
pub(crate) fn passthrough_probe() -> State {
    State::scratch()
        .file(FileAction::mkdir("/buildtest-cap-probe", 0o755))
        .requires(
            "buildtest-cap-probe",
            [State::scratch().file(FileAction::mkdir("/x", 0o755))],
        )
}

/// The graph that needs `mergeop` and `diffop`.
pub(crate) fn merge_diff_probe() -> State {
    let a = State::scratch().file(FileAction::mkdir("/buildtest-cap-probe-a", 0o755));
    let b = a.file(FileAction::mkdir("/buildtest-cap-probe-b", 0o755));
    llb::merge([a.clone(), llb::diff(&a, &b)])
}

impl Client {
    /// Probe the builder's capabilities (once per client; later calls return the same result).
    pub async fn caps(&self) -> Result<&Caps, ClientError> {
        self.inner.caps.get_or_try_init(|| probe(self)).await
    }
}

async fn probe(client: &Client) -> Result<Caps, ClientError> {
    // Four independent questions, asked at once (one after another they added up to about half
    // of a warm run's start-up).
    let engine = async {
        // Informational only: a Docker engine that does not say its version is still usable.
        if client.is_docker_engine() {
            client.docker_engine_version().await.ok()
        } else {
            None
        }
    };
    let (passthrough_graph, merge_diff_graph) = (passthrough_probe(), merge_diff_probe());
    let (version, engine, passthrough, merge_diff) = tokio::join!(
        client.info(),
        engine,
        probe_one(client, &passthrough_graph, "passthroughop"),
        probe_one(client, &merge_diff_graph, "mergeop"),
    );
    let version = version?;
    let (passthrough, passthrough_refusal) = passthrough?;
    let (merge_diff, merge_diff_refusal) = merge_diff?;
    Ok(Caps {
        passthrough,
        passthrough_refusal,
        merge_diff,
        merge_diff_refusal,
        version,
        engine,
    })
}

/// Solve `graph`: `Ok((true, None))` when it solves, `Ok((false, Some(message)))` when the builder
/// refuses it as unsupported, `Err` on any other failure.
async fn probe_one(
    client: &Client,
    graph: &State,
    cap: &str,
) -> Result<(bool, Option<String>), ClientError> {
    let def = graph
        .marshal(&Platform::linux_amd64())
        .map_err(|e| ClientError::Marshal(e.to_string()))?;
    let options = SolveOptions {
        timeout: Some(std::time::Duration::from_secs(60)),
        ..SolveOptions::default()
    };
    let report = client.solve_and_wait(def.into_proto(), options).await;
    match report.result {
        Ok(()) => Ok((true, None)),
        Err(SolveError::Unsupported { message, .. }) => Ok((false, Some(message))),
        // Daemons that drop the unknown op body fail the op itself; its message still names the op.
        Err(
            SolveError::Other { message, .. }
            | SolveError::ExecFailed { message, .. }
            | SolveError::InputFailed { message, .. },
        ) if message.contains(cap) || message.contains("<nil>") || message.contains("unknown") => {
            Ok((false, Some(message)))
        }
        Err(e) => Err(e.into()),
    }
}
