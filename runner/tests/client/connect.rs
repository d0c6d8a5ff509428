//! Resolution and transports end to end: bad addresses, timeouts, fallbacks, environment-driven
//! choices against the real engines, the direct buildkitd transports (fake server), Docker over mTLS,
//! and `docker-container://` through a dial-stdio command.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use buildtest::client::{
    AttemptError, BuilderSpec, Client, ConnectOptions, Env, Reason, ResolveOptions, Resolved,
    Socket, TlsOptions, TransportSpec, resolve,
};
use tokio::net::TcpListener;

use crate::common::{Engine, assert_ok, sh, solve};
use crate::fake::{Listen, Pki, SolveBehaviour, fake_control, proxy_to_unix};

async fn connect_err(resolved: &Resolved, timeout: Duration) -> (String, Duration) {
    let started = Instant::now();
    let options = ConnectOptions {
        connect_timeout: timeout,
        ..ConnectOptions::default()
    };
    let err = Client::connect_with(resolved, &options)
        .await
        .expect_err("must not connect");
    (err.to_string(), started.elapsed())
}

#[tokio::test]
async fn bad_addresses_fail_within_seconds_listing_what_was_tried() {
    let (msg, took) = connect_err(
        &Resolved::addr("unix:///nonexistent.sock").unwrap(),
        Duration::from_secs(5),
    )
    .await;
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(
        msg.starts_with("connect to a buildkit builder; tried:\n"),
        "{msg}"
    );
    assert!(
        msg.contains("  - buildkitd at unix:///nonexistent.sock (--addr flag): connect to unix:///nonexistent.sock: No such file"),
        "{msg}"
    );
    let (msg, took) = connect_err(
        &Resolved::addr("tcp://127.0.0.1:1").unwrap(),
        Duration::from_secs(5),
    )
    .await;
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(msg.contains("buildkitd at tcp://127.0.0.1:1 (--addr flag): connect to tcp://127.0.0.1:1: Connection refused"), "{msg}");
    assert!(msg.contains("bash scripts/builders.sh up"), "{msg}");
}

#[tokio::test]
async fn a_silent_endpoint_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold connections without ever answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    for addr in [
        format!("tcp://127.0.0.1:{port}"),
        format!("docker+tcp://127.0.0.1:{port}"),
    ] {
        let (msg, took) =
            connect_err(&Resolved::addr(&addr).unwrap(), Duration::from_secs(2)).await;
        assert!(took < Duration::from_secs(4), "{addr}: took {took:?}");
        assert!(msg.contains("no answer within 2s"), "{addr}: {msg}");
    }
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_are_tried_in_order() {
    let engine = Engine::docker20();
    let bad = BuilderSpec {
        transport: TransportSpec::DockerEngine {
            socket: Socket::Unix("/nonexistent/docker.sock".into()),
            tls: None,
        },
        reason: Reason::DefaultDockerSocket,
    };
    let good = Resolved::addr(&engine.addr()).unwrap().candidates.remove(0);
    let client = Client::connect(&Resolved {
        candidates: vec![bad, good.clone()],
    })
    .await
    .unwrap();
    assert_eq!(client.builder(), &good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_chooses_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let [d20, d26] = Engine::both();
    // DOCKER_HOST.
    let env = Env::empty().home(dir.path()).var("DOCKER_HOST", &d26.host);
    let client = Client::connect(
        &resolve(&ResolveOptions {
            env,
            ..Default::default()
        })
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(client.builder().reason, Reason::DockerHost);
    assert!(
        client.info().await.unwrap().is_some(),
        "DOCKER_HOST={} is Docker 26",
        d26.host
    );

    // A docker context named in config.json.
    let cfg = dir.path().join(".docker");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"engine20"));
    let meta = cfg.join("contexts/meta").join(hash);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"currentContext":"engine20"}"#).unwrap();
    let meta_json = format!(
        r#"{{"Name":"engine20","Endpoints":{{"docker":{{"Host":"{}"}}}}}}"#,
        d20.host
    );
    std::fs::write(meta.join("meta.json"), meta_json).unwrap();
    let env = Env::empty().home(dir.path());
    let client = Client::connect(
        &resolve(&ResolveOptions {
            env: env.clone(),
            ..Default::default()
        })
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        client.builder().reason,
        Reason::DockerContext {
            name: "engine20".into()
        }
    );
    assert_eq!(
        client.info().await.unwrap(),
        None,
        "context engine20 is Docker 20.10"
    );

    // A buildx builder (docker driver) selected by the store's `current`.
    let store = cfg.join("buildx");
    std::fs::create_dir_all(store.join("instances")).unwrap();
    let builder = format!(
        r#"{{"Name":"b26","Driver":"docker","Nodes":[{{"Name":"b260","Endpoint":"{}"}}]}}"#,
        d26.host
    );
    std::fs::write(store.join("instances/b26"), builder).unwrap();
    std::fs::write(
        store.join("current"),
        r#"{"Key":"engine20","Name":"b26","Global":false}"#,
    )
    .unwrap();
    let resolved = resolve(&ResolveOptions {
        env,
        ..Default::default()
    })
    .unwrap();
    let client = Client::connect(&resolved).await.unwrap();
    assert!(
        client
            .builder()
            .to_string()
            .contains("(buildx builder b26 from "),
        "{}",
        client.builder()
    );
    assert!(client.info().await.unwrap().is_some());
}

