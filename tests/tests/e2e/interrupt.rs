//! Ctrl-C during a run: exit 130 and a complete, valid JUnit file with what had finished.

use std::time::{Duration, Instant};

use crate::support::{
    builder_addr, cases, command, read_junit, spawn_reading_stderr, suite, workspace,
};

#[test]
fn ctrl_c_leaves_a_valid_junit_file_and_exits_130() {
    let addr = builder_addr();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let junit_arg = junit.display().to_string();
    let cmd = command(
        &workspace(),
        &["-p", "slow", "--addr", &addr, "--junit", &junit_arg],
    );
    let (mut child, stderr) = spawn_reading_stderr(cmd);

    // Wait for the quick check to pass (the slow one sleeps for two minutes).
    let deadline = Instant::now() + Duration::from_secs(600);
    while !stderr.lock().unwrap().contains("] slow::slow quick #1") {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ended early with {status}:\n{}", stderr.lock().unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "no check finished:\n{}",
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let interrupted = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(20),
            "still running 20 s after SIGINT:\n{}",
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(200)); // let the reader drain stderr
    let text = stderr.lock().unwrap().clone();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("interrupted"), "{text}");

    let suites = read_junit(&junit);
    assert_eq!(suites.len(), 1);
    let slow = suite(&suites, "slow::slow");
    assert_eq!(
        cases(slow),
        [(
            "quick".to_owned(),
            "1: cmd: echo quick".to_owned(),
            "pass".to_owned()
        )]
    );
}
