//! Shared helpers: fixture preparation, running `cargo buildtest`, the builder, and reading JUnit
//! back with Python's `junitparser`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The main workspace's root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The one target directory every fixture build shares (so `buildtest` compiles once).
pub(crate) fn fixtures_target_dir() -> PathBuf {
    repo_root().join("target").join("buildtest-fixtures")
}

/// Copies the main workspace's `Cargo.lock` into a fixture workspace (atomically, only when it
/// differs), so the fixture builds the same dependency versions without touching the network.
pub(crate) fn seed_lockfile(workspace: &Path) {
    let main_lock =
        std::fs::read(repo_root().join("Cargo.lock")).expect("read the main Cargo.lock");
    let dest = workspace.join("Cargo.lock");
    if std::fs::read(&dest).ok().as_deref() == Some(main_lock.as_slice()) {
        return;
    }
    let tmp = workspace.join(format!(".Cargo.lock.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &main_lock).expect("write fixture lock");
    std::fs::rename(&tmp, &dest).expect("rename fixture lock");
}

/// The fixture workspace `tests/fixtures/workspace`, ready to build.
pub(crate) fn workspace() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let dir = repo_root().join("tests").join("fixtures").join("workspace");
            seed_lockfile(&dir);
            dir
        })
        .clone()
}

/// The address of the Docker 20.10 engine's embedded BuildKit, after checking its socket
/// answers. Panics (the test FAILS) with what to run when it does not.
pub(crate) fn builder_addr() -> String {
    let host = std::env::var("BUILDTEST_DOCKER20_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
    let path = host
        .strip_prefix("unix://")
        .unwrap_or_else(|| panic!("BUILDTEST_DOCKER20_HOST={host} is not a unix:// address"));
    if let Err(err) = std::os::unix::net::UnixStream::connect(path) {
        panic!(
            "the Docker 20.10 engine is not reachable at {host} ({err}).\n\
             These end-to-end tests need a real builder: run `bash scripts/builders.sh up` first."
        );
    }
    format!("docker+{host}")
}

/// What a finished `cargo buildtest` printed and returned.
#[derive(Debug)]
pub(crate) struct Output {
    /// The exit code (-1 when killed by a signal).
    pub(crate) code: i32,
    /// Everything on stdout.
    pub(crate) stdout: String,
    /// Everything on stderr.
    pub(crate) stderr: String,
    /// Wall time.
    pub(crate) elapsed: Duration,
}

impl Output {
    /// stdout as JSON lines (`--message-format json`); panics on a line that is not JSON.
    pub(crate) fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line {l:?} is not JSON: {e}"))
            })
            .collect()
    }

    /// Panics with both streams unless the exit code is `code`.
    pub(crate) fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics with stderr unless it contains `needle`.
    pub(crate) fn assert_stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr ---\n{}",
            self.stderr
        );
        self
    }
}

/// `cargo buildtest ARGS` in `dir`, with a clean environment for builder settings.
pub(crate) fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-buildtest-e2e"));
    cmd.arg("buildtest")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", fixtures_target_dir())
        .env("CI", "1")
        .env("NO_COLOR", "1")
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null());
    for var in [
        "BUILDKIT_HOST",
        "BUILDX_BUILDER",
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "BUILDTEST_STRATEGY",
        "BUILDTEST_JOBS",
        "BUILDTEST_TIMEOUT",
        "BUILDTEST_NO_CACHE",
        "BUILDTEST_SOLVE",
        "BUILDTEST_JUNIT",
        "BUILDTEST_RESULTS",
        "BUILDTEST_SUITE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd` to completion.
pub(crate) fn run(mut cmd: Command) -> Output {
    let started = Instant::now();
    let out = cmd.output().expect("spawn cargo-buildtest-e2e");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// `cargo buildtest ARGS` in `dir`, to completion.
pub(crate) fn cargo_buildtest(dir: &Path, args: &[&str]) -> Output {
    run(command(dir, args))
}

/// Spawns `cmd` with stderr piped, reading it on a thread into the returned buffer.
pub(crate) fn spawn_reading_stderr(
    mut cmd: Command,
) -> (Child, std::sync::Arc<std::sync::Mutex<String>>) {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cargo-buildtest-e2e");
    let buffer = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let sink = buffer.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    (child, buffer)
}

const JUNIT_READER: &str = r#"
import json, sys
try:
    from junitparser import JUnitXml, TestSuite
except ImportError:
    sys.exit("python3 cannot import junitparser: run `pip install junitparser` (.ci/run installs it)")
xml = JUnitXml.fromfile(sys.argv[1])
suites = [xml] if isinstance(xml, TestSuite) else list(xml)
out = []
for s in suites:
    cases = []
    for c in s:
        results = [{"kind": type(r).__name__.lower(), "type": r.type, "message": r.message,
                    "text": r.text} for r in c.result]
        cases.append({"classname": c.classname, "name": c.name, "time": c.time,
                      "results": results, "system_out": c.system_out, "system_err": c.system_err})
    out.append({"name": s.name, "tests": s.tests, "failures": s.failures, "errors": s.errors,
                "skipped": s.skipped, "time": s.time,
                "timestamp": s.timestamp, "cases": cases})
print(json.dumps(out))
"#;

/// Reads a JUnit file with Python's `junitparser`: a list of suites, each with `name`, the
/// counts, `time` and `timestamp` from its attributes and `cases` (`classname`, `name`, `time`,
/// `results` of `kind`
/// failure/error/skipped with `type`/`message`/`text`, `system_out`, `system_err`).
pub(crate) fn read_junit(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args(["-c", JUNIT_READER])
        .arg(path)
        .output()
        .expect("run python3 (needed to read JUnit with junitparser)");
    assert!(
        out.status.success(),
        "junitparser could not read {}: {}\n--- file ---\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    match serde_json::from_slice(&out.stdout).expect("reader prints JSON") {
        Value::Array(suites) => suites,
        other => panic!("unexpected reader output {other}"),
    }
}

/// The suite named `name` in a parsed report.
pub(crate) fn suite<'a>(suites: &'a [Value], name: &str) -> &'a Value {
    suites
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no testsuite {name} in {suites:#?}"))
}

/// `(classname, name, result kind or "pass")` for every case of a suite, in file order.
pub(crate) fn cases(suite: &Value) -> Vec<(String, String, String)> {
    suite["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let kind = c["results"]
                .as_array()
                .and_then(|r| r.first())
                .map_or("pass".to_owned(), |r| {
                    r["kind"].as_str().unwrap_or("?").to_owned()
                });
            (
                c["classname"].as_str().unwrap_or_default().to_owned(),
                c["name"].as_str().unwrap_or_default().to_owned(),
                kind,
            )
        })
        .collect()
}

/// A small cargo workspace in a temporary directory.
pub(crate) fn temp_workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

/// A small cargo workspace at a fixed place under `target/`, so reruns build incrementally:
/// files are written only when their content differs.
pub(crate) fn stable_workspace(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = repo_root().join("target").join("buildtest-e2e").join(name);
    for (path, text) in files {
        let path = dir.join(path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(*text) {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    seed_lockfile(&dir);
    dir
}

/// The `runner/` directory, for `path =` dependencies of temporary workspaces.
pub(crate) fn runner_dir() -> String {
    repo_root().join("runner").display().to_string()
}
