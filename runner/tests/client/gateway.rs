//! The gateway client (`LLBBridge`) on both real engines: gateway builds and their capabilities,
//! image configs (gateway and Docker image-inspect) of an image made offline with every config
//! field, the config applied to checks and `run` steps like `docker run`, `dockerfile.v0` frontend
//! solves with LLB inputs (target, build-arg, filename) and an exec on top of the result, broken
//! Dockerfiles, and the missing-network hint.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use buildtest::check::{Check, CheckReport, Verdict, cmd, probe_state};
use buildtest::client::gateway::{
    ConfigSource, FrontendRequest, GatewayError, GatewayOptions, IMAGE_CONFIG_KEY,
};
use buildtest::client::{Client, SolveError, SolveOptions, SolveReport};
use buildtest::llb::{FileAction, ImageConfig, NetMode, Platform, State};
use buildtest::proto::frontend::PingRequest;
use buildtest::proto::frontend::llb_bridge_client::LlbBridgeClient;
use buildtest::proto::pb;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::common::{BUSYBOX, Engine, nonce};

/// The image made by [`configured_image`] (its own tag: `scripts/builders.sh up` builds
/// `buildtest/configured:latest` with other values, which `tests/metadata.rs` asserts).
const CONFIGURED: &str = "buildtest/gateway-configured:latest";

/// The PATH [`CONFIGURED`] sets.
const CONFIGURED_PATH: &str =
    "/opt/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Engines on which [`configured_image`] already ran in this process.
static CONFIGURED_ON: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Makes [`CONFIGURED`] on `engine` (once per process): `docker commit` of a container of the
/// busybox image with `ENV`, `WORKDIR`, `USER`, `ENTRYPOINT`, `CMD`, `EXPOSE`, `VOLUME` and
/// `LABEL` changes (Docker 20.10's `commit` refuses `STOPSIGNAL`). Offline: no registry, no build. `WORKDIR /srv/app` does not exist in
/// the image's filesystem, as with `docker commit --change`, so the exec must create it.
fn configured_image(engine: &Engine) -> &'static str {
    let mut done = CONFIGURED_ON.lock().unwrap_or_else(|e| e.into_inner());
    if done.contains(&engine.host) {
        return CONFIGURED;
    }
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("/usr/bin/docker")
            .arg("-H")
            .arg(&engine.host)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{}: run docker {args:?}: {e}", engine.name));
        assert!(
            out.status.success(),
            "{}: docker {args:?} failed: {}",
            engine.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let container = format!("buildtest-gateway-cfg-{}", nonce());
    docker(&["create", "--name", &container, BUSYBOX]);
    let path = format!("ENV PATH={CONFIGURED_PATH}");
    let changes = [
        path.as_str(),
        "ENV GREETING=hello",
        "WORKDIR /srv/app",
        "USER nobody",
        r#"ENTRYPOINT ["/bin/sh", "-c"]"#,
        r#"CMD ["echo hi"]"#,
        "EXPOSE 8080/tcp 53/udp",
        "VOLUME /data",
        "LABEL org.example.team=qa",
    ];
    let mut args = vec!["commit"];
    for change in &changes {
        args.extend(["--change", change]);
    }
    args.extend([container.as_str(), CONFIGURED]);
    docker(&args);
    docker(&["rm", &container]);
    done.insert(engine.host.clone());
    CONFIGURED
}

/// Every field [`configured_image`] sets.
fn assert_configured(engine: &Engine, config: &ImageConfig) {
    let name = engine.name;
    assert_eq!(
        config.env,
        [
            format!("PATH={CONFIGURED_PATH}"),
            "GREETING=hello".to_owned()
        ],
        "{name}"
    );
    assert_eq!(config.working_dir, "/srv/app", "{name}");
    assert_eq!(config.user, "nobody", "{name}");
    assert_eq!(config.entrypoint, ["/bin/sh", "-c"], "{name}");
    assert_eq!(config.cmd, ["echo hi"], "{name}");
    assert_eq!(
        config.exposed_ports.iter().collect::<Vec<_>>(),
        ["53/udp", "8080/tcp"],
        "{name}"
    );
    assert_eq!(
        config.volumes.iter().collect::<Vec<_>>(),
        ["/data"],
        "{name}"
    );
    assert_eq!(
        config.labels.iter().collect::<Vec<_>>(),
        [(&"org.example.team".to_owned(), &"qa".to_owned())],
        "{name}"
    );
}

