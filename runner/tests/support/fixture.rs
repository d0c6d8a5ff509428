//! What the runner's integration tests share: building the `test = false` fixture targets they
//! run as subprocesses. Included with `#[path = "support/fixture.rs"] mod fixture_support;`.

use std::path::PathBuf;
use std::process::Command;

/// Builds test target `target` of this package (`cargo build --test TARGET`; the targets are
/// `test = false`, so plain `cargo test` does not run them) and returns its executable.
pub(crate) fn build_target(target: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    // `cargo test` runs this binary with CARGO_MANIFEST_DIR, CARGO_PKG_*, OUT_DIR … of this
    // package. Build scripts (ring's) watch some of them, so leaking them into the nested
    // cargo rebuilds ring, rustls, tonic and buildtest here, and again on the next plain
    // `cargo test`. User settings (CARGO_TARGET_DIR, RUSTFLAGS, CARGO_BUILD_*) stay.
    for name in buildtest::protocol::cargo_env::inherited_crate_env() {
        cmd.env_remove(name);
    }
    let out = cmd
        .args(["build", "-p", "buildtest", "--test", target])
        .args(["--message-format=json-render-diagnostics"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the fixture failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| msg["target"]["name"] == target)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no {target} executable"))
}
