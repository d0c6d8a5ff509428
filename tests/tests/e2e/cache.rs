//! Sharing BuildKit's cache between runners: `--cache-to` / `--cache-from` on the Docker 26.1.5
//! engine with the containerd image store (`docker26c` of `scripts/builders.sh`), whose build
//! cache these tests wipe (`docker builder prune -af` on that engine only) to play a fresh CI
//! runner. The fixture is `tests/fixtures/workspace/cachey`: two passing checks on an image, two
//! on a local directory (`CACHEY_DIR`) the tests change, two on a Dockerfile input, one failing
//! check, and one check on a Dockerfile whose `RUN` step fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use crate::support::{Output, builder_addr, command, run, workspace};

/// `(test, check)` → `(outcome, cached)` from `--message-format json`.
type Checks = BTreeMap<(String, u64), (String, bool)>;

/// The failing step of `on_a_broken_dockerfile`, as the error must name it.
const BROKEN_STEP: &str = "RUN echo cachey about to fail && exit 3";

/// The containerd-store engine's address; fails (never skips) when it is not running.
fn engine() -> (String, String) {
    let host = std::env::var("BUILDTEST_DOCKER26C_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///run/buildtest/docker26c.sock".to_owned());
    let path = host.strip_prefix("unix://").unwrap_or(&host).to_owned();
    if let Err(err) = std::os::unix::net::UnixStream::connect(&path) {
        panic!(
            "the Docker 26.1.5 engine with the containerd image store is not reachable at {host} ({err}).\n\
             Run `bash scripts/builders.sh up` first."
        );
    }
    (format!("docker+{host}"), path)
}

/// Wipes that engine's build cache (never the other engines').
fn prune(socket: &str) {
    let out = std::process::Command::new("/usr/bin/docker")
        .args(["-H", &format!("unix://{socket}"), "builder", "prune", "-af"])
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("run /usr/bin/docker builder prune");
    assert!(
        out.status.success(),
        "docker builder prune failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cachey(addr: &str, data: &Path, cache: &[&str]) -> Output {
    let mut args = vec!["-p", "cachey", "--addr", addr, "--message-format", "json"];
    args.extend_from_slice(cache);
    let mut cmd = command(&workspace(), &args);
    cmd.env("CACHEY_DIR", data)
        .env_remove("BUILDTEST_CACHE_TO")
        .env_remove("BUILDTEST_CACHE_FROM");
    run(cmd)
}

fn checks(out: &Output) -> Checks {
    out.json_lines()
        .into_iter()
        .filter(|e| e["type"] == "check")
        .map(|e| {
            (
                (
                    e["test"].as_str().unwrap().to_owned(),
                    e["check"].as_u64().unwrap(),
                ),
                (
                    e["outcome"].as_str().unwrap().to_owned(),
                    e["cached"].as_bool().unwrap_or(false),
                ),
            )
        })
        .collect()
}

fn expect(rows: &[(&str, u64, &str, bool)]) -> Checks {
    rows.iter()
        .map(|(t, c, o, cached)| (((*t).to_owned(), *c), ((*o).to_owned(), *cached)))
        .collect()
}

/// The round trips wipe the engine's cache: one at a time.
static ENGINE: Mutex<()> = Mutex::new(());

/// The broken Dockerfile's check: an input error naming the failing step (and its exit code),
/// with the step's last output.
fn assert_broken_dockerfile(out: &Output, run: &str) {
    let event = out
        .json_lines()
        .into_iter()
        .find(|e| e["type"] == "check" && e["test"] == "on_a_broken_dockerfile")
        .unwrap_or_else(|| panic!("{run}: no record of on_a_broken_dockerfile\n{}", out.stdout));
    let message = event["message"].as_str().unwrap_or_default();
    assert!(
        event["outcome"] == "error"
            && message.contains(BROKEN_STEP)
            && message.contains("exit code: 3"),
        "{run}: the broken Dockerfile's check is an error naming `{BROKEN_STEP}`: {event}"
    );
    let report = event["report"].as_str().unwrap_or_default();
    assert!(
        report.contains("--- last output of the failing step ---\ncachey about to fail"),
        "{run}: the failing step's output is shown: {event}"
    );
}

/// Export, wipe, import: the passing checks come from the cache, those on the Dockerfile input
/// too (`dockerfile_cached`) and the passing ones on the failing check's input only with
/// `mode=max` (`with_failure_cached`: with the default `mode=min` only inputs whose checks all
/// passed are answered, by their verdict); the failing one runs again and the broken Dockerfile
/// stays an error naming its step; a changed input re-runs only its checks.
fn round_trip(to: &str, from: &str, dockerfile_cached: bool, with_failure_cached: bool) {
    let _engine = ENGINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (addr, socket) = engine();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("value"),
        format!("ok {}\n", std::process::id()),
    )
    .unwrap();
    // What a run must report: every passing check from the cache when imported, except the
    // directory's when it changed. Without `dockerfile_cached` the Dockerfile's checks' `cached`
    // is not compared.
    let rows = |imported: bool, directory: bool| {
        expect(&[
            ("fails", 1, "fail", false),
            ("on_a_broken_dockerfile", 1, "error", false),
            ("on_the_directory", 1, "pass", directory),
            ("on_the_directory", 2, "pass", directory),
            (
                "on_the_dockerfile",
                1,
                "pass",
                imported && dockerfile_cached,
            ),
            (
                "on_the_dockerfile",
                2,
                "pass",
                imported && dockerfile_cached,
            ),
            ("on_the_image", 1, "pass", imported && with_failure_cached),
            ("on_the_image", 2, "pass", imported && with_failure_cached),
        ])
    };
    let got = |out: &Output| {
        let mut checks = checks(out);
        for ((test, _), (_, cached)) in &mut checks {
            if test == "on_the_dockerfile" && !dockerfile_cached {
                *cached = false;
            }
        }
        checks
    };

    prune(&socket);
    let first = cachey(&addr, data.path(), &["--cache-to", to]);
    first.assert_code(100);
    assert_eq!(
        checks(&first),
        rows(false, false),
        "a cold run executes every check\n{}",
        first.stderr
    );
    assert_broken_dockerfile(&first, "the exporting run");

    // Without the import, a wiped engine executes everything again (the control).
    prune(&socket);
    let control = cachey(&addr, data.path(), &[]);
    assert!(
        checks(&control).values().all(|(_, cached)| !cached),
        "the wiped engine still had the checks: {:?}",
        checks(&control)
    );

    prune(&socket);
    let second = cachey(&addr, data.path(), &["--cache-from", from]);
    second.assert_code(100);
    assert_eq!(
        got(&second),
        rows(true, true),
        "every passing check comes from the imported cache, the failing one runs again\n{}",
        second.stderr
    );
    assert_broken_dockerfile(&second, "the importing run");

    // Looking a verdict up never makes one: `fails` shares `on_the_image`'s input, whose verdict
    // was not exported; the import run above looked it up, and a run right after (same engine,
    // no prune) must still run `fails` and see it fail.
    let again = cachey(&addr, data.path(), &["--cache-from", from]);
    again.assert_code(100);
    assert_eq!(
        checks(&again)[&("fails".to_owned(), 1)],
        ("fail".to_owned(), false),
        "the failing check is not answered by a verdict after a lookup\n{}",
        again.stderr
    );

    std::fs::write(data.path().join("value"), "ok, changed\n").unwrap();
    prune(&socket);
    let third = cachey(&addr, data.path(), &["--cache-from", from]);
    third.assert_code(100);
    assert_eq!(
        got(&third),
        rows(true, false),
        "only the changed input's checks run\n{}",
        third.stderr
    );
}

