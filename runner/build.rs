//! Builds the check probes (`runner/probe`, package `buildtest-probe`) as static binaries, one per
//! platform, and leaves them in `OUT_DIR` where `buildtest::check` embeds them with
//! `include_bytes!`: `buildtest-probe` (linux/amd64) and `buildtest-probe-arm64` (linux/arm64),
//! each with its hex SHA-256 in `<name>.sha256` (empty files when that probe is not embedded).
//!
//! Each probe is built by a nested `cargo build` of this workspace (`--profile release-probe`,
//! `--target <triple>`, `-C target-feature=+crt-static` for that target only) into its own target
//! directory under `OUT_DIR`, so it never waits on the outer build's lock. It needs nothing the
//! outer build has not already fetched (its only dependency, `regex-lite`, is also a dependency of
//! `buildtest`), so it works offline from a fresh clone.
//!
//! - linux/amd64: built on an x86_64 Linux (GNU) host; `BUILDTEST_PROBE_BIN=/path` embeds one built
//!   elsewhere instead.
//! - linux/arm64: built natively on an aarch64 Linux (GNU) host; on other hosts cross-compiled when
//!   `BUILDTEST_PROBE_AARCH64_RUSTC` names a rustc whose sysroot has the aarch64-unknown-linux-gnu
//!   standard library (`scripts/arm64-toolchain.sh` unpacks Debian's rustc-web with it), linked
//!   with `BUILDTEST_PROBE_AARCH64_LINKER` (default `aarch64-linux-gnu-gcc`, with glibc's static
//!   aarch64 libraries, e.g. Debian's libc6-dev-arm64-cross); `BUILDTEST_PROBE_BIN_ARM64=/path`
//!   embeds one built elsewhere.
//! - `BUILDTEST_NO_EMBEDDED_PROBES=1` embeds none (what a host that cannot build them gets).
//!
//! A probe that is not embedded is not an error here: the build says so with a warning, and the
//! runner reports the reason (`BUILDTEST_PROBE_UNAVAILABLE`, `BUILDTEST_PROBE_ARM64_UNAVAILABLE`)
//! when a check needs that platform.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The profile from the workspace's Cargo.toml (opt-level z, lto, panic=abort, strip).
const PROBE_PROFILE: &str = "release-probe";

/// One probe to embed.
struct Probe {
    /// The platform, for messages.
    platform: &'static str,
    /// The Rust target triple it is built for.
    target: &'static str,
    /// Its file in `OUT_DIR`.
    file: &'static str,
    /// The variable naming a prebuilt probe to embed instead.
    prebuilt_var: &'static str,
    /// The rustc-env variable that carries the reason when it is not embedded.
    unavailable_var: &'static str,
}

const AMD64: Probe = Probe {
    platform: "linux/amd64",
    target: "x86_64-unknown-linux-gnu",
    file: "buildtest-probe",
    prebuilt_var: "BUILDTEST_PROBE_BIN",
    unavailable_var: "BUILDTEST_PROBE_UNAVAILABLE",
};

const ARM64: Probe = Probe {
    platform: "linux/arm64",
    target: "aarch64-unknown-linux-gnu",
    file: "buildtest-probe-arm64",
    prebuilt_var: "BUILDTEST_PROBE_BIN_ARM64",
    unavailable_var: "BUILDTEST_PROBE_ARM64_UNAVAILABLE",
};

/// A cross toolchain for one target: the rustc to use and the linker.
struct Cross {
    rustc: OsString,
    linker: OsString,
}

