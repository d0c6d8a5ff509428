//! Runs against the real builder: outcomes, console, exit codes and JUnit read back by
//! `junitparser`.

use crate::support::{
    builder_addr, cargo_buildtest, cases, read_junit, runner_dir, stable_workspace, suite,
    workspace,
};

/// The full default run: passing, failing, erroring and ignored checks in three suites.
#[test]
fn a_full_run_reports_every_outcome_and_a_second_run_is_cached() {
    let addr = builder_addr();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report").join("junit.xml");
    let junit_arg = junit.display().to_string();
    let args = ["--no-fail-fast", "--addr", &addr, "--junit", &junit_arg];
    let out = cargo_buildtest(&workspace(), &args);
    out.assert_code(100);

    // Header: builder, how it was chosen, strategy (from the fixture's configuration), jobs.
    out.assert_stderr_has(
        "Builder docker engine at unix:///var/run/docker.sock (chosen by flag --addr)",
    )
    .assert_stderr_has("Strategy direct (from ")
    .assert_stderr_has("Jobs 3 concurrent solves per suite")
    .assert_stderr_has("Starting 7 tests across 3 suites");
    // One line per check, with status and time.
    out.assert_stderr_has("PASS [")
        .assert_stderr_has("] alpha::files etc::passwd_has_root #1 file: /etc/passwd")
        .assert_stderr_has("FAIL [")
        .assert_stderr_has("] alpha::images greeting::wrong_greeting #2 cmd: echo hello")
        .assert_stderr_has("ERROR [")
        .assert_stderr_has("] beta::broken input_fails #1 cmd: true")
        .assert_stderr_has("IGNORED")
        .assert_stderr_has("alpha::images needs_the_registry");
    // The failure's expected-vs-actual report from the probe.
    out.assert_stderr_has(
        "--- FAIL: alpha::images greeting::wrong_greeting #2 cmd: echo hello (the command exited 0; probe: an assertion did not hold)",
    )
    .assert_stderr_has("goodbye");
    out.assert_stderr_has("--- ERROR: beta::broken input_fails #1 cmd: true");
    out.assert_stderr_has("10 checks in 6 tests run: 8 passed (")
        .assert_stderr_has("1 failed, 1 errored, 1 test ignored");
    out.assert_stderr_has(&format!("JUnit {junit_arg}"));

    let suites = read_junit(&junit);
    let names: Vec<&str> = suites.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha::files", "alpha::images", "beta::broken"]);

    let files = suite(&suites, "alpha::files");
    assert_eq!(
        (
            files["tests"].as_i64(),
            files["failures"].as_i64(),
            files["errors"].as_i64()
        ),
        (Some(3), Some(0), Some(0))
    );
    assert_eq!(
        cases(files),
        [
            (
                "etc::passwd_has_root".into(),
                "1: file: /etc/passwd".into(),
                "pass".into()
            ),
            (
                "layout".into(),
                "1: file: /bin/busybox".into(),
                "pass".into()
            ),
            ("layout".into(), "2: file: /tmp".into(), "pass".into()),
        ]
    );

    let images = suite(&suites, "alpha::images");
    assert_eq!(images["failures"].as_i64(), Some(1));
    assert_eq!(images["errors"].as_i64(), Some(0));
    assert_eq!(
        cases(images),
        [
            (
                "echo_works".into(),
                "1: cmd: echo hello".into(),
                "pass".into()
            ),
            (
                "echo_works".into(),
                "2: cmd: sh -c 'echo oops >&2; exit 3'".into(),
                "pass".into()
            ),
            (
                "greeting::wrong_greeting".into(),
                "1: cmd: echo hello".into(),
                "pass".into()
            ),
            (
                "greeting::wrong_greeting".into(),
                "2: cmd: echo hello".into(),
                "failure".into()
            ),
            (
                "greeting::wrong_greeting".into(),
                "3: cmd: echo hello".into(),
                "pass".into()
            ),
            (
                "needs_the_registry".into(),
                IGNORED_NAME.into(),
                "skipped".into()
            ),
        ]
    );
    let failed = &images["cases"][3]["results"][0];
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("goodbye"), "failure message: {message}");
    assert!(
        !message.contains('\n'),
        "failure message is one line: {message:?}"
    );
    assert!(
        failed["text"].as_str().unwrap().contains("hello"),
        "{failed}"
    );

    let broken = suite(&suites, "beta::broken");
    assert_eq!(
        (broken["failures"].as_i64(), broken["errors"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(
        cases(broken),
        [
            ("input_fails".into(), "1: cmd: true".into(), "error".into()),
            ("still_fine".into(), "1: cmd: true".into(), "pass".into()),
        ]
    );
    assert_eq!(broken["cases"][0]["results"][0]["type"], "input failed");

    // A second run: the same outcomes, every passing check from BuildKit's cache.
    let again = cargo_buildtest(&workspace(), &args);
    again.assert_code(100);
    again.assert_stderr_has(
        "10 checks in 6 tests run: 8 passed (8 cached), 1 failed, 1 errored, 1 test ignored",
    );
    assert_eq!(read_junit(&junit).len(), 3);
}

/// The JUnit testcase of an ignored test's (only) check.
const IGNORED_NAME: &str = "1: file: /etc/debian_version";

#[test]
fn fail_fast_stops_after_the_first_failing_suite() {
    let addr = builder_addr();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let junit_arg = junit.display().to_string();
    let out = cargo_buildtest(&workspace(), &["--addr", &addr, "--junit", &junit_arg]);
    out.assert_code(100)
        .assert_stderr_has("1 suite not run after failures (use --no-fail-fast to run them all)");
    assert!(
        !out.stderr.contains("beta::broken input_fails"),
        "{}",
        out.stderr
    );
    let suites = read_junit(&junit);
    let names: Vec<&str> = suites.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha::files", "alpha::images"]);
}

#[test]
fn a_passing_selection_exits_zero_and_json_reports_each_check() {
    let addr = builder_addr();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let junit_arg = junit.display().to_string();
    let args = [
        "-p",
        "alpha",
        "--addr",
        &addr,
        "--junit",
        &junit_arg,
        "--message-format",
        "json",
        "--",
        "echo_works",
    ];
    let out = cargo_buildtest(&workspace(), &args);
    out.assert_code(0);
    let events = out.json_lines();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"header"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"summary"), "{kinds:?}");
    let checks: Vec<_> = events.iter().filter(|e| e["type"] == "check").collect();
    assert_eq!(checks.len(), 2, "{}", out.stdout);
    assert!(
        checks
            .iter()
            .all(|c| c["outcome"] == "pass" && c["suite"] == "alpha::images")
    );
    let summary = events.last().unwrap();
    assert_eq!(
        (summary["passed"].as_i64(), summary["failed"].as_i64()),
        (Some(2), Some(0))
    );
    let suites = read_junit(&junit);
    assert_eq!(suite(&suites, "alpha::files")["tests"].as_i64(), Some(0));
    assert_eq!(suite(&suites, "alpha::images")["tests"].as_i64(), Some(2));
}