#[test]
fn a_local_cache_makes_a_fresh_engine_answer_passing_checks_from_it() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("buildtest-cache");
    round_trip(
        &format!("type=local,dest={}", dir.display()),
        &format!("type=local,src={}", dir.display()),
        true,
        false,
    );
    // The OCI layout: the suite's manifest under its tag.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(tags, ["cachey--cache"]);
    assert!(dir.join("oci-layout").is_file());
}

#[test]
fn a_registry_cache_makes_a_fresh_engine_answer_passing_checks_from_it() {
    let registry = std::env::var("BUILDTEST_REGISTRY").unwrap_or_else(|_| {
        panic!("BUILDTEST_REGISTRY is not set: run `eval \"$(bash scripts/builders.sh env)\"` after `up`")
    });
    let reference = format!(
        "{registry}/buildtest-e2e/cache:{{suite}}-{}",
        std::process::id()
    );
    // `mode=max` given: the passing checks of the input with a failing check (`fails` shares
    // `on_the_image`'s input) are found one by one; the Dockerfile's checks by their verdict.
    round_trip(
        &format!("type=registry,ref={reference},mode=max"),
        &format!("type=registry,ref={reference}"),
        true,
        true,
    );
}

#[test]
fn a_graph_driver_engine_is_refused_before_anything_runs() {
    let addr = builder_addr();
    let data = tempfile::tempdir().unwrap();
    let out = cachey(
        &addr,
        data.path(),
        &["--cache-to", "type=local,dest=/nonexistent/buildtest-cache"],
    );
    out.assert_code(2);
    out.assert_stderr_has("export cache `type=local,dest=/nonexistent/buildtest-cache`")
        .assert_stderr_has("docker engine at unix:///var/run/docker.sock")
        .assert_stderr_has("graph-driver image store")
        .assert_stderr_has("containerd-snapshotter");
    // Refused right after the builder's probe: no suite started, no check ran.
    assert!(
        !out.stderr.contains("Starting") && checks(&out).is_empty(),
        "refused after checks ran:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(!Path::new("/nonexistent/buildtest-cache").exists());
}
