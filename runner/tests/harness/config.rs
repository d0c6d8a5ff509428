//! Image configs applied like `docker run` and Dockerfile inputs, through the `harness_config`
//! fixture, on both engines: the config reaches checks and `run` steps, a check's own settings
//! win, both opt-outs work, a missing image and a broken Dockerfile are input errors naming what
//! failed, and a Dockerfile's checks rerun from the cache.

use super::*;

/// The image the fixture tests (its own tag: other tests make `buildtest/configured:latest`
/// with a different config).
const CONFIGURED: &str = "buildtest/harness-configured:latest";

/// Makes [`CONFIGURED`] on `engine` (once per process and engine): `docker commit` of a busybox
/// container with `ENV`, `WORKDIR` and `USER` changes. Offline.
fn configured_image(engine: Engine) {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let host = engine.host();
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.contains(&host) {
        return;
    }
    let docker = |args: &[&str]| {
        let out = Command::new("/usr/bin/docker")
            .arg("-H")
            .arg(&host)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{engine:?}: docker {args:?}: {}; start the engines with `bash scripts/builders.sh up`",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let container = format!("buildtest-harness-cfg-{}", std::process::id());
    docker(&["create", "--name", &container, "buildtest/busybox:latest"]);
    let mut args = vec!["commit"];
    for change in [
        "ENV PATH=/opt/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV GREETING=hello",
        "WORKDIR /srv/app",
        "USER nobody",
    ] {
        args.extend(["--change", change]);
    }
    args.extend([container.as_str(), CONFIGURED]);
    docker(&args);
    docker(&["rm", &container]);
    done.push(host);
}

fn exe() -> &'static Path {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(|| build_target("harness_config"))
}

/// Every image's config applies to checks and `run` steps; explicit settings and opt-outs win;
/// a missing image is an input error of each check on it, naming the image.
pub(super) fn image_configs_apply_like_docker_run(engine: Engine) {
    configured_image(engine);
    let outputs = Outputs::new();
    let run = Run::of(engine_command(exe(), engine, &outputs, &["config::"], &[]));
    assert_eq!(run.code(), Some(101), "{engine:?}: {run:?}");
    for test in [
        "config::applied",
        "config::explicit_settings_win",
        "config::run_steps",
        "config::opted_out",
        "config::cleared",
    ] {
        assert_eq!(run.outcome(test), Some("ok"), "{engine:?}: {test}: {run:?}");
    }
    assert_eq!(
        run.outcome("config::missing_image"),
        Some("FAILED"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(
            "buildtest: image config applied: docker.io/buildtest/harness-configured:latest \
             (env 2, workdir /srv/app, user nobody)"
        ),
        "{engine:?}: the run says which config it applied: {run:?}"
    );
    let records = outputs.records();
    for check in [1, 2] {
        let missing = find(&records, "config::missing_image", check);
        assert_eq!(missing.outcome, Outcome::Error, "{missing:#?}");
        assert_eq!(missing.error_kind, Some(ErrorKind::Input), "{missing:#?}");
        let message = missing.message.as_deref().unwrap_or_default();
        assert!(
            message.starts_with(
                "failed to pull image `docker.io/buildtest/no-such-image:config`: it is not \
                 present in the builder's local image store and cannot be pulled"
            ),
            "{engine:?}: {missing:#?}"
        );
    }
}

/// Dockerfile inputs build through the session and the frontend; their config applies (and can
/// be opted out of); a broken one is an input error naming the instruction with its log tail; a
/// missing context is named; a rerun takes every check from the cache.
pub(super) fn dockerfiles_build_once_and_rerun_cached(engine: Engine) {
    let first = Outputs::new();
    let run1 = Run::of(engine_command(
        exe(),
        engine,
        &first,
        &["dockerfile::"],
        &[],
    ));
    assert_eq!(run1.code(), Some(101), "{engine:?}: {run1:?}");
    assert_eq!(run1.outcome("dockerfile::builds"), Some("ok"), "{run1:?}");
    assert_eq!(
        run1.outcome("dockerfile::opted_out"),
        Some("ok"),
        "{run1:?}"
    );
    let records = first.records();
    for check in [1, 2] {
        let broken = find(&records, "dockerfile::broken", check);
        assert_eq!(broken.outcome, Outcome::Error, "{broken:#?}");
        assert_eq!(broken.error_kind, Some(ErrorKind::Input), "{broken:#?}");
        let message = broken.message.as_deref().unwrap_or_default();
        assert!(
            message.contains("RUN echo about to fail && echo the reason >&2 && exit 7")
                && message.contains("exit code: 7"),
            "{engine:?}: the failing instruction is named: {broken:#?}"
        );
        let report = broken.report.as_deref().unwrap_or_default();
        assert!(
            report.contains("--- last output of the failing step ---\nabout to fail\nthe reason"),
            "{engine:?}: the log tail is shown: {broken:#?}"
        );
    }
    let network = find(&records, "dockerfile::broken_network", 1);
    assert_eq!(network.error_kind, Some(ErrorKind::Input), "{network:#?}");
    let message = network.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("network bridge not found")
            && message.contains("DockerfileOptions::network(NetMode::None)"),
        "{engine:?}: what to do is said: {network:#?}"
    );
    let missing = find(&records, "dockerfile::missing_context", 1);
    assert_eq!(missing.error_kind, Some(ErrorKind::Input), "{missing:#?}");
    assert!(
        missing
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("dockerfiles/no-such-context): the context directory cannot be read"),
        "{missing:#?}"
    );

    // Unchanged Dockerfile and context: every check of the built Dockerfiles is cached.
    let second = Outputs::new();
    let run2 = Run::of(engine_command(
        exe(),
        engine,
        &second,
        &["dockerfile::", "--skip", "broken", "--skip", "missing"],
        &[],
    ));
    assert_eq!(run2.code(), Some(0), "{engine:?}: {run2:?}");
    let records = second.records();
    assert_eq!(records.len(), 6, "{engine:?}: {records:#?}");
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Pass && r.cached),
        "{engine:?}: every check is cached on a rerun: {records:#?}"
    );
}
