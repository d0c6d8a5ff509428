//! Settings precedence (flags > environment > configuration > defaults), configuration errors,
//! and the usage / build-failure exit codes.

use crate::support::{
    builder_addr, cargo_buildtest, command, run, runner_dir, seed_lockfile, temp_workspace,
    workspace,
};

/// A filter that selects no test: the run connects and prints its header, then runs nothing.
const NOTHING: &str = "no_test_has_this_name";

#[test]
fn flags_beat_environment_beat_configuration() {
    let addr = builder_addr();
    let ws = workspace();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml").display().to_string();

    // `.config/buildtest.toml` (jobs = 3) shadows `[workspace.metadata.buildtest]` (jobs = 9),
    // which still provides the strategy.
    let out = cargo_buildtest(
        &ws,
        &[
            "-p", "beta", "--addr", &addr, "--junit", &junit, "--", NOTHING,
        ],
    );
    out.assert_code(0)
        .assert_stderr_has("Jobs 3 concurrent solves per suite")
        .assert_stderr_has(&format!(
            "Strategy direct (from {})",
            ws.join("Cargo.toml").display()
        ))
        .assert_stderr_has("0 checks in 0 tests run");

    // The environment beats the configuration.
    let mut cmd = command(&ws, &["-p", "beta", "--junit", &junit, "--", NOTHING]);
    cmd.env("BUILDTEST_JOBS", "5")
        .env("BUILDKIT_HOST", &addr)
        .env("BUILDTEST_STRATEGY", "auto");
    let out = run(cmd);
    out.assert_code(0)
        .assert_stderr_has("Jobs 5 concurrent solves per suite")
        .assert_stderr_has("(chosen by $BUILDKIT_HOST)")
        .assert_stderr_has("Strategy direct (auto: the builder lacks passthroughop");

    // Flags beat the environment.
    let mut cmd = command(
        &ws,
        &[
            "-p", "beta", "--jobs", "7", "--addr", &addr, "--junit", &junit, "--", NOTHING,
        ],
    );
    cmd.env("BUILDTEST_JOBS", "5")
        .env("BUILDKIT_HOST", "unix:///nonexistent.sock");
    let out = run(cmd);
    out.assert_code(0)
        .assert_stderr_has("Jobs 7 concurrent solves per suite")
        .assert_stderr_has("(chosen by flag --addr)");
}

