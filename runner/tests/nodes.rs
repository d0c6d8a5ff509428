//! Several builders in one run (`BUILDTEST_NODES`), through the `harness_nodes` fixture on the
//! real engines of `scripts/builders.sh`: placement (every check of an input on one node, the
//! same node on the rerun, which is fully cached), a node unreachable at the start left out, no
//! node at all, and a node killed mid-run (its unfinished checks re-run on the survivor). These
//! FAIL (never skip) when the engines they need are not up; the kill test needs the second
//! Docker 26 engine (`scripts/builders.sh up` starts it) and restarts it afterwards.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use buildtest::report::{CheckRecord, ErrorKind, Outcome, read_records};

#[path = "support/fixture.rs"]
mod fixture_support;
use fixture_support::build_target;

/// The tests share engines and graphs: the kill test's `BUILDTEST_NO_CACHE` solves of the same
/// vertices on docker26 made the placement test's cached rerun execute them (BuildKit shares a
/// vertex between concurrent solves), so they take turns.
static ENGINES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn engines_lock() -> std::sync::MutexGuard<'static, ()> {
    ENGINES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Builds the `harness_nodes` fixture (`test = false`) and returns its executable.
fn fixture() -> PathBuf {
    build_target("harness_nodes")
}

/// A Docker engine of `scripts/builders.sh` as a node address, from `BUILDTEST_<NAME>_HOST`.
fn engine(var: &str) -> String {
    let host = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `eval \"$(bash scripts/builders.sh env)\"` (`up` starts the second Docker 26 engine, docker26b)")
    });
    format!("docker+{host}")
}

