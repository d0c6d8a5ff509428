//! End-to-end runs of the fixture on the real Docker engines (see `scripts/builders.sh`).
//! Each scenario runs on both engines. Missing engines are a failure, with what to run.

use std::time::{Duration, Instant};

use super::*;

mod config;
use config::{dockerfiles_build_once_and_rerun_cached, image_configs_apply_like_docker_run};
mod solve_path;
use solve_path::{
    a_shared_broken_input_errors_every_check_on_both_paths, auto_takes_the_gateway_unless_no_cache,
    gateway_and_control_give_the_same_records,
};

#[derive(Clone, Copy, Debug)]
enum Engine {
    Docker20,
    Docker26,
}

impl Engine {
    fn var(self) -> &'static str {
        match self {
            Engine::Docker20 => "BUILDTEST_DOCKER20_HOST",
            Engine::Docker26 => "BUILDTEST_DOCKER26_HOST",
        }
    }

    /// The engine's Docker API address: from the environment, else from
    /// `scripts/builders.sh env`.
    fn host(self) -> String {
        if let Some(host) = std::env::var(self.var()).ok().filter(|h| !h.is_empty()) {
            return host;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/builders.sh");
        let out = Command::new("bash").arg(&script).arg("env").output();
        let text = out
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let prefix = format!("export {}=", self.var());
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim_matches(['"', '\'']).to_owned())
            .unwrap_or_else(|| {
                panic!(
                    "{} is not set and `bash scripts/builders.sh env` did not print it ({out:?}); \
                     start the engines with `bash scripts/builders.sh up`",
                    self.var()
                )
            })
    }
}

/// A scratch directory with a results file and a JUnit path.
struct Outputs {
    dir: tempfile::TempDir,
}

impl Outputs {
    fn new() -> Self {
        Outputs {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn results(&self) -> PathBuf {
        self.dir.path().join("results.jsonl")
    }
    fn junit(&self) -> PathBuf {
        self.dir.path().join("junit.xml")
    }
    fn records(&self) -> Vec<CheckRecord> {
        read_records(&self.results()).unwrap()
    }
}

/// `exe ARGS` against `engine`, writing records (and JUnit) into `outputs`, with `extra` set.
fn engine_command(
    exe: &Path,
    engine: Engine,
    outputs: &Outputs,
    args: &[&str],
    extra: &[(&str, &str)],
) -> Command {
    let host = engine.host();
    let results = outputs.results();
    let junit = outputs.junit();
    let mut env = vec![
        ("DOCKER_HOST", host.as_str()),
        ("BUILDTEST_RESULTS", results.to_str().unwrap()),
        ("BUILDTEST_JUNIT", junit.to_str().unwrap()),
    ];
    env.extend_from_slice(extra);
    fixture_command(exe, args, &env)
}

/// Runs the fixture against `engine`, writing records (and JUnit) into `outputs`.
fn run_on(engine: Engine, outputs: &Outputs, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let host = engine.host();
    let run = Run::of(engine_command(fixture(), engine, outputs, args, extra));
    assert!(
        !run.stderr.contains("failed to connect") && !run.stderr.contains("builder error"),
        "engine {engine:?} at {host} is not reachable; start it with `bash scripts/builders.sh up`\n{run:?}"
    );
    run
}

/// Held by every scenario that runs `passes::` with `BUILDTEST_NO_CACHE` and by the one that
/// asserts a rerun of `passes::` is all cached. `ignore_cache` is op metadata, so an uncached check
/// exec has the cached one's digest, and BuildKit lets a plain solve join an in-flight uncached
/// exec: overlapping, the rerun would (truthfully) report a check that was not taken from cache.
fn passes_lock(engine: Engine) -> std::sync::MutexGuard<'static, ()> {
    static DOCKER20: std::sync::Mutex<()> = std::sync::Mutex::new(());
    static DOCKER26: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let lock = match engine {
        Engine::Docker20 => &DOCKER20,
        Engine::Docker26 => &DOCKER26,
    };
    lock.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn find<'a>(records: &'a [CheckRecord], test: &str, check: u32) -> &'a CheckRecord {
    records
        .iter()
        .find(|r| r.test == test && r.check == check)
        .unwrap_or_else(|| panic!("no record for {test} check {check} in {records:#?}"))
}

