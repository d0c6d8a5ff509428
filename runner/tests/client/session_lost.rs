//! The session's end when the other side goes away, and its headers as a daemon receives them.
//!
//! - A fake Control server (unix socket, the buildkitd transport) records the `Control.Session`
//!   metadata and ends the stream at once: the headers are checked value by value and the session
//!   must notice its end.
//! - A real engine behind a byte proxy: killing the proxy is, for the client, a daemon that went
//!   away; the session must end ([`SessionEnd::Lost`]) within seconds on both tunnel mechanisms.

use std::time::{Duration, Instant};

use buildtest::client::session::{METHODS, shared_key_for};
use buildtest::client::{
    Client, LocalDirs, Resolved, SessionEnd, SessionOptions, SolveError, SolveOptions, TunnelKind,
};
use buildtest::llb::{LocalOptions, NetMode, State};

use crate::common::{Engine, busybox, marshal, nonce};
use crate::fake::{Listen, SolveBehaviour, fake_control, proxy_to_unix};

crate::on_both_engines!(
    engine_gone_ends_the_session,
    session_dropped_mid_transfer_fails_the_solve
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_session_headers_and_end_on_a_buildkitd_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fake.sock");
    let server = fake_control(Listen::unix(&sock), SolveBehaviour::Succeed);
    let client = Client::connect(&Resolved::addr(&format!("unix://{}", sock.display())).unwrap())
        .await
        .unwrap();
    let session = client
        .start_session(SessionOptions {
            shared_key: "my-package".into(),
            dirs: LocalDirs::new(),
            ..SessionOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(session.tunnel(), TunnelKind::ControlSession);
    let end = tokio::time::timeout(Duration::from_secs(5), session.closed())
        .await
        .expect("the session did not notice the stream's end");
    assert_eq!(
        end,
        SessionEnd::Lost("the daemon ended the session stream".into())
    );
    let sessions = server.sessions.lock().unwrap().clone();
    assert_eq!(sessions.len(), 1);
    let md = &sessions[0];
    let values = |key: &str| -> Vec<String> {
        md.get_all(key)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(values("x-docker-expose-session-uuid"), [session.id()]);
    assert_eq!(
        values("x-docker-expose-session-sharedkey"),
        [shared_key_for("my-package")]
    );
    assert_eq!(session.shared_key(), shared_key_for("my-package"));
    // One value per method, never comma-joined.
    assert_eq!(values("x-docker-expose-session-grpc-method"), METHODS);
    assert!(METHODS.contains(&"/moby.filesync.v1.FileSync/DiffCopy"));
    assert!(METHODS.contains(&"/grpc.health.v1.Health/Check"));
    assert!(!session.id().contains(':'));
}

async fn engine_gone_ends_the_session(engine: Engine) {
    for tunnel in [
        TunnelKind::ControlSession,
        TunnelKind::DockerSessionEndpoint,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("proxy.sock");
        let target = engine.host.strip_prefix("unix://").unwrap().to_owned();
        let proxy = proxy_to_unix(Listen::unix(&sock), std::path::Path::new(&target));
        let client =
            Client::connect(&Resolved::addr(&format!("docker+unix://{}", sock.display())).unwrap())
                .await
                .unwrap_or_else(|e| {
                    panic!("{}: {e}; run `bash scripts/builders.sh up`", engine.name)
                });
        let session = client
            .start_session(SessionOptions {
                tunnel,
                ..SessionOptions::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{}: {tunnel}: {e}", engine.name));
        // Healthy for a while (the daemon polls Health/Check every 1 s on v0.8.3, 5 s on v0.13).
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(session.end(), None, "{}: {tunnel}", engine.name);
        proxy.kill();
        let killed = Instant::now();
        let end = tokio::time::timeout(Duration::from_secs(10), session.closed())
            .await
            .unwrap_or_else(|_| panic!("{}: {tunnel}: the session hung", engine.name));
        assert!(
            matches!(end, SessionEnd::Lost(_)),
            "{}: {tunnel}: {end:?}",
            engine.name
        );
        eprintln!(
            "{}: {tunnel}: {end} after {:?}",
            engine.name,
            killed.elapsed()
        );
        // Closing an ended session is immediate.
        session.close().await.unwrap();
    }
}

/// The session's connection breaks while a directory is being sent: the solve (on another
/// connection, which stays up) fails with the daemon's error instead of hanging, and the session
/// reports its end.
async fn session_dropped_mid_transfer_fails_the_solve(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![0x5a_u8; 256 * 1024];
    for i in 0..400 {
        std::fs::write(dir.path().join(format!("f{i:03}")), &data).unwrap();
    }
    let direct = engine.connect().await;
    for tunnel in [
        TunnelKind::DockerSessionEndpoint,
        TunnelKind::ControlSession,
    ] {
        let sock_dir = tempfile::tempdir().unwrap();
        let sock = sock_dir.path().join("proxy.sock");
        let target = engine.host.strip_prefix("unix://").unwrap().to_owned();
        let proxy = proxy_to_unix(Listen::unix(&sock), std::path::Path::new(&target));
        let proxied =
            Client::connect(&Resolved::addr(&format!("docker+unix://{}", sock.display())).unwrap())
                .await
                .unwrap();
        let dirs = LocalDirs::new();
        dirs.insert("big", dir.path());
        let session = proxied
            .start_session(SessionOptions {
                shared_key: nonce(),
                dirs,
                tunnel,
                ..SessionOptions::default()
            })
            .await
            .unwrap();
        let local = State::local_with("big", LocalOptions::new().unique_id(nonce()));
        let state = busybox()
            .run(["true"])
            .network(NetMode::None)
            .mount_readonly("/src", local)
            .root();
        let (def, _) = marshal(&state);
        let options = SolveOptions {
            timeout: Some(Duration::from_secs(90)),
            session: Some(session.id().to_owned()),
            ..SolveOptions::default()
        };
        // The solve goes over the direct connection; only the session runs through the proxy.
        let solve = direct.solve(def, options);
        let deadline = Instant::now() + Duration::from_secs(30);
        while session.stats().file_bytes_sent == 0 {
            assert!(
                Instant::now() < deadline,
                "{}: {tunnel}: no transfer started",
                engine.name
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        proxy.kill();
        let killed = Instant::now();
        let report = tokio::time::timeout(Duration::from_secs(60), solve.wait())
            .await
            .unwrap_or_else(|_| panic!("{}: {tunnel}: the solve hung", engine.name));
        let sent = session.stats().file_bytes_sent;
        assert!(
            sent < 400 * 256 * 1024,
            "{}: {tunnel}: the whole directory was sent before the kill ({sent} bytes)",
            engine.name
        );
        match &report.result {
            Ok(()) => panic!(
                "{}: {tunnel}: the solve passed without its input",
                engine.name
            ),
            Err(SolveError::ExecFailed { .. }) => {
                panic!("{}: {tunnel}: {:?}", engine.name, report.result)
            }
            Err(e) => eprintln!(
                "{}: {tunnel}: after {:?} ({sent} bytes sent): {e}",
                engine.name,
                killed.elapsed()
            ),
        }
        let end = tokio::time::timeout(Duration::from_secs(10), session.closed())
            .await
            .unwrap_or_else(|_| panic!("{}: {tunnel}: the session hung", engine.name));
        assert!(
            matches!(end, SessionEnd::Lost(_)),
            "{}: {tunnel}: {end:?}",
            engine.name
        );
    }
}
