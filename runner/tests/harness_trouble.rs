//! A `harness = false` fixture for what a new user trips over (`tests/harness.rs`): a `mkdir`
//! under a parent the image lacks, an input over the daemon's 4 MiB message limit, and one broken
//! input shared by several checks.

use buildtest::prelude::*;

fn busybox() -> State {
    State::image("buildtest/busybox:latest")
}

#[buildtest::test]
fn mkdir_without_parents() -> Test {
    Test::on(busybox().file(FileAction::mkdir("/opt/buildtest-missing/bin", 0o755)))
        .check(file("/opt/buildtest-missing/bin").is_dir())
}

#[buildtest::test]
fn oversized_input() -> Test {
    let blob = vec![b'x'; 5 << 20];
    Test::on(busybox().file(FileAction::mkfile("/blob.bin", 0o644, blob)))
        .check(file("/blob.bin").exists())
}

#[buildtest::test]
fn shared_broken_input() -> Test {
    Test::on(State::image("buildtest/no-such-image:never"))
        .check(cmd(["true"]))
        .check(file("/etc/passwd").exists())
        .check(file("/tmp").is_dir())
}

fn main() {
    buildtest::main()
}
