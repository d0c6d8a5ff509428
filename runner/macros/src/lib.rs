//! The `#[buildtest::test]` attribute. Token work only: the expansion touches
//! nothing but `::buildtest::__private`.
