//! container-structure-test configs converted to buildtest, test kind by test kind (README:
//! "Coming from container-structure-test"). The CST configs they replace are in `tests/cst/`
//! (`configured.yaml`, `busybox.yaml`, `debian.yaml`, one per image as CST takes them); each
//! CST test is quoted above its buildtest check, and both pass on the same images.
//!
//! Runs offline on `buildtest/configured:latest` (built by `bash scripts/builders.sh up` from
//! `tests/fixtures/configured/Dockerfile`: busybox with `ENV`, `WORKDIR`, `USER`, `ENTRYPOINT`,
//! `CMD`, `EXPOSE`, `VOLUME` and `LABEL` set), `buildtest/busybox:latest` and
//! `buildtest/debian:bookworm` (for the license check).

use buildtest::check::Cmd;
use buildtest::llb::NetMode;
use buildtest::prelude::*;

const IMAGE: &str = "buildtest/configured:latest";
const BUSYBOX: &str = "buildtest/busybox:latest";
const DEBIAN: &str = "buildtest/debian:bookworm";

fn image() -> State {
    State::image(IMAGE)
}

/// CST `globalEnvVars`: an environment every command check gets.
fn with_globals(check: Cmd) -> Cmd {
    check.env("LC_ALL", "C").env("WHO", "hi")
}

/// `commandTests`: one `cmd` check each. `command` + `args` are the argv (run directly, no
/// shell); `envVars` are `.env`, `exitCode` is `.exit_code` (0 by default), each
/// `expectedOutput`/`expectedError` regex is a `stdout_matches`/`stderr_matches`.
mod command_tests {
    use super::*;

    #[buildtest::test]
    fn app() -> Test {
        Test::on(image())
            // - name: app echoes its arguments
            //   command: /opt/app/bin/configured-app
            //   args: ["--version"]
            //   expectedOutput: ["(?m)^configured-app --version$"]
            .check(with_globals(
                cmd(["/opt/app/bin/configured-app", "--version"])
                    .stdout_matches("(?m)^configured-app --version$"),
            ))
            // - name: runs as app
            //   command: id
            //   args: ["-un"]
            //   expectedOutput: ["(?m)^app$"]
            // (CST runs commands as the image's USER; `.user` states it for the check.)
            .check(with_globals(
                cmd(["id", "-un"]).user("app").stdout_matches("(?m)^app$"),
            ))
            // - name: env var
            //   command: sh
            //   args: ["-c", "echo $WHO"]
            //   expectedOutput: ["(?m)^hi$"]
            // (WHO comes from globalEnvVars; a per-test `envVars` entry is `.env("WHO", "hi")`.)
            .check(with_globals(
                cmd(["sh", "-c", "echo $WHO"]).stdout_matches("(?m)^hi$"),
            ))
            // - name: exit code and stderr
            //   command: sh
            //   args: ["-c", "echo oops >&2; exit 3"]
            //   exitCode: 3
            //   expectedError: ["oops"]
            .check(with_globals(
                cmd(["sh", "-c", "echo oops >&2; exit 3"])
                    .exit_code(3)
                    .stderr_matches("oops"),
            ))
    }

    /// CST `setup` commands become steps of the input (built once, cached by BuildKit);
    /// `teardown` has no equivalent because each check runs on its own copy of the input.
    #[buildtest::test]
    fn with_setup() -> Test {
        // - name: setup runs first
        //   setup: [["touch", "/tmp/marker"]]
        //   command: ls
        //   args: ["/tmp/marker"]
        // (The engines here have no bridge network: the step runs without one.)
        let input = State::image(BUSYBOX)
            .run(["touch", "/tmp/marker"])
            .network(NetMode::None)
            .root();
        Test::on(input).check(with_globals(cmd(["ls", "/tmp/marker"])))
    }

    /// `excludedOutput`/`excludedError` have no negated assertion: grep for what must not be there
    /// and expect grep's "no match" exit code.
    #[buildtest::test]
    fn excluded_output() -> Test {
        // - name: no debug build
        //   command: /opt/app/bin/configured-app
        //   excludedOutput: ["debug"]
        Test::on(image()).check(with_globals(
            cmd(["sh", "-c", "/opt/app/bin/configured-app | grep -q debug"]).exit_code(1),
        ))
    }
}

