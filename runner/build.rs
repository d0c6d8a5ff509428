//! Builds the check probe (`runner/probe`, package `buildtest-probe`) as a static-pie binary for
//! linux/amd64 and leaves it at `$OUT_DIR/buildtest-probe`, where `buildtest::check` embeds it
//! with `include_bytes!`.
//!
//! The probe is built by a nested `cargo build` of this workspace (`--profile release-probe`,
//! `--target x86_64-unknown-linux-gnu`, `-C target-feature=+crt-static` for that target only)
//! into its own target directory under `OUT_DIR`, so it never waits on the outer build's lock.
//! It needs nothing the outer build has not already fetched (its only dependency, `regex-lite`,
//! is also a dependency of `buildtest`), so it works offline from a fresh clone.
//!
//! Other hosts: only an x86_64 Linux (GNU) host builds the probe. Elsewhere the build succeeds with
//! a warning, embeds no probe, and every check fails with `CheckError::ProbeUnavailable`.
//! `BUILDTEST_PROBE_BIN=/path/to/buildtest-probe` embeds a probe built elsewhere instead (it must
//! be a static linux/amd64 binary).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The only target the probe is built for (images must be linux/amd64).
const PROBE_TARGET: &str = "x86_64-unknown-linux-gnu";
/// The profile from the workspace's Cargo.toml (opt-level z, lto, panic=abort, strip).
const PROBE_PROFILE: &str = "release-probe";

fn main() -> ExitCode {
    match run().and_then(|()| write_digest()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: failed to build the buildtest check probe: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the hex SHA-256 of the embedded probe next to it (empty when no probe is embedded), so
/// the runner names the probe image without hashing 1.4 MB at run time (slow in debug builds).
fn write_digest() -> Result<(), String> {
    use sha2::{Digest as _, Sha256};
    let out_dir = env_path("OUT_DIR")?;
    let probe = out_dir.join("buildtest-probe");
    let bytes = std::fs::read(&probe).map_err(|e| format!("read {}: {e}", probe.display()))?;
    let digest = if bytes.is_empty() {
        String::new()
    } else {
        format!("{:x}", Sha256::digest(&bytes))
    };
    let path = out_dir.join("buildtest-probe.sha256");
    std::fs::write(&path, digest).map_err(|e| format!("write {}: {e}", path.display()))
}

fn env_path(key: &str) -> Result<PathBuf, String> {
    std::env::var_os(key)
        .map(PathBuf::from)
        .ok_or_else(|| format!("cargo did not set {key}"))
}

fn run() -> Result<(), String> {
    let manifest_dir = env_path("CARGO_MANIFEST_DIR")?;
    let out_dir = env_path("OUT_DIR")?;
    let dest = out_dir.join("buildtest-probe");
    for path in [
        "probe/src",
        "probe/Cargo.toml",
        "../Cargo.toml",
        "../Cargo.lock",
        "build.rs",
    ] {
        println!("cargo::rerun-if-changed={path}");
    }
    println!("cargo::rerun-if-env-changed=BUILDTEST_PROBE_BIN");

    if let Some(prebuilt) = std::env::var_os("BUILDTEST_PROBE_BIN") {
        println!("cargo::rerun-if-changed={}", Path::new(&prebuilt).display());
        let shown = Path::new(&prebuilt).display();
        let copied = std::fs::copy(&prebuilt, &dest)
            .map_err(|e| format!("copy BUILDTEST_PROBE_BIN {shown}: {e}"))?;
        if copied == 0 {
            return Err(format!("BUILDTEST_PROBE_BIN {shown} is empty"));
        }
        return Ok(());
    }

    let host = std::env::var("HOST").unwrap_or_default();
    if host != PROBE_TARGET {
        let reason = format!(
            "the check probe is only built on an {PROBE_TARGET} host (this host is {host}); \
             set BUILDTEST_PROBE_BIN to a static linux/amd64 buildtest-probe to run checks"
        );
        println!("cargo::warning={reason}");
        println!("cargo::rustc-env=BUILDTEST_PROBE_UNAVAILABLE={reason}");
        std::fs::write(&dest, b"").map_err(|e| format!("write {}: {e}", dest.display()))?;
        return Ok(());
    }

    let workspace_manifest = manifest_dir
        .parent()
        .map(|root| root.join("Cargo.toml"))
        .ok_or("the runner has no parent directory")?;
    let target_dir = out_dir.join("probe-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&workspace_manifest)
        .args(["-p", "buildtest-probe", "--bin", "buildtest-probe"])
        .args(["--profile", PROBE_PROFILE, "--target", PROBE_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    scrub_env(&mut cmd);
    // Only the target units get these (with --target, build scripts and proc macros do not).
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static");
    // Where intermediate artifacts go (cargo >= 1.91); never share the outer build's.
    cmd.env("CARGO_BUILD_BUILD_DIR", &target_dir);

    let output = cmd
        .output()
        .map_err(|e| format!("run the nested `cargo build` of buildtest-probe: {e}"))?;
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        return Err(format!(
            "the nested `cargo build -p buildtest-probe --profile {PROBE_PROFILE} --target {PROBE_TARGET}` \
             exited with {} (its output is above; the probe needs the {PROBE_TARGET} standard library \
             and glibc's static libraries, e.g. Debian's libc6-dev)",
            output.status
        ));
    }
    let built = target_dir
        .join(PROBE_TARGET)
        .join(PROBE_PROFILE)
        .join("buildtest-probe");
    std::fs::copy(&built, &dest)
        .map_err(|e| format!("copy {} to {}: {e}", built.display(), dest.display()))?;
    Ok(())
}

/// Removes what the outer build would leak into the nested one: target/build directories,
/// flags, profile and target overrides, wrappers (clippy's), and cargo's build-script variables.
fn scrub_env(cmd: &mut Command) {
    const EXACT: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_INCREMENTAL",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "NUM_JOBS",
        "OPT_LEVEL",
        "DEBUG",
        "PROFILE",
        "RUSTC_LINKER",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_BUILD_",
        "CARGO_PROFILE_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "DEP_",
        "__CARGO",
    ];
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p)) {
            cmd.env_remove(key);
        }
    }
}