/// The direct buildkitd transports against the in-process fake (transport level only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildkitd_transports_unix_tcp_and_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("buildkitd.sock");
    let unix = fake_control(Listen::unix(&sock), SolveBehaviour::Succeed);
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let _tcp = fake_control(Listen::Tcp(tcp), SolveBehaviour::Succeed);
    let pki = Pki::new(&[b"h2"]);
    let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = tls.local_addr().unwrap().port();
    let _tls = fake_control(
        Listen::Tls(tls, pki.server.clone()),
        SolveBehaviour::Succeed,
    );

    let mtls = TlsOptions::from_dir(pki.client_dir.path());
    let cases = [
        (format!("unix://{}", sock.display()), TlsOptions::default()),
        (format!("tcp://127.0.0.1:{tcp_port}"), TlsOptions::default()),
        (format!("tcp://127.0.0.1:{tls_port}"), mtls.clone()),
    ];
    for (addr, tls) in cases {
        let resolved = resolve(&ResolveOptions {
            addr: Some(addr.clone()),
            tls,
            ..Default::default()
        })
        .unwrap();
        let client = Client::connect(&resolved)
            .await
            .unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert_eq!(client.workers()[0].id, "fake-worker", "{addr}");
        assert_eq!(client.info().await.unwrap().unwrap().version, "v0.0.0-fake");
        let report = client
            .solve_and_wait(Default::default(), Default::default())
            .await;
        assert!(report.result.is_ok(), "{addr}: {:?}", report.result);
    }
    // What a solve asks of the daemon: the ref, the Definition, no exporter, no session, and
    // `Internal`, so BuildKit ≥ v0.11 keeps no build-history record per check (which cost Docker 26
    // ~13 ms per Solve, and would flood `docker buildx history` with one build per check).
    let requests = unix.solves.lock().unwrap().clone();
    let [request] = &requests[..] else {
        panic!("one solve over the unix socket: {requests:#?}")
    };
    assert_eq!(request.r#ref.len(), 25, "{request:#?}");
    assert!(request.definition.is_some(), "{request:#?}");
    assert!(request.internal, "{request:#?}");
    assert!(
        request.exporter.is_empty() && request.session.is_empty() && request.frontend.is_empty(),
        "{request:#?}"
    );

    // A CA that did not sign the server's certificate is refused; so is a client without a certificate.
    let other = Pki::new(&[b"h2"]);
    let wrong_ca = TlsOptions {
        ca_cert: Some(other.file("ca.pem")),
        ..mtls.clone()
    };
    let no_cert = TlsOptions {
        ca_cert: mtls.ca_cert.clone(),
        ..TlsOptions::default()
    };
    for (what, tls) in [("wrong ca", wrong_ca), ("no client cert", no_cert)] {
        let addr = format!("tcp://127.0.0.1:{tls_port}");
        let resolved = resolve(&ResolveOptions {
            addr: Some(addr),
            tls,
            ..Default::default()
        })
        .unwrap();
        let (msg, took) = connect_err(&resolved, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(6), "{what}: {took:?}");
        assert!(msg.contains("(tls) (--addr flag): "), "{what}: {msg}");
        eprintln!("{what}: {msg}");
    }
    // A missing certificate file is named.
    let missing = TlsOptions {
        cert: Some(dir.path().join("nope.pem")),
        ..mtls
    };
    let resolved = resolve(&ResolveOptions {
        addr: Some(format!("tcp://127.0.0.1:{tls_port}")),
        tls: missing,
        ..Default::default()
    })
    .unwrap();
    let (msg, _) = connect_err(&resolved, Duration::from_secs(5)).await;
    assert!(
        msg.contains("read tls client certificate ") && msg.contains("nope.pem: No such file"),
        "{msg}"
    );
}