fn passing_tests_pass_and_rerun_cached(engine: Engine) {
    let _passes = passes_lock(engine);
    let first = Outputs::new();
    let run1 = run_on(engine, &first, &["passes::"], &[]);
    assert_eq!(run1.code(), Some(0), "{run1:?}");
    assert_eq!(
        run1.outcome("passes::scratch_image"),
        Some("ok"),
        "{run1:?}"
    );
    assert!(
        run1.stdout.contains("5 passed; 0 failed; 0 ignored"),
        "{run1:?}"
    );
    assert!(
        run1.stderr.contains("strategy"),
        "the header names the strategy: {run1:?}"
    );
    let records = first.records();
    assert_eq!(records.len(), 9, "{records:#?}");
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Pass),
        "{records:#?}"
    );
    assert!(
        records.iter().all(|r| r.schema == 1 && r.vertex.is_some()),
        "{records:#?}"
    );

    let second = Outputs::new();
    let run2 = run_on(engine, &second, &["passes::"], &[]);
    assert_eq!(run2.code(), Some(0), "{run2:?}");
    let records = second.records();
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Pass && r.cached),
        "every passing check is cached on a rerun: {records:#?}"
    );
    assert!(
        run2.stderr
            .contains("9 checks in 5 tests run: 9 passed (9 cached)"),
        "{run2:?}"
    );

    let third = Outputs::new();
    let run3 = run_on(
        engine,
        &third,
        &["passes::"],
        &[("BUILDTEST_NO_CACHE", "1")],
    );
    assert_eq!(run3.code(), Some(0), "{run3:?}");
    assert!(
        third.records().iter().all(|r| !r.cached),
        "BUILDTEST_NO_CACHE re-runs every check exec: {:#?}",
        third.records()
    );
}

fn failures_show_expected_and_actual(engine: Engine) {
    for round in 0..2 {
        let outputs = Outputs::new();
        let run = run_on(engine, &outputs, &["fails::"], &[]);
        assert_eq!(run.code(), Some(101), "{run:?}");
        assert_eq!(
            run.outcome("fails::middle_check"),
            Some("FAILED"),
            "{run:?}"
        );
        assert!(
            run.stdout.contains("check 1/3 `cmd: true`: passed"),
            "{run:?}"
        );
        assert!(
            run.stdout
                .contains("check 3/3 `file: /bin/busybox`: passed"),
            "{run:?}"
        );
        assert!(run.stdout.contains("expected output"), "{run:?}");
        assert!(run.stdout.contains("actual output"), "{run:?}");
        let records = outputs.records();
        let middle = find(&records, "fails::middle_check", 2);
        assert_eq!(middle.outcome, Outcome::Fail, "{middle:#?}");
        assert!(middle.exit_code.is_some_and(|c| c != 0), "{middle:#?}");
        assert!(!middle.cached, "a failure is never cached (round {round})");
        let report = middle.report.as_deref().unwrap_or_default();
        assert!(
            report.contains("expected output") && report.contains("actual output"),
            "{middle:#?}"
        );
        assert_eq!(
            find(&records, "fails::middle_check", 1).outcome,
            Outcome::Pass
        );
        assert_eq!(
            find(&records, "fails::middle_check", 3).outcome,
            Outcome::Pass
        );
        let mode = find(&records, "fails::file_mode", 1);
        assert_eq!(mode.outcome, Outcome::Fail, "{mode:#?}");
        assert!(
            mode.report.as_deref().unwrap_or_default().contains("600"),
            "{mode:#?}"
        );
    }
}

