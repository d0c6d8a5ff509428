//! `--list`: discovery, building and listing, never contacting a builder.

use crate::support::{cargo_buildtest, workspace};

/// An address nothing listens on: listing must not care.
const NO_BUILDER: &str = "unix:///nonexistent/buildtest-e2e/buildkitd.sock";

#[test]
fn list_shows_every_suite_of_the_default_members_without_a_builder() {
    let out = cargo_buildtest(&workspace(), &["--list", "--addr", NO_BUILDER]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "alpha::files:\n    etc::passwd_has_root\n    layout\n\
         alpha::images:\n    echo_works\n    greeting::wrong_greeting\n    needs_the_registry\n\
         beta::broken:\n    input_fails\n    still_fine\n",
        "stderr:\n{}",
        out.stderr
    );
    // Cargo's own progress goes to stderr, with ours.
    out.assert_stderr_has("Building 3 suites in 2 packages");
    assert!(!out.stderr.contains("plain"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("Builder"),
        "listing printed a builder header:\n{}",
        out.stderr
    );
}

#[test]
fn list_honours_package_selection_filters_and_ignored() {
    let ws = workspace();
    let out = cargo_buildtest(&ws, &["--list", "-p", "beta"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "beta::broken:\n    input_fails\n    still_fine\n"
    );

    let out = cargo_buildtest(&ws, &["--list", "--workspace", "--exclude", "alpha"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "beta::broken:\n    input_fails\n    still_fine\n\
         cachey::cache:\n    fails\n    on_a_broken_dockerfile\n    on_the_directory\n    \
         on_the_dockerfile\n    on_the_image\n\
         crashy::crashy:\n    never_reported\n\
         slow::slow:\n    quick\n    sleeps\n"
    );

    let out = cargo_buildtest(&ws, &["--list", "-p", "alpha", "--", "greeting"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "alpha::files:\nalpha::images:\n    greeting::wrong_greeting\n"
    );

    let out = cargo_buildtest(&ws, &["--list", "-p", "alpha", "--ignored"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "alpha::files:\nalpha::images:\n    needs_the_registry\n"
    );
}

#[test]
fn list_as_json() {
    let out = cargo_buildtest(
        &workspace(),
        &["--list", "-p", "beta", "--message-format", "json"],
    );
    out.assert_code(0);
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert_eq!(lines[0]["type"], "suite-list");
    assert_eq!(lines[0]["suite"], "beta::broken");
    assert_eq!(
        lines[0]["tests"],
        serde_json::json!(["input_fails", "still_fine"])
    );
}

#[test]
fn unknown_packages_are_usage_errors() {
    let out = cargo_buildtest(&workspace(), &["--list", "-p", "gamma"]);
    out.assert_code(2)
        .assert_stderr_has("select package `gamma`");
}