fn linux() -> Platform {
    Platform::linux_amd64()
}

/// A state holding one file, as a frontend input.
fn file_input(path: &str, text: &str) -> pb::Definition {
    State::scratch()
        .file(FileAction::mkfile(path, 0o644, text.to_owned()))
        .marshal(&linux())
        .unwrap()
        .into_proto()
}

/// Solve with a generous timeout; `checks` are the vertices under test.
async fn solve(client: &Client, def: pb::Definition, checks: Vec<String>) -> SolveReport {
    let options = SolveOptions {
        check_vertices: checks,
        timeout: Some(Duration::from_secs(120)),
        ..SolveOptions::default()
    };
    client.solve_and_wait(def, options).await
}

async fn caps_and_finish(engine: Engine) {
    let client = engine.connect().await;
    let build = client.gateway_build().await.unwrap();
    for cap in [
        "return",
        "proto.refarray",
        "reference.output",
        "frontend.inputs",
        "resolveimage",
        "resolveimage.resolvemode",
        "readfile",
        "gateway.solve.evaluate",
    ] {
        assert!(
            build.caps().has(cap),
            "{}: no {cap} in {:?}",
            engine.name,
            build.caps()
        );
    }
    assert!(
        build.caps().llb.contains("exec.meta.base"),
        "{}",
        engine.name
    );
    assert_eq!(build.ping().await.unwrap(), *build.caps());
    build.finish().await.unwrap();

    // Ending with an error ends the build too.
    let build = client.gateway_build().await.unwrap();
    build.fail("the caller gave up").await.unwrap();
}

/// `solve_and_read_file`: a plain definition's result read back (how the harness takes a probe the
/// builder compiled); a file that is not there and a failing step are errors.
async fn reads_a_file_of_a_solved_definition(engine: Engine) {
    let client = engine.connect().await;
    let text = format!("read back {}\n", nonce());
    let build = client.gateway_build().await.unwrap();
    let made = State::image(BUSYBOX)
        .run([
            "sh",
            "-c",
            &format!("printf '%s' '{}' > /out/f", text.trim_end()),
        ])
        .network(NetMode::None)
        .mount("/out", State::scratch())
        .get_mount("/out")
        .marshal(&linux())
        .unwrap()
        .into_proto();
    let got = build.solve_and_read_file(made, "/f").await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        text.trim_end(),
        "{}",
        engine.name
    );
    let missing = build
        .solve_and_read_file(file_input("/a", "a"), "/not-there")
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("ReadFile"),
        "{}: {missing}",
        engine.name
    );
    let failing = State::image(BUSYBOX)
        .run(["sh", "-c", "echo broken >&2; exit 3"])
        .network(NetMode::None)
        .root()
        .marshal(&linux())
        .unwrap()
        .into_proto();
    let e = build.solve_and_read_file(failing, "/x").await.unwrap_err();
    assert!(
        e.to_string().contains("exit code: 3"),
        "{}: {e}",
        engine.name
    );
    build.finish().await.unwrap();
}

/// A ping of build `build_ref`, by hand.
async fn raw_ping(client: &Client, build_ref: &str) -> Result<(), tonic::Status> {
    let mut bridge = LlbBridgeClient::new(client.channel());
    let mut request = tonic::Request::new(PingRequest {});
    request
        .metadata_mut()
        .insert("buildkit-controlapi-buildid", build_ref.parse().unwrap());
    bridge.ping(request).await.map(drop)
}

