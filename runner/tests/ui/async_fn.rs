use buildtest::prelude::*;

#[buildtest::test]
async fn asynchronous() -> Test {
    Test::on(State::scratch())
}

fn main() {}
