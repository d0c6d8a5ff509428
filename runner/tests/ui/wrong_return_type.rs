use buildtest::prelude::*;

#[buildtest::test]
fn returns_a_state() -> State {
    State::scratch()
}

fn main() {}