/// `--no-cache` re-runs checks that are cached; the next plain run takes them from the cache.
///
/// The suite is its own: `ignore_cache` is op metadata, so a `--no-cache` exec has the same digest
/// as the cached one, and BuildKit shares an in-flight exec between concurrent solves. Run on the
/// fixture's checks, it would make another test's "all cached" second run see a fresh exec.
#[test]
fn no_cache_reruns_cached_checks_and_the_next_run_takes_them_from_the_cache() {
    let addr = builder_addr();
    let suite_src = "//! Checks that only the --no-cache test runs.\n\
        use buildtest::prelude::*;\n\
        #[buildtest::test]\n\
        fn rerun() -> Test {\n\
            Test::on(State::image(\"buildtest/busybox:latest\"))\n\
                .check(cmd([\"echo\", \"no-cache e2e\"]).stdout_equals(\"no-cache e2e\\n\"))\n\
                .check(file(\"/bin/busybox\").exists().mode(0o755))\n\
        }\n\
        fn main() { buildtest::main() }\n";
    let ws = single_suite_workspace("nocache", suite_src);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let junit_arg = junit.display().to_string();
    let args = ["--addr", addr.as_str(), "--junit", &junit_arg];
    // Whatever the cache holds, a plain run leaves both checks cached.
    cargo_buildtest(&ws, &args)
        .assert_code(0)
        .assert_stderr_has("2 checks in 1 test run: 2 passed (");
    let mut no_cache = args.to_vec();
    no_cache.insert(0, "--no-cache");
    cargo_buildtest(&ws, &no_cache)
        .assert_code(0)
        .assert_stderr_has("checks re-run without cache")
        .assert_stderr_has("2 checks in 1 test run: 2 passed (0 cached)");
    cargo_buildtest(&ws, &args)
        .assert_code(0)
        .assert_stderr_has("2 checks in 1 test run: 2 passed (2 cached)");
}