fn errors_are_not_check_failures(engine: Engine) {
    let outputs = Outputs::new();
    let run = run_on(engine, &outputs, &["errors::"], &[]);
    assert_eq!(run.code(), Some(101), "{run:?}");
    assert!(run.stdout.contains("0 passed; 5 failed"), "{run:?}");
    let records = outputs.records();

    let input = find(&records, "errors::input_fails_to_build", 1);
    assert_eq!(input.outcome, Outcome::Error, "{input:#?}");
    assert_eq!(input.error_kind, Some(ErrorKind::Input), "{input:#?}");
    let text = format!("{:?} {:?}", input.message, input.report);
    assert!(
        text.contains("exit 3"),
        "the failing step is named: {input:#?}"
    );
    assert!(
        text.contains("building-the-input"),
        "its log tail is shown: {input:#?}"
    );
    assert!(run.stdout.contains("ERROR (input failed)"), "{run:?}");

    let image = find(&records, "errors::missing_image", 1);
    assert_eq!(image.outcome, Outcome::Error, "{image:#?}");
    assert!(
        format!("{:?}", image.message).contains("buildtest/this-image-does-not-exist"),
        "{image:#?}"
    );

    let slow = find(&records, "errors::times_out", 1);
    assert_eq!(slow.error_kind, Some(ErrorKind::Timeout), "{slow:#?}");
    assert!(
        slow.duration_ms >= 2000 && slow.duration_ms < 60_000,
        "{slow:#?}"
    );

    let panics = find(&records, "errors::panics", 1);
    assert_eq!(panics.error_kind, Some(ErrorKind::Setup), "{panics:#?}");
    assert!(format!("{:?}", panics.message).contains("the test fn itself panicked"));
}

