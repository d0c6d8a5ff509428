//! `metadata()` checks end to end, on both Docker engines of `scripts/builders.sh` (BuildKit v0.8.3
//! and v0.13.2): the `harness_metadata` fixture runs as a subprocess against
//! `buildtest/configured:latest` (every config field set, built by `builders.sh up`), and its
//! records, libtest lines and JUnit are checked. These FAIL (never skip) when the engines or the
//! image are missing.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use buildtest::report::{CheckRecord, ErrorKind, Outcome, read_records};

#[path = "support/fixture.rs"]
mod fixture_support;
use fixture_support::build_target;

/// The `harness_metadata` test target's executable (`cargo build --test harness_metadata`, once).
fn fixture() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| build_target("harness_metadata"))
}

/// The engine's address, from `BUILDTEST_DOCKER{20,26}_HOST` or `scripts/builders.sh env`.
fn host(var: &str) -> String {
    if let Some(host) = std::env::var(var).ok().filter(|h| !h.is_empty()) {
        return host;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/builders.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("env")
        .output()
        .unwrap();
    let prefix = format!("export {var}=");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| {
            panic!("{var} is not set and `bash scripts/builders.sh env` did not print it; start the engines with `bash scripts/builders.sh up`")
        })
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    records: Vec<CheckRecord>,
    junit: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    fn on(var: &str, args: &[&str]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results.jsonl");
        let junit = dir.path().join("junit.xml");
        let mut cmd = Command::new(fixture());
        cmd.args(args);
        for name in [
            "BUILDKIT_HOST",
            "BUILDX_BUILDER",
            "DOCKER_CONTEXT",
            "BUILDTEST_STRATEGY",
            "BUILDTEST_NO_CACHE",
            "BUILDTEST_SOLVE",
            "BUILDTEST_JOBS",
            "BUILDTEST_TIMEOUT",
            "BUILDTEST_SUITE",
            "BUILDTEST_PROBE",
        ] {
            cmd.env_remove(name);
        }
        cmd.env("DOCKER_HOST", host(var))
            .env("BUILDTEST_RESULTS", &results)
            .env("BUILDTEST_JUNIT", &junit);
        let out = cmd.output().unwrap();
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            records: read_records(&results).unwrap_or_default(),
            junit: std::fs::read_to_string(&junit).unwrap_or_default(),
        };
        assert!(
            !run.stderr.contains("failed to connect"),
            "the engine in {var} is not reachable; start it with `bash scripts/builders.sh up`\n{run:?}"
        );
        run
    }

    fn record(&self, test: &str, check: u32) -> &CheckRecord {
        self.records
            .iter()
            .find(|r| r.test == test && r.check == check)
            .unwrap_or_else(|| panic!("no record for {test} check {check}: {self:?}"))
    }

    fn outcome(&self, test: &str) -> Option<&str> {
        self.stdout.lines().find_map(|line| {
            let (name, outcome) = line.strip_prefix("test ")?.split_once(" ... ")?;
            (name.trim_end() == test).then_some(outcome.trim())
        })
    }
}

const IMAGE: &str = "docker.io/buildtest/configured:latest";

