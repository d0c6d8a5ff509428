//! `cargo buildtest --export` end to end on a one-suite workspace against the Docker 20.10
//! engine: a green test's export is written, a red test's is blocked (exit 100, JUnit testcase
//! `export: image NAME` failing), a run without `--export` writes nothing, and a filter exports
//! only what it selects. Image names carry the process id; the images are removed afterwards.

use std::process::Command;

use crate::support::{builder_addr, cases, read_junit, runner_dir, stable_workspace, suite};

const SUITE: &str = r#"use buildtest::prelude::*;

fn tag() -> String {
    std::env::var("E2E_EXPORT_TAG").unwrap_or_else(|_| "unset".to_owned())
}

fn input() -> State {
    State::image("buildtest/busybox:latest").file(FileAction::mkfile("/gate.txt", 0o644, "gate\n"))
}

#[buildtest::test]
fn green() -> Test {
    Test::on(input())
        .check(file("/gate.txt").equals("gate\n"))
        .export(Export::image(format!("buildtest-e2e-green:{}", tag())))
        .export(Export::docker_tar(format!("target/export-e2e/{}/green.tar", tag())))
}

#[buildtest::test]
fn red() -> Test {
    Test::on(input())
        .check(file("/gate.txt").equals("other\n"))
        .export(Export::image(format!("buildtest-e2e-red:{}", tag())))
}

fn main() {
    buildtest::main()
}
"#;

/// The engine's answer to `GET /images/NAME/json`: the image id, or `None` (404).
fn image_id(addr: &str, name: &str) -> Option<String> {
    let socket = addr
        .trim_start_matches("docker+")
        .trim_start_matches("unix://");
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--unix-socket", socket])
        .arg(format!("http://docker/images/{name}/json"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    match code {
        "200" => {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            Some(v["Id"].as_str().unwrap().to_owned())
        }
        "404" => None,
        other => panic!("inspecting {name}: HTTP {other}: {body}"),
    }
}

fn remove_image(addr: &str, name: &str) {
    let socket = addr
        .trim_start_matches("docker+")
        .trim_start_matches("unix://");
    let _ = Command::new("curl")
        .args(["-s", "-X", "DELETE", "--unix-socket", socket])
        .arg(format!("http://docker/images/{name}"))
        .output();
}

struct Cleanup<'a>(&'a str, Vec<String>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.1 {
            remove_image(self.0, name);
        }
    }
}

#[test]
fn export_runs_only_with_the_flag_and_only_for_green_tests() {
    let addr = builder_addr();
    let tag = format!("p{}", std::process::id());
    let green = format!("buildtest-e2e-green:{tag}");
    let red = format!("buildtest-e2e-red:{tag}");
    let _cleanup = Cleanup(&addr, vec![green.clone(), red.clone()]);
    let manifest = format!(
        "[package]\nname = \"export-gate\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n[workspace]\n\n[dev-dependencies]\n\
         buildtest = {{ path = \"{}\" }}\n\n[[test]]\nname = \"gate\"\nharness = false\n",
        runner_dir()
    );
    let ws = stable_workspace(
        "export-gate",
        &[
            ("Cargo.toml", &manifest),
            ("src/lib.rs", "//! export-gate\n"),
            ("tests/gate.rs", SUITE),
        ],
    );
    let tar = ws.join(format!("target/export-e2e/{tag}/green.tar"));
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let junit_arg = junit.display().to_string();
    let run = |extra: &[&str]| {
        let mut cmd = crate::support::command(&ws, &[]);
        cmd.args(["--addr", &addr, "--junit", &junit_arg])
            .args(extra)
            .env("E2E_EXPORT_TAG", &tag)
            .env_remove("BUILDTEST_EXPORT");
        crate::support::run(cmd)
    };

    // Without --export: checks only.
    run(&[])
        .assert_code(100)
        .assert_stderr_has(&format!(
            "export-gate::gate green #2 export: image {green}: not performed: exports run only \
             with `cargo buildtest --export`"
        ))
        .assert_stderr_has("2 checks in 2 tests run: 1 passed (");
    assert_eq!(image_id(&addr, &green), None);
    assert!(!tar.exists());

    // With --export: the green test's exports are written, the red test's blocked.
    let out = run(&["--export"]);
    out.assert_code(100)
        .assert_stderr_has("EXPORTED [")
        .assert_stderr_has(&format!("gate green #2 export: image {green}"))
        .assert_stderr_has(&format!(": image {green} sha256:"))
        .assert_stderr_has(&format!(
            "--- BLOCKED: export-gate::gate red #2 export: image {red} (export blocked)"
        ))
        .assert_stderr_has("(gate: legacy)")
        .assert_stderr_has("BLOCKED [")
        .assert_stderr_has("not exported: blocked by 1 of 1 checks: 1: file: /gate.txt (fail)")
        .assert_stderr_has("; 2 of 3 exports written");
    let id = image_id(&addr, &green).expect("the green image exists");
    assert!(
        out.stderr.contains(&id),
        "the printed digest is the image id: {id}"
    );
    assert_eq!(
        image_id(&addr, &red),
        None,
        "a blocked export leaves no name"
    );
    assert!(tar.is_file());
    let suites = read_junit(&junit);
    let cases = cases(suite(&suites, "export-gate::gate"));
    let find = |name: &str| {
        cases
            .iter()
            .find(|(_, n, _)| n == name)
            .unwrap_or_else(|| panic!("no testcase {name} in {cases:?}"))
            .2
            .clone()
    };
    assert_eq!(find(&format!("export: image {green}")), "pass");
    assert_eq!(find(&format!("export: image {red}")), "failure");

    // A filter selects what is exported: only the green test, which passes.
    remove_image(&addr, &green);
    run(&["--export", "--", "green"])
        .assert_code(0)
        .assert_stderr_has("1 check in 1 test run: 1 passed (1 cached)");
    assert_eq!(image_id(&addr, &green), Some(id), "the same digest again");
}