/// Everything at once: JUnit counts read back by a real XML parser, ignored tests skipped.
fn full_run_writes_junit(engine: Engine) {
    let outputs = Outputs::new();
    let run = run_on(engine, &outputs, &[], &[]);
    assert_eq!(run.code(), Some(101), "{run:?}");
    assert!(
        run.stdout.contains("11 passed; 7 failed; 2 ignored"),
        "{run:?}"
    );
    // One test per instance of `#[buildtest::test(each = …)]`, each with its own records.
    for label in ["busybox", "scratch"] {
        let name = format!("instances::marker::{label}");
        let instance = find(&outputs.records(), &name, 1).clone();
        assert_eq!(instance.outcome, Outcome::Pass, "{instance:#?}");
        assert_eq!(run.outcome(&name), Some("ok"), "{run:?}");
    }
    let duplicate = find(&outputs.records(), "errors::duplicate_labels", 1).clone();
    assert_eq!(
        duplicate.error_kind,
        Some(ErrorKind::Setup),
        "{duplicate:#?}"
    );
    let ignored = find(&outputs.records(), "ignored::after_with_reason", 1).clone();
    assert_eq!(ignored.outcome, Outcome::Ignored);
    assert_eq!(ignored.message.as_deref(), Some("needs a registry"));

    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = root.findall("testsuite")
cases = root.iter("testcase")
kinds = {"pass": 0, "failure": 0, "error": 0, "skipped": 0}
for c in cases:
    k = [e.tag for e in c if e.tag in ("failure", "error", "skipped")]
    kinds[k[0] if k else "pass"] += 1
mid = [c for c in root.iter("testcase") if c.get("classname") == "fails::middle_check" and c.get("name").startswith("2: ")][0]
print(len(suites), suites[0].get("name"), kinds["pass"], kinds["failure"], kinds["error"], kinds["skipped"])
print(mid.find("failure").get("message"))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(outputs.junit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines();
    // Checks: 17 pass (top_level 1, passes:: 9, concurrent:: 3, middle_check 2, instances:: 2),
    // 2 fail (middle_check 1, file_mode 1), 5 error (errors:: 5), 2 skipped (ignored:: 2).
    assert_eq!(
        lines.next(),
        Some("1 buildtest::harness_fixture 17 2 5 2"),
        "{text}"
    );
    let message = lines.next().unwrap_or_default();
    assert!(
        message.contains("expected output"),
        "one-line failure message: {message}"
    );
}

/// Every check's solve starts up front: the 2-second checks of three tests run at the same
/// time, even with libtest running one trial at a time.
fn checks_of_all_tests_run_concurrently(engine: Engine) {
    let outputs = Outputs::new();
    let args = ["concurrent::", "--test-threads", "1"];
    let run = run_on(engine, &outputs, &args, &[("BUILDTEST_NO_CACHE", "1")]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let records = outputs.records();
    assert_eq!(records.len(), 3);
    assert!(
        records.iter().all(|r| !r.cached && r.duration_ms >= 2000),
        "{records:#?}"
    );
    let start = |r: &CheckRecord| r.started_at_ms.unwrap();
    let last_start = records.iter().map(start).max().unwrap();
    let first_end = records
        .iter()
        .map(|r| start(r) + r.duration_ms)
        .min()
        .unwrap();
    assert!(
        last_start < first_end,
        "every solve started before any finished: {records:#?}"
    );
}

fn the_ide_lens_runs_exactly_one_test(engine: Engine) {
    let outputs = Outputs::new();
    let args = [
        "passes::nested::deep",
        "--exact",
        "--nocapture",
        "--include-ignored",
    ];
    let run = run_on(engine, &outputs, &args, &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("running 1 test\n"), "{run:?}");
    assert!(
        run.stdout
            .contains("1 passed; 0 failed; 0 ignored; 0 measured; 19 filtered out"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("passes::nested::deep check 1 `cmd: true`: pass"),
        "{run:?}"
    );
    assert_eq!(outputs.records().len(), 1);
}

fn json_format_for_ides(engine: Engine) {
    let outputs = Outputs::new();
    let run = run_on(
        engine,
        &outputs,
        &[
            "fails::file_mode",
            "-Z",
            "unstable-options",
            "--format",
            "json",
            "--show-output",
        ],
        &[],
    );
    assert_eq!(run.code(), Some(101), "{run:?}");
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let failed = events
        .iter()
        .find(|e| e["type"] == "test" && e["event"] == "failed")
        .unwrap();
    assert_eq!(failed["name"], "fails::file_mode");
    assert!(
        failed["stdout"].as_str().unwrap().contains("FAILED"),
        "{failed}"
    );
}

/// `BUILDTEST_PROBE`: the probe mounted from the image loaded into the engine, or carried inline
/// in every Definition; the header says which, and checks re-run (not cached) pass either way.
fn the_probe_travels_as_an_image_or_inline(engine: Engine) {
    let _passes = passes_lock(engine);
    for (mode, header) in [
        (
            "image",
            "probes linux/amd64: embedded, image buildtest/probe:",
        ),
        (
            "inline",
            "probes linux/amd64: embedded, inline (BUILDTEST_PROBE)",
        ),
    ] {
        let outputs = Outputs::new();
        let run = run_on(
            engine,
            &outputs,
            &["passes::"],
            &[("BUILDTEST_PROBE", mode), ("BUILDTEST_NO_CACHE", "1")],
        );
        assert_eq!(run.code(), Some(0), "{mode}: {run:?}");
        assert!(run.stderr.contains(header), "{mode}: {run:?}");
        let records = outputs.records();
        assert_eq!(records.len(), 9, "{mode}: {records:#?}");
        assert!(
            records
                .iter()
                .all(|r| r.outcome == Outcome::Pass && !r.cached),
            "{mode}: {records:#?}"
        );
    }
    let outputs = Outputs::new();
    let run = run_on(
        engine,
        &outputs,
        &["passes::"],
        &[("BUILDTEST_PROBE", "pull")],
    );
    assert_eq!(run.code(), Some(2), "a setup error: {run:?}");
    assert!(
        run.stderr.contains(
            "error: failed to read BUILDTEST_PROBE: `pull` is not one of auto, image, inline, session"
        ),
        "{run:?}"
    );
}

/// `BUILDTEST_PROBE=session`: the probe is a local directory the run's session serves. Every check
/// passes; a rerun is all cached and sends no probe bytes (the builder kept them).
fn the_probe_travels_through_the_session(engine: Engine) {
    let run = |outputs: &Outputs| {
        run_on(
            engine,
            outputs,
            &["passes::"],
            &[("BUILDTEST_PROBE", "session")],
        )
    };
    let first = Outputs::new();
    let run1 = run(&first);
    assert_eq!(run1.code(), Some(0), "{engine:?}: {run1:?}");
    assert!(
        run1.stderr
            .contains("; probes linux/amd64: embedded, session (/"),
        "{run1:?}"
    );
    assert_eq!(first.records().len(), 9, "{run1:?}");

    let second = Outputs::new();
    let run2 = run(&second);
    assert_eq!(run2.code(), Some(0), "{engine:?}: {run2:?}");
    let sent = run2
        .stderr
        .lines()
        .find(|l| l.starts_with("buildtest: local files sent: "))
        .unwrap_or_else(|| panic!("no `local files sent` line: {run2:?}"));
    assert!(
        sent.starts_with("buildtest: local files sent: 0 bytes in 0 files (")
            && sent.ends_with("; of which the probe: 0 bytes"),
        "{engine:?}: {sent}"
    );
    let records = second.records();
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Pass && r.cached),
        "{engine:?}: every check is cached on a rerun: {records:#?}"
    );
}

/// The `discard` strategy's no-op exec runs the probe, not `true` from the image's PATH, so it
/// works on the shell-less scratch image too.
fn discard_strategy_needs_nothing_from_the_image(engine: Engine) {
    let _passes = passes_lock(engine);
    let outputs = Outputs::new();
    let run = run_on(
        engine,
        &outputs,
        &["passes::"],
        &[
            ("BUILDTEST_STRATEGY", "discard"),
            ("BUILDTEST_NO_CACHE", "1"),
        ],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.outcome("passes::scratch_image"), Some("ok"), "{run:?}");
    let records = outputs.records();
    assert_eq!(records.len(), 9, "{records:#?}");
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Pass && r.strategy.as_deref() == Some("discard")),
        "{records:#?}"
    );
}

