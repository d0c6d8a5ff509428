//! Typed errors of the harness, and the rule that sorts them.
//!
//! | error | when | what happens |
//! |---|---|---|
//! | [`SetupError`] | before connecting: a setting's value is not one it accepts (every setting, see [`crate::protocol::settings`]), the results file cannot be opened, no async runtime | nothing is solved; the binary prints the error and exits [`crate::protocol::exit::SETUP`] (2) |
//! | [`BackendError`] | connecting: no builder, its capabilities could not be probed, it cannot run the strategy asked for, the probe could not be delivered | every selected check is an error with the message (kind `builder`); the binary exits 101 |
//! | [`PrepareError`] | one check cannot become a graph (invalid check, marshalling) | that check is an error (kind `setup`) |
//! | [`InputError`] | a local directory a test reads is missing or no directory stands for it; the run's session could not be opened | every check that reads it is an error (kind `setup`; `builder` for the session) |

use crate::check::CheckError;
use std::path::PathBuf;

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
