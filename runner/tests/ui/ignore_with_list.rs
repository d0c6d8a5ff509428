use buildtest::prelude::*;

#[buildtest::test]
#[ignore("needs a registry")]
fn ignore_list() -> Test {
    Test::on(State::scratch())
}

fn main() {}
