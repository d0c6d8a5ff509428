//! A `harness = false` fixture for the metadata-check tests (`tests/metadata.rs`): `metadata()`
//! checks on `buildtest/configured:latest` (built by `scripts/builders.sh up` from
//! `tests/fixtures/configured/Dockerfile`) that pass, fail on every wrong value, and error on
//! inputs without an image config. Not run by plain `cargo test` (`test = false`).

use buildtest::llb::{ImageConfig, State};
use buildtest::prelude::*;

const CONFIGURED: &str = "buildtest/configured:latest";
const PATH: &str = "/opt/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn configured() -> State {
    State::image(CONFIGURED)
}

mod passes {
    use super::*;

    /// Every assertion kind in one check: one record, one JUnit testcase.
    #[buildtest::test]
    fn all_in_one() -> Test {
        Test::on(configured()).check(
            metadata()
                .env("PATH", PATH)
                .env("GREETING", "hello world")
                .env_matches("APP_MODE", "^prod")
                .entrypoint(["/opt/app/bin/configured-app"])
                .cmd(["--serve", "--port=8080"])
                .workdir("/srv/app")
                .user("app")
                .exposes("8080")
                .exposes("8080/tcp")
                .exposes("53/udp")
                .volume("/data")
                .label("com.example.team", "platform")
                .label_matches("org.opencontainers.image.version", r"^\d+\.\d+\.\d+$"),
        )
    }

    /// One check per assertion kind, beside an exec check on the same input.
    #[buildtest::test]
    fn one_per_check() -> Test {
        Test::on(configured())
            .check(metadata().env("APP_MODE", "production"))
            .check(metadata().env_matches("PATH", "^/opt/app/bin:"))
            .check(metadata().entrypoint(["/opt/app/bin/configured-app"]))
            .check(metadata().cmd(["--serve", "--port=8080"]))
            .check(metadata().workdir("/srv/app"))
            .check(metadata().user("app"))
            .check(metadata().exposes("53/udp"))
            .check(metadata().volume("/data"))
            .check(metadata().label("org.opencontainers.image.title", "buildtest configured"))
            .check(metadata().label_matches("com.example.team", "^plat"))
            .check(file("/opt/app/bin/configured-app").mode(0o755))
    }

    /// A config attached by hand is carried through run and file steps.
    #[buildtest::test]
    fn attached_config_survives_steps() -> Test {
        let config = ImageConfig::from_image_json(
            br#"{"config":{"User":"1000:1000","WorkingDir":"/work","Env":["A=1"]}}"#,
        )
        .unwrap_or_default();
        let input = State::image("buildtest/busybox:latest")
            .with_image_config(&config)
            .run(["mkdir", "-p", "/work"])
            .user("root")
            .root()
            .file(FileAction::mkfile("/work/x", 0o644, "x"));
        Test::on(input).check(metadata().user("1000:1000").workdir("/work").env("A", "1"))
    }
}

mod fails {
    use super::*;

    /// Every assertion kind with a wrong value, in one check: every one is reported.
    #[buildtest::test]
    fn every_wrong_value() -> Test {
        Test::on(configured()).check(
            metadata()
                .env("APP_MODE", "staging")
                .env_matches("GREETING", "^bye")
                .entrypoint(["/bin/app"])
                .cmd(["--help"])
                .workdir("/srv")
                .user("root")
                .exposes("9090")
                .volume("/cache")
                .label("com.example.team", "web")
                .label_matches("org.opencontainers.image.version", "^2\\."),
        )
    }

    /// An unset variable and an unset label fail, naming them as not set.
    #[buildtest::test]
    fn unset_values() -> Test {
        Test::on(configured())
            .check(metadata().env("NOT_THERE", "x"))
            .check(metadata().label_matches("not.there", "."))
            .check(metadata().user("app"))
    }
}

mod errors {
    use super::*;

    #[buildtest::test]
    fn scratch() -> Test {
        Test::on(State::scratch()).check(metadata().user(""))
    }

    #[buildtest::test]
    fn run_step_without_config() -> Test {
        Test::on(configured().run(["true"]).root()).check(metadata().user("app"))
    }

    #[buildtest::test]
    fn merge() -> Test {
        Test::on(buildtest::llb::merge([
            configured(),
            State::image("buildtest/busybox:latest"),
        ]))
        .check(metadata().user("app"))
    }

    #[buildtest::test]
    fn missing_image() -> Test {
        Test::on(State::image("buildtest/no-such-image:never")).check(metadata().user("app"))
    }

    #[buildtest::test]
    fn bad_regex() -> Test {
        Test::on(configured()).check(metadata().env_matches("PATH", "(unclosed"))
    }

    #[buildtest::test]
    fn no_assertions() -> Test {
        Test::on(configured()).check(metadata())
    }
}

fn main() {
    buildtest::main()
}
