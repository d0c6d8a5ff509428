//! The static test registry filled by `#[buildtest::test]`.
//!
//! Every annotated fn contributes one [`TestDef`] to [`TESTS`], a linkme distributed slice:
//! the linker gathers the elements into one contiguous section, so the registry is a plain
//! `&'static [TestDef]` with no code run before `main` and no allocation. Listing reads only
//! this slice (names and ignore flags); nothing here touches a builder.

use crate::harness::Test;

/// One registered test, as emitted by `#[buildtest::test]`. Constructed only by the macro.
#[derive(Debug)]
pub struct TestDef {
    /// `module_path!()` at the fn: the crate name, then the module path.
    pub module_path: &'static str,
    /// The fn's name (without `r#`).
    pub fn_name: &'static str,
    /// Whether the fn carries `#[ignore]`.
    pub ignored: bool,
    /// The reason in `#[ignore = "reason"]`.
    pub ignore_reason: Option<&'static str>,
    /// `file!()` at the fn.
    pub file: &'static str,
    /// `line!()` at the fn.
    pub line: u32,
    /// The fn itself: describes the test (pure; contacts nothing).
    pub build: fn() -> Test,
}

impl TestDef {
    /// The test's name: the module path without the crate name, then `::` and the fn name
    /// (`images::debian::curl_is_installed`), the path rust-analyzer and nextest address.
    pub fn name(&self) -> String {
        test_name(self.module_path, self.fn_name)
    }

    /// The crate (test target) the fn was compiled in: the first segment of its module path.
    pub fn crate_name(&self) -> &'static str {
        self.module_path
            .split_once("::")
            .map_or(self.module_path, |(krate, _)| krate)
    }
}

/// The name of fn `fn_name` defined in module `module_path` (which starts with the crate
/// name): `a::b::f` for `krate::a::b` and `f`; just `f` at the crate root.
pub fn test_name(module_path: &str, fn_name: &str) -> String {
    match module_path.split_once("::") {
        Some((_, rest)) => format!("{rest}::{fn_name}"),
        None => fn_name.to_owned(),
    }
}

#[linkme::distributed_slice]
#[allow(unsafe_code)] // linkme's declaration reads the linker-defined section bounds.
/// Every test registered by `#[buildtest::test]` in the running binary.
pub static TESTS: [TestDef];

/// The registered tests, sorted by name (libtest lists and runs tests in name order), with
/// their names computed once.
pub fn registered() -> Vec<(String, &'static TestDef)> {
    let mut tests: Vec<(String, &'static TestDef)> = TESTS.iter().map(|t| (t.name(), t)).collect();
    tests.sort_by(|a, b| a.0.cmp(&b.0));
    tests
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn name_strips_the_crate() {
        assert_eq!(
            test_name("suite::images::debian", "curl_is_installed"),
            "images::debian::curl_is_installed"
        );
        assert_eq!(test_name("suite", "top_level"), "top_level");
        assert_eq!(test_name("my_crate::a", "f"), "a::f");
    }
}