/// Ctrl-C while a check still runs: the binary writes the JUnit file with the checks that had
/// finished, says so, and exits 130 at once (the ten-minute check is abandoned, not awaited).
fn ctrl_c_writes_junit_with_the_finished_checks_and_exits_130(engine: Engine) {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let exe = EXE.get_or_init(|| build_target("harness_interrupt"));
    let outputs = Outputs::new();
    let mut child = engine_command(exe, engine, &outputs, &[], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let records = read_records(&outputs.results()).unwrap_or_default();
        if records.iter().any(|r| r.test == "quick") {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{engine:?}: ended with {status} before interrupting: {:?}",
                child.wait_with_output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{engine:?}: the quick check never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let interrupted = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if interrupted.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!(
                "{engine:?}: still running 20 s after SIGINT: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{engine:?}: {stderr}");
    assert!(
        stderr.contains("buildtest: interrupted; 1 check had finished"),
        "{engine:?}: {stderr}"
    );
    assert!(
        stderr.contains("buildtest: 1 check in 1 test run: 1 passed"),
        "{engine:?}: {stderr}"
    );

    // The JUnit file, read by a real XML parser: the finished check only, passed.
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for c in root.iter("testcase"):
    kinds = [e.tag for e in c if e.tag in ("failure", "error", "skipped")]
    print(c.get("classname"), c.get("name"), kinds[0] if kinds else "pass")
"#;
    let parsed = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(outputs.junit())
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{engine:?}: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout),
        "quick 1: cmd: echo interrupt-quick pass\n",
        "{engine:?}"
    );
}

/// What a new user trips over, explained: a `mkdir` under a missing parent names
/// `make_parents(true)`; an input over the daemon's 4 MiB message limit names the op, its size
/// and the limit; one broken input shared by three checks is printed once.
fn new_user_traps_are_explained(engine: Engine) {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let exe = EXE.get_or_init(|| build_target("harness_trouble"));
    let outputs = Outputs::new();
    let run = Run::of(engine_command(exe, engine, &outputs, &[], &[]));
    assert_eq!(run.code(), Some(101), "{run:?}");
    let records = outputs.records();

    let mkdir = find(&records, "mkdir_without_parents", 1);
    assert_eq!(mkdir.error_kind, Some(ErrorKind::Input), "{mkdir:#?}");
    let message = mkdir.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("the parent directory of `/opt/buildtest-missing/bin` does not exist")
            && message.contains("make_parents(true)"),
        "{engine:?}: {mkdir:#?}"
    );

    let big = find(&records, "oversized_input", 1);
    let report = big.report.as_deref().unwrap_or_default();
    assert_eq!(
        big.error_kind,
        Some(ErrorKind::Input),
        "{engine:?}: {big:#?}"
    );
    assert!(
        report.contains("a file op writing `/blob.bin` (5242880 bytes of data)")
            && report.contains("4194304 bytes, 4 MiB")
            && report.contains("received message larger than max"),
        "{engine:?}: {report}"
    );

    let shared = run.stdout.matches("failed to pull image `").count();
    assert_eq!(
        shared, 1,
        "{engine:?}: printed once, not per check:\n{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("(the same error as check 1)").count(),
        2,
        "{run:?}"
    );
}

