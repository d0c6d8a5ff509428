//! [`Test`]: what a `#[buildtest::test]` fn returns — an input state and its checks.

use std::time::Duration;

use crate::check::Check;
use crate::harness::export::Export;
use crate::llb::State;

/// A test: checks run against one input state.
///
/// Each [`check`](Test::check) becomes one exec on a writable copy of the input (one edge,
/// one JUnit testcase); BuildKit builds the shared input once and runs the checks
/// concurrently. A test passes when every check passes.
///
/// ```no_run
/// use std::time::Duration;
///
/// use buildtest::prelude::*;
///
/// #[buildtest::test]
/// fn busybox_has_sh() -> Test {
///     Test::on(State::image("buildtest/busybox:latest"))
///         .timeout(Duration::from_secs(60))
///         .check(file("/bin/sh").exists())
///         .check(cmd(["sh", "-c", "echo hi"]).stdout_equals("hi\n"))
/// }
///
/// fn main() {
///     buildtest::main()
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Test does nothing unless returned from a #[buildtest::test] fn"]
pub struct Test {
    pub(crate) input: State,
    pub(crate) checks: Vec<Check>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) exports: Vec<Export>,
}

impl Test {
    /// A test of `input` with no checks yet.
    pub fn on(input: State) -> Test {
        Test {
            input,
            checks: Vec::new(),
            timeout: None,
            exports: Vec::new(),
        }
    }

    /// Adds a gated export of the input ([`Export::image`], [`Export::docker_tar`], …),
    /// performed only by `cargo buildtest --export` / `BUILDTEST_EXPORT=1` and only when every
    /// check of this test passed (see [`crate::harness::export`]).
    pub fn export(mut self, export: Export) -> Test {
        self.exports.push(export);
        self
    }

    /// The exports, in the order they were added.
    pub fn exports(&self) -> &[Export] {
        &self.exports
    }

    /// Adds a check (a [`cmd`](crate::check::cmd) or [`file`](crate::check::file) check).
    pub fn check(mut self, check: impl Into<Check>) -> Test {
        self.checks.push(check.into());
        self
    }

    /// Overrides the per-check timeout for this test's checks (default: `BUILDTEST_TIMEOUT`
    /// seconds, else 300 s). The time counts from when a check's solve starts, so it includes
    /// building the input unless another check already built it.
    pub fn timeout(mut self, timeout: Duration) -> Test {
        self.timeout = Some(timeout);
        self
    }

    /// The input state.
    pub fn input(&self) -> &State {
        &self.input
    }

    /// The checks, in the order they were added.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The per-check timeout override, if any.
    pub fn timeout_override(&self) -> Option<Duration> {
        self.timeout
    }
}
