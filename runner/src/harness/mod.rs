//! Layer `harness`: test registration, the libtest-compatible front and the concurrent run.
//!
//! A test target with `harness = false` whose `main` is `buildtest::main()` contains
//! `#[buildtest::test]` fns; each returns a [`Test`] (an input state and its checks). The
//! attribute registers the fn in a linker-built static registry ([`registry`]), so listing
//! needs no code before `main` and never contacts a builder.
//!
//! # A run
//!
//! 1. **Arguments** are libtest's, parsed by libtest-mimic 0.8: a filter (substring, or the
//!    whole name with `--exact`), `--skip`, `--ignored`, `--include-ignored`, `--list`,
//!    `--format pretty|terse|json`, `-q`, `--test-threads`, `--color`, `--logfile`, and, as
//!    no-ops for IDEs, `-Z unstable-options`, `--show-output`, `--nocapture` (both of which
//!    also print each check's outcome and logs to stderr).
//! 2. **`--list`** prints `name: test` lines from the registry only — exactly libtest's
//!    format, which nextest reads (`--list --format terse`, and `--list --ignored`) — and
//!    nothing else on stdout.
//! 3. **Connect** (only when at least one test is selected to run): the builder is resolved
//!    by [`crate::client`] (`BUILDKIT_HOST`, `BUILDX_BUILDER`, `DOCKER_HOST`, … — see its
//!    docs), connected once, probed once for its capabilities; stderr says which builder,
//!    why, and which strategy attaches checks to their inputs. If no builder can be
//!    reached, every selected check is an error and the binary exits 101 — never a pass.
//! 4. **Resolve** (once per run, before any check is prepared; see `resolve.rs`): the config of
//!    every image the selected tests' inputs name, and every Dockerfile input built with BuildKit's
//!    Dockerfile frontend (its context sent through the run's session), de-duplicated across tests,
//!    concurrently. Each input is rewritten with [`crate::llb::State::apply_resolved`]: the image's
//!    `Env`, `WorkingDir` and `User` apply to the checks and `run` steps on it as `docker run`
//!    applies them, and a Dockerfile's result replaces its node. stderr says what was applied
//!    (`buildtest: image config applied: …`). A missing image or a Dockerfile that fails to build
//!    is an input error of every check on it.
//! 5. **Solve**: each check of each selected test becomes its own exec on a writable copy
//!    of the input, attached as `<test name>/<n>` (n from 1) by the strategy, and one Solve;
//!    all solves start at once on one tokio runtime sharing the connection, at most
//!    `BUILDTEST_JOBS` at a time. By default (`BUILDTEST_SOLVE=auto`, see `solve_path.rs`) each
//!    Solve is an `LLBBridge.Solve` inside one gateway build open for the run (per node), where
//!    the builder's gateway can evaluate definitions; else one `Control.Solve` each. stderr says
//!    which (`buildtest: checks solved: …`). A test passes iff all its checks pass; its failure text
//!    lists every check, with the probe's expected-vs-actual report of each failed one.
//! 6. **Report**: libtest's lines and summary on stdout, a check count (with how many were
//!    cached) on stderr, one record per check appended to `BUILDTEST_RESULTS` (see
//!    [`crate::report`]), JUnit XML to `BUILDTEST_JUNIT`.
//! 6. **Exports** ([`export`]): with `BUILDTEST_EXPORT=1` (`cargo buildtest --export`), a test's
//!    [`Test::export`]s run after its checks, only if all passed, one solve each; one more record
//!    per export. Without it each declared export is recorded `ignored`.
//! 7. **Ctrl-C** (SIGINT) during a run: the JUnit file is written with the checks that had
//!    finished, stderr says so, and the binary exits [`EXIT_INTERRUPTED`] (130); closing the
//!    connection makes the builder cancel the open solves; an export writing a file leaves no
//!    temporary behind.
//!
//! A `metadata()` check is not solved: the runner reads the input's image config (resolving each
//! image once per run) and evaluates the check itself; it still gets its record, libtest line and
//! JUnit testcase like any check.
//!
//! Outcomes per check: *pass* (the check exec succeeded; *cached* when BuildKit reported its
//! vertex cached), *fail* (the check exec ran and failed: its exit code and the probe's
//! report), *error* (the input failed to build — which step and its log tail —, the builder
//! failed or went away, the check timed out, or the test fn panicked).
//!
//! A plain `#[test]` fn in such a target never runs: the binary is `buildtest::main()`, which
//! knows only the registered `#[buildtest::test]` fns (no attribute can see the others). Keep
//! libtest tests in another test target; `cargo buildtest` names the targets it skips.
//!
//! # Environment
//!
//! The settings (`BUILDTEST_STRATEGY`, `BUILDTEST_JOBS`, `BUILDTEST_TIMEOUT`, `BUILDTEST_NO_CACHE`,
//! `BUILDTEST_SOLVE`, `BUILDTEST_EXPORT`,
//! `BUILDTEST_PROBE`, `BUILDTEST_RESULTS`, `BUILDTEST_JUNIT`, `BUILDTEST_SUITE`, TLS, and the
//! builder's `BUILDKIT_HOST`/`BUILDX_BUILDER`) are read once, by the protocol's one reader
//! ([`crate::protocol::SuiteSettings::from_env`]); `crate::protocol::settings::SETTINGS` is the
//! table of every variable, its accepted forms and meaning (README's environment table is checked
//! against it). A value a setting does not accept is a setup error: exit 2 before connecting
//! ([`errors`]). Builder resolution also reads `DOCKER_HOST`, `BUILDX_CONFIG`, … (see
//! [`crate::client`]).
//!
//! # IDEs and nextest
//!
//! Test names are the fn's module path without the crate name (`images::debian::curl`), the
//! same path rust-analyzer computes, so its "Run Test" lens —
//! `cargo test --package P --test T -- images::debian::curl --exact --nocapture --include-ignored`
//! — builds target `T`, runs this `main` with that filter, selects exactly that one test
//! (`--exact`; ignored or not, `--include-ignored`), solves only its checks, and prints each
//! check's outcome and logs (`--nocapture`). A module's lens passes the module path without
//! `--exact` and runs every test under it. rust-analyzer's Test Explorer and IntelliJ
//! (`-Z unstable-options --format json [--show-output]`) get libtest's JSON events. nextest
//! lists with `--list --format terse` (and `--ignored`) and runs each test as
//! `--exact NAME --nocapture`: one process per test, one connection each.

mod backend;
mod cache;
pub mod errors;
pub mod export;
mod front;
mod gate;
mod input_verdicts;
mod inputs;
mod metadata;
pub mod nodes;
mod probes;
pub mod registry;
mod resolve;
mod run;
mod solve_path;
mod test;
mod verdict;

pub use export::{Export, ExportKind};
pub use front::{EXIT_INTERRUPTED, EXIT_SETUP, main, run as run_with_args};
pub use metadata::MetadataInputError;
pub use test::Test;

/// What `#[buildtest::test]` and `cargo_bin!` expand to refers only to items here.
#[doc(hidden)]
pub mod __private {
    pub use crate::harness::registry::{
        Build, Labels, TESTS, TestDef, each_instance as instance_build,
        each_labels as instance_labels,
    };
    pub use crate::llb::local::cargo_bin;
    pub use linkme;
}
