//! Errors `cargo buildtest` expects, and the exit codes they map to.
//!
//! The exit codes are the protocol's ([`buildtest::protocol::exit::CARGO_BUILDTEST`], from which
//! README's table and `--help` are checked):
//!
//! | code | constant | meaning |
//! |-----:|----------|---------|
//! | 0    | [`exit_codes::SUCCESS`] | every selected check passed (or `--list` succeeded) |
//! | 1    | [`exit_codes::INTERNAL`] | anything else: cargo metadata failed, a suite binary crashed without reporting, I/O errors |
//! | 2    | [`exit_codes::USAGE`] | a setup error: bad flags, a value a setting does not accept (flag, variable or configuration file), an unknown configuration key, a strategy the builder cannot run |
//! | 100  | [`exit_codes::TESTS_FAILED`] | at least one check failed or errored (its input did not build, the builder failed, timeout) |
//! | 101  | [`exit_codes::BUILD_FAILED`] | the suites did not compile (`cargo test --no-run` failed) |
//! | 102  | [`exit_codes::NO_BUILDER`] | no builder could be resolved, reached or probed |
//! | 130  | [`exit_codes::INTERRUPTED`] | interrupted (Ctrl-C / SIGINT); the JUnit file holds what had finished |
//!
//! Error messages are lowercase fragments that read after "failed to"; causes are `#[source]`s,
//! rendered once each by [`render_chain`].

use std::path::PathBuf;

use buildtest::client::{ProbeError, StrategyError};
use buildtest::protocol::SettingError;

/// The documented process exit codes (see the module docs).
pub mod exit_codes {
    use buildtest::protocol::exit;

    /// Every selected check passed.
    pub const SUCCESS: i32 = exit::SUCCESS;
    /// An unexpected error.
    pub const INTERNAL: i32 = exit::INTERNAL;
    /// Bad flags, environment or configuration.
    pub const USAGE: i32 = exit::SETUP;
    /// At least one check failed or errored.
    pub const TESTS_FAILED: i32 = exit::CHECKS_FAILED;
    /// The suites did not compile.
    pub const BUILD_FAILED: i32 = exit::BUILD_FAILED;
    /// No builder could be resolved, reached or probed.
    pub const NO_BUILDER: i32 = exit::NO_BUILDER;
    /// Interrupted by Ctrl-C.
    pub const INTERRUPTED: i32 = exit::INTERRUPTED;
}