/// A directory with every kind of entry the local-input tests look at (see `harness_locals`).
fn local_fixture() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let write = |name: &str, data: &str, mode: u32| {
        let path = p.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write("run.sh", "#!/bin/sh\necho ran\n", 0o755);
    write("secret", "s3cret\n", 0o600);
    std::os::unix::fs::chown(p.join("secret"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::symlink("run.sh", p.join("link")).unwrap();
    std::fs::create_dir(p.join("empty")).unwrap();
    std::fs::set_permissions(p.join("empty"), std::fs::Permissions::from_mode(0o750)).unwrap();
    write("hard1", "hard\n", 0o644);
    std::fs::hard_link(p.join("hard1"), p.join("hard2")).unwrap();
    write("a/x", "ax\n", 0o644);
    write("a-b", "", 0o644);
    write("a.txt", "", 0o644);
    write("logs/app.log", "log1\n", 0o644);
    write("logs/drop.tmp", "", 0o644);
    write("logs/keep.tmp", "", 0o644);
    write("special/ok", "", 0o644);
    let fifo = Command::new("mkfifo")
        .arg(p.join("special/fifo"))
        .status()
        .unwrap();
    assert!(fifo.success());
    dir
}

/// The `local files sent: …` line of a run that served local directories.
fn sent_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|l| l.starts_with("buildtest: local files sent: "))
        .unwrap_or_else(|| panic!("no `local files sent` line: {run:?}"))
}

/// Host directories reach the image with every property intact; a rerun sends no file data and
/// takes every check from the cache; a changed file is the only data sent again.
fn local_directories_are_sent_once_and_cached(engine: Engine) {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let exe = EXE.get_or_init(|| build_target("harness_locals"));
    let dir = local_fixture();
    let env = [("BUILDTEST_FIXTURE_DIR", dir.path().to_str().unwrap())];
    let run = |outputs: &Outputs| {
        Run::of(engine_command(
            exe,
            engine,
            outputs,
            &["properties::"],
            &env,
        ))
    };

    let first = Outputs::new();
    let run1 = run(&first);
    assert_eq!(run1.code(), Some(0), "{engine:?}: {run1:?}");
    assert!(
        run1.stdout.contains("3 passed; 0 failed"),
        "{engine:?}: {run1:?}"
    );
    assert_eq!(first.records().len(), 18, "{engine:?}: {run1:?}");
    // Both filters of the directory were sent in full: every regular file of each.
    assert!(
        !sent_line(&run1).contains(": 0 bytes"),
        "{engine:?}: {run1:?}"
    );

    let second = Outputs::new();
    let run2 = run(&second);
    assert_eq!(run2.code(), Some(0), "{engine:?}: {run2:?}");
    assert!(
        sent_line(&run2)
            .starts_with("buildtest: local files sent: 0 bytes in 0 files (2 transfers, "),
        "{engine:?}: {run2:?}"
    );
    let records = second.records();
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Pass && r.cached),
        "{engine:?}: every check is cached on a rerun: {records:#?}"
    );

    // One file changes (same size, new mtime): both filters that include it send it again (2 × 5
    // bytes). BuildKit also asks again for `hard1` (5 bytes), the first name of the hardlink pair:
    // when its diff finds any change it re-creates hardlinks from their first name, so a
    // directory with hardlinks re-sends them with any change (measured on v0.8.3 and v0.13.2; a
    // rerun with no change sends nothing, above).
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.path().join("logs/app.log"), "log2\n").unwrap();
    let third = Outputs::new();
    let run3 = run(&third);
    assert_eq!(run3.code(), Some(0), "{engine:?}: {run3:?}");
    assert!(
        sent_line(&run3)
            .starts_with("buildtest: local files sent: 15 bytes in 3 files (2 transfers, "),
        "{engine:?}: {run3:?}"
    );
}