fn command(nodes: &str, results: &Path, extra: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(fixture());
    for name in [
        "BUILDKIT_HOST",
        "BUILDX_BUILDER",
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "BUILDTEST_STRATEGY",
        "BUILDTEST_NO_CACHE",
        "BUILDTEST_SOLVE",
        "BUILDTEST_JUNIT",
        "BUILDTEST_PROBE",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("BUILDTEST_NODES", nodes)
        .env("BUILDTEST_RESULTS", results)
        .env("BUILDTEST_SUITE", "nodes");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

fn records(results: &Path) -> Vec<CheckRecord> {
    read_records(results).unwrap()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// test name → the nodes its checks ran on.
fn placement(records: &[CheckRecord]) -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in records {
        map.entry(r.test.clone())
            .or_default()
            .insert(r.builder.clone().unwrap_or_default());
    }
    map
}

#[test]
fn two_engines_share_the_inputs_stably_and_the_rerun_is_fully_cached() {
    let _engines = engines_lock();
    let dir = tempfile::tempdir().unwrap();
    let nodes = format!(
        "{},{}",
        engine("BUILDTEST_DOCKER20_HOST"),
        engine("BUILDTEST_DOCKER26_HOST")
    );
    let mut runs = Vec::new();
    for run in ["first", "second"] {
        let results = dir.path().join(format!("{run}.jsonl"));
        let out = command(&nodes, &results, &[]).output().unwrap();
        assert!(out.status.success(), "{run}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(stderr.contains("2 of 2 nodes answered"), "{stderr}");
        assert!(
            stderr.contains("checks, wall "),
            "per-node summary: {stderr}"
        );
        let recs = records(&results);
        assert_eq!(recs.len(), 36, "{run}: 12 tests × 3 checks");
        assert!(
            recs.iter().all(|r| r.outcome == Outcome::Pass),
            "{run}: {recs:?}"
        );
        assert!(recs.iter().all(|r| r.moved.is_none()));
        runs.push(recs);
    }
    let first = placement(&runs[0]);
    for (test, nodes_used) in &first {
        assert_eq!(
            nodes_used.len(),
            1,
            "{test}: every check of one input on one node"
        );
    }
    let used: BTreeSet<&String> = first.values().flatten().collect();
    assert_eq!(used.len(), 2, "both nodes get inputs: {first:?}");
    assert_eq!(
        first,
        placement(&runs[1]),
        "the same input goes to the same node"
    );
    assert!(
        runs[1].iter().all(|r| r.cached),
        "the rerun is fully cached: {:?}",
        runs[1].iter().filter(|r| !r.cached).collect::<Vec<_>>()
    );
}

/// A buildx builder with two nodes (a `remote` builder in a private store whose nodes are the
/// two engines) runs on both, each node named `BUILDER/NODE`.
#[test]
fn a_buildx_builder_with_two_nodes_uses_both() {
    let _engines = engines_lock();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("buildx");
    std::fs::create_dir_all(store.join("instances")).unwrap();
    let group = serde_json::json!({
        "Name": "pool",
        "Driver": "remote",
        "Nodes": [
            {"Name": "n20", "Endpoint": engine("BUILDTEST_DOCKER20_HOST")},
            {"Name": "n26", "Endpoint": engine("BUILDTEST_DOCKER26_HOST")},
        ],
    });
    std::fs::write(store.join("instances/pool"), group.to_string()).unwrap();
    let results = dir.path().join("pool.jsonl");
    let mut cmd = command("", &results, &[]);
    cmd.env_remove("BUILDTEST_NODES")
        .env("BUILDX_BUILDER", "pool")
        .env("BUILDX_CONFIG", &store);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 of 2 nodes answered"), "{stderr}");
    let used: BTreeSet<String> = records(&results)
        .into_iter()
        .filter_map(|r| r.builder)
        .collect();
    assert_eq!(
        used,
        BTreeSet::from(["pool/n20".to_owned(), "pool/n26".to_owned()])
    );
}

#[test]
fn a_node_unreachable_at_the_start_is_left_out_and_no_node_is_an_error_for_every_check() {
    let _engines = engines_lock();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("left-out.jsonl");
    let gone = "docker+unix:///nonexistent/buildtest-node.sock";
    let nodes = format!("{gone},{}", engine("BUILDTEST_DOCKER26_HOST"));
    let out = command(&nodes, &results, &[]).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("node {gone}: left out: failed to ")),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 2 nodes answered"), "{stderr}");
    let recs = records(&results);
    assert_eq!(recs.len(), 36);
    assert!(recs.iter().all(|r| r.outcome == Outcome::Pass
        && r.builder.as_deref() == Some(nodes.split(',').nth(1).unwrap())));

    let results = dir.path().join("none.jsonl");
    let nodes = format!("{gone},docker+unix:///nonexistent/other.sock");
    let out = command(&nodes, &results, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
    let recs = records(&results);
    assert_eq!(recs.len(), 36);
    assert!(
        recs.iter()
            .all(|r| r.outcome == Outcome::Error && r.error_kind == Some(ErrorKind::Builder))
    );
}

/// Kills the second Docker 26 engine (started by `scripts/builders.sh up-docker26b`, never the
/// shared ones) by its pid while its checks sleep, then restarts it.
#[test]
fn a_node_killed_mid_run_has_its_unfinished_checks_re_run_on_the_survivor() {
    let _engines = engines_lock();
    let survivor = engine("BUILDTEST_DOCKER26_HOST");
    let victim = engine("BUILDTEST_DOCKER26B_HOST");
    let pidfile = std::env::var("BUILDTEST_DOCKER26B_PIDFILE").expect(
        "BUILDTEST_DOCKER26B_PIDFILE is not set: run `bash scripts/builders.sh up` (it starts docker26b)",
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("killed.jsonl");
    let junit = dir.path().join("junit.xml");
    let nodes = format!("{survivor},{victim}");
    let child = command(
        &nodes,
        &results,
        &[
            ("NODES_FIXTURE_SLEEP", "6"),
            ("BUILDTEST_NO_CACHE", "1"),
            ("BUILDTEST_JUNIT", junit.to_str().unwrap()),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The sleeping checks run for 6 s; kill the engine while they do.
    std::thread::sleep(Duration::from_secs(3));
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill {pid}");
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let after_kill = started.elapsed();
    let restart = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/builders.sh"))
        .arg("up-docker26b")
        .output()
        .unwrap();
    assert!(
        restart.status.success(),
        "restarting docker26b: {}",
        show(&restart)
    );
    let recs = records(&results);
    assert_eq!(recs.len(), 36, "every check has an outcome: {}", show(&out));
    let moved: Vec<&CheckRecord> = recs.iter().filter(|r| r.moved.is_some()).collect();
    assert!(!moved.is_empty(), "some checks were moved: {}", show(&out));
    for r in &moved {
        assert_eq!(r.builder.as_deref(), Some(survivor.as_str()), "{r:?}");
        assert_eq!(r.outcome, Outcome::Pass, "{r:?}");
        assert!(
            r.moved
                .as_deref()
                .unwrap()
                .contains(&format!("node {victim} was lost mid-run"))
        );
    }
    assert!(
        recs.iter().all(|r| r.outcome == Outcome::Pass),
        "{:?}\n{}",
        recs.iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .collect::<Vec<_>>(),
        show(&out)
    );
    assert!(out.status.success(), "{}", show(&out));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<property name=\"buildtest.node\""), "{xml}");
    assert!(xml.contains("was lost mid-run"), "{xml}");
    eprintln!(
        "moved {} checks; the run ended {:.1} s after the kill",
        moved.len(),
        after_kill.as_secs_f64()
    );
}