async fn dropped_build_is_forgotten(engine: Engine) {
    let client = engine.connect().await;
    let build_ref = format!("buildtest-gw-{}", nonce());
    let build = client
        .gateway_build_with(GatewayOptions {
            build_ref: Some(build_ref.clone()),
            ..GatewayOptions::default()
        })
        .await
        .unwrap();
    raw_ping(&client, &build_ref).await.unwrap();
    drop(build);
    // The daemon sees the Solve cancelled and unregisters the build: a call naming it waits the
    // daemon's 3 s for a registration and then fails, instead of reaching a build stuck forever.
    let started = Instant::now();
    let mut outcome = raw_ping(&client, &build_ref).await;
    // The cancellation travels asynchronously; allow one retry.
    if outcome.is_ok() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        outcome = raw_ping(&client, &build_ref).await;
    }
    let status = outcome.expect_err("the dropped build still answers");
    eprintln!(
        "{}: ping after drop: {:?} {:?} after {:?}",
        engine.name,
        status.code(),
        status.message(),
        started.elapsed()
    );
    assert!(
        status.message().contains("no such job"),
        "{}: {status:?}",
        engine.name
    );

    // The daemon keeps the cancelled job's id for a while (observed ~10 s on both engines), then
    // releases it. Meanwhile a build reusing the id fails at once, saying why (no 3 s wait, no
    // hang), and afterwards it works: nothing of the dropped build is left behind.
    let released = Instant::now() + Duration::from_secs(30);
    loop {
        let started = Instant::now();
        let again = client
            .gateway_build_with(GatewayOptions {
                build_ref: Some(build_ref.clone()),
                ..GatewayOptions::default()
            })
            .await;
        match again {
            Ok(build) => {
                build.finish().await.unwrap();
                break;
            }
            Err(e) => {
                assert!(
                    matches!(&e, GatewayError::BuildEnded { reason, .. } if reason.contains("exists")),
                    "{}: {e:?}",
                    engine.name
                );
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "{}",
                    engine.name
                );
                assert!(
                    Instant::now() < released,
                    "{}: the dropped build's id is still taken after 30 s",
                    engine.name
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn resolves_every_config_field(engine: Engine) {
    let client = engine.connect().await;
    let image = configured_image(&engine);
    let resolved = client.resolve_image_config(image, &linux()).await.unwrap();
    assert_eq!(
        resolved.reference,
        "docker.io/buildtest/gateway-configured:latest"
    );
    assert_eq!(resolved.source, ConfigSource::Gateway, "{}", engine.name);
    // Both graphdriver engines answer local images without a digest.
    assert_eq!(resolved.digest, None, "{}", engine.name);
    assert_configured(&engine, &resolved.config);

    // The Docker engine's image-inspect API gives the same config.
    let inspected = client.docker_image_config(image).await.unwrap().unwrap();
    assert_eq!(inspected.source, ConfigSource::DockerEngine);
    assert_configured(&engine, &inspected.config);

    // Several images through one build.
    let build = client.gateway_build().await.unwrap();
    let busybox = build
        .resolve_image_config(BUSYBOX, &linux(), buildtest::llb::ResolveMode::PreferLocal)
        .await
        .unwrap();
    assert_eq!(busybox.config.cmd, ["/bin/sh"], "{}", engine.name);
    assert_eq!(busybox.config.user, "", "{}", engine.name);
    let again = build
        .resolve_image_config(image, &linux(), buildtest::llb::ResolveMode::Default)
        .await
        .unwrap();
    assert_configured(&engine, &again.config);
    build.finish().await.unwrap();
}

async fn missing_image_is_named(engine: Engine) {
    let client = engine.connect().await;
    let missing = format!("buildtest/no-such-image:{}", nonce());
    let e = client
        .resolve_image_config(&missing, &linux())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GatewayError::ImageNotFound { image, .. } if image.ends_with(&missing)),
        "{}: {e:?}",
        engine.name
    );
    assert!(e.to_string().contains(&missing), "{e}");
    assert!(
        client
            .docker_image_config(&missing)
            .await
            .unwrap()
            .is_none()
    );
}

/// Runs `check` on `input` as a check exec; returns the solve report and the probe's report.
async fn run_check(
    client: &Client,
    input: &State,
    check: Check,
) -> (SolveReport, Option<CheckReport>) {
    let exec = check.to_exec(input, &probe_state()).unwrap();
    let def = exec.marshal(&linux()).unwrap();
    let digest = def.head().unwrap().to_owned();
    let report = solve(client, def.into_proto(), vec![digest.clone()]).await;
    let parsed = report
        .vertex(&digest)
        .and_then(|v| CheckReport::parse(&v.stderr));
    (report, parsed)
}

async fn config_applies_like_docker_run(engine: Engine) {
    let client = engine.connect().await;
    let image = configured_image(&engine);
    let resolved = client.resolve_image_config(image, &linux()).await.unwrap();
    let bare = State::image(image);
    let configured = bare.with_image_config(&resolved.config);
    let n = nonce();

    let passes = [
        cmd(["pwd"]).env("NONCE", &n).stdout_equals("/srv/app\n"),
        cmd(["id", "-un"])
            .env("NONCE", &n)
            .stdout_equals("nobody\n"),
        cmd(["sh", "-c", "echo \"$GREETING:$PATH\""])
            .env("NONCE", &n)
            .stdout_equals(format!("hello:{CONFIGURED_PATH}\n")),
        // A check's own settings win.
        cmd(["sh", "-c", "echo \"$(id -un) $(pwd) $GREETING\""])
            .env("NONCE", &n)
            .env("GREETING", "mine")
            .cwd("/tmp")
            .user("root")
            .stdout_equals("root /tmp mine\n"),
    ];
    for check in passes {
        let check = Check::from(check);
        let (report, parsed) = run_check(&client, &configured, check.clone()).await;
        assert!(
            report.result.is_ok(),
            "{}: {}: {:?}",
            engine.name,
            check.label(),
            report.result
        );
        let parsed = parsed.unwrap_or_else(|| panic!("{}: no probe report", engine.name));
        assert_eq!(parsed.verdict, Verdict::Pass, "{}: {parsed:?}", engine.name);
    }
    // Without the config the same image runs as root in `/`: the checks above can fail.
    let (report, parsed) = run_check(
        &client,
        &bare,
        Check::from(
            cmd(["id", "-un"])
                .env("NONCE", &n)
                .stdout_equals("nobody\n"),
        ),
    )
    .await;
    assert!(
        report.result.is_err(),
        "{}: passed without the config",
        engine.name
    );
    let parsed = parsed.unwrap();
    assert_eq!(parsed.verdict, Verdict::Fail, "{}", engine.name);
    let actual = parsed.failures().next().and_then(|a| a.actual.clone());
    assert!(
        actual.as_deref().is_some_and(|a| a.contains("root")),
        "{}: {actual:?}",
        engine.name
    );

    // `run` steps inherit the config too (and keep it for the steps after them).
    let script = format!(
        "test \"$(id -un)\" = nobody && test \"$(pwd)\" = /srv/app && test \"$GREETING\" = hello && echo {n}"
    );
    let step = configured
        .run(["sh", "-c", script.as_str()])
        .network(NetMode::None)
        .root();
    let def = step.marshal(&linux()).unwrap().into_proto();
    let report = solve(&client, def, Vec::new()).await;
    assert!(
        report.result.is_ok(),
        "{}: {:?}",
        engine.name,
        report.result
    );
    let after = step
        .run(["sh", "-c", script.as_str()])
        .network(NetMode::None)
        .root();
    let report = solve(
        &client,
        after.marshal(&linux()).unwrap().into_proto(),
        Vec::new(),
    )
    .await;
    assert!(
        report.result.is_ok(),
        "{}: {:?}",
        engine.name,
        report.result
    );
    let unconfigured = bare
        .run(["sh", "-c", script.as_str()])
        .network(NetMode::None)
        .root();
    let report = solve(
        &client,
        unconfigured.marshal(&linux()).unwrap().into_proto(),
        Vec::new(),
    )
    .await;
    assert!(
        report.result.is_err(),
        "{}: passed without the config",
        engine.name
    );
}

const TWO_STAGES: &str = "\
FROM buildtest/busybox:latest AS a
ARG WHO=nobody-set
RUN echo a > /stage-a && echo \"$WHO\" > /who
ENV STAGE=a
WORKDIR /work
FROM a AS b
RUN echo b > /stage-b
USER nobody
LABEL stage=b
EXPOSE 8080
";

/// `def` with an exec of `args` on its result (root mount, no network) and a new terminal op;
/// returns it and the exec's digest. Op bytes of `def` are kept as they are.
fn exec_on(def: &pb::Definition, args: &[&str]) -> (pb::Definition, String) {
    let mut def = def.clone();
    let terminal = pb::Op::decode(def.def.pop().unwrap()).unwrap();
    let result = terminal.inputs[0].clone();
    let mut exec = pb::ExecOp {
        meta: Some(pb::Meta {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: vec!["PATH=/bin:/usr/bin".to_owned()],
            cwd: "/".to_owned(),
            ..pb::Meta::default()
        }),
        mounts: vec![pb::Mount {
            input: 0,
            dest: "/".to_owned(),
            output: 0,
            ..pb::Mount::default()
        }],
        ..pb::ExecOp::default()
    };
    exec.set_network(pb::NetMode::None);
    let op = pb::Op {
        inputs: vec![result],
        op: Some(pb::op::Op::Exec(exec)),
        platform: Some(pb::Platform {
            architecture: "amd64".to_owned(),
            os: "linux".to_owned(),
            ..pb::Platform::default()
        }),
        constraints: Some(pb::WorkerConstraints::default()),
    };
    let bytes = op.encode_to_vec();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    def.def.push(bytes.into());
    let terminal = pb::Op {
        inputs: vec![pb::Input {
            digest: digest.clone(),
            index: 0,
        }],
        ..pb::Op::default()
    };
    def.def.push(terminal.encode_to_vec().into());
    let mut caps = std::collections::BTreeMap::new();
    caps.insert("exec.meta.base".to_owned(), true);
    caps.insert("exec.meta.network".to_owned(), true);
    def.metadata.insert(
        digest.clone(),
        pb::OpMetadata {
            caps,
            ..pb::OpMetadata::default()
        },
    );
    (def, digest)
}

async fn dockerfile_stages_and_checks_on_top(engine: Engine) {
    let client = engine.connect().await;
    let build = client.gateway_build().await.unwrap();
    let dockerfile = file_input("/build.Dockerfile", TWO_STAGES);
    let request = |target: Option<&str>| {
        let mut request = FrontendRequest::dockerfile()
            .filename("build.Dockerfile")
            .build_arg("WHO", "tester")
            .without_network()
            .input("dockerfile", dockerfile.clone())
            .input("context", dockerfile.clone());
        if let Some(target) = target {
            request = request.target(target);
        }
        request
    };

    let a = build.frontend_solve(request(Some("a"))).await.unwrap();
    let config = a.config.clone().unwrap();
    assert!(a.metadata.contains_key(IMAGE_CONFIG_KEY));
    assert_eq!(
        config.env_var("STAGE").as_deref(),
        Some("a"),
        "{}",
        engine.name
    );
    assert_eq!(config.working_dir, "/work", "{}", engine.name);
    assert_eq!(config.user, "", "{}", engine.name);
    assert_eq!(
        build.read_file(&a.ref_id, "/who").await.unwrap(),
        b"tester\n"
    );

    let b = build.frontend_solve(request(None)).await.unwrap();
    let config = b.config.clone().unwrap();
    assert_eq!(config.user, "nobody", "{}", engine.name);
    assert_eq!(config.labels.get("stage").map(String::as_str), Some("b"));
    assert_eq!(
        config.exposed_ports.iter().collect::<Vec<_>>(),
        ["8080/tcp"]
    );
    build.finish().await.unwrap();

    // The same Dockerfile and context again, in a new build: the same definition, every step
    // answered from the cache.
    let build = client.gateway_build().await.unwrap();
    let again = build.frontend_solve(request(None)).await.unwrap();
    assert_eq!(again.definition.def, b.definition.def, "{}", engine.name);
    // The build's Status stream may trail the answer (Docker 20.10): wait for both steps.
    let deadline = Instant::now() + Duration::from_secs(5);
    let steps = loop {
        let steps: Vec<_> = build
            .vertices()
            .into_iter()
            .filter(|v| v.name.contains("RUN ") && (v.cached || v.completed.is_some()))
            .collect();
        if steps.len() >= 2 || Instant::now() > deadline {
            break steps;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(steps.len(), 2, "{}: {steps:?}", engine.name);
    assert!(steps.iter().all(|v| v.cached), "{}: {steps:?}", engine.name);
    build.finish().await.unwrap();

    // Execs on top of the returned definitions, in separate Control.Solves: target `a` has
    // stage a's file and not stage b's; the final stage has both.
    let n = nonce();
    let on_a = format!("test \"$(cat /stage-a)\" = a && test ! -e /stage-b && echo {n}");
    let (def, digest) = exec_on(&a.definition, &["/bin/sh", "-c", &on_a]);
    let report = solve(&client, def, vec![digest]).await;
    assert!(
        report.result.is_ok(),
        "{}: {:?}",
        engine.name,
        report.result
    );
    let on_b = format!("test -e /stage-b && echo {n}");
    let (def, digest) = exec_on(&a.definition, &["/bin/sh", "-c", &on_b]);
    let report = solve(&client, def, vec![digest.clone()]).await;
    assert!(
        matches!(&report.result, Err(SolveError::ExecFailed { vertex, exit_code: Some(1), .. }) if *vertex == digest),
        "{}: {:?}",
        engine.name,
        report.result
    );
    let (def, digest) = exec_on(&b.definition, &["/bin/sh", "-c", &on_b]);
    let report = solve(&client, def, vec![digest]).await;
    assert!(
        report.result.is_ok(),
        "{}: {:?}",
        engine.name,
        report.result
    );
}

async fn broken_dockerfiles_name_the_instruction(engine: Engine) {
    let client = engine.connect().await;
    let build = client.gateway_build().await.unwrap();
    let n = nonce();
    let text = format!(
        "FROM buildtest/busybox:latest\nRUN echo {n} ok\nRUN echo {n} to-stdout && echo to-stderr >&2 && exit 3\n"
    );
    let input = file_input("/Dockerfile", &text);
    let request = FrontendRequest::dockerfile()
        .without_network()
        .input("dockerfile", input.clone())
        .input("context", input);
    let e = build.frontend_solve(request).await.unwrap_err();
    let GatewayError::Frontend(failure) = &e else {
        panic!("{}: {e:?}", engine.name);
    };
    let instruction = failure.instruction.as_deref().unwrap_or_default();
    let (message, log_tail) = (&failure.message, &failure.log_tail);
    assert!(
        instruction.contains(&format!("RUN echo {n} to-stdout")),
        "{}: {e:?}",
        engine.name
    );
    assert!(message.contains("exit code: 3"), "{}: {e:?}", engine.name);
    assert!(
        log_tail.contains(&format!("{n} to-stdout")),
        "{}: {e:?}",
        engine.name
    );
    assert!(log_tail.contains("to-stderr"), "{}: {e:?}", engine.name);
    eprintln!("{}: {e}", engine.name);

    // A parse error names the instruction in BuildKit's message (v0.13.2 also attaches the source).
    let input = file_input("/Dockerfile", "FROM buildtest/busybox:latest\nFOO bar\n");
    let request = FrontendRequest::dockerfile()
        .input("dockerfile", input.clone())
        .input("context", input);
    let e = build.frontend_solve(request).await.unwrap_err();
    assert!(
        matches!(&e, GatewayError::Frontend(_)) && e.to_string().contains("FOO"),
        "{}: {e:?}",
        engine.name
    );
    eprintln!("{}: {e}", engine.name);

    // Without network options, a RUN step on these bridge-less engines says what to do.
    let input = file_input(
        "/Dockerfile",
        &format!("FROM buildtest/busybox:latest\nRUN echo {n}\n"),
    );
    let request = FrontendRequest::dockerfile()
        .input("dockerfile", input.clone())
        .input("context", input);
    let e = build.frontend_solve(request).await.unwrap_err();
    assert!(
        e.to_string().contains("network bridge not found")
            && e.to_string().contains("force-network-mode=none"),
        "{}: {e}",
        engine.name
    );

    // An empty (scratch) input is refused before it reaches the daemon (it crashes v0.8.3).
    let request = FrontendRequest::dockerfile()
        .input("dockerfile", file_input("/Dockerfile", "FROM scratch\n"))
        .input(
            "context",
            State::scratch().marshal(&linux()).unwrap().into_proto(),
        );
    let e = build.frontend_solve(request).await.unwrap_err();
    assert!(
        matches!(&e, GatewayError::EmptyInput { key, .. } if key == "context"),
        "{e:?}"
    );
    build.finish().await.unwrap();
}

async fn missing_network_says_what_to_do(engine: Engine) {
    let client = engine.connect().await;
    let step = State::image(BUSYBOX)
        .run(["echo".to_owned(), nonce()])
        .root();
    let report = solve(
        &client,
        step.marshal(&linux()).unwrap().into_proto(),
        Vec::new(),
    )
    .await;
    let e = report.result.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("network bridge not found") && text.contains(".network(NetMode::None)"),
        "{}: {text}",
        engine.name
    );
}

/// `n` distinct passing command checks on busybox (distinct env values, so each is one new exec).
fn many_checks(n: usize, run: &str) -> Vec<(pb::Definition, String)> {
    (0..n)
        .map(|i| {
            let check = Check::from(
                cmd(["sh", "-c", "echo $I"])
                    .env("I", i.to_string())
                    .env("RUN", run)
                    .stdout_equals(format!("{i}\n")),
            );
            let exec = check
                .to_exec(&State::image(BUSYBOX), &probe_state())
                .unwrap();
            let def = exec.marshal(&linux()).unwrap();
            let digest = def.head().unwrap().to_owned();
            (def.into_proto(), digest)
        })
        .collect()
}

/// Checks as `LLBBridge.Solve{Evaluate}` inside one gateway build versus one `Control.Solve` each
/// (both concurrent, 16 at a time), two rounds of new checks, each run twice (first run, then
/// cached); every check must pass, and its probe report must be readable from the build's Status
/// stream. Prints the timings (no speed is asserted: a debug build on a shared machine).
async fn checks_inside_one_gateway_build(engine: Engine) {
    const N: usize = 50;
    let client = engine.connect().await;
    let build = std::sync::Arc::new(client.gateway_build().await.unwrap());

    // A failing check is classified like a Control.Solve failure.
    let failing = Check::from(cmd(["sh", "-c", "exit 4"]).env("RUN", nonce()));
    let exec = failing
        .to_exec(&State::image(BUSYBOX), &probe_state())
        .unwrap();
    let def = exec.marshal(&linux()).unwrap();
    let digest = def.head().unwrap().to_owned();
    let e = build
        .evaluate(def.into_proto(), std::slice::from_ref(&digest))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SolveError::ExecFailed { vertex, .. } if *vertex == digest),
        "{}: {e:?}",
        engine.name
    );

    for round in ["round 1", "round 2"] {
        let run = format!("{}-{}", nonce(), round.len());
        let checks = many_checks(N, &run);
        // The same checks again for the Control.Solve path, distinct from the gateway's.
        let solo = many_checks(N, &format!("{run}-solo"));

        for pass in 0..2 {
            let started = Instant::now();
            let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
            let mut set = tokio::task::JoinSet::new();
            for (def, digest) in checks.clone() {
                let build = std::sync::Arc::clone(&build);
                let permits = std::sync::Arc::clone(&permits);
                set.spawn(async move {
                    let _permit = permits.acquire_owned().await.unwrap();
                    build
                        .evaluate(def, std::slice::from_ref(&digest))
                        .await
                        .map(|()| digest)
                });
            }
            let mut digests = Vec::new();
            while let Some(done) = set.join_next().await {
                digests.push(done.unwrap().unwrap());
            }
            let gateway = started.elapsed();
            for digest in &digests {
                let vertex = build
                    .vertex_done(digest, Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|| panic!("{}: vertex {digest} never done", engine.name));
                if pass == 0 {
                    let report = CheckReport::parse(&vertex.stderr).unwrap_or_else(|| {
                        panic!("{}: no probe report for {digest}: {vertex:?}", engine.name)
                    });
                    assert_eq!(report.verdict, Verdict::Pass, "{}", engine.name);
                }
            }

            let started = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for (def, digest) in solo.clone() {
                let client = client.clone();
                set.spawn(async move { solve(&client, def, vec![digest]).await });
            }
            while let Some(done) = set.join_next().await {
                let report = done.unwrap();
                assert!(
                    report.result.is_ok(),
                    "{}: {:?}",
                    engine.name,
                    report.result
                );
            }
            let control = started.elapsed();
            eprintln!(
                "{}: {N} checks, {round}, {}: gateway evaluate {gateway:?}, Control.Solve each {control:?}",
                engine.name,
                if pass == 0 {
                    "first run"
                } else {
                    "rerun (cached)"
                }
            );
        }
    }
    std::sync::Arc::into_inner(build)
        .unwrap()
        .finish()
        .await
        .unwrap();
}

