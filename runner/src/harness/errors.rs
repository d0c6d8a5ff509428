//! Typed errors of the harness, and the rule that sorts them.
//!
//! | error | when | what happens |
//! |---|---|---|
//! | [`SetupError`] | before connecting: a setting's value is not one it accepts (every setting, see [`crate::protocol::settings`]), the results file cannot be opened, no async runtime | nothing is solved; the binary prints the error and exits [`crate::protocol::exit::SETUP`] (2) |
//! | [`BackendError`] | connecting: no builder, its capabilities could not be probed, it cannot run the strategy asked for, the probe could not be delivered | every selected check is an error with the message (kind `builder`); the binary exits 101 |
//! | [`PrepareError`] | one check cannot become a graph (invalid check, marshalling) | that check is an error (kind `setup`) |

use crate::check::CheckError;
use crate::client::{ClientError, ProbeError};
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
