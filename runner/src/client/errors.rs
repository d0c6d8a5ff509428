//! Typed errors of the client layer.
//!
//! Messages are lowercase fragments that read after "failed to" (`failed to connect to a builder: …`).
//!
//! | error | when |
//! |---|---|
//! | [`ResolveError`] | the configuration names no usable builder (bad address, unknown builder/context, unreadable store) |
//! | [`TlsError`] | TLS files missing or malformed |
//! | [`ConnectError`] | no candidate builder answered; lists every attempt and why it failed |
//! | [`BuilderError`] | the builder or the connection failed during an RPC (unavailable, connection lost, timeout, cancelled) |
//! | [`SolveError`] | a solve failed: the check's exec, one of its inputs, a missing image, an unsupported op, or the builder |
//! | [`ClientError`] | any of the above from a [`super::Client`] method |

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use super::addr::BuilderSpec;

/// The configuration does not name a usable builder.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// An address could not be parsed.
    #[error("parse builder address `{addr}`: {reason}")]
    BadAddress {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The address scheme is not one this client speaks.
    #[error(
        "use builder address `{addr}`: scheme `{scheme}` is not supported (use unix://, tcp://, \
         docker-container://, podman-container://, nerdctl-container://, docker+unix://, docker+tcp:// or docker://)"
    )]
    UnsupportedScheme {
        /// The address as given.
        addr: String,
        /// Its scheme.
        scheme: String,
    },
    /// A configuration file could not be read.
    #[error("read {what} {}", path.display())]
    Read {
        /// What the file is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not the JSON we expect.
    #[error("parse {what} {}", path.display())]
    Json {
        /// What the file is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// No buildx builder (and no docker context) has this name.
    #[error("find buildx builder `{name}`: no such builder in {} and no docker context of that name", store.display())]
    NoSuchBuilder {
        /// The builder name.
        name: String,
        /// The buildx store searched.
        store: PathBuf,
    },
    /// A buildx builder exists but cannot be used.
    #[error("use buildx builder `{name}`: {reason}")]
    BadBuilder {
        /// The builder name.
        name: String,
        /// Why not.
        reason: String,
    },
    /// A docker context does not exist.
    #[error("find docker context `{name}`: no {}", path.display())]
    NoSuchContext {
        /// The context name.
        name: String,
        /// Where its metadata should be.
        path: PathBuf,
    },
    /// A docker context exists but cannot be used.
    #[error("use docker context `{name}`: {reason}")]
    BadContext {
        /// The context name.
        name: String,
        /// Why not.
        reason: String,
    },
}

/// TLS material is missing or malformed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("read tls {what} {}", path.display())]
    Read {
        /// Which file (ca certificate, client certificate, client key).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no PEM item of the expected kind.
    #[error("load tls {what} {}: no pem item found in it", path.display())]
    NoPem {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
    },
    /// A file holds something rustls refuses.
    #[error("load tls {what} {}: {message}", path.display())]
    Invalid {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A client certificate without key, or the reverse.
    #[error("configure tls: {given} given without {missing}")]
    Incomplete {
        /// What was given.
        given: &'static str,
        /// What is missing.
        missing: &'static str,
    },
    /// The server name is not a DNS name or IP address.
    #[error("configure tls: `{0}` is not a valid server name")]
    ServerName(String),
    /// rustls refused the configuration.
    #[error("configure tls: {0}")]
    Rustls(rustls::Error),
}

/// Why one connection attempt failed.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The socket could not be opened.
    #[error("connect to {target}: {message}")]
    Connect {
        /// What we dialled.
        target: String,
        /// The OS error.
        message: String,
    },
    /// TLS files or the TLS handshake failed.
    #[error("{0}")]
    Tls(String),
    /// The Docker engine did not switch `POST /grpc` to h2c.
    #[error(
        "upgrade `POST /grpc` to h2c: the docker engine answered {status}{}",
        fmt_body(body)
    )]
    Upgrade {
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The dial-stdio command could not be spawned or exited.
    #[error("run {command}: {message}")]
    Command {
        /// The command line.
        command: String,
        /// What happened, with its stderr.
        message: String,
    },
    /// The HTTP/2 (gRPC) connection could not be set up.
    #[error("start http/2: {0}")]
    Handshake(String),
    /// The endpoint answered but not as a BuildKit Control API.
    #[error("call Control.ListWorkers: {0}")]
    NotBuildkit(String),
}