/// Two definitions failing at the same time in one build, one in its check and one in its input,
/// and a passing one: each failure is classified by its own vertices (never the other's), and
/// each report holds its own definition's vertices only, with the failing vertex's log.
async fn concurrent_failures_are_each_their_own(engine: Engine) {
    let client = engine.connect().await;
    let build = client.gateway_build().await.unwrap();
    let run = nonce();
    let check = |input: &State, args: &[&str]| {
        let exec = Check::from(cmd(args.iter().copied()).env("RUN", run.clone()))
            .to_exec(input, &probe_state())
            .unwrap();
        let def = exec.marshal(&linux()).unwrap();
        let digest = def.head().unwrap().to_owned();
        (def.into_proto(), digest)
    };
    let busybox = State::image(BUSYBOX);
    let broken = busybox
        .run(["sh", "-c", &format!("echo broken-input-{run}; exit 5")])
        .network(NetMode::None)
        .root();
    let broken_step = broken.marshal(&linux()).unwrap().head().unwrap().to_owned();
    let (failing, failing_digest) = check(&busybox, &["sh", "-c", "echo own-failure >&2; exit 4"]);
    let (on_broken, on_broken_digest) = check(&broken, &["true"]);
    let (passing, passing_digest) = check(&busybox, &["true"]);
    let (a, b, c) = tokio::join!(
        build.evaluate_report(
            failing,
            std::slice::from_ref(&failing_digest),
            Vec::new(),
            0
        ),
        build.evaluate_report(
            on_broken,
            std::slice::from_ref(&on_broken_digest),
            Vec::new(),
            0
        ),
        build.evaluate_report(
            passing,
            std::slice::from_ref(&passing_digest),
            Vec::new(),
            0
        ),
    );
    assert!(
        matches!(&a.result, Err(SolveError::ExecFailed { vertex, .. }) if *vertex == failing_digest),
        "{}: {:?}",
        engine.name,
        a.result
    );
    assert!(
        String::from_utf8_lossy(&a.vertex(&failing_digest).unwrap().stderr).contains("own-failure"),
        "{}: {a:?}",
        engine.name
    );
    assert!(
        matches!(&b.result, Err(SolveError::InputFailed { vertex, .. }) if *vertex == broken_step),
        "{}: {:?}",
        engine.name,
        b.result
    );
    assert!(
        String::from_utf8_lossy(&b.vertex(&broken_step).unwrap().stdout).contains("broken-input-"),
        "{}: {b:?}",
        engine.name
    );
    assert!(c.result.is_ok(), "{}: {:?}", engine.name, c.result);
    assert!(
        c.vertex(&passing_digest)
            .is_some_and(|v| v.completed.is_some() || v.cached)
    );
    // Each report is its own definition's: no vertex of another.
    assert!(a.vertex(&broken_step).is_none() && a.vertex(&passing_digest).is_none());
    assert!(b.vertex(&failing_digest).is_none() && c.vertex(&failing_digest).is_none());
    build.finish().await.unwrap();
}

crate::on_both_engines!(
    concurrent_failures_are_each_their_own,
    caps_and_finish,
    reads_a_file_of_a_solved_definition,
    dropped_build_is_forgotten,
    resolves_every_config_field,
    missing_image_is_named,
    config_applies_like_docker_run,
    dockerfile_stages_and_checks_on_top,
    broken_dockerfiles_name_the_instruction,
    missing_network_says_what_to_do,
    checks_inside_one_gateway_build,
);
