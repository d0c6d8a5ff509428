//! Typed errors of the harness, and the rule that sorts them.
//!
//! | error | when | what happens |
//! |---|---|---|
//! | [`SetupError`] | before connecting: a setting's value is not one it accepts (every setting, see [`crate::protocol::settings`]), the results file cannot be opened, no async runtime | nothing is solved; the binary prints the error and exits [`crate::protocol::exit::SETUP`] (2) |
//! | [`BackendError`] | connecting: no builder, its capabilities could not be probed, it cannot run the strategy asked for, the probe could not be delivered | every selected check is an error with the message (kind `builder`); the binary exits 101 |
//! | [`SolvePathError`] | after connecting: `BUILDTEST_SOLVE=gateway` on a builder whose gateway cannot evaluate definitions, or no gateway build could be opened | nothing is solved; the binary prints the error and exits [`crate::protocol::exit::SETUP`] (2) |
//! | [`PrepareError`] | one check cannot become a graph (invalid check, marshalling) | that check is an error (kind `setup`) |
//! | [`InputError`] | a local directory a test reads is missing or no directory stands for it; the run's session could not be opened | every check that reads it is an error (kind `setup`; `builder` for the session) |
//! | [`ResolveError`] | an image's config could not be resolved (a missing image), a Dockerfile input could not be read or failed to build | every check on it is an error (kind `input`) |

use crate::check::CheckError;
use std::path::PathBuf;

use crate::client::gateway::GatewayError;
use crate::client::{ClientError, ProbeError, SessionError};
use crate::llb::LlbError;
use crate::protocol::SettingError;
use crate::report::RecordError;

/// The harness cannot start: nothing is solved, exit 2.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting's value is not one it accepts.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The results file cannot be opened.
    #[error(transparent)]
    Results(#[from] RecordError),
    /// The async runtime did not start.
    #[error("start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// `BUILDTEST_SOLVE=gateway` cannot be honoured on a node: nothing is solved, exit 2.
#[derive(Debug, thiserror::Error)]
pub enum SolvePathError {
    /// The node's gateway lacks `gateway.solve.evaluate`.
    #[error(
        "solve checks inside a gateway build (BUILDTEST_SOLVE=gateway) on {builder}: its gateway \
         lacks the capability `gateway.solve.evaluate`{reason}; use BUILDTEST_SOLVE=auto or control"
    )]
    NoEvaluate {
        /// The builder.
        builder: String,
        /// `: <the daemon's reason>` when it gave one, else empty.
        reason: String,
    },
    /// No gateway build could be opened on the node.
    #[error("open a gateway build on {builder} for BUILDTEST_SOLVE=gateway")]
    Open {
        /// The builder.
        builder: String,
        /// Why.
        #[source]
        source: GatewayError,
    },
}

/// The builder cannot serve this run: every check is an error.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `BUILDTEST_NODES` named no node that could be connected.
    #[error("reach any node of BUILDTEST_NODES")]
    NoNodes,
    /// Resolving, connecting, probing or choosing the strategy failed.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// `BUILDTEST_PROBE=image` on a builder without an image store.
    #[error(
        "use BUILDTEST_PROBE=image: {builder} is not a Docker engine (only a Docker engine has an \
         image store to load the probe into); use auto or inline"
    )]
    ProbeNeedsEngine {
        /// The builder.
        builder: String,
    },
    /// The probe's directory for the session could not be written.
    #[error("write the probe's directory for the session")]
    ProbeDir(#[source] CheckError),
    /// The probe image could not be loaded.
    #[error(transparent)]
    ProbeImage(#[from] ProbeImageError),
    /// This build embeds no probe for the run's platform, and the builder could not compile one.
    #[error(
        "run checks on {platform}: this build of buildtest embeds no probe for it ({reason}), and the \
         builder could not compile one from the embedded source in {image}: {cause}. Set \
         BUILDTEST_PROBE_TOOLCHAIN_IMAGE to a Rust toolchain image for {platform} that the builder has \
         or can pull (it needs cargo and glibc's static libraries), or rebuild buildtest on a host \
         that embeds the probe (see runner/build.rs)"
    )]
    ProbeBuild {
        /// The platform.
        platform: String,
        /// Why no probe is embedded.
        reason: String,
        /// The toolchain image tried.
        image: String,
        /// What went wrong, with the compile's last output lines when there are any.
        cause: String,
    },
}

/// Loading the probe image into a Docker engine failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeImageError {
    /// The probe binary is not available.
    #[error(transparent)]
    Probe(#[from] CheckError),
    /// The engine refused.
    #[error("load the probe image into the docker engine")]
    Engine(#[source] ClientError),
}

/// One check cannot become a graph: that check is an error.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The check is invalid (empty command, bad regex …).
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The graph could not be marshalled.
    #[error("marshal {what}")]
    Marshal {
        /// `the check` or `the test's graph`.
        what: &'static str,
        /// Why.
        #[source]
        source: LlbError,
    },
}

/// A test's host directories cannot be served: every check that reads them is an error.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A local source with no host directory behind it (`State::local(name)`, a foreign definition's).
    #[error(
        "serve local source `{name}`: no host directory stands for it (use `State::local_dir(path)`; \
         `State::local(name)` names a directory another client must serve)"
    )]
    NoDirectory {
        /// The source's name.
        name: String,
    },
    /// The path is not a directory.
    #[error(
        "read local directory {}: it is not a directory (State::local_dir takes a directory; to \
         send one file, give its directory and `include_patterns([file name])`)",
        path.display()
    )]
    NotADirectory {
        /// The host path.
        path: PathBuf,
    },
    /// The directory does not exist.
    #[error(
        "read local directory {}: no such directory (a relative path is relative to the current \
         directory, which cargo sets to the package root)",
        path.display()
    )]
    Missing {
        /// The host path.
        path: PathBuf,
    },
    /// The directory could not be examined.
    #[error("read local directory {}", path.display())]
    Unreadable {
        /// The host path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The run's session could not be opened.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// What a test's input needs resolved before its checks can run could not be: every check on it
/// is an error (kind `input`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// An image is not in the builder's store and cannot be pulled (worded as the solve words it).
    #[error(
        "pull image `{image}`: it is not present in the builder's local image store and cannot be \
         pulled (import or load it into the builder first): {message}"
    )]
    MissingImage {
        /// The image reference (normalized).
        image: String,
        /// The builder's message.
        message: String,
    },
    /// An image's config could not be resolved for another reason.
    #[error(transparent)]
    Image(GatewayError),
    /// A Dockerfile's context or the Dockerfile itself cannot be read.
    #[error("read {dockerfile}: {reason}")]
    DockerfileInput {
        /// The Dockerfile and its context.
        dockerfile: String,
        /// What is wrong.
        reason: String,
    },
    /// A Dockerfile failed to build (the failing instruction and its log tail), or could not be
    /// built on this builder.
    #[error("build {dockerfile}")]
    Dockerfile {
        /// The Dockerfile and its context.
        dockerfile: String,
        /// Why.
        #[source]
        source: GatewayError,
    },
    /// A Dockerfile's result is not a definition checks can be built on.
    #[error("use the result of {dockerfile}")]
    DockerfileResult {
        /// The Dockerfile and its context.
        dockerfile: String,
        /// Why.
        #[source]
        source: LlbError,
    },
}
