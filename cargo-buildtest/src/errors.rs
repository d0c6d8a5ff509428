//! Errors `cargo buildtest` expects, and the exit codes they map to.
//!
//! | code | constant | meaning |
//! |-----:|----------|---------|
//! | 0    | [`exit_codes::SUCCESS`] | every selected check passed (or `--list` succeeded) |
//! | 1    | [`exit_codes::INTERNAL`] | anything else: cargo metadata failed, a suite binary crashed without reporting, I/O errors |
//! | 2    | [`exit_codes::USAGE`] | bad flags, a bad environment value or configuration file (unknown key, wrong type) |
//! | 100  | [`exit_codes::TESTS_FAILED`] | at least one check failed or errored (its input did not build, the builder failed, timeout) |
//! | 101  | [`exit_codes::BUILD_FAILED`] | the suites did not compile (`cargo test --no-run` failed) |
//! | 102  | [`exit_codes::NO_BUILDER`] | no builder could be resolved, reached or probed |
//! | 130  | [`exit_codes::INTERRUPTED`] | interrupted (Ctrl-C / SIGINT); the JUnit file holds what had finished |
//!
//! Error messages are lowercase fragments that read after "failed to".

use std::path::PathBuf;

/// The documented process exit codes (see the module docs).
pub mod exit_codes {
    /// Every selected check passed.
    pub const SUCCESS: i32 = 0;
    /// An unexpected error.
    pub const INTERNAL: i32 = 1;
    /// Bad flags, environment or configuration.
    pub const USAGE: i32 = 2;
    /// At least one check failed or errored.
    pub const TESTS_FAILED: i32 = 100;
    /// The suites did not compile.
    pub const BUILD_FAILED: i32 = 101;
    /// No builder could be resolved, reached or probed.
    pub const NO_BUILDER: i32 = 102;
    /// Interrupted by Ctrl-C.
    pub const INTERRUPTED: i32 = 130;
}

/// Everything that ends a `cargo buildtest` run early or unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    /// A flag or environment value is invalid.
    #[error("parse {what}: {message}")]
    Usage {
        /// Which flag or variable.
        what: String,
        /// Why it is wrong.
        message: String,
    },
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
    #[error("read manifest {path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        message: String,
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
    #[error("reach a builder: {message}")]
    NoBuilder {
        /// The client's explanation, with the cause chain.
        message: String,
    },
    /// A suite binary ended without results for its tests.
    #[error("run {suite}: {message}")]
    SuiteCrashed {
        /// The suite.
        suite: String,
        /// What happened.
        message: String,
    },
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
            ExpectedError::Usage { .. } | ExpectedError::Config { .. } => exit_codes::USAGE,
            ExpectedError::NoSuchPackage { .. } => exit_codes::USAGE,
            ExpectedError::BuildFailed { .. } => exit_codes::BUILD_FAILED,
            ExpectedError::NoBuilder { .. } => exit_codes::NO_BUILDER,
            ExpectedError::TestsFailed { .. } => exit_codes::TESTS_FAILED,
            ExpectedError::Interrupted => exit_codes::INTERRUPTED,
            ExpectedError::Metadata(_)
            | ExpectedError::Manifest { .. }
            | ExpectedError::Spawn { .. }
            | ExpectedError::ListFailed { .. }
            | ExpectedError::SuiteCrashed { .. }
            | ExpectedError::Io { .. }
            | ExpectedError::Records { .. } => exit_codes::INTERNAL,
        }
    }

    /// Whether the message was already shown by the console (only the exit code remains).
    pub fn already_reported(&self) -> bool {
        matches!(
            self,
            ExpectedError::TestsFailed { .. } | ExpectedError::Interrupted
        )
    }

    /// A usage error about `what`.
    pub fn usage(what: impl Into<String>, message: impl Into<String>) -> Self {
        ExpectedError::Usage {
            what: what.into(),
            message: message.into(),
        }
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
        assert_eq!(
            ExpectedError::usage("--jobs", "not a number").process_exit_code(),
            2
        );
        let build = ExpectedError::BuildFailed {
            status: "exit status: 101".into(),
        };
        assert_eq!(build.process_exit_code(), 101);
        let nb = ExpectedError::NoBuilder {
            message: "x".into(),
        };
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
