//! Solves on the real engines: pass, fail, logs, cache, missing image, failed input, Info.

use std::time::Duration;

use buildtest::client::{LogStream, PruneSummary, SolveError, SolveEvent, SolveOptions};
use buildtest::llb::{FileAction, NetMode, State};

use crate::common::{Engine, assert_ok, busybox, marshal, nonce, sh, solve};

crate::on_both_engines!(
    passing_exec,
    failing_exec_names_vertex_and_exit_code,
    logs_arrive_per_vertex_and_stream,
    rerun_is_cached,
    missing_image_is_reported_as_missing,
    failed_input_is_not_the_checks_fault,
    info_and_workers,
    prune_answers,
    symlink_file_action_says_the_builder_lacks_it,
);

async fn passing_exec(engine: Engine) {
    let client = engine.connect().await;
    let state = sh(&format!("test -d /tmp && echo ok-{}", nonce()));
    let (_, head) = marshal(&state);
    let report = solve(&client, &state).await;
    assert_ok(&engine, &report);
    let vertex = report
        .vertex(&head)
        .unwrap_or_else(|| panic!("{}: no status for the exec {head}", engine.name));
    assert!(
        !vertex.cached,
        "{}: a fresh exec was reported cached",
        engine.name
    );
    assert!(
        vertex.completed.is_some() && vertex.error.is_none(),
        "{}: {vertex:?}",
        engine.name
    );
}

async fn failing_exec_names_vertex_and_exit_code(engine: Engine) {
    let client = engine.connect().await;
    let state = sh(&format!("echo about to fail >&2; exit 3; : {}", nonce()));
    let (_, head) = marshal(&state);
    let report = solve(&client, &state).await;
    let err = report.result.clone().expect_err("exit 3 must fail");
    match &err {
        SolveError::ExecFailed {
            vertex,
            exit_code,
            command,
            ..
        } => {
            assert_eq!(
                vertex, &head,
                "{}: the failing vertex is the exec op",
                engine.name
            );
            assert_eq!(*exit_code, Some(3), "{}: {err}", engine.name);
            assert!(
                command.starts_with("`sh -c \"echo about to fail"),
                "{command}"
            );
        }
        other => panic!("{}: expected ExecFailed, got {other:?}", engine.name),
    }
    let text = err.to_string();
    assert!(text.starts_with("run `sh -c"), "{text}");
    assert!(text.ends_with(": exit code 3"), "{text}");
    let vertex = report.vertex(&head).unwrap();
    assert!(
        vertex.error.is_some(),
        "{}: the Status stream marks the exec failed",
        engine.name
    );
    assert!(String::from_utf8_lossy(&vertex.stderr).contains("about to fail"));
    eprintln!(
        "{}: {err}\n  debug: {err:?}\n  details: {:?}",
        engine.name, report.error_details
    );
}

async fn logs_arrive_per_vertex_and_stream(engine: Engine) {
    let client = engine.connect().await;
    let n = nonce();
    let state = sh(&format!("echo out-{n}; echo err-{n} >&2; echo more-out"));
    let (def, head) = marshal(&state);
    let mut solve = client.solve(def, SolveOptions::default());
    let (mut stdout, mut stderr, mut started, mut completed) =
        (Vec::new(), Vec::new(), false, false);
    while let Some(event) = solve.next_event().await {
        match event {
            SolveEvent::Log {
                vertex,
                stream: LogStream::Stdout,
                data,
            } if vertex == head => stdout.extend(data),
            SolveEvent::Log {
                vertex,
                stream: LogStream::Stderr,
                data,
            } if vertex == head => stderr.extend(data),
            SolveEvent::VertexStarted { digest, .. } if digest == head => started = true,
            SolveEvent::VertexCompleted { digest, cached, .. } if digest == head => {
                assert!(!cached);
                completed = true;
            }
            _ => {}
        }
    }
    let report = solve.wait().await;
    assert_ok(&engine, &report);
    assert!(
        started && completed,
        "{}: started={started} completed={completed}",
        engine.name
    );
    assert_eq!(
        String::from_utf8_lossy(&stdout),
        format!("out-{n}\nmore-out\n"),
        "{}",
        engine.name
    );
    assert_eq!(
        String::from_utf8_lossy(&stderr),
        format!("err-{n}\n"),
        "{}",
        engine.name
    );
    let vertex = report.vertex(&head).unwrap();
    assert_eq!(vertex.stdout, stdout);
    assert_eq!(vertex.stderr, stderr);
}