/// `--builder NAME` beats `BUILDKIT_HOST` and `BUILDX_BUILDER` of the environment, in the
/// header and in every suite binary (each check's record names the builder it ran on).
#[test]
fn the_builder_flag_beats_buildkit_host_for_the_header_and_the_suites() {
    let addr = builder_addr();
    let endpoint = addr.strip_prefix("docker+").unwrap_or(&addr).to_owned();
    let engine = format!("docker engine at {endpoint}");
    // A buildx store with one builder on the Docker engine, as `docker buildx create
    // --driver docker` would write it.
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir(store.path().join("instances")).unwrap();
    std::fs::write(
        store.path().join("instances").join("e2e-bx"),
        format!(
            r#"{{"Name":"e2e-bx","Driver":"docker","Nodes":[{{"Name":"e2e-bx0","Endpoint":"{endpoint}"}}]}}"#
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml").display().to_string();
    let ws = workspace();
    let mut cmd = command(
        &ws,
        &[
            "-p",
            "beta",
            "--builder",
            "e2e-bx",
            "--junit",
            &junit,
            "--message-format",
            "json",
            "--",
            "still_fine",
        ],
    );
    cmd.env("BUILDX_CONFIG", store.path())
        .env("BUILDKIT_HOST", "unix:///nonexistent.sock")
        .env("BUILDX_BUILDER", "stale-builder");
    let out = run(cmd);
    out.assert_code(0);
    let events = out.json_lines();
    let header = events
        .iter()
        .find(|e| e["type"] == "header")
        .expect("a header event");
    assert_eq!(header["builder"], engine.as_str(), "{header}");
    assert_eq!(header["reason"], "flag --builder", "{header}");
    let checks: Vec<_> = events.iter().filter(|e| e["type"] == "check").collect();
    assert_eq!(checks.len(), 1, "{}", out.stdout);
    for check in checks {
        let builder = check["builder"].as_str().unwrap_or_default();
        assert!(
            builder.starts_with(&format!("{engine} (buildx builder e2e-bx from ")),
            "the suite ran on another builder than the header's: {check}"
        );
    }
}

#[test]
fn unknown_configuration_keys_are_errors_naming_file_and_key() {
    let manifest = "[workspace]\nmembers = [\"p\"]\nresolver = \"3\"\n";
    let package = "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2024\"\n";
    let ws = temp_workspace(&[
        ("Cargo.toml", manifest),
        ("p/Cargo.toml", package),
        ("p/src/lib.rs", "//! p\n"),
        (".config/buildtest.toml", "jobs = 2\nparalel = 4\n"),
    ]);
    let out = cargo_buildtest(ws.path(), &["--list"]);
    out.assert_code(2)
        .assert_stderr_has(
            &ws.path()
                .join(".config/buildtest.toml")
                .display()
                .to_string(),
        )
        .assert_stderr_has("unknown field `paralel`");

    let manifest = format!("{manifest}\n[workspace.metadata.buildtest]\njobz = 1\n");
    let ws = temp_workspace(&[
        ("Cargo.toml", &manifest),
        ("p/Cargo.toml", package),
        ("p/src/lib.rs", "//! p\n"),
    ]);
    let out = cargo_buildtest(ws.path(), &["--list"]);
    out.assert_code(2)
        .assert_stderr_has(&ws.path().join("Cargo.toml").display().to_string())
        .assert_stderr_has("[workspace.metadata.buildtest]")
        .assert_stderr_has("unknown field `jobz`");

    // A bad strategy name is a setup error before anything is built, like every other setting's
    // bad value (`--jobs 0 --list` below), listing or not.
    cargo_buildtest(
        &workspace(),
        &["--strategy", "sideways", "--list", "-p", "beta"],
    )
    .assert_code(2)
    .assert_stderr_has(
        "error: failed to read flag --strategy: `sideways` is not one of auto, passthrough, direct, discard, mergediff",
    );
    let out = cargo_buildtest(
        &workspace(),
        &["--strategy", "sideways", "--addr", "unix:///x"],
    );
    out.assert_code(2).assert_stderr_has("sideways");
}

#[test]
fn usage_errors_exit_2() {
    let ws = workspace();
    cargo_buildtest(&ws, &["--no-such-flag"]).assert_code(2);
    cargo_buildtest(&ws, &["--ignored", "--include-ignored", "--list"]).assert_code(2);
    cargo_buildtest(&ws, &["--jobs", "0", "--list"])
        .assert_code(2)
        .assert_stderr_has("at least 1");
    let mut cmd = command(&ws, &["--list"]);
    cmd.env("BUILDTEST_TIMEOUT", "soon");
    run(cmd)
        .assert_code(2)
        .assert_stderr_has("BUILDTEST_TIMEOUT");
    cargo_buildtest(&ws, &["--help"]).assert_code(0);
}

#[test]
fn suites_that_do_not_compile_exit_101() {
    let runner = runner_dir();
    let package = format!(
        "[package]\nname = \"broken-build\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         [dev-dependencies]\nbuildtest = {{ path = \"{runner}\" }}\n\
         [[test]]\nname = \"suite\"\nharness = false\n"
    );
    let ws = temp_workspace(&[
        ("Cargo.toml", &package),
        ("src/lib.rs", "//! broken\n"),
        (
            "tests/suite.rs",
            "fn main() { buildtest::main() }\nfn oops() -> u32 { \"not a number\" }\n",
        ),
    ]);
    let with_workspace = format!("{package}\n[workspace]\n");
    std::fs::write(ws.path().join("Cargo.toml"), with_workspace).unwrap();
    seed_lockfile(ws.path());
    let out = cargo_buildtest(ws.path(), &["--list"]);
    out.assert_code(101)
        .assert_stderr_has("mismatched types")
        .assert_stderr_has("error: failed to build the test suites");
}