/// Fails with what to do when the engine's `buildtest/configured:latest` is not the one
/// `scripts/builders.sh up` builds (it carries the `buildtest.fixture.stamp` label).
fn assert_fixture_image(var: &str) {
    let out = Command::new("/usr/bin/docker")
        .args(["-H", &host(var), "image", "inspect", "-f"])
        .arg(r#"{{index .Config.Labels "buildtest.fixture.stamp"}}"#)
        .arg("buildtest/configured:latest")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap();
    let stamp = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stamp.trim().is_empty() && stamp.trim() != "<no value>",
        "buildtest/configured:latest on {var} is missing or was not built by `scripts/builders.sh up` \
         (no buildtest.fixture.stamp label): run `bash scripts/builders.sh up`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn every_assertion_passes(var: &str) {
    assert_fixture_image(var);
    let run = Run::on(var, &["passes::"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let all = run.record("passes::all_in_one", 1);
    assert_eq!(all.outcome, Outcome::Pass, "{all:#?}");
    assert!(
        all.label.starts_with(
            "metadata: env PATH, env GREETING, env APP_MODE, entrypoint, cmd, workdir, user, exposes 8080/tcp"
        ),
        "{}",
        all.label
    );
    assert_eq!((all.cached, all.vertex.as_deref()), (false, None));
    for check in 1..=11 {
        let r = run.record("passes::one_per_check", check);
        assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    }
    assert_eq!(
        run.record("passes::one_per_check", 11).label,
        "file: /opt/app/bin/configured-app"
    );
    assert_eq!(
        run.record("passes::attached_config_survives_steps", 1)
            .outcome,
        Outcome::Pass
    );
    assert_eq!(
        run.record("passes::resolved_config_survives_steps", 1)
            .outcome,
        Outcome::Pass
    );
    assert_eq!(run.outcome("passes::all_in_one"), Some("ok"), "{run:?}");
    assert!(
        run.stderr.contains(
            "buildtest: 13 of them read image configs (metadata checks: no exec, never cached)"
        ),
        "{run:?}"
    );
    assert!(
        run.junit
            .contains(r#"<testcase name="1: metadata: env APP_MODE" time=""#)
            && run.junit.contains(r#"classname="passes::one_per_check""#),
        "{}",
        run.junit
    );
}

fn wrong_values_fail_with_expected_and_actual(var: &str) {
    assert_fixture_image(var);
    let run = Run::on(var, &["fails::"]);
    assert_eq!(run.code, Some(101), "{run:?}");
    let r = run.record("fails::every_wrong_value", 1);
    assert_eq!(r.outcome, Outcome::Fail, "{r:#?}");
    let want = concat!(
        r#"10 of 10 assertions failed: env APP_MODE: expected "staging", got "production"; "#,
        r#"env GREETING (regex): expected a match of /^bye/, got "hello world"; "#,
        r#"entrypoint: expected ["/bin/app"], got ["/opt/app/bin/configured-app"]; "#,
        r#"cmd: expected ["--help"], got ["--serve", "--port=8080"]; "#,
        r#"workdir: expected "/srv", got "/srv/app"; "#,
        r#"user: expected "root", got "app"; "#,
        r#"exposes 9090/tcp: expected "9090/tcp" among the exposed ports, got "53/udp", "8080/tcp"; "#,
        r#"volume /cache: expected "/cache" among the volumes, got "/data"; "#,
        r#"label com.example.team: expected "web", got "platform"; "#,
        r#"label org.opencontainers.image.version (regex): expected a match of /^2\./, got "1.4.2""#,
    );
    assert_eq!(r.message.as_deref(), Some(want));
    let report = r.report.as_deref().unwrap();
    assert!(
        report.starts_with(&format!(
            "image config of {IMAGE}:\nenv APP_MODE: expected \"staging\"\n    actual: \"production\"\n"
        )),
        "{report}"
    );
    assert_eq!(
        r.failure_detail(),
        "the image config did not match; no exec ran"
    );

    let unset = run.record("fails::unset_values", 1);
    assert_eq!(
        unset.message.as_deref(),
        Some(r#"1 of 1 assertion failed: env NOT_THERE: expected "x", got (not set)"#)
    );
    let unset = run.record("fails::unset_values", 2);
    assert_eq!(
        unset.message.as_deref(),
        Some(
            "1 of 1 assertion failed: label not.there (regex): expected a match of /./, got (not set)"
        )
    );
    assert_eq!(run.record("fails::unset_values", 3).outcome, Outcome::Pass);

    // libtest's verdict lists every check with its report; JUnit has the failure and its type.
    assert_eq!(run.outcome("fails::every_wrong_value"), Some("FAILED"));
    assert!(
        run.stdout
            .contains("FAILED (the image config did not match; no exec ran)"),
        "{run:?}"
    );
    assert!(
        run.junit
            .contains(r#"type="check failed: the image config did not match; no exec ran""#),
        "{}",
        run.junit
    );
    assert!(
        run.junit
            .contains(r#"classname="fails::every_wrong_value""#)
    );
}

fn inputs_without_a_config_are_errors(var: &str) {
    assert_fixture_image(var);
    let run = Run::on(var, &["errors::"]);
    assert_eq!(run.code, Some(101), "{run:?}");
    let error = |test: &str, kind: ErrorKind, needle: &str| {
        let r = run.record(test, 1);
        assert_eq!(
            (r.outcome, r.error_kind),
            (Outcome::Error, Some(kind)),
            "{r:#?}"
        );
        let message = r.message.as_deref().unwrap_or_default();
        assert!(message.contains(needle), "{test}: {message}");
    };
    error(
        "errors::scratch",
        ErrorKind::Setup,
        "failed to read the input's image config: the input is scratch, which has no image config",
    );
    error(
        "errors::run_step_without_config",
        ErrorKind::Setup,
        "the input is a `exec` step on a state that carries no image config",
    );
    error(
        "errors::merge",
        ErrorKind::Setup,
        "the input is a merge, which starts with no image config",
    );
    error(
        "errors::missing_image",
        ErrorKind::Input,
        "docker.io/buildtest/no-such-image:never",
    );
    error(
        "errors::bad_regex",
        ErrorKind::Setup,
        r#"failed to compile regex "(unclosed" of check `metadata: env PATH`"#,
    );
    error(
        "errors::no_assertions",
        ErrorKind::Setup,
        "failed to build check `metadata`: it has no assertions",
    );
}

mod docker20 {
    const HOST: &str = "BUILDTEST_DOCKER20_HOST";

    #[test]
    fn every_assertion_passes() {
        super::every_assertion_passes(HOST);
    }

    #[test]
    fn wrong_values_fail_with_expected_and_actual() {
        super::wrong_values_fail_with_expected_and_actual(HOST);
    }

    #[test]
    fn inputs_without_a_config_are_errors() {
        super::inputs_without_a_config_are_errors(HOST);
    }
}

mod docker26 {
    const HOST: &str = "BUILDTEST_DOCKER26_HOST";

    #[test]
    fn every_assertion_passes() {
        super::every_assertion_passes(HOST);
    }

    #[test]
    fn wrong_values_fail_with_expected_and_actual() {
        super::wrong_values_fail_with_expected_and_actual(HOST);
    }

    #[test]
    fn inputs_without_a_config_are_errors() {
        super::inputs_without_a_config_are_errors(HOST);
    }
}
