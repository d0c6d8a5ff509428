//! The static test registry filled by `#[buildtest::test]`.
//!
//! Every annotated fn contributes one [`TestDef`] to [`TESTS`], a linkme distributed slice:
//! the linker gathers the elements into one contiguous section, so the registry is a plain
//! `&'static [TestDef]` with no code run before `main` and no allocation. Listing reads only
//! this slice (names and ignore flags); nothing here touches a builder.
//!
//! A test declared with `#[buildtest::test(each = …)]` is one registration with several
//! instances: [`registered`] expands it into one entry per instance label, named
//! `<fn path>::<label>`, by calling the generated labels fn (pure user code, no builder).

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::harness::Test;

/// How a registered test builds its [`Test`].
#[derive(Debug)]
pub enum Build {
    /// `fn name() -> Test`.
    Single(fn() -> Test),
    /// `#[buildtest::test(each = …)] fn name(input: T) -> Test`: one test per instance.
    Each {
        /// The instances' labels, in declaration order (generated; evaluates the `each`
        /// expression).
        labels: fn() -> Labels,
        /// Builds the instance with this label (generated; evaluates the `each` expression
        /// again and calls the fn with that instance's input); `None` for an unknown label.
        instance: fn(&str) -> Option<Test>,
    },
}

/// The labels of a test's instances, as the `each` expression yields them.
pub type Labels = Vec<String>;

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
    pub build: Build,
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
/// their names computed once. A test with instances contributes one entry per instance
/// (`<fn path>::<label>`); if its labels cannot be read (the `each` expression panicked, or a
/// label is empty, repeated or not a name segment) it contributes one entry under the fn's own
/// name, whose build reports why ([`build`]), so the mistake is never silently dropped.
pub fn registered() -> Vec<(String, &'static TestDef)> {
    let mut tests: Vec<(String, &'static TestDef)> = Vec::with_capacity(TESTS.len());
    for def in TESTS.iter() {
        let name = def.name();
        match &def.build {
            Build::Single(_) => tests.push((name, def)),
            Build::Each { labels, .. } => match instance_labels(*labels) {
                Ok(labels) => {
                    tests.extend(labels.into_iter().map(|l| (format!("{name}::{l}"), def)));
                }
                Err(_) => tests.push((name, def)),
            },
        }
    }
    tests.sort_by(|a, b| a.0.cmp(&b.0));
    tests
}

/// The instance label of entry `name` of `def`, when `def` has instances and `name` is one of
/// them (`<fn path>::<label>`).
pub fn instance_label<'a>(def: &TestDef, name: &'a str) -> Option<&'a str> {
    if !matches!(def.build, Build::Each { .. }) {
        return None;
    }
    name.strip_prefix(&def.name())?.strip_prefix("::")
}

/// Builds the test of entry `name` (a name from [`registered`]): calls the test fn (with the
/// instance's input for a test with instances), turning a panic into a message.
pub fn build(def: &TestDef, name: &str) -> Result<Test, String> {
    match &def.build {
        Build::Single(f) => guarded(*f),
        Build::Each { labels, instance } => {
            let Some(label) = instance_label(def, name) else {
                // Registered under the fn's own name: its labels could not be read.
                return Err(match instance_labels(*labels) {
                    Err(err) => err,
                    Ok(_) => format!("`{name}` is not an instance of `{}`", def.name()),
                });
            };
            guarded(|| instance(label))?.ok_or_else(|| {
                format!(
                    "the `each` expression of `{}` no longer yields the instance `{label}` \
                     (it must be pure: the same labels every time it is evaluated)",
                    def.name()
                )
            })
        }
    }
}

/// Runs user code, turning a panic into a message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        format!("the test fn panicked: {msg}")
    })
}

/// Reads and checks a test's instance labels: each non-empty, unique, and made of ASCII
/// letters, digits, `_`, `-` and `.` (a label is the last segment of a test name that filters
/// and JUnit classnames address).
fn instance_labels(labels: fn() -> Labels) -> Result<Labels, String> {
    let labels = guarded(labels).map_err(|e| {
        format!(
            "failed to list the instances: the `each` expression panicked: {}",
            e.trim_start_matches("the test fn panicked: ")
        )
    })?;
    if labels.is_empty() {
        return Err("failed to list the instances: the `each` expression yields none".to_owned());
    }
    let mut seen = BTreeSet::new();
    for label in &labels {
        if label.is_empty()
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "failed to list the instances: label {label:?} is not a name segment (use ASCII \
                 letters, digits, `_`, `-` and `.`, e.g. \"debian-bookworm\")"
            ));
        }
        if !seen.insert(label.as_str()) {
            return Err(format!(
                "failed to list the instances: label {label:?} appears twice"
            ));
        }
    }
    Ok(labels)
}

/// The labels of an `each` expression (called by the generated labels fn).
pub fn each_labels<I, L, T>(each: I) -> Labels
where
    I: IntoIterator<Item = (L, T)>,
    L: Into<String>,
{
    each.into_iter().map(|(label, _)| label.into()).collect()
}

/// The instance `label` of an `each` expression, built with `test` (called by the generated
/// instance fn); `None` when no instance has that label.
pub fn each_instance<I, L, T, F>(each: I, label: &str, test: F) -> Option<Test>
where
    I: IntoIterator<Item = (L, T)>,
    L: Into<String>,
    F: FnOnce(T) -> Test,
{
    each.into_iter()
        .find_map(|(l, input)| (l.into() == label).then_some(input))
        .map(test)
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
