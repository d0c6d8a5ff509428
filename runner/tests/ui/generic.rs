use buildtest::prelude::*;

#[buildtest::test]
fn generic<T: Default>() -> Test {
    Test::on(State::scratch())
}

fn main() {}
