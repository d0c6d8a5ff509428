//! Many solves over one connection, cancellation by drop, and solve timeouts, on the real engines.
//!
//! Cancellation is observed on the machine itself: the exec's process (its argv carries a nonce) must
//! disappear from `/proc` shortly after the solve is dropped, long before its `sleep` would end.

use std::time::{Duration, Instant};

use buildtest::client::{
    BuilderError, Client, ConnectOptions, Resolved, SolveError, SolveEvent, SolveOptions,
};

use crate::common::{Engine, marshal, nonce, sh};

crate::on_both_engines!(
    two_hundred_concurrent_solves_on_one_connection,
    dropping_a_solve_cancels_it,
    a_timeout_cancels_the_solve
);

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(needle)
        {
            found.push(pid);
        }
    }
    found
}

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

async fn two_hundred_concurrent_solves_on_one_connection(engine: Engine) {
    // All 200 in flight at once: 400 HTTP/2 streams, more than dockerd's per-connection limit (250).
    let resolved = Resolved::addr(&engine.addr()).unwrap();
    let options = ConnectOptions {
        max_concurrent_solves: 200,
        ..ConnectOptions::default()
    };
    let client = Client::connect_with(&resolved, &options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let n = nonce();
    let started = Instant::now();
    let solves: Vec<_> = (0..200)
        .map(|i| {
            let (def, head) = marshal(&sh(&format!("echo {i}-{n}")));
            (head, client.solve(def, SolveOptions::default()))
        })
        .collect();
    let (mut ok, mut retries) = (0, 0);
    for (head, solve) in solves {
        let report = solve.wait().await;
        assert!(
            report.result.is_ok(),
            "{}: {:?}",
            engine.name,
            report.result
        );
        assert!(
            report.vertex(&head).is_some_and(|v| !v.stdout.is_empty()),
            "{}: logs of {head}",
            engine.name
        );
        ok += 1;
        retries += report.retries;
    }
    eprintln!(
        "{}: {ok} concurrent solves in {:?} ({retries} retried after a transient builder failure)",
        engine.name,
        started.elapsed()
    );
    assert_eq!(ok, 200);
}

async fn dropping_a_solve_cancels_it(engine: Engine) {
    let client = engine.connect().await;
    let marker = format!("cancel-me-{}", nonce());
    let (def, head) = marshal(&sh(&format!("sleep 60; : {marker}")));
    let mut solve = client.solve(def, SolveOptions::default());
    // Wait until the exec runs on the daemon.
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
    wait_until(
        "the exec's process appears",
        Duration::from_secs(20),
        || !processes_with(&marker).is_empty(),
    )
    .await;
    drop(solve);
    let took = wait_until(
        "the daemon kills the cancelled exec",
        Duration::from_secs(20),
        || processes_with(&marker).is_empty(),
    )
    .await;
    eprintln!(
        "{}: exec gone {took:?} after the solve was dropped",
        engine.name
    );
    // The connection is still usable.
    let report = client
        .solve_and_wait(
            marshal(&sh(&format!("echo after-{marker}"))).0,
            SolveOptions::default(),
        )
        .await;
    assert!(report.result.is_ok(), "{:?}", report.result);
}

async fn a_timeout_cancels_the_solve(engine: Engine) {
    let client = engine.connect().await;
    let marker = format!("time-me-out-{}", nonce());
    let (def, _) = marshal(&sh(&format!("sleep 60; : {marker}")));
    let started = Instant::now();
    let options = SolveOptions {
        timeout: Some(Duration::from_secs(3)),
        ..SolveOptions::default()
    };
    let report = client.solve_and_wait(def, options).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        report.result,
        Err(SolveError::Builder(BuilderError::Timeout(
            Duration::from_secs(3)
        )))
    );
    assert_eq!(
        report.result.unwrap_err().to_string(),
        "finish within 3s: timed out"
    );
    wait_until(
        "the timed-out exec is gone",
        Duration::from_secs(20),
        || processes_with(&marker).is_empty(),
    )
    .await;
}
