use buildtest::prelude::*;

#[buildtest::test]
struct NotAFunction {
    test: Test,
}

fn main() {}
