//! Resolving, connecting to and probing the builder once for the whole run.

use crate::args::Args;
use crate::config::{Settings, Sourced};
use crate::console::Header;
use crate::errors::ExpectedError;

/// The builder the run uses, and what the suite binaries need to use it too.
#[derive(Debug, Clone, Default)]
pub struct Connected {
    /// What the header shows.
    pub header: Header,
    /// Variables set for every suite binary.
    pub env: Vec<(String, String)>,
    /// Variables removed for every suite binary.
    pub env_remove: Vec<String>,
}

/// Checks a requested strategy name before anything is built.
pub fn validate_strategy(_strategy: Option<&Sourced<String>>) -> Result<(), ExpectedError> {
    Ok(())
}

/// Resolves, connects and probes.
pub async fn connect(_args: &Args, _settings: &Settings) -> Result<Connected, ExpectedError> {
    Err(ExpectedError::NoBuilder {
        message: "not implemented".into(),
    })
}
