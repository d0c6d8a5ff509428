use buildtest::prelude::*;

#[buildtest::test(each = [("a", 1)])]
fn no_input() -> Test {
    Test::on(State::scratch())
}

#[buildtest::test(each = [("a", 1)])]
fn two_inputs(a: u32, b: u32) -> Test {
    Test::on(State::scratch().file(FileAction::mkdir(format!("/{a}{b}"), 0o755)))
}

#[buildtest::test(each = [("a", 1)])]
fn wrong_type(image: &str) -> Test {
    Test::on(State::image(image))
}

fn main() {}