/// A missing directory is a setup error of the checks that read it, before anything is solved;
/// a fifo inside a directory fails the transfer with a message naming it.
fn local_directory_errors_and_definitions_from_elsewhere(engine: Engine) {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let exe = EXE.get_or_init(|| build_target("harness_locals"));
    let dir = local_fixture();
    let env = [("BUILDTEST_FIXTURE_DIR", dir.path().to_str().unwrap())];
    let outputs = Outputs::new();
    let run = Run::of(engine_command(
        exe,
        engine,
        &outputs,
        &["missing::", "--skip", "properties"],
        &env,
    ));
    assert_eq!(run.code(), Some(101), "{engine:?}: {run:?}");
    let records = outputs.records();
    let missing = find(&records, "missing::directory", 1);
    assert_eq!(missing.error_kind, Some(ErrorKind::Setup), "{missing:#?}");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        missing.message.as_deref(),
        Some(
            format!(
                "failed to read local directory {}/no/such/dir: no such directory (a relative path \
                 is relative to the current directory, which cargo sets to the package root)",
                cwd.display(),
            )
            .as_str()
        ),
        "{missing:#?}"
    );

    // Not a local directory, but an input from elsewhere: LLB bytes, with more built on top.
    let outputs = Outputs::new();
    let run = Run::of(engine_command(
        exe,
        engine,
        &outputs,
        &["definition::"],
        &env,
    ));
    assert_eq!(run.code(), Some(0), "{engine:?}: {run:?}");
    assert!(
        run.stdout.contains("1 passed; 0 failed"),
        "{engine:?}: {run:?}"
    );
    assert_eq!(outputs.records().len(), 3, "{engine:?}: {run:?}");

    let outputs = Outputs::new();
    let run = Run::of(engine_command(exe, engine, &outputs, &["special::"], &env));
    assert_eq!(run.code(), Some(101), "{engine:?}: {run:?}");
    let records = outputs.records();
    let fifo = find(&records, "special::fifo", 1);
    assert_eq!(fifo.outcome, Outcome::Error, "{fifo:#?}");
    let expected = format!(
        "failed to send a local directory: send {}/special/fifo: it is a fifo; exclude it with \
         exclude_patterns",
        dir.path().display()
    );
    assert!(
        fifo.message
            .as_deref()
            .unwrap_or_default()
            .starts_with(&expected),
        "{engine:?}: {fifo:#?}"
    );
}

macro_rules! on_both_engines {
    ($($scenario:ident),* $(,)?) => {
        mod docker20 {
            $( #[test] fn $scenario() { super::$scenario(super::Engine::Docker20) } )*
        }
        mod docker26 {
            $( #[test] fn $scenario() { super::$scenario(super::Engine::Docker26) } )*
        }
    };
}

on_both_engines!(
    gateway_and_control_give_the_same_records,
    a_shared_broken_input_errors_every_check_on_both_paths,
    auto_takes_the_gateway_unless_no_cache,
    passing_tests_pass_and_rerun_cached,
    failures_show_expected_and_actual,
    errors_are_not_check_failures,
    full_run_writes_junit,
    checks_of_all_tests_run_concurrently,
    the_ide_lens_runs_exactly_one_test,
    json_format_for_ides,
    the_probe_travels_as_an_image_or_inline,
    the_probe_travels_through_the_session,
    discard_strategy_needs_nothing_from_the_image,
    ctrl_c_writes_junit_with_the_finished_checks_and_exits_130,
    new_user_traps_are_explained,
    local_directories_are_sent_once_and_cached,
    local_directory_errors_and_definitions_from_elsewhere,
    image_configs_apply_like_docker_run,
    dockerfiles_build_once_and_rerun_cached,
);