/// `fileExistenceTests`: one `file` check each. `shouldExist` is `.exists()`/`.absent()`,
/// `permissions` is `.mode(octal)` (plus `.is_dir()` for a leading `d`), `uid`/`gid` is `.owner`.
mod file_existence_tests {
    use super::*;

    #[buildtest::test]
    fn files() -> Test {
        Test::on(image())
            // - name: app binary
            //   path: /opt/app/bin/configured-app
            //   shouldExist: true
            //   permissions: "-rwxr-xr-x"
            //   uid: 0
            //   gid: 0
            .check(
                file("/opt/app/bin/configured-app")
                    .exists()
                    .mode(0o755)
                    .owner(0, 0),
            )
            // - name: data volume owned by app
            //   path: /data
            //   permissions: "drwxr-xr-x"
            //   uid: 1000
            //   gid: 1000
            .check(file("/data").is_dir().mode(0o755).owner(1000, 1000))
            // - name: no ssh daemon
            //   path: /usr/sbin/sshd
            //   shouldExist: false
            .check(file("/usr/sbin/sshd").absent())
    }
}

/// `fileContentTests`: one `file` check each; each `expectedContents` regex is `.matches`.
mod file_content_tests {
    use super::*;

    #[buildtest::test]
    fn contents() -> Test {
        Test::on(image())
            // - name: app user
            //   path: /etc/passwd
            //   expectedContents: ["(?m)^app:x:1000:1000:", "(?m)^root:"]
            .check(
                file("/etc/passwd")
                    .matches("(?m)^app:x:1000:1000:")
                    .matches("(?m)^root:"),
            )
            // - name: no extra root account
            //   path: /etc/passwd
            //   excludedContents: ["(?m)^toor:"]
            .check(cmd(["grep", "-q", "^toor:", "/etc/passwd"]).exit_code(1))
    }
}

/// `metadataTest`: one `metadata()` check, evaluated from the image config (no container).
#[buildtest::test]
fn metadata_test() -> Test {
    // metadataTest:
    //   envVars:
    //     - {key: APP_MODE, value: production}
    //     - {key: PATH, value: "^/opt/app/bin:", isRegex: true}
    //   labels:
    //     - {key: com.example.team, value: platform}
    //     - {key: org.opencontainers.image.version, value: '^\d+\.\d+\.\d+$', isRegex: true}
    //   entrypoint: ["/opt/app/bin/configured-app"]
    //   cmd: ["--serve", "--port=8080"]
    //   exposedPorts: ["8080"]
    //   volumes: ["/data"]
    //   workdir: "/srv/app"
    //   user: "app"
    Test::on(image()).check(
        metadata()
            .env("APP_MODE", "production")
            .env_matches("PATH", "^/opt/app/bin:")
            .label("com.example.team", "platform")
            .label_matches("org.opencontainers.image.version", r"^\d+\.\d+\.\d+$")
            .entrypoint(["/opt/app/bin/configured-app"])
            .cmd(["--serve", "--port=8080"])
            .exposes("8080")
            .exposes("53/udp")
            .volume("/data")
            .workdir("/srv/app")
            .user("app"),
    )
}

/// `licenseTests`: a `file` check per required copyright file, and a command check that none of
/// them names a license you ban (exit code 1: grep found nothing).
#[buildtest::test]
fn license_tests() -> Test {
    // licenseTests:
    //   - debian: false
    //     files: ["/usr/share/doc/bash/copyright", "/usr/share/doc/coreutils/copyright"]
    const FILES: [&str; 2] = [
        "/usr/share/doc/bash/copyright",
        "/usr/share/doc/coreutils/copyright",
    ];
    let mut grep = vec!["grep", "-l", "-E", "AGPL|SSPL|WTFPL"];
    grep.extend(FILES);
    Test::on(State::image(DEBIAN))
        .check(file(FILES[0]).exists())
        .check(file(FILES[1]).exists())
        .check(cmd(grep).exit_code(1).stdout_empty())
}

fn main() {
    buildtest::main()
}
