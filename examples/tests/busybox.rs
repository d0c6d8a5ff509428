//! Every check kind, on the offline busybox image; all pass.
//!
//! `buildtest/busybox:latest` is made by `bash scripts/builders.sh up` from Debian's
//! `busybox-static`: `/bin/busybox` plus one symlink per applet, `/etc/passwd` (root, nobody),
//! `/etc/group`, a 1777 `/tmp`.

use buildtest::llb::NetMode;
use buildtest::prelude::*;

const IMAGE: &str = "buildtest/busybox:latest";

/// `BUILDTEST_BUSYBOX_IMAGE`, else [`IMAGE`]: CI runs this suite again with
/// `BUILDTEST_PLATFORM=linux/arm64` on `buildtest/busybox:arm64` (the same rootfs from Debian's
/// `busybox-static:arm64`, under emulation) and expects the same outcomes.
fn busybox() -> State {
    match std::env::var("BUILDTEST_BUSYBOX_IMAGE") {
        Ok(image) if !image.is_empty() => State::image(&image),
        _ => State::image(IMAGE),
    }
}

/// Command checks: argv runs directly (no shell line), with env, cwd, user and stdin.
mod commands {
    use super::*;

    #[buildtest::test]
    fn exit_codes() -> Test {
        Test::on(busybox())
            .check(cmd(["true"])) // exit code 0 is expected by default
            .check(cmd(["false"]).exit_code(1))
            .check(cmd(["sh", "-c", "exit 42"]).exit_code(42))
    }

    #[buildtest::test]
    fn stdout_assertions() -> Test {
        Test::on(busybox())
            .check(cmd(["echo", "hello world"]).stdout_equals("hello world\n"))
            .check(cmd(["echo", "hello world"]).stdout_contains("lo wo"))
            .check(cmd(["busybox"]).stdout_matches(r"BusyBox v\d+\.\d+"))
            .check(cmd(["echo", "hello world"]).stdout_starts_with("hello"))
            .check(cmd(["echo", "hello world"]).stdout_ends_with("world\n"))
            .check(cmd(["true"]).stdout_empty())
    }

    #[buildtest::test]
    fn stderr_assertions() -> Test {
        let warn = || cmd(["sh", "-c", "echo 'warning: disk almost full' >&2"]);
        Test::on(busybox())
            .check(warn().stderr_equals("warning: disk almost full\n"))
            .check(warn().stderr_contains("almost"))
            .check(warn().stderr_matches(r"^warning: \w+"))
            .check(warn().stderr_starts_with("warning:"))
            .check(warn().stderr_ends_with("full\n"))
            .check(cmd(["echo", "quiet"]).stderr_empty())
    }

    #[buildtest::test]
    fn several_assertions_in_one_check() -> Test {
        Test::on(busybox()).check(
            cmd(["sh", "-c", "echo out; echo err >&2; exit 3"])
                .exit_code(3)
                .stdout_equals("out\n")
                .stderr_equals("err\n"),
        )
    }

    #[buildtest::test]
    fn env_cwd_user_and_stdin() -> Test {
        Test::on(busybox())
            .check(
                cmd(["sh", "-c", "echo \"$GREETING\""])
                    .env("GREETING", "hi there")
                    .stdout_equals("hi there\n"),
            )
            .check(cmd(["pwd"]).cwd("/tmp").stdout_equals("/tmp\n"))
            .check(cmd(["id", "-u"]).user("nobody").stdout_equals("65534\n"))
            .check(cmd(["cat"]).stdin("piped in\n").stdout_equals("piped in\n"))
    }

    #[buildtest::test]
    fn arguments_are_passed_verbatim() -> Test {
        // No shell: `;`, `$()` and quotes reach the program unchanged.
        Test::on(busybox()).check(
            cmd(["echo", "a;b", "$(id)", "'quoted'", "\"double\""])
                .stdout_equals("a;b $(id) 'quoted' \"double\"\n"),
        )
    }
}

/// File checks: the probe stats, reads and resolves paths itself.
mod files {
    use super::*;

    /// The image plus files made with LLB file operations and a symlink made by a run step
    /// (BuildKit's own symlink file action needs BuildKit v0.19+; Docker 20.10 embeds v0.8.3 and
    /// Docker 26.1 v0.13.2).
    fn prepared() -> State {
        busybox()
            .file(
                FileAction::mkdir("/srv/app", 0o750)
                    .make_parents(true)
                    .mkfile("/srv/app/config.ini", 0o640, "[server]\nport = 8080\n")
                    .mkfile("/srv/app/empty.log", 0o644, ""),
            )
            .run(["ln", "-s", "/srv/app/config.ini", "/srv/app/current.ini"])
            .network(NetMode::None)
            .root()
    }

    #[buildtest::test]
    fn existence_and_type() -> Test {
        Test::on(prepared())
            .check(file("/bin/busybox").exists())
            .check(file("/etc/shadow").absent())
            .check(file("/srv/app").is_dir())
    }

    #[buildtest::test]
    fn metadata() -> Test {
        Test::on(prepared())
            .check(file("/bin/busybox").mode(0o755).owner(0, 0))
            .check(file("/srv/app/config.ini").mode(0o640))
            .check(file("/bin/sh").link_target("/bin/busybox"))
            .check(file("/srv/app/current.ini").link_target("/srv/app/config.ini"))
    }

    #[buildtest::test]
    fn contents() -> Test {
        let config = || file("/srv/app/config.ini");
        Test::on(prepared())
            .check(config().equals("[server]\nport = 8080\n"))
            .check(config().contains("port = 8080"))
            .check(config().matches(r"(?m)^port = \d+$"))
            .check(config().starts_with("[server]"))
            .check(config().ends_with("8080\n"))
            .check(file("/srv/app/empty.log").empty())
            .check(file("/etc/passwd").contains("nobody:x:65534"))
    }
}

/// Inputs built by running commands, and images without a shell.
mod inputs {
    use super::*;

    #[buildtest::test]
    fn built_by_a_run_step() -> Test {
        // The local engines run without a network bridge: build steps use network mode none.
        let input = busybox()
            .run([
                "sh",
                "-c",
                "mkdir -p /opt/tool && echo 'v1.2.3' > /opt/tool/VERSION",
            ])
            .network(NetMode::None)
            .root();
        Test::on(input)
            .check(file("/opt/tool/VERSION").equals("v1.2.3\n"))
            .check(cmd(["cat", "/opt/tool/VERSION"]).stdout_starts_with("v1."))
    }

    #[buildtest::test]
    fn checks_do_not_see_each_other() -> Test {
        // Each check runs on its own writable copy of the input.
        Test::on(busybox())
            .check(cmd(["touch", "/tmp/marker"]))
            .check(file("/tmp/marker").absent())
    }

    #[buildtest::test]
    fn scratch_image_without_a_shell() -> Test {
        let input = State::scratch().file(FileAction::mkfile("/hello.txt", 0o644, "hello\n"));
        Test::on(input)
            .check(file("/hello.txt").equals("hello\n").mode(0o644))
            .check(file("/bin/sh").absent())
    }
}

fn main() {
    buildtest::main()
}
