//! A `harness = false` fixture for the harness's image-config and Dockerfile tests
//! (`tests/harness.rs`, `e2e::image_configs_*` and `e2e::dockerfiles_*`): images run with their
//! config applied as `docker run` would, the opt-outs, a missing image, and Dockerfile inputs
//! (built, broken, missing). `buildtest/harness-configured:latest` is made by the test before it runs this
//! (ENV PATH and GREETING=hello, WORKDIR /srv/app, USER nobody). Not run by plain `cargo test`
//! (`test = false`).

use buildtest::llb::{ImageOptions, NetMode};
use buildtest::prelude::*;

const CONFIGURED: &str = "buildtest/harness-configured:latest";

fn configured() -> State {
    State::image(CONFIGURED)
}

mod config {
    use super::*;

    #[buildtest::test]
    fn applied() -> Test {
        Test::on(configured())
            .check(cmd(["pwd"]).stdout_equals("/srv/app\n"))
            .check(cmd(["id", "-un"]).stdout_equals("nobody\n"))
            .check(cmd(["sh", "-c", "echo $GREETING"]).stdout_equals("hello\n"))
            .check(cmd(["sh", "-c", "echo $PATH"]).stdout_starts_with("/opt/app/bin:"))
    }

    #[buildtest::test]
    fn explicit_settings_win() -> Test {
        Test::on(configured()).check(
            cmd(["sh", "-c", "echo $(id -un) $(pwd) $GREETING"])
                .user("root")
                .cwd("/tmp")
                .env("GREETING", "mine")
                .stdout_equals("root /tmp mine\n"),
        )
    }

    /// A `run` step built by the test fn, before the run resolved the image, gets the config;
    /// its own settings win; a step after it keeps the config.
    #[buildtest::test]
    fn run_steps() -> Test {
        let step = configured()
            .run(["sh", "-c", "echo $(id -un) $(pwd) $GREETING > /tmp/seen"])
            .network(NetMode::None)
            .root()
            .run(["sh", "-c", "echo $(id -un) $(pwd) > /tmp/own"])
            .user("root")
            .cwd("/")
            .network(NetMode::None)
            .root();
        Test::on(step)
            .check(file("/tmp/seen").equals("nobody /srv/app hello\n"))
            .check(file("/tmp/own").equals("root /\n"))
    }

    #[buildtest::test]
    fn opted_out() -> Test {
        let bare = State::image_with(CONFIGURED, ImageOptions::new().apply_config(false));
        let step = bare
            .run(["sh", "-c", "echo $(id -un) $(pwd) > /tmp/seen"])
            .network(NetMode::None)
            .root();
        Test::on(step)
            .check(cmd(["id", "-un"]).stdout_equals("root\n"))
            .check(cmd(["pwd"]).stdout_equals("/\n"))
            .check(file("/tmp/seen").equals("root /\n"))
    }

    #[buildtest::test]
    fn cleared() -> Test {
        Test::on(configured().without_image_config())
            .check(cmd(["id", "-un"]).stdout_equals("root\n"))
    }

    #[buildtest::test]
    fn missing_image() -> Test {
        Test::on(State::image("buildtest/no-such-image:config"))
            .check(cmd(["true"]))
            .check(file("/"))
    }
}

mod dockerfile {
    use super::*;

    fn options() -> DockerfileOptions {
        DockerfileOptions::new().network(NetMode::None)
    }

    #[buildtest::test]
    fn builds() -> Test {
        Test::on(State::dockerfile_with("tests/dockerfiles/app", options()))
            .check(file("/opt/app/message.txt").equals("from the context\n"))
            .check(file("/opt/app/built-by").equals("root\n"))
            .check(cmd(["pwd"]).stdout_equals("/opt/app\n"))
            .check(cmd(["id", "-un"]).stdout_equals("nobody\n"))
            .check(cmd(["sh", "-c", "echo $APP_ENV"]).stdout_equals("fixture\n"))
    }

    #[buildtest::test]
    fn opted_out() -> Test {
        let input = State::dockerfile_with("tests/dockerfiles/app", options().apply_config(false));
        Test::on(input).check(cmd(["id", "-un"]).stdout_equals("root\n"))
    }

    #[buildtest::test]
    fn broken() -> Test {
        Test::on(State::dockerfile_with(
            "tests/dockerfiles/broken",
            options(),
        ))
        .check(cmd(["true"]))
        .check(file("/bin/sh").exists())
    }

    /// `RUN` steps with the builder's default network, on engines without a bridge network.
    #[buildtest::test]
    fn broken_network() -> Test {
        Test::on(State::dockerfile("tests/dockerfiles/app")).check(cmd(["true"]))
    }

    #[buildtest::test]
    fn missing_context() -> Test {
        Test::on(State::dockerfile("tests/dockerfiles/no-such-context")).check(cmd(["true"]))
    }
}

fn main() {
    buildtest::main()
}
