//! The variables cargo sets for the crate it is running, which a nested `cargo` must not inherit.
//!
//! `cargo run` / `cargo test` give the process they start `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`,
//! `OUT_DIR` … of that crate. Build scripts watch some of them (ring's watches
//! `CARGO_MANIFEST_DIR`), so a nested `cargo build` that inherits them rebuilds ring, rustls, tonic
//! and everything above on every run. `cargo buildtest` (discovering and running suites) and the
//! harness's own tests (building their fixture) remove them; user settings (`CARGO_TARGET_DIR`,
//! `CARGO_HOME`, `RUSTFLAGS`, `CARGO_BUILD_*` …) are kept.

use std::ffi::OsString;

/// Variables cargo sets for the crate it is running (`cargo run`, `cargo test`, build scripts).
const CRATE_ENV: &[&str] = &[
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_RUSTC_CURRENT_DIR",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];
/// Prefixes of such variables (`CARGO_MANIFEST_DIR`, `CARGO_MANIFEST_PATH`,
/// `CARGO_MANIFEST_LINKS`, `CARGO_PKG_NAME`, `CARGO_PKG_VERSION` …).
const CRATE_ENV_PREFIXES: &[&str] = &["CARGO_MANIFEST_", "CARGO_PKG_"];

/// Whether `name` is a variable cargo sets for the crate it runs (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_*`, `OUT_DIR` …), not a setting of the user's.
pub fn is_crate_env(name: &str) -> bool {
    CRATE_ENV.contains(&name) || CRATE_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The names of the variables in `vars` that cargo set for the crate it runs.
pub fn crate_env_names(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<OsString> {
    vars.into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.to_str().is_some_and(is_crate_env))
        .collect()
}

/// The variables of this process's environment that cargo set for the crate this process runs
/// as: remove them from every nested `cargo` (and the processes it starts).
pub fn inherited_crate_env() -> Vec<OsString> {
    crate_env_names(std::env::vars_os())
}