fn fmt_body(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// No candidate builder could be reached.
#[derive(Debug, Error)]
pub struct ConnectError {
    /// Every attempt, in order, with its failure.
    pub attempts: Vec<(BuilderSpec, AttemptError)>,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connect to a buildkit builder; tried:")?;
        for (spec, err) in &self.attempts {
            write!(f, "\n  - {spec}: {err}")?;
        }
        f.write_str(
            "\n  (choose a builder with --addr/BUILDKIT_HOST, --builder/BUILDX_BUILDER or DOCKER_HOST; \
             for this project's engines run `bash scripts/builders.sh up`)",
        )
    }
}

/// The builder or the connection failed (not the graph being solved).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuilderError {
    /// The builder cannot be reached.
    #[error("reach the builder: {message}")]
    Unavailable {
        /// gRPC message.
        message: String,
    },
    /// The connection broke during the call.
    #[error(
        "keep the connection to the builder: {message} (was the builder stopped or restarted?)"
    )]
    ConnectionLost {
        /// What the transport said.
        message: String,
    },
    /// The builder hit a known transient internal failure (e.g. BuildKit v0.8's
    /// `flightcontrol: exceeded retry timeout` under load); not the graph's fault.
    #[error(
        "finish: the builder hit a transient internal failure ({message}); running again usually succeeds"
    )]
    Transient {
        /// BuildKit's message.
        message: String,
    },
    /// The call took longer than allowed.
    #[error("finish within {0:?}: timed out")]
    Timeout(Duration),
    /// The call was cancelled.
    #[error("finish: cancelled ({message})")]
    Cancelled {
        /// gRPC message.
        message: String,
    },
    /// Any other RPC failure.
    #[error("call {rpc}: {code}: {message}")]
    Rpc {
        /// Which RPC.
        rpc: &'static str,
        /// gRPC code.
        code: tonic::Code,
        /// gRPC message.
        message: String,
    },
}

impl BuilderError {
    /// Classify a gRPC status of a call that is not a solve (or whose failure is not the graph's).
    pub fn from_status(rpc: &'static str, status: &tonic::Status) -> Self {
        let message = status.message().to_owned();
        if is_connection_lost(status) {
            return BuilderError::ConnectionLost {
                message: transport_message(status),
            };
        }
        match status.code() {
            tonic::Code::Unavailable => BuilderError::Unavailable { message },
            tonic::Code::Cancelled => BuilderError::Cancelled { message },
            code => BuilderError::Rpc { rpc, code, message },
        }
    }
}

/// The status reports a broken transport rather than an answer from the builder.
pub(crate) fn is_connection_lost(status: &tonic::Status) -> bool {
    if status.metadata().is_empty()
        && matches!(
            status.code(),
            tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Internal
        )
    {
        let text = transport_message(status).to_lowercase();
        return [
            "transport error",
            "connection reset",
            "broken pipe",
            "connection closed",
            "error reading a body",
            "h2 protocol error",
            "stream closed because of a broken pipe",
            "unexpected eof",
            "connection refused",
            "operation was canceled",
        ]
        .iter()
        .any(|needle| text.contains(needle));
    }
    false
}

/// `err` and its sources on one line, `: `-separated — for the places that keep an error as text
/// or print it on one line (a cause that an outer message already contains is not repeated).
pub fn one_line_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    append_sources(&mut out, err.source());
    out
}

/// Appends `: cause` for `first` and each of its sources that `out` does not already contain.
fn append_sources(out: &mut String, first: Option<&dyn std::error::Error>) {
    let mut source = first;
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
}

/// The status message followed by its source chain (tonic puts the transport cause there).
pub(crate) fn transport_message(status: &tonic::Status) -> String {
    let mut out = status.message().to_owned();
    append_sources(&mut out, std::error::Error::source(status));
    out
}