/// A one-package workspace (under `target/buildtest-e2e/NAME`) with one suite, `tests/NAME.rs`.
fn single_suite_workspace(name: &str, suite_src: &str) -> std::path::PathBuf {
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n[workspace]\n\n[dev-dependencies]\n\
         buildtest = {{ path = \"{}\" }}\n\n[[test]]\nname = \"{name}\"\nharness = false\n",
        runner_dir()
    );
    let suite_path = format!("tests/{name}.rs");
    stable_workspace(
        name,
        &[
            ("Cargo.toml", &manifest),
            ("src/lib.rs", &format!("//! {name}\n")),
            (&suite_path, suite_src),
        ],
    )
}

#[test]
fn no_reachable_builder_is_its_own_exit_code_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let junit_arg = junit.display().to_string();
    // Build first, so the timed run measures discovery + connecting, not compiling.
    cargo_buildtest(&workspace(), &["--list"]).assert_code(0);
    let addr = "unix:///nonexistent/buildtest-e2e/buildkitd.sock";
    let out = cargo_buildtest(&workspace(), &["--addr", addr, "--junit", &junit_arg]);
    out.assert_code(102)
        .assert_stderr_has("error: failed to reach a builder")
        .assert_stderr_has("/nonexistent/buildtest-e2e/buildkitd.sock");
    assert!(out.elapsed.as_secs() < 20, "took {:?}", out.elapsed);
    assert!(!junit.exists(), "no JUnit without a run");
}

#[test]
fn a_suite_binary_that_dies_reports_its_tests_as_errors() {
    let addr = builder_addr();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let junit_arg = junit.display().to_string();
    let out = cargo_buildtest(
        &workspace(),
        &["-p", "crashy", "--addr", &addr, "--junit", &junit_arg],
    );
    out.assert_code(100)
        .assert_stderr_has("ERROR")
        .assert_stderr_has("crashy::crashy never_reported")
        .assert_stderr_has("crashy: giving up before running anything")
        .assert_stderr_has(
            "1 check in 1 test run: 0 passed (0 cached), 0 failed, 1 errored, 0 tests ignored",
        );
    let suites = read_junit(&junit);
    let crashy = suite(&suites, "crashy::crashy");
    assert_eq!(
        cases(crashy),
        [(
            "never_reported".to_owned(),
            "0: suite binary".to_owned(),
            "error".to_owned()
        )]
    );
}

/// A JUnit testsuite's `time` is the wall time of its run, not the sum of its checks' times:
/// two checks that sleep a second each, solved concurrently, make a suite of about one second.
#[test]
fn junit_suite_time_is_wall_time_when_checks_overlap() {
    let addr = builder_addr();
    let suite_src = "//! Two slow checks that run at the same time.\n\
        use buildtest::prelude::*;\n\
        #[buildtest::test]\n\
        fn sleepers() -> Test {\n\
            Test::on(State::image(\"buildtest/busybox:latest\"))\n\
                .check(cmd([\"sleep\", \"1\"]))\n\
                .check(cmd([\"sh\", \"-c\", \"sleep 1\"]))\n\
        }\n\
        fn main() { buildtest::main() }\n";
    let ws = single_suite_workspace("overlap", suite_src);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let junit_arg = junit.display().to_string();
    // --no-cache: both checks really sleep on every run.
    let args = [
        "--addr",
        &addr,
        "--no-cache",
        "--jobs",
        "4",
        "--junit",
        &junit_arg,
    ];
    let out = cargo_buildtest(&ws, &args);
    out.assert_code(0);

    // junitparser recomputes a suite's counts and time (as the sum of its testcases) when a
    // count attribute such as `skipped` is missing: this reads what its users would see.
    let suites = read_junit(&junit);
    let overlap = suite(&suites, "overlap::overlap");
    assert_eq!(overlap["skipped"].as_i64(), Some(0), "{overlap:#}");
    let case_times: Vec<f64> = overlap["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["time"].as_f64().unwrap())
        .collect();
    assert_eq!(case_times.len(), 2, "{overlap:#}");
    let sum: f64 = case_times.iter().sum();
    let longest = case_times.iter().copied().fold(0.0, f64::max);
    let time = overlap["time"].as_f64().unwrap();
    assert!(
        case_times.iter().all(|t| *t >= 1.0),
        "each check sleeps a second: {case_times:?}"
    );
    assert!(
        time >= longest - 0.001,
        "suite time {time} is shorter than its longest check {longest}"
    );
    assert!(
        time < sum - 0.5,
        "suite time {time} is (close to) the sum of its overlapping checks {case_times:?}\n{}\n{}",
        out.stderr,
        std::fs::read_to_string(&junit).unwrap_or_default()
    );
    assert!(
        overlap["timestamp"].as_str().is_some_and(|t| !t.is_empty()),
        "{overlap:#}"
    );
}
