use buildtest::prelude::*;

#[buildtest::test]
fn with_parameters(image: &str) -> Test {
    Test::on(State::image(image))
}

fn main() {}