/// A real Docker engine behind mutual TLS on 127.0.0.1 (a TLS-terminating proxy in front of its socket):
/// DOCKER_HOST + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, then `/grpc` over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_engine_over_mutual_tls() {
    let engine = Engine::docker20();
    let socket = engine.host.strip_prefix("unix://").unwrap().to_owned();
    let pki = Pki::new(&[b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _proxy = proxy_to_unix(
        Listen::Tls(listener, pki.server.clone()),
        std::path::Path::new(&socket),
    );

    let env = |cert_dir: &std::path::Path| {
        Env::empty()
            .var("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
            .var("DOCKER_TLS_VERIFY", "1")
            .var("DOCKER_CERT_PATH", cert_dir.to_str().unwrap())
    };
    let resolved = resolve(&ResolveOptions {
        env: env(pki.client_dir.path()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        resolved.to_string(),
        format!("docker engine at tcp://127.0.0.1:{port} (tls) (DOCKER_HOST)")
    );
    let client = Client::connect(&resolved)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let report = solve(
        &client,
        &sh(&format!("echo over-tls-{}", crate::common::nonce())),
    )
    .await;
    assert_ok(&engine, &report);

    let other = Pki::new(&[b"http/1.1"]);
    let resolved = resolve(&ResolveOptions {
        env: env(other.client_dir.path()),
        ..Default::default()
    })
    .unwrap();
    let (msg, took) = connect_err(&resolved, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(msg.contains("tls handshake with tcp://127.0.0.1:"), "{msg}");
    assert!(msg.contains("certificate"), "{msg}");
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `docker-container://NAME` spawns `docker exec -i NAME buildctl dial-stdio` and speaks gRPC over its
/// stdio. No BuildKit container image exists here, so a stand-in `docker` bridges stdio to the fake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_container_speaks_grpc_over_dial_stdio() {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("busybox is needed as the stdio bridge (apt-get install busybox-static; scripts/builders.sh installs it)");
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _fake = fake_control(Listen::Tcp(listener), SolveBehaviour::Succeed);
    let args_file = dir.path().join("args");
    let docker = script(
        dir.path(),
        "docker",
        &format!(
            "echo \"$@\" > {}\nexec {busybox} nc 127.0.0.1 {port}",
            args_file.display()
        ),
    );
    let options = ResolveOptions {
        addr: Some("docker-container://my-buildkitd?context=ci".into()),
        docker_cli: Some(docker),
        ..Default::default()
    };
    let client = Client::connect(&resolve(&options).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(client.workers()[0].id, "fake-worker");
    assert_eq!(
        std::fs::read_to_string(&args_file).unwrap().trim(),
        "--context ci exec -i my-buildkitd buildctl dial-stdio"
    );

    let failing = script(
        dir.path(),
        "docker-missing",
        "echo 'Error: No such container: my-buildkitd' >&2\nexit 1",
    );
    let options = ResolveOptions {
        docker_cli: Some(failing),
        ..options
    };
    let (msg, took) = connect_err(&resolve(&options).unwrap(), Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(msg.contains("No such container: my-buildkitd"), "{msg}");
    assert!(
        msg.contains("exec -i my-buildkitd buildctl dial-stdio"),
        "{msg}"
    );
    let _ = AttemptError::Timeout(Duration::ZERO);
}
