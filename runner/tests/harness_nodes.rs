//! A `harness = false` fixture for the several-nodes tests in `tests/nodes.rs`: 12 tests, each
//! on its own input (busybox plus a file naming the test, so every input has its own digest and
//! placement), each with three checks. `NODES_FIXTURE_SLEEP` (seconds, default 0) makes one
//! check of each test sleep, so a node can be killed while checks are running.

use buildtest::prelude::*;

fn input(name: &str) -> State {
    State::image("buildtest/busybox:latest").file(FileAction::mkfile(
        "/node-fixture",
        0o644,
        format!("{name}\n"),
    ))
}

fn sleep() -> String {
    std::env::var("NODES_FIXTURE_SLEEP").unwrap_or_else(|_| "0".to_owned())
}

macro_rules! tests {
    ($($name:ident)*) => {
        $(
            #[buildtest::test]
            fn $name() -> Test {
                Test::on(input(stringify!($name)))
                    .check(file("/node-fixture").contains(stringify!($name)))
                    .check(cmd(["sleep".to_owned(), sleep()]))
                    .check(cmd(["true"]))
            }
        )*
    };
}

tests!(t00 t01 t02 t03 t04 t05 t06 t07 t08 t09 t10 t11);

fn main() {
    buildtest::main()
}