/// Everything that ends a `cargo buildtest` run early or unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    /// A setting's value is not one it accepts (flag, variable or configuration key).
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The strategy asked for cannot run on the builder.
    #[error("use the strategy {what} asks for")]
    Strategy {
        /// The setting that asked for it.
        what: String,
        /// Why not.
        #[source]
        source: StrategyError,
    },
    /// A cache export the builder cannot do (`--cache-to` on a graph-driver Docker engine).
    #[error(transparent)]
    Cache(#[from] buildtest::client::CacheUnsupported),
    /// Asking the builder whether it can export cache failed.
    #[error("ask the builder whether it can export cache")]
    CacheSupport(#[source] buildtest::client::ClientError),
    /// A configuration file is invalid.
    #[error("read configuration {path}: {message}")]
    Config {
        /// The file (or `Cargo.toml` for `[workspace.metadata.buildtest]`).
        path: PathBuf,
        /// What is wrong (names the key).
        message: String,
    },
    /// `cargo metadata` failed.
    #[error("read the workspace with cargo metadata")]
    Metadata(#[source] cargo_metadata::Error),
    /// A manifest could not be read.
    #[error("read manifest {path}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A selected package does not exist.
    #[error("select package `{spec}`: no such package in the workspace")]
    NoSuchPackage {
        /// The spec given with `-p`.
        spec: String,
    },
    /// Cargo could not be started.
    #[error("run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `cargo test --no-run` failed.
    #[error("build the test suites (cargo exited with {status})")]
    BuildFailed {
        /// Cargo's exit status.
        status: String,
    },
    /// A suite binary could not list its tests.
    #[error("list the tests of {suite} ({status}){stderr}")]
    ListFailed {
        /// The suite.
        suite: String,
        /// Its exit status.
        status: String,
        /// Its stderr (prefixed with a newline when not empty).
        stderr: String,
    },
    /// No builder could be resolved, reached or probed.
    #[error("reach a builder")]
    NoBuilder(#[source] ProbeError),
    /// Reading or writing a file failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done ("write JUnit report").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The results a suite wrote could not be read.
    #[error("read the results of {suite}")]
    Records {
        /// The suite.
        suite: String,
        /// The cause.
        #[source]
        source: buildtest::report::RecordError,
    },
    /// The JUnit file could not be written (already reported, before the summary).
    #[error(transparent)]
    Junit(buildtest::report::junit::JunitError),
    /// The run ended with failing or erroring checks (already reported).
    #[error("run the checks: {failed} failed, {errored} errored")]
    TestsFailed {
        /// Failed checks.
        failed: usize,
        /// Errored checks.
        errored: usize,
    },
    /// The run was interrupted.
    #[error("finish the run: interrupted")]
    Interrupted,
}

impl ExpectedError {
    /// The exit code documented for this error.
    pub fn process_exit_code(&self) -> i32 {
        match self {
            ExpectedError::Setting(_)
            | ExpectedError::Strategy { .. }
            | ExpectedError::Cache(_)
            | ExpectedError::Config { .. } => exit_codes::USAGE,
            ExpectedError::CacheSupport(_) => exit_codes::NO_BUILDER,
            ExpectedError::NoSuchPackage { .. } => exit_codes::USAGE,
            ExpectedError::BuildFailed { .. } => exit_codes::BUILD_FAILED,
            ExpectedError::NoBuilder(_) => exit_codes::NO_BUILDER,
            ExpectedError::TestsFailed { .. } => exit_codes::TESTS_FAILED,
            ExpectedError::Interrupted => exit_codes::INTERRUPTED,
            ExpectedError::Metadata(_)
            | ExpectedError::Manifest { .. }
            | ExpectedError::Spawn { .. }
            | ExpectedError::ListFailed { .. }
            | ExpectedError::Junit(_)
            | ExpectedError::Io { .. }
            | ExpectedError::Records { .. } => exit_codes::INTERNAL,
        }
    }

    /// Whether the message was already shown by the console (only the exit code remains).
    pub fn already_reported(&self) -> bool {
        matches!(
            self,
            ExpectedError::TestsFailed { .. }
                | ExpectedError::Interrupted
                | ExpectedError::Junit(_)
        )
    }
}

/// The error and its sources, one "caused by" per line.
pub fn render_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str("\n  caused by: ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_documented_code() {
        let setting = SettingError {
            origin: buildtest::protocol::settings::Origin::Flag("--jobs"),
            value: "x".into(),
            accepted: "a number",
        };
        assert_eq!(ExpectedError::from(setting).process_exit_code(), 2);
        let build = ExpectedError::BuildFailed {
            status: "exit status: 101".into(),
        };
        assert_eq!(build.process_exit_code(), 101);
        let nb = ExpectedError::NoBuilder(ProbeError::Connect(buildtest::client::ConnectError {
            attempts: Vec::new(),
        }));
        assert_eq!(nb.process_exit_code(), 102);
        let failed = ExpectedError::TestsFailed {
            failed: 1,
            errored: 0,
        };
        assert_eq!(failed.process_exit_code(), 100);
        assert_eq!(ExpectedError::Interrupted.process_exit_code(), 130);
    }

    #[test]
    fn chains_render_causes() {
        let err = ExpectedError::Io {
            action: "write JUnit report",
            path: "/x/junit.xml".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(
            render_chain(&err),
            "write JUnit report /x/junit.xml\n  caused by: disk full"
        );
    }
}
