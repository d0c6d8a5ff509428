//! A `harness = false` fixture for the harness's local-input tests (`tests/harness.rs`,
//! `e2e::local_*`): host directories as inputs, served by the run's session. The directory is
//! `BUILDTEST_FIXTURE_DIR`, which the test creates with every kind of entry; `missing::` reads one
//! that does not exist. Not run by plain `cargo test` (`test = false`).

use buildtest::llb::LocalOptions;
use buildtest::prelude::*;

const BUSYBOX: &str = "buildtest/busybox:latest";

/// The directory the test made (read when the test fn runs: the path is part of the input).
fn fixture_dir() -> String {
    std::env::var("BUILDTEST_FIXTURE_DIR").unwrap_or_else(|_| "BUILDTEST_FIXTURE_DIR-unset".into())
}

/// `dir` copied to `/data` in busybox, so a shell and `stat` are there to look at it.
fn in_busybox(dir: &State) -> State {
    State::image(BUSYBOX).file(FileAction::copy(dir, "/", "/data").create_dest_path(true))
}

mod properties {
    use super::*;

    /// The fixture directory without `special/` (which holds a fifo).
    fn everything_but_special() -> State {
        State::local_dir_with(
            fixture_dir(),
            LocalOptions::new().exclude_patterns(["special"]),
        )
    }

    /// Every property of every kind of entry survives the trip, checked from inside the image.
    #[buildtest::test]
    fn survive_the_transfer() -> Test {
        let image = in_busybox(&everything_but_special());
        Test::on(image)
            .check(file("/data/run.sh").mode(0o755).owner(0, 0))
            .check(cmd(["/data/run.sh"]).stdout_equals("ran\n"))
            .check(
                file("/data/secret")
                    .mode(0o600)
                    .owner(1000, 1000)
                    .equals("s3cret\n"),
            )
            .check(file("/data/link").link_target("run.sh"))
            .check(file("/data/empty").is_dir().mode(0o750))
            .check(
                cmd(["stat", "-c", "%h %s", "/data/hard1", "/data/hard2"])
                    .stdout_equals("2 5\n2 5\n"),
            )
            .check(file("/data/a/x").equals("ax\n"))
            .check(file("/data/a-b").exists())
            .check(file("/data/a.txt").exists())
    }

    /// The directory itself as the input: a rootfs with no shell; file checks still work.
    #[buildtest::test]
    fn as_the_whole_input() -> Test {
        Test::on(everything_but_special())
            .check(file("/run.sh").mode(0o755))
            .check(file("/secret").owner(1000, 1000))
    }

    /// `.dockerignore` syntax: include then exclude, with an exception.
    #[buildtest::test]
    fn filtered() -> Test {
        let dir = State::local_dir_with(
            fixture_dir(),
            LocalOptions::new()
                .include_patterns(["a", "*.txt", "logs/**"])
                .exclude_patterns(["logs/*.tmp", "!logs/keep.tmp"]),
        );
        Test::on(dir)
            .check(file("/a/x").exists())
            .check(file("/a.txt").exists())
            .check(file("/logs/app.log").exists())
            .check(file("/logs/drop.tmp").absent())
            .check(file("/logs/keep.tmp").exists())
            .check(file("/secret").absent())
            .check(file("/a-b").absent())
    }
}

mod missing {
    use super::*;

    #[buildtest::test]
    fn directory() -> Test {
        Test::on(State::local_dir("no/such/dir")).check(file("/x").exists())
    }
}

mod special {
    use super::*;

    /// `BUILDTEST_FIXTURE_DIR/special` holds a fifo: the transfer fails with a message naming it.
    #[buildtest::test]
    fn fifo() -> Test {
        Test::on(State::local_dir(format!("{}/special", fixture_dir()))).check(file("/ok").exists())
    }
}

/// An input given as LLB bytes made elsewhere (here: marshalled by this process, as another tool
/// would hand them over), with more built on top of its terminal output.
mod definition {
    use super::*;
    use buildtest::llb::Platform;

    #[buildtest::test]
    fn made_elsewhere() -> Test {
        let elsewhere = State::image(BUSYBOX)
            .file(FileAction::mkfile("/made-elsewhere", 0o640, "go\n"))
            .marshal(&Platform::linux_amd64())
            .map(|d| d.to_bytes())
            .unwrap_or_default();
        let input = State::from_definition(&elsewhere)
            .unwrap_or_else(|e| panic!("failed to read the definition: {e}"))
            .file(FileAction::mkdir("/on-top", 0o755));
        Test::on(input)
            .check(file("/made-elsewhere").mode(0o640).equals("go\n"))
            .check(file("/on-top").is_dir())
            .check(cmd(["cat", "/made-elsewhere"]).stdout_equals("go\n"))
    }
}

/// The session's side of `tests/bench/context_bench.py`: the whole directory sent as the context
/// and copied into busybox, as `docker buildx build` does with `COPY . /ctx`.
mod bench {
    use super::*;

    #[buildtest::test]
    fn context() -> Test {
        Test::on(State::image(BUSYBOX).file(
            FileAction::copy(&State::local_dir(fixture_dir()), "/", "/ctx").create_dest_path(true),
        ))
        .check(file("/ctx").is_dir())
    }
}

fn main() {
    buildtest::main()
}
