use buildtest::prelude::*;

#[buildtest::test]
fn no_return_type() {
    let _ = Test::on(State::scratch());
}

fn main() {}
