//! A `harness = false` fixture for the harness's Ctrl-C test (`tests/harness.rs`): one quick
//! check and one that sleeps for ten minutes, so a run is still going when it is interrupted.

use buildtest::prelude::*;

fn busybox() -> State {
    State::image("buildtest/busybox:latest")
}

#[buildtest::test]
fn quick() -> Test {
    Test::on(busybox()).check(cmd(["echo", "interrupt-quick"]).stdout_equals("interrupt-quick\n"))
}

#[buildtest::test]
fn sleeps() -> Test {
    // Unique to this process, so the exec is never a cache hit: an earlier run whose process was
    // killed without the builder noticing may have let its `sleep 600` finish and cached it.
    Test::on(busybox()).check(cmd(["sleep", "600"]).env("RUN", std::process::id().to_string()))
}

fn main() {
    buildtest::main()
}
