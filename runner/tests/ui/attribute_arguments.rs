use buildtest::prelude::*;

#[buildtest::test(timeout = 5)]
fn with_arguments() -> Test {
    Test::on(State::scratch())
}

fn main() {}
