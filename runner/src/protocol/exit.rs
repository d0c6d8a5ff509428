//! The process exit codes of `cargo buildtest` and of a suite binary: one table each, which the
//! programs, their docs and README's tables are all taken from.

use std::fmt::Write as _;

/// One documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitCode {
    /// The code.
    pub code: i32,
    /// What it means (README's wording).
    pub meaning: &'static str,
}

/// `cargo buildtest`: every selected check passed (or `--list` succeeded).
pub const SUCCESS: i32 = 0;
/// `cargo buildtest`: an error none of the other codes names.
pub const INTERNAL: i32 = 1;
/// Both programs: a setup error — a bad flag, environment value or configuration file; nothing
/// was solved.
pub const SETUP: i32 = 2;
/// `cargo buildtest`: at least one check failed or errored (or a gated export was blocked or
/// failed).
pub const CHECKS_FAILED: i32 = 100;
/// `cargo buildtest`: the suites did not compile. A suite binary: a test failed (libtest's code).
pub const BUILD_FAILED: i32 = 101;
/// A suite binary: at least one test failed or could not be run (libtest's code).
pub const TESTS_FAILED: i32 = 101;
/// `cargo buildtest`: no builder could be resolved, reached or probed.
pub const NO_BUILDER: i32 = 102;
/// Both programs: interrupted (Ctrl-C, SIGINT); the JUnit file holds what had finished.
pub const INTERRUPTED: i32 = 130;

/// `cargo buildtest`'s exit codes.
pub const CARGO_BUILDTEST: &[ExitCode] = &[
    ExitCode {
        code: SUCCESS,
        meaning: "every selected check passed (or `--list` succeeded)",
    },
    ExitCode {
        code: INTERNAL,
        meaning: "another error (cargo metadata failed, I/O, a suite binary crashed without reporting)",
    },
    ExitCode {
        code: SETUP,
        meaning: "setup error: a bad flag, environment value or configuration file (unknown key, a value a setting does not accept), a strategy the builder cannot run",
    },
    ExitCode {
        code: CHECKS_FAILED,
        meaning: "at least one check failed or errored, or an export (`--export`) was blocked or failed",
    },
    ExitCode {
        code: BUILD_FAILED,
        meaning: "the suites did not compile",
    },
    ExitCode {
        code: NO_BUILDER,
        meaning: "no builder could be resolved, reached or probed",
    },
    ExitCode {
        code: INTERRUPTED,
        meaning: "interrupted (Ctrl-C); the JUnit file holds what had finished",
    },
];

/// A suite binary's exit codes (`cargo test`, nextest, IDEs).
pub const SUITE_BINARY: &[ExitCode] = &[
    ExitCode {
        code: SUCCESS,
        meaning: "every selected test passed (or `--list` succeeded)",
    },
    ExitCode {
        code: SETUP,
        meaning: "setup error: an environment value a setting does not accept, an unwritable results file; nothing was solved",
    },
    ExitCode {
        code: TESTS_FAILED,
        meaning: "a test failed or could not be run (also when no builder is reachable: every check is then an error, never a pass)",
    },
    ExitCode {
        code: INTERRUPTED,
        meaning: "interrupted (Ctrl-C); `BUILDTEST_JUNIT` holds the checks that had finished",
    },
];

/// A table as README shows it (`| exit code | meaning |`).
pub fn markdown(table: &[ExitCode]) -> String {
    let mut out = String::from("| exit code | meaning |\n|---:|---|\n");
    for row in table {
        let _ = writeln!(out, "| {} | {} |", row.code, row.meaning);
    }
    out
}
