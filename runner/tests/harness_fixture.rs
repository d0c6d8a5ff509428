//! A `harness = false` fixture for the harness's own tests (`tests/harness.rs` runs this
//! binary as a subprocess): registered tests in nested modules, ignored ones (the
//! `#[ignore]` before and after the attribute), and tests that pass, fail and error on a
//! real builder with the offline image `buildtest/busybox:latest`.
//!
//! Tests that fail or error on purpose live under `fails::` and `errors::`; `tests/harness.rs`
//! selects them explicitly.

use std::time::Duration;

use buildtest::check::PROBE_PATH;
use buildtest::llb::NetMode;
use buildtest::prelude::*;

/// The offline base image `scripts/builders.sh up` imports into both Docker engines.
const BUSYBOX: &str = "buildtest/busybox:latest";

fn busybox() -> State {
    State::image(BUSYBOX)
}

#[buildtest::test]
fn top_level() -> Test {
    Test::on(busybox()).check(file("/bin/busybox").exists())
}

mod passes {
    use super::*;

    #[buildtest::test]
    fn cmd_and_file() -> Test {
        Test::on(busybox())
            .check(cmd(["echo", "hello"]).stdout_equals("hello\n"))
            .check(file("/etc/passwd").exists().contains("root:"))
            .check(
                cmd(["ls", "/does-not-exist"])
                    .exit_code(1)
                    .stderr_contains("No such file"),
            )
    }

    /// Shell metacharacters reach the program verbatim: no shell is involved.
    #[buildtest::test]
    fn argv_is_verbatim() -> Test {
        Test::on(busybox()).check(
            cmd(["echo", "a;b", "$(id)", "'q'", "\"d\"", "`x`"])
                .stdout_equals("a;b $(id) 'q' \"d\" `x`\n"),
        )
    }

    /// Each check runs on its own writable copy of the input: what one writes, the others
    /// do not see.
    #[buildtest::test]
    fn checks_are_isolated() -> Test {
        Test::on(busybox())
            .check(cmd(["touch", "/written-by-check-1"]))
            .check(file("/written-by-check-1").absent())
    }

    /// An image with no shell and no libc: a scratch state with one file. The only program
    /// in there is the probe itself (mounted by every check), so the cmd check runs it.
    #[buildtest::test]
    fn scratch_image() -> Test {
        Test::on(State::scratch().file(FileAction::mkfile("/hello", 0o644, "hi")))
            .check(file("/hello").exists().mode(0o644).equals("hi"))
            .check(
                cmd([PROBE_PATH, "v1", "file", "/hello", "--equals", "hi"])
                    .stderr_contains("end pass 0/1"),
            )
    }

    pub(super) mod nested {
        use super::*;

        #[buildtest::test]
        fn deep() -> Test {
            Test::on(busybox()).check(cmd(["true"]))
        }
    }
}

/// One test fn, one test per input (`#[buildtest::test(each = …)]`): `instances::marker::busybox`
/// and `instances::marker::scratch`.
mod instances {
    use super::*;

    fn inputs() -> Vec<(&'static str, State)> {
        vec![("busybox", busybox()), ("scratch", State::scratch())]
    }

    #[buildtest::test(each = inputs())]
    fn marker(input: State) -> Test {
        Test::on(input.file(FileAction::mkfile("/marker", 0o600, "instances")))
            .check(file("/marker").mode(0o600).equals("instances"))
    }
}

/// Three tests with one slow check each: their solves run at the same time, even when
/// libtest runs one trial at a time (`--test-threads 1`).
mod concurrent {
    use super::*;

    /// Distinct per test (the env), or BuildKit would run one shared exec for all three.
    fn slow(which: &str) -> Test {
        Test::on(busybox()).check(cmd(["sleep", "2"]).env("WHICH", which))
    }

    #[buildtest::test]
    fn a() -> Test {
        slow("a")
    }

    #[buildtest::test]
    fn b() -> Test {
        slow("b")
    }

    #[buildtest::test]
    fn c() -> Test {
        slow("c")
    }
}

mod fails {
    use super::*;

    /// Three checks; the middle one fails, the other two pass.
    #[buildtest::test]
    fn middle_check() -> Test {
        Test::on(busybox())
            .check(cmd(["true"]))
            .check(cmd(["echo", "actual output"]).stdout_equals("expected output\n"))
            .check(file("/bin/busybox").exists())
    }

    #[buildtest::test]
    fn file_mode() -> Test {
        Test::on(busybox()).check(file("/etc/passwd").mode(0o600))
    }
}

mod errors {
    use super::*;

    /// The input's own build step fails: an error naming the step, not a check failure.
    #[buildtest::test]
    fn input_fails_to_build() -> Test {
        let input = busybox()
            .run(["sh", "-c", "echo building-the-input; exit 3"])
            .network(NetMode::None)
            .root();
        Test::on(input).check(cmd(["true"]))
    }

    #[buildtest::test]
    fn missing_image() -> Test {
        Test::on(State::image("buildtest/this-image-does-not-exist:1.0")).check(cmd(["true"]))
    }

    /// A check slower than its test's timeout: an error, and the solve is cancelled.
    #[buildtest::test]
    fn times_out() -> Test {
        Test::on(busybox())
            .timeout(Duration::from_secs(2))
            // Unique to this process, so the exec is never a cache hit (see harness_interrupt).
            .check(cmd(["sleep", "600"]).env("RUN", std::process::id().to_string()))
    }

    #[buildtest::test]
    fn panics() -> Test {
        panic!("the test fn itself panicked")
    }

    /// Two instances with one label: listed under the fn's own name, and an error when run.
    #[buildtest::test(each = [("same", 1), ("same", 2)])]
    fn duplicate_labels(n: u32) -> Test {
        Test::on(busybox()).check(cmd(["true"]).env("N", n.to_string()))
    }
}

mod ignored {
    use super::*;

    #[ignore]
    #[buildtest::test]
    fn before() -> Test {
        Test::on(busybox()).check(cmd(["true"]))
    }

    #[buildtest::test]
    #[ignore = "needs a registry"]
    fn after_with_reason() -> Test {
        Test::on(State::image("docker.io/library/debian:bookworm-slim")).check(cmd(["true"]))
    }
}

fn main() {
    buildtest::main()
}
