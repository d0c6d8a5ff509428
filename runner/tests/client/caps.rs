//! The capability probe and the strategies, on the real engines.

use std::time::Instant;

use buildtest::client::{SolveError, SolveOptions, Strategy, StrategyError, resolve_strategy};
use buildtest::llb::{NetMode, State};

use crate::common::{Engine, busybox, marshal, nonce, solve};

crate::on_both_engines!(
    probe_finds_no_passthrough_and_auto_is_direct,
    merge_diff_support_is_probed,
    strategies_solve_pass_and_fail
);

async fn probe_finds_no_passthrough_and_auto_is_direct(engine: Engine) {
    let client = engine.connect().await;
    let started = Instant::now();
    let caps = client
        .caps()
        .await
        .unwrap_or_else(|e| panic!("{}: probe failed: {e}", engine.name))
        .clone();
    eprintln!(
        "{}: caps {caps} in {:?}; passthrough refusal: {:?}",
        engine.name,
        started.elapsed(),
        caps.passthrough_refusal
    );
    assert!(
        !caps.passthrough,
        "{}: no engine here has BuildKit v0.31",
        engine.name
    );
    let refusal = caps.passthrough_refusal.clone().unwrap();
    assert!(
        refusal.contains("passthroughop"),
        "{}: {refusal}",
        engine.name
    );
    assert_eq!(
        resolve_strategy(Strategy::Auto, &caps),
        Ok(Strategy::Direct)
    );
    let forced = resolve_strategy(Strategy::Passthrough, &caps).unwrap_err();
    assert!(matches!(forced, StrategyError::NoPassthrough(_)));
    let text = forced.to_string();
    assert!(
        text.starts_with(
            "use strategy `passthrough`: the builder does not support the passthrough op"
        ),
        "{text}"
    );
    // Probed once per client: a second call is the same answer without solving again.
    let again = Instant::now();
    assert_eq!(client.caps().await.unwrap(), &caps);
    assert!(again.elapsed().as_millis() < 50);
}

async fn merge_diff_support_is_probed(engine: Engine) {
    let client = engine.connect().await;
    let caps = client.caps().await.unwrap().clone();
    if engine.name == "docker20" {
        assert!(!caps.merge_diff, "BuildKit v0.8 has no merge/diff ops");
        let refusal = caps.merge_diff_refusal.clone().unwrap();
        assert!(
            refusal.contains("mergeop") || refusal.contains("diffop"),
            "{refusal}"
        );
        let err = resolve_strategy(Strategy::MergeDiff, &caps)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("need BuildKit v0.10+ — Docker 20.10 embeds v0.8"),
            "{err}"
        );
        // Solving such a graph anyway gives the builder's own, clearly classified refusal.
        let input = busybox();
        let check = input.run(["true"]).network(NetMode::None).root();
        let report = solve(&client, &Strategy::MergeDiff.wrap(&input, "c", check)).await;
        match report.result {
            Err(SolveError::Unsupported { what, message }) => {
                eprintln!("docker20 mergediff: {what}: {message}");
                assert!(what == "mergeop" || what == "diffop", "{what}");
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    } else if caps.merge_diff {
        assert_eq!(
            resolve_strategy(Strategy::MergeDiff, &caps),
            Ok(Strategy::MergeDiff)
        );
    } else {
        // BuildKit v0.13 knows merge/diff, but Docker 26 enables them only with the containerd image
        // store; with its default graph-driver store the refusal must say exactly that.
        let refusal = caps.merge_diff_refusal.clone().unwrap();
        assert!(refusal.contains("containerd image store"), "{refusal}");
        let err = resolve_strategy(Strategy::MergeDiff, &caps)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&refusal), "{err}");
        eprintln!("docker26: mergediff unavailable: {err}");
    }
}

async fn strategies_solve_pass_and_fail(engine: Engine) {
    let client = engine.connect().await;
    let caps = client.caps().await.unwrap().clone();
    let mut strategies = vec![Strategy::Direct, Strategy::Discard];
    if caps.merge_diff {
        strategies.push(Strategy::MergeDiff);
    }
    let input: State = busybox()
        .run(["sh", "-c", &format!("echo {} > /input", nonce())])
        .network(NetMode::None)
        .root();
    for strategy in strategies {
        let n = nonce();
        let pass = input
            .run(["sh", "-c", &format!("test -s /input; : {n}")])
            .network(NetMode::None)
            .root();
        let fail = input
            .run(["sh", "-c", &format!("exit 7; : {n}")])
            .network(NetMode::None)
            .root();
        let (_, pass_digest) = marshal(&pass);
        let (_, fail_digest) = marshal(&fail);

        let (def, _) = marshal(&strategy.wrap(&input, "pass", pass));
        let options = SolveOptions {
            check_vertices: vec![pass_digest.clone()],
            ..SolveOptions::default()
        };
        let report = client.solve_and_wait(def, options).await;
        assert!(
            report.result.is_ok(),
            "{} {strategy}: {:?}",
            engine.name,
            report.result
        );
        assert!(
            report
                .vertex(&pass_digest)
                .is_some_and(|v| v.completed.is_some()),
            "{} {strategy}: check ran",
            engine.name
        );

        let (def, _) = marshal(&strategy.wrap(&input, "fail", fail));
        let options = SolveOptions {
            check_vertices: vec![fail_digest.clone()],
            ..SolveOptions::default()
        };
        let report = client.solve_and_wait(def, options).await;
        match report.result {
            Err(SolveError::ExecFailed {
                vertex, exit_code, ..
            }) => {
                assert_eq!(vertex, fail_digest, "{} {strategy}", engine.name);
                assert_eq!(exit_code, Some(7), "{} {strategy}", engine.name);
            }
            other => panic!(
                "{} {strategy}: expected ExecFailed, got {other:?}",
                engine.name
            ),
        }
    }
}