fn main() -> ExitCode {
    for path in [
        "probe/src",
        "probe/Cargo.toml",
        "../Cargo.toml",
        "../Cargo.lock",
        "build.rs",
    ] {
        println!("cargo::rerun-if-changed={path}");
    }
    for var in [
        "BUILDTEST_PROBE_BIN",
        "BUILDTEST_PROBE_BIN_ARM64",
        "BUILDTEST_PROBE_AARCH64_RUSTC",
        "BUILDTEST_PROBE_AARCH64_LINKER",
        "BUILDTEST_NO_EMBEDDED_PROBES",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    if let Err(message) = write_probe_source() {
        eprintln!("error: failed to bundle the check probe's source: {message}");
        return ExitCode::FAILURE;
    }
    for probe in [&AMD64, &ARM64] {
        if let Err(message) = embed(probe).and_then(|()| write_digest(probe)) {
            eprintln!(
                "error: failed to build the buildtest check probe for {}: {message}",
                probe.platform
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Writes `OUT_DIR/probe-source.rs`: the probe's source as `(path, bytes)` pairs, which the
/// runner embeds so that a builder can compile the probe itself where none is embedded
/// (`buildtest::check::probe_build_state`): `probe/Cargo.toml` (a standalone manifest with the
/// workspace's `release-probe` profile as `release`), `probe/src/**`, and the one dependency's
/// manifest and `src/**` as `regex-lite/` (a path dependency, so the build needs no registry).
fn write_probe_source() -> Result<(), String> {
    let manifest_dir = env_path("CARGO_MANIFEST_DIR")?;
    let out_dir = env_path("OUT_DIR")?;
    let root = manifest_dir
        .parent()
        .ok_or("the runner has no parent directory")?;
    let workspace_toml = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("read the workspace's Cargo.toml: {e}"))?;
    let regex_lite = find_regex_lite(root)?;

    // The workspace's release-probe profile, minus `inherits`, as the standalone's release profile.
    let profile: String = workspace_toml
        .lines()
        .skip_while(|l| l.trim() != "[profile.release-probe]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("inherits"))
        .map(|l| format!("{l}\n"))
        .collect();
    let manifest = format!(
        "[package]\nname = \"buildtest-probe\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [dependencies]\nregex-lite = {{ path = \"../regex-lite\" }}\n\n\
         [profile.release]\n{profile}\n[workspace]\n"
    );
    let manifest_path = out_dir.join("probe-standalone.toml");
    std::fs::write(&manifest_path, manifest)
        .map_err(|e| format!("write {}: {e}", manifest_path.display()))?;

    let mut files: Vec<(String, PathBuf)> = vec![("probe/Cargo.toml".to_owned(), manifest_path)];
    collect(&manifest_dir.join("probe/src"), "probe/src", &mut files)?;
    files.push((
        "regex-lite/Cargo.toml".to_owned(),
        regex_lite.join("Cargo.toml"),
    ));
    collect(&regex_lite.join("src"), "regex-lite/src", &mut files)?;
    files.sort();

    let mut code = String::from("&[\n");
    for (name, path) in &files {
        let path = path.to_str().ok_or("a source path is not UTF-8")?;
        let _ = writeln!(code, "    ({name:?}, include_bytes!({path:?})),");
    }
    code.push_str("]\n");
    let dest = out_dir.join("probe-source.rs");
    std::fs::write(&dest, code).map_err(|e| format!("write {}: {e}", dest.display()))
}

/// Every `.rs` file under `dir`, named `<prefix>/<relative path>`.
fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("read directory {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("read directory {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_str().ok_or("a source file name is not UTF-8")?;
        if path.is_dir() {
            collect(&path, &format!("{prefix}/{name}"), out)?;
        } else if name.ends_with(".rs") {
            out.push((format!("{prefix}/{name}"), path));
        }
    }
    Ok(())
}

/// The directory of the `regex-lite` package this workspace builds the probe with (from `cargo
/// metadata`, offline: the outer build has fetched it already).
fn find_regex_lite(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.args([
        "metadata",
        "--format-version",
        "1",
        "--offline",
        "--manifest-path",
    ])
    .arg(root.join("Cargo.toml"));
    scrub_env(&mut cmd);
    let output = cmd
        .output()
        .map_err(|e| format!("run `cargo metadata`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo metadata` exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    const KEY: &str = "\"manifest_path\":\"";
    for (at, _) in text.match_indices(KEY) {
        let rest = &text[at + KEY.len()..];
        let Some(end) = rest.find('"') else { continue };
        let manifest = Path::new(&rest[..end]);
        let Some(dir) = manifest.parent() else {
            continue;
        };
        let is_regex_lite = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("regex-lite"))
            && std::fs::read_to_string(manifest).is_ok_and(|t| t.contains("name = \"regex-lite\""));
        if is_regex_lite {
            return Ok(dir.to_path_buf());
        }
    }
    Err("`cargo metadata` lists no regex-lite package".to_owned())
}

/// Writes the hex SHA-256 of the embedded probe next to it (empty when no probe is embedded), so
/// the runner names the probe image without hashing 1.4 MB at run time (slow in debug builds).
fn write_digest(probe: &Probe) -> Result<(), String> {
    use sha2::{Digest as _, Sha256};
    let out_dir = env_path("OUT_DIR")?;
    let file = out_dir.join(probe.file);
    let bytes = std::fs::read(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
    let digest = if bytes.is_empty() {
        String::new()
    } else {
        format!("{:x}", Sha256::digest(&bytes))
    };
    let path = out_dir.join(format!("{}.sha256", probe.file));
    std::fs::write(&path, digest).map_err(|e| format!("write {}: {e}", path.display()))
}

fn env_path(key: &str) -> Result<PathBuf, String> {
    std::env::var_os(key)
        .map(PathBuf::from)
        .ok_or_else(|| format!("cargo did not set {key}"))
}

/// Leaves `probe` at `OUT_DIR/<file>`: copied from its prebuilt variable, built, or empty (with a
/// warning and the reason for the runner).
fn embed(probe: &Probe) -> Result<(), String> {
    let out_dir = env_path("OUT_DIR")?;
    let dest = out_dir.join(probe.file);
    let none = |reason: String| -> Result<(), String> {
        println!(
            "cargo::warning=no {} check probe is embedded: {reason}",
            probe.platform
        );
        println!("cargo::rustc-env={}={reason}", probe.unavailable_var);
        std::fs::write(&dest, b"").map_err(|e| format!("write {}: {e}", dest.display()))
    };
    if std::env::var_os("BUILDTEST_NO_EMBEDDED_PROBES").is_some_and(|v| !v.is_empty() && v != "0") {
        return none(
            "BUILDTEST_NO_EMBEDDED_PROBES is set when this buildtest was built".to_owned(),
        );
    }
    if let Some(prebuilt) = std::env::var_os(probe.prebuilt_var) {
        println!("cargo::rerun-if-changed={}", Path::new(&prebuilt).display());
        let shown = Path::new(&prebuilt).display();
        let copied = std::fs::copy(&prebuilt, &dest)
            .map_err(|e| format!("copy {} {shown}: {e}", probe.prebuilt_var))?;
        if copied == 0 {
            return Err(format!("{} {shown} is empty", probe.prebuilt_var));
        }
        return Ok(());
    }
    let host = std::env::var("HOST").unwrap_or_default();
    if host == probe.target {
        return build(probe, &out_dir, &dest, None);
    }
    if probe.target == ARM64.target
        && let Some(rustc) =
            std::env::var_os("BUILDTEST_PROBE_AARCH64_RUSTC").filter(|v| !v.is_empty())
    {
        let linker = std::env::var_os("BUILDTEST_PROBE_AARCH64_LINKER")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| OsString::from("aarch64-linux-gnu-gcc"));
        return build(probe, &out_dir, &dest, Some(Cross { rustc, linker }));
    }
    let how = if probe.target == ARM64.target {
        "; to embed one, set BUILDTEST_PROBE_AARCH64_RUSTC to a rustc with the \
         aarch64-unknown-linux-gnu standard library (scripts/arm64-toolchain.sh prepares one) or \
         BUILDTEST_PROBE_BIN_ARM64 to a static linux/arm64 buildtest-probe"
    } else {
        "; set BUILDTEST_PROBE_BIN to a static linux/amd64 buildtest-probe to embed one"
    };
    none(format!(
        "the {} probe is built only on a host of target {} or with a cross toolchain (this host is {host}){how}",
        probe.platform, probe.target
    ))
}

/// The nested `cargo build` of the probe for `probe.target`, with `cross`'s rustc and linker when
/// the host is another platform.
fn build(probe: &Probe, out_dir: &Path, dest: &Path, cross: Option<Cross>) -> Result<(), String> {
    let manifest_dir = env_path("CARGO_MANIFEST_DIR")?;
    let workspace_manifest = manifest_dir
        .parent()
        .map(|root| root.join("Cargo.toml"))
        .ok_or("the runner has no parent directory")?;
    let target_dir = out_dir.join(format!("probe-target-{}", probe.target));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&workspace_manifest)
        .args(["-p", "buildtest-probe", "--bin", "buildtest-probe"])
        .args(["--profile", PROBE_PROFILE, "--target", probe.target])
        .arg("--target-dir")
        .arg(&target_dir);
    scrub_env(&mut cmd);
    // Only the target units get these (with --target, build scripts and proc macros do not).
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static");
    // Where intermediate artifacts go (cargo >= 1.91); never share the outer build's.
    cmd.env("CARGO_BUILD_BUILD_DIR", &target_dir);
    let mut needs = format!(
        "the probe needs the {} standard library and glibc's static libraries, e.g. Debian's libc6-dev",
        probe.target
    );
    if let Some(cross) = &cross {
        let key = format!(
            "CARGO_TARGET_{}_LINKER",
            probe.target.to_uppercase().replace('-', "_")
        );
        cmd.env("RUSTC", &cross.rustc).env(&key, &cross.linker);
        needs = format!(
            "cross-compiled with RUSTC={} and linker {}: the rustc's sysroot must hold the {} \
             standard library, and the linker glibc's static aarch64 libraries (Debian's \
             gcc-aarch64-linux-gnu, libc6-dev-arm64-cross; scripts/arm64-toolchain.sh sets both up)",
            Path::new(&cross.rustc).display(),
            Path::new(&cross.linker).display(),
            probe.target
        );
    }

    let output = cmd
        .output()
        .map_err(|e| format!("run the nested `cargo build` of buildtest-probe: {e}"))?;
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        return Err(format!(
            "the nested `cargo build -p buildtest-probe --profile {PROBE_PROFILE} --target {}` \
             exited with {} (its output is above; {needs})",
            probe.target, output.status
        ));
    }
    let built = target_dir
        .join(probe.target)
        .join(PROBE_PROFILE)
        .join("buildtest-probe");
    std::fs::copy(&built, dest)
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
