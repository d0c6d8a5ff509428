//! UI tests of `#[buildtest::test]` misuse: each `tests/ui/*.rs` must fail to compile with
//! the committed `.stderr` (regenerate with `TRYBUILD=overwrite` and review the diff).

#[test]
fn misuse_is_a_compile_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
