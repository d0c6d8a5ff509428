//! Tests of `buildtest::main()` through the `harness_fixture` binary, run as a subprocess the
//! way cargo, nextest and IDEs run it.
//!
//! - `list`: listing and selection from the static registry, with no builder reachable;
//! - `no_builder`: a run with an unreachable builder fails loudly;
//! - `e2e`: real runs against both Docker engines of `scripts/builders.sh` (BuildKit v0.8.3
//!   and v0.13.2): passing, failing, erroring and ignored tests, the cached rerun, results
//!   records and JUnit. These FAIL (never skip) when the engines are not up.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use buildtest::report::{CheckRecord, ErrorKind, Outcome, read_records};

/// The `harness_fixture` test target's executable.
fn fixture() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| build_target("harness_fixture"))
}

#[path = "support/fixture.rs"]
mod fixture_support;
use fixture_support::build_target;

/// The builder-related variables of the environment, cleared for every run.
const CLEARED: &[&str] = &[
    "BUILDKIT_HOST",
    "BUILDX_BUILDER",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "BUILDTEST_STRATEGY",
    "BUILDTEST_NO_CACHE",
    "BUILDTEST_SOLVE",
    "BUILDTEST_RESULTS",
    "BUILDTEST_JUNIT",
    "BUILDTEST_JOBS",
    "BUILDTEST_TIMEOUT",
    "BUILDTEST_SUITE",
    "BUILDTEST_PROBE",
];

struct Run {
    out: Output,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Runs `cmd` to the end, capturing its output.
    fn of(mut cmd: Command) -> Run {
        let out = cmd.output().unwrap();
        Run {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            out,
        }
    }

    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    /// libtest's word for `test` (`ok`, `FAILED`, `ignored`) from a `test NAME ... X` line.
    fn outcome(&self, test: &str) -> Option<&str> {
        self.stdout.lines().find_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (name, outcome) = rest.split_once(" ... ")?;
            (name.trim_end() == test).then_some(outcome.trim())
        })
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// `exe ARGS` with the builder-related variables cleared, then `env` set.
fn fixture_command(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    for name in CLEARED {
        cmd.env_remove(name);
    }
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::of(fixture_command(fixture(), args, env))
}

const NO_BUILDER: (&str, &str) = ("BUILDKIT_HOST", "unix:///nonexistent/buildkitd.sock");

mod list {
    use super::*;

    const ALL: &str = "\
concurrent::a: test
concurrent::b: test
concurrent::c: test
errors::duplicate_labels: test
errors::input_fails_to_build: test
errors::missing_image: test
errors::panics: test
errors::times_out: test
fails::file_mode: test
fails::middle_check: test
ignored::after_with_reason: test
ignored::before: test
instances::marker::busybox: test
instances::marker::scratch: test
passes::argv_is_verbatim: test
passes::checks_are_isolated: test
passes::cmd_and_file: test
passes::nested::deep: test
passes::scratch_image: test
top_level: test
";

    #[test]
    fn terse_list_is_exactly_libtests_format() {
        let run = run(&["--list", "--format", "terse"], &[NO_BUILDER]);
        assert_eq!(run.code(), Some(0), "{run:?}");
        assert_eq!(run.stdout, ALL, "{run:?}");
        assert_eq!(
            run.stderr, "",
            "listing must not print anything else: {run:?}"
        );
    }

    #[test]
    fn list_needs_no_builder_and_no_valid_config() {
        // An unreachable builder and nonsense settings: listing reads only the registry.
        let run = run(
            &["--list"],
            &[
                NO_BUILDER,
                ("BUILDTEST_JOBS", "zero"),
                ("BUILDTEST_RESULTS", "/nonexistent/r"),
            ],
        );
        assert_eq!(run.code(), Some(0), "{run:?}");
        assert_eq!(run.stdout, ALL, "{run:?}");
    }

    #[test]
    fn list_ignored_shows_only_ignored_tests() {
        let run = run(&["--list", "--format", "terse", "--ignored"], &[NO_BUILDER]);
        assert_eq!(
            run.stdout,
            "ignored::after_with_reason: test\nignored::before: test\n"
        );
    }

    #[test]
    fn filters_exact_and_skip_select_like_libtest() {
        let names = |args: &[&str]| {
            let mut all = vec!["--list", "--format", "terse"];
            all.extend_from_slice(args);
            run(&all, &[NO_BUILDER]).stdout
        };
        assert_eq!(
            names(&["nested"]),
            "passes::nested::deep: test\n",
            "substring filter"
        );
        assert_eq!(
            names(&["--exact", "passes::nested::deep"]),
            "passes::nested::deep: test\n"
        );
        assert_eq!(
            names(&["--exact", "deep"]),
            "",
            "--exact matches the whole name"
        );
        assert_eq!(
            names(&["passes::", "--skip", "passes::c", "--skip", "nested"]),
            "passes::argv_is_verbatim: test\npasses::scratch_image: test\n"
        );
    }

    /// An IDE's "Run Test" on a fn with instances passes `--exact <fn path>`: every instance
    /// runs. An instance's own name selects that instance alone; `--skip` still applies.
    #[test]
    fn an_exact_filter_on_a_fn_with_instances_runs_every_instance() {
        let outcomes = |args: &[&str]| {
            let run = run(args, &[NO_BUILDER]);
            ["busybox", "scratch"].map(|l| {
                run.outcome(&format!("instances::marker::{l}"))
                    .map(str::to_owned)
            })
        };
        let failed = Some("FAILED".to_owned()); // no builder: selected tests error
        assert_eq!(
            outcomes(&["--exact", "instances::marker"]),
            [failed.clone(), failed.clone()]
        );
        assert_eq!(
            outcomes(&["--exact", "instances::marker::scratch"]),
            [None, failed.clone()]
        );
        assert_eq!(
            outcomes(&["--exact", "instances::marker", "--skip", "busybox"]),
            [None, failed.clone()]
        );
        assert_eq!(outcomes(&["marker::busy"]), [failed, None]);
    }