async fn rerun_is_cached(engine: Engine) {
    let client = engine.connect().await;
    let state = sh(&format!("echo cache-me-{}", nonce()));
    let (_, head) = marshal(&state);
    let first = solve(&client, &state).await;
    assert_ok(&engine, &first);
    assert!(
        !first.cached(&head),
        "{}: first run must execute",
        engine.name
    );
    let second = solve(&client, &state).await;
    assert_ok(&engine, &second);
    assert!(
        second.cached(&head),
        "{}: rerun not reported cached: {:?}",
        engine.name,
        second.vertex(&head)
    );
    // A failed exec is never cached: it fails again, executed again.
    let failing = sh(&format!("exit 5; : {}", nonce()));
    for _ in 0..2 {
        let report = solve(&client, &failing).await;
        assert_eq!(
            report.result.as_ref().err().and_then(SolveError::exit_code),
            Some(5),
            "{}",
            engine.name
        );
    }
}

async fn missing_image_is_reported_as_missing(engine: Engine) {
    let client = engine.connect().await;
    let state = State::image("buildtest/does-not-exist:1")
        .run(["true"])
        .network(NetMode::None)
        .root();
    let started = std::time::Instant::now();
    let report = solve(&client, &state).await;
    let err = report.result.expect_err("a missing image must fail");
    eprintln!(
        "{}: {err}\n  debug: {err:?} after {:?}",
        engine.name,
        started.elapsed()
    );
    match &err {
        SolveError::ImageNotFound { image, .. } => {
            assert_eq!(image, "docker.io/buildtest/does-not-exist:1")
        }
        other => panic!("{}: expected ImageNotFound, got {other:?}", engine.name),
    }
    let text = err.to_string();
    assert!(
        text.contains("not present in the builder's local image store and cannot be pulled"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{}: took {:?}",
        engine.name,
        started.elapsed()
    );
}

async fn failed_input_is_not_the_checks_fault(engine: Engine) {
    let client = engine.connect().await;
    let input = sh(&format!("exit 4; : {}", nonce()));
    let (_, input_digest) = marshal(&input);
    let check = input.run(["true"]).network(NetMode::None).root();
    let (def, check_digest) = marshal(&check);
    let options = SolveOptions {
        check_vertices: vec![check_digest],
        ..SolveOptions::default()
    };
    let report = client.solve_and_wait(def, options).await;
    match report.result {
        Err(SolveError::InputFailed {
            vertex,
            name,
            message,
        }) => {
            assert_eq!(vertex, input_digest, "{}", engine.name);
            assert!(!name.is_empty());
            assert!(
                message.contains("exit code: 4"),
                "{}: {message}",
                engine.name
            );
        }
        other => panic!("{}: expected InputFailed, got {other:?}", engine.name),
    }
    let _ = busybox();
}

async fn info_and_workers(engine: Engine) {
    let client = engine.connect().await;
    let info = client.info().await.unwrap();
    eprintln!(
        "{}: builder {} info {info:?}",
        engine.name,
        client.builder()
    );
    if engine.name == "docker20" {
        assert_eq!(
            info, None,
            "Docker 20.10's BuildKit v0.8.3 does not implement Control.Info"
        );
    } else {
        assert!(info.is_some(), "BuildKit v0.13 implements Control.Info");
    }
    let workers = client.list_workers().await.unwrap();
    assert!(!workers.is_empty(), "{}: no workers", engine.name);
    assert_eq!(client.workers().len(), workers.len());
    assert!(
        client.builder().to_string().contains("(--addr flag)"),
        "{}",
        client.builder()
    );
}

/// `Control.Prune` answers on both engines. Only with a filter that matches nothing: the engines are
/// shared, and BuildKit matches prune filters against id/type/mutable/shared/usage only (not the
/// description), so no filter can target just this test's records.
async fn prune_answers(engine: Engine) {
    let client = engine.connect().await;
    let pruned = client
        .prune_matching(vec!["id==buildtest-no-such-record".to_owned()], false)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", engine.name));
    assert_eq!(pruned, PruneSummary::default(), "{}", engine.name);
    let err = client
        .prune_matching(vec!["id==\"".to_owned()], false)
        .await
        .unwrap_err()
        .to_string();
    eprintln!("{}: bad prune filter: {err}", engine.name);
    assert!(
        err.starts_with("call Control.Prune: "),
        "{}: {err}",
        engine.name
    );
}

/// `FileAction::symlink` (a FileOp action since BuildKit v0.19): BuildKit v0.8.3 and v0.13.2 do
/// not know it and say only `invalid action type <nil>`; that becomes an `Unsupported` error
/// naming the file action and the version that has it.
async fn symlink_file_action_says_the_builder_lacks_it(engine: Engine) {
    let client = engine.connect().await;
    let link = format!("/link-{}", nonce());
    let state = busybox()
        .file(FileAction::symlink("/bin/busybox", link.as_str()))
        .run(["test", "-L", link.as_str()])
        .network(NetMode::None)
        .root();
    let report = solve(&client, &state).await;
    match &report.result {
        Err(err @ SolveError::Unsupported { what, .. }) => {
            assert!(
                what.contains("FileAction::symlink"),
                "{}: {what}",
                engine.name
            );
            assert!(err.to_string().contains("v0.19"), "{}: {err}", engine.name);
        }
        other => panic!("{}: expected Unsupported, got {other:?}", engine.name),
    }
}