/// A solve failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SolveError {
    /// The exec under test (a check vertex) ran and failed.
    #[error("run {command}: {}", exec_summary(*exit_code, message))]
    ExecFailed {
        /// The failing exec's op digest.
        vertex: String,
        /// Its argv, shell-quoted for display (or the vertex name).
        command: String,
        /// Its exit code, when BuildKit reported one.
        exit_code: Option<i32>,
        /// BuildKit's message.
        message: String,
    },
    /// A vertex that is not under test (an input of the check) failed.
    #[error("build an input ({name}, vertex {vertex}): {message}")]
    InputFailed {
        /// The failing vertex digest.
        vertex: String,
        /// Its name (from the Status stream, or derived from the op).
        name: String,
        /// BuildKit's message.
        message: String,
    },
    /// A source image is not in the builder's store and cannot be pulled.
    #[error(
        "pull image `{image}`: it is not present in the builder's local image store and cannot be pulled \
         (import or load it into the builder first): {message}"
    )]
    ImageNotFound {
        /// The image reference.
        image: String,
        /// The source vertex digest.
        vertex: String,
        /// BuildKit's message.
        message: String,
    },
    /// The builder does not support an op or capability in the graph.
    #[error("solve on this builder: it does not support {what} ({message})")]
    Unsupported {
        /// The capability or op (e.g. `passthroughop`).
        what: String,
        /// BuildKit's message.
        message: String,
    },
    /// The builder or the connection failed.
    #[error(transparent)]
    Builder(#[from] BuilderError),
    /// Any other failure BuildKit reported.
    #[error("solve: {message}")]
    Other {
        /// gRPC code.
        code: tonic::Code,
        /// The failing vertex, if BuildKit named one.
        vertex: Option<String>,
        /// BuildKit's message.
        message: String,
    },
}

/// `exit code N` when known (BuildKit's message only repeats the argv), else BuildKit's message.
fn exec_summary(code: Option<i32>, message: &str) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => message.to_owned(),
    }
}

impl SolveError {
    /// The digest of the vertex BuildKit blamed, if any.
    pub fn vertex(&self) -> Option<&str> {
        match self {
            SolveError::ExecFailed { vertex, .. }
            | SolveError::InputFailed { vertex, .. }
            | SolveError::ImageNotFound { vertex, .. } => Some(vertex),
            SolveError::Other { vertex, .. } => vertex.as_deref(),
            SolveError::Unsupported { .. } | SolveError::Builder(_) => None,
        }
    }

    /// The exec's exit code, for [`SolveError::ExecFailed`].
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            SolveError::ExecFailed { exit_code, .. } => *exit_code,
            _ => None,
        }
    }
}

/// An error from a [`super::Client`] method.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Resolution failed.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// No builder could be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// An RPC failed.
    #[error(transparent)]
    Builder(#[from] BuilderError),
    /// A solve (e.g. the capability probe) failed.
    #[error(transparent)]
    Solve(#[from] SolveError),
    /// The graph could not be marshalled.
    #[error("marshal the probe graph: {0}")]
    Marshal(String),
    /// A request to the Docker engine's own API failed (see `Client::docker_load_image`).
    #[error("{0}")]
    DockerApi(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The three errors that carry an I/O or JSON cause name it once: as their source, not also
    /// in their own message (a chain renderer would otherwise print it twice).
    #[test]
    fn causes_are_sources_not_repeated_in_the_message() {
        let io = || std::io::Error::other("disk on fire");
        let json = serde_json::from_str::<u32>("x").unwrap_err();
        let json_text = json.to_string();
        let errors: Vec<(Box<dyn std::error::Error>, String)> = vec![
            (
                Box::new(ResolveError::Read {
                    what: "buildx store",
                    path: "/x".into(),
                    source: io(),
                }),
                "disk on fire".to_owned(),
            ),
            (
                Box::new(ResolveError::Json {
                    what: "buildx store",
                    path: "/x".into(),
                    source: json,
                }),
                json_text,
            ),
            (
                Box::new(TlsError::Read {
                    what: "ca certificate",
                    path: "/x".into(),
                    source: io(),
                }),
                "disk on fire".to_owned(),
            ),
        ];
        for (err, cause) in errors {
            assert!(!err.to_string().contains(&cause), "{err}");
            assert_eq!(err.source().unwrap().to_string(), cause);
            let line = one_line_chain(err.as_ref());
            assert_eq!(line.matches(&cause).count(), 1, "{line}");
        }
    }
}