    #[test]
    fn instances_with_a_repeated_label_are_one_erroring_test() {
        let run = run(&["--exact", "errors::duplicate_labels"], &[NO_BUILDER]);
        assert_eq!(run.code(), Some(101), "{run:?}");
        assert_eq!(
            run.outcome("errors::duplicate_labels"),
            Some("FAILED"),
            "{run:?}"
        );
        assert!(
            run.stdout
                .contains("failed to list the instances: label \"same\" appears twice"),
            "{run:?}"
        );
    }

    #[test]
    fn ignored_only_run_selects_nothing_to_solve_without_a_builder() {
        // Only ignored tests match and they are not run: no builder is contacted, so the
        // unreachable address does not matter and the run passes.
        let run = run(&["ignored::"], &[NO_BUILDER]);
        assert_eq!(run.code(), Some(0), "{run:?}");
        assert_eq!(run.outcome("ignored::before"), Some("ignored"), "{run:?}");
        assert!(
            run.stdout.contains("0 passed; 0 failed; 2 ignored"),
            "{run:?}"
        );
        assert!(!run.stderr.contains("builder"), "{run:?}");
    }

    #[test]
    fn unknown_flags_are_usage_errors() {
        let run = run(&["--no-such-flag"], &[NO_BUILDER]);
        assert_eq!(run.code(), Some(2), "{run:?}");
    }
}

mod many {
    use super::*;
    use std::time::{Duration, Instant};

    /// Acceptance: listing 1 000 registered tests takes under 50 ms and contacts no builder.
    #[test]
    fn listing_a_thousand_tests_is_fast() {
        let exe = build_target("harness_many");
        let mut best = Duration::MAX;
        let mut lines = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let out = Command::new(&exe)
                .args(["--list", "--format", "terse"])
                .env("BUILDKIT_HOST", NO_BUILDER.1)
                .output()
                .unwrap();
            best = best.min(started.elapsed());
            assert!(out.status.success());
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(
                stdout
                    .lines()
                    .all(|l| l.starts_with('g') && l.ends_with(": test"))
            );
            assert!(
                stdout.starts_with("g0::m0::t0: test\ng0::m0::t1: test\n"),
                "{stdout}"
            );
            lines = stdout.lines().count();
        }
        assert_eq!(lines, 1000);
        eprintln!("listing 1000 tests: best of 5 runs {best:?} (whole process)");
        assert!(best < Duration::from_millis(50), "listing took {best:?}");
    }
}

mod no_builder {
    use super::*;

    /// One rule for every setting: a value it does not accept is a setup error (exit 2, nothing
    /// connected, the message names the variable, the value and the accepted forms) — the same
    /// words `cargo buildtest` uses.
    #[test]
    fn a_value_a_setting_does_not_accept_is_a_setup_error_for_every_setting() {
        for (var, value, accepted) in [
            (
                "BUILDTEST_STRATEGY",
                "bogus",
                "one of auto, passthrough, direct, discard, mergediff",
            ),
            (
                "BUILDTEST_JOBS",
                "0",
                "a whole number of concurrent solves, at least 1",
            ),
            (
                "BUILDTEST_TIMEOUT",
                "soon",
                buildtest::protocol::settings::TIMEOUT.accepted,
            ),
            (
                "BUILDTEST_NO_CACHE",
                "maybe",
                "a boolean: 1, true, yes, on or 0, false, no, off",
            ),
            (
                "BUILDTEST_PROBE",
                "pull",
                "one of auto, image, inline, session",
            ),
            (
                "BUILDTEST_SOLVE",
                "fastest",
                "one of auto, gateway, control",
            ),
        ] {
            let run = run(
                &["--exact", "passes::nested::deep"],
                &[NO_BUILDER, (var, value)],
            );
            assert_eq!(run.code(), Some(2), "{var}={value}: {run:?}");
            let line = format!("error: failed to read {var}: `{value}` is not {accepted}\n");
            assert!(run.stderr.contains(&line), "{var}={value}: {line}\n{run:?}");
            assert!(
                !run.stderr.contains("nonexistent"),
                "nothing connected: {run:?}"
            );
        }
    }

    /// Durations with units are read by the harness as by `cargo buildtest`: `5m` is accepted
    /// (the run goes on to the unreachable builder: a builder error, not a setup error).
    #[test]
    fn durations_with_units_are_accepted_under_cargo_test() {
        for value in ["5m", "90s", "1.5s", "2.5"] {
            let run = run(
                &["--exact", "passes::nested::deep"],
                &[NO_BUILDER, ("BUILDTEST_TIMEOUT", value)],
            );
            assert_eq!(run.code(), Some(101), "{value}: {run:?}");
            assert!(
                run.stdout.contains("ERROR (builder error)"),
                "{value}: {run:?}"
            );
        }
    }

    #[test]
    fn an_unreachable_builder_fails_the_run_with_a_clear_message() {
        let run = run(&["--exact", "passes::nested::deep"], &[NO_BUILDER]);
        assert_eq!(run.code(), Some(101), "{run:?}");
        assert!(
            run.stderr.contains("/nonexistent/buildkitd.sock"),
            "{run:?}"
        );
        assert_eq!(
            run.outcome("passes::nested::deep"),
            Some("FAILED"),
            "{run:?}"
        );
        assert!(run.stdout.contains("ERROR (builder error)"), "{run:?}");
        assert!(run.stdout.contains("0 passed; 1 failed"), "{run:?}");
    }
}

#[path = "harness/e2e.rs"]
mod e2e;
