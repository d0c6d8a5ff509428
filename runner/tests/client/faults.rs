//! Connections that break mid-solve must end the solve with a clear error, never hang.
//!
//! - The fake server drops the connection while `Solve` is pending (a fault a daemon can't produce
//!   on demand).
//! - A real engine reached through a byte proxy in front of its socket; killing the proxy mid-solve
//!   is, for the client, exactly a daemon that stopped (the shared engines themselves must not be
//!   stopped: other tests use them).

use std::time::{Duration, Instant};

use buildtest::client::{
    BuilderError, Client, ConnectOptions, Resolved, SolveError, SolveEvent, SolveOptions,
};

use crate::common::{Engine, marshal, nonce, sh};
use crate::fake::{Listen, SolveBehaviour, fake_control, proxy_to_unix};

crate::on_both_engines!(engine_gone_mid_solve_is_connection_lost);

fn assert_connection_lost(what: &str, result: &Result<(), SolveError>) {
    match result {
        Err(SolveError::Builder(BuilderError::ConnectionLost { message })) => {
            let text = result.as_ref().unwrap_err().to_string();
            assert!(
                text.starts_with("keep the connection to the builder: "),
                "{what}: {text}"
            );
            assert!(
                text.contains("was the builder stopped or restarted?"),
                "{what}: {text}"
            );
            eprintln!("{what}: {message}");
        }
        other => panic!("{what}: expected ConnectionLost, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_server_dropping_the_connection_mid_solve() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fake.sock");
    let server = fake_control(Listen::unix(&sock), SolveBehaviour::Hang);
    let client = Client::connect(&Resolved::addr(&format!("unix://{}", sock.display())).unwrap())
        .await
        .unwrap();
    let solve = client.solve(Default::default(), SolveOptions::default());
    let solves = server.solves.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while solves.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the fake never saw the solve");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(solves.lock().unwrap()[0].r#ref, solve.solve_ref());
    server.kill();
    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(10), solve.wait())
        .await
        .expect("the solve hung");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_connection_lost("fake", &report.result);
    // The Status stream's vertex arrived before the break and is kept.
    assert_eq!(
        report.vertices.first().map(|v| v.name.as_str()),
        Some("fake vertex")
    );
}

async fn engine_gone_mid_solve_is_connection_lost(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("proxy.sock");
    let target = engine.host.strip_prefix("unix://").unwrap().to_owned();
    let proxy = proxy_to_unix(Listen::unix(&sock), std::path::Path::new(&target));
    let client =
        Client::connect(&Resolved::addr(&format!("docker+unix://{}", sock.display())).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}; run `bash scripts/builders.sh up`", engine.name));
    let (def, head) = marshal(&sh(&format!("sleep 30; : gone-{}", nonce())));
    let mut solve = client.solve(def, SolveOptions::default());
    let started = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = solve.next_event().await {
            if matches!(&event, SolveEvent::VertexStarted { digest, .. } if *digest == head) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(started, "{}: the exec never started", engine.name);
    proxy.kill();
    let killed = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(15), solve.wait())
        .await
        .expect("the solve hung");
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "{}: {:?}",
        engine.name,
        killed.elapsed()
    );
    assert_connection_lost(engine.name, &report.result);
}

/// The client's bound: with `max_concurrent_solves = 3`, only 3 of 10 started solves reach the
/// builder while they hang; dropping two of them lets two of the others through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_solve_bound_holds() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fake.sock");
    let server = fake_control(Listen::unix(&sock), SolveBehaviour::Hang);
    let resolved = Resolved::addr(&format!("unix://{}", sock.display())).unwrap();
    let options = ConnectOptions {
        max_concurrent_solves: 3,
        ..ConnectOptions::default()
    };
    let client = Client::connect_with(&resolved, &options).await.unwrap();
    // Each solve is a task of its own, and tasks reach the bound in any order: start the first
    // three alone so that they are the ones holding it, then the seven that must wait.
    let start = || client.solve(Default::default(), SolveOptions::default());
    let mut solves: Vec<_> = (0..3).map(|_| start()).collect();
    // Wait (bounded) until the expected number arrived, then a little longer: no more may come.
    let reached = |n: usize| {
        let server = &server;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while server.solves.lock().unwrap().len() < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.solves.lock().unwrap().len()
        }
    };
    assert_eq!(reached(3).await, 3);
    solves.extend((0..7).map(|_| start()));
    assert_eq!(reached(3).await, 3, "the seven others wait");
    solves.drain(..2);
    assert_eq!(
        reached(5).await,
        5,
        "dropping two that hold the bound lets two through"
    );
}
