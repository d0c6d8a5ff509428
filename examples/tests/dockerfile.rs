//! An image built from a Dockerfile, tested like any input: `examples/dockerfile/` holds a
//! two-stage build on the offline busybox image (a `build` stage makes a script, the `runtime`
//! stage installs it with `ENV`, `WORKDIR` and `USER`). Offline; all pass.
//!
//! The runner builds each distinct Dockerfile once per run with BuildKit's Dockerfile frontend,
//! the context sent through the run's session (its `.dockerignore` applies), and runs the checks
//! on the result in the same graph; an unchanged Dockerfile and context build from the cache.
//! The image config (`ENV`, `WORKDIR`, `USER`) applies to the checks as `docker run` would.

use buildtest::llb::NetMode;
use buildtest::prelude::*;

/// The context directory (relative paths are relative to the package root).
const CONTEXT: &str = "dockerfile";

/// The options every build here shares: these engines have no bridge network, so `RUN` steps
/// build without network.
fn options() -> DockerfileOptions {
    DockerfileOptions::new().network(NetMode::None)
}

/// The final stage, as `docker build dockerfile/` makes it.
fn app() -> State {
    State::dockerfile_with(CONTEXT, options())
}

#[buildtest::test]
fn runs_like_docker_run() -> Test {
    Test::on(app())
        // `greet` is found through the image's PATH, in its WORKDIR, as its USER.
        .check(cmd(["greet", "buildtest"]).stdout_equals("hello, buildtest\n"))
        .check(cmd(["pwd"]).stdout_equals("/srv/app\n"))
        .check(cmd(["id", "-un"]).stdout_equals("nobody\n"))
        .check(cmd(["sh", "-c", "echo $APP_MODE"]).stdout_equals("production\n"))
}

#[buildtest::test]
fn a_checks_own_settings_win() -> Test {
    Test::on(app()).check(
        cmd(["sh", "-c", "echo $(id -un) $(pwd) $APP_MODE"])
            .user("root")
            .cwd("/tmp")
            .env("APP_MODE", "test")
            .stdout_equals("root /tmp test\n"),
    )
}

#[buildtest::test]
fn context_follows_dockerignore() -> Test {
    Test::on(app())
        .check(file("/opt/app/bin/greet").mode(0o755))
        .check(file("/opt/app/share/greet.sh").exists())
        .check(file("/opt/app/share/notes.local").absent())
}

#[buildtest::test]
fn build_args() -> Test {
    let input = State::dockerfile_with(CONTEXT, options().build_arg("GREETING", "howdy"));
    Test::on(input).check(cmd(["greet"]).stdout_equals("howdy, world\n"))
}

/// `--target build`: only the first stage, with the script but none of the runtime stage.
#[buildtest::test]
fn target_stage() -> Test {
    Test::on(State::dockerfile_with(CONTEXT, options().target("build")))
        .check(file("/out/greet").mode(0o755).contains("hello, "))
        .check(file("/opt/app").absent())
        .check(cmd(["pwd"]).stdout_equals("/\n"))
}

/// `run` steps on the result run with its config too, and checks attach after them.
#[buildtest::test]
fn steps_on_the_result() -> Test {
    let input = app()
        .run(["sh", "-c", "greet step > greeting && id -un >> greeting"])
        .network(NetMode::None)
        .root();
    Test::on(input).check(file("/srv/app/greeting").equals("hello, step\nnobody\n"))
}

fn main() {
    buildtest::main()
}
