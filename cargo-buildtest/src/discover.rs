//! Finding, building and listing the workspace's buildtest suites.
//!
//! A *suite* is a `harness = false` test target of a selected workspace package that depends on
//! `buildtest` (normally, or as a dev-dependency). `cargo metadata` gives the packages and their
//! dependencies; it does not report `harness`, so the package's manifest is read for its
//! `[[test]]` tables. The suites are built with one
//! `cargo test --no-run --message-format=json-render-diagnostics` (cargo's progress and
//! diagnostics stream to our stderr), and their executables are taken from cargo's
//! `compiler-artifact` messages.
//!
//! Under `cargo run` (or as a test of another crate) this process carries the variables cargo
//! sets for the crate it runs (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, `OUT_DIR` …). They are
//! removed from the nested cargo and from the suite binaries ([`inherited_crate_env`]): build
//! scripts such as `ring`'s watch some of them with `rerun-if-env-changed`, so leaking them would
//! rebuild those crates (and everything above them) on every run, and once more on the next
//! plain `cargo build`. The user's own settings (`CARGO_TARGET_DIR`, `CARGO_HOME`, `RUSTFLAGS`,
//! `CARGO_BUILD_*` …) are kept: they must apply to the suites' build.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::{Message, Metadata, MetadataCommand, Package};

use crate::args::CargoOpts;
use crate::errors::ExpectedError;

/// The name of the library every suite depends on.
pub const LIBRARY: &str = "buildtest";

/// The workspace as cargo describes it.
#[derive(Debug)]
pub struct Workspace {
    /// Cargo's metadata.
    pub metadata: Metadata,
}

/// A suite found in the manifests (not built yet).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SuiteTarget {
    /// The package name.
    pub package: String,
    /// The package id (as cargo reports it in artifact messages).
    pub package_id: String,
    /// The test target's name.
    pub target: String,
    /// The package's directory (suites run there, as under `cargo test`).
    pub manifest_dir: PathBuf,
}

impl SuiteTarget {
    /// `<package>::<target>`: the suite's name on the console and its JUnit testsuite name.
    pub fn name(&self) -> String {
        format!("{}::{}", self.package, self.target)
    }
}

/// A built suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// Where it comes from.
    pub target: SuiteTarget,
    /// The test executable.
    pub executable: PathBuf,
}

impl Workspace {
    /// Runs `cargo metadata` with the manifest and feature options.
    pub fn load(opts: &CargoOpts) -> Result<Workspace, ExpectedError> {
        let mut cmd = MetadataCommand::new();
        if let Some(path) = &opts.manifest_path {
            cmd.manifest_path(path);
        }
        let mut other = opts.feature_flags();
        if opts.locked {
            other.push("--locked".to_owned());
        }
        if opts.offline {
            other.push("--offline".to_owned());
        }
        cmd.other_options(other);
        let metadata = cmd.exec().map_err(ExpectedError::Metadata)?;
        Ok(Workspace { metadata })
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        self.metadata.workspace_root.as_std_path()
    }

    /// The target directory (`--target-dir` wins over cargo's).
    pub fn target_dir(&self, opts: &CargoOpts) -> PathBuf {
        match &opts.target_dir {
            Some(dir) => dir.clone(),
            None => self.metadata.target_directory.clone().into_std_path_buf(),
        }
    }

    /// The packages selected by `-p`, `--workspace`/`--exclude`, or cargo's default members.
    pub fn selected_packages(&self, opts: &CargoOpts) -> Result<Vec<&Package>, ExpectedError> {
        let members = self.metadata.workspace_packages();
        if !opts.package.is_empty() {
            let mut out = Vec::new();
            for spec in &opts.package {
                let name = spec.split_once('@').map_or(spec.as_str(), |(n, _)| n);
                let found = members
                    .iter()
                    .find(|p| p.name.as_str() == name)
                    .ok_or_else(|| ExpectedError::NoSuchPackage { spec: spec.clone() })?;
                if !out.iter().any(|p: &&Package| p.id == found.id) {
                    out.push(*found);
                }
            }
            return Ok(out);
        }
        if opts.workspace {
            for spec in &opts.exclude {
                if !members.iter().any(|p| p.name.as_str() == spec) {
                    return Err(ExpectedError::NoSuchPackage { spec: spec.clone() });
                }
            }
            return Ok(members
                .into_iter()
                .filter(|p| !opts.exclude.iter().any(|e| e == p.name.as_str()))
                .collect());
        }
        if self.metadata.workspace_default_members.is_available() {
            Ok(self.metadata.workspace_default_packages())
        } else {
            Ok(self.metadata.root_package().map_or(members, |p| vec![p]))
        }
    }

    /// The suites of the selected packages, sorted by package and target.
    pub fn suites(&self, opts: &CargoOpts) -> Result<Vec<SuiteTarget>, ExpectedError> {
        Ok(self.test_targets(opts)?.0)
    }

    /// The suites of the selected packages, and the other test targets of those packages
    /// (`<package>::<target>`): libtest's own, which `cargo buildtest` does not run.
    pub fn test_targets(
        &self,
        opts: &CargoOpts,
    ) -> Result<(Vec<SuiteTarget>, Vec<String>), ExpectedError> {
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        for package in self.selected_packages(opts)? {
            if !package.dependencies.iter().any(|d| d.name == LIBRARY) {
                continue;
            }
            let manifest = package.manifest_path.as_std_path();
            let custom = harness_false_tests(manifest)?;
            let manifest_dir = manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
            for target in &package.targets {
                if target.is_test() && custom.contains(&target.name) {
                    out.push(SuiteTarget {
                        package: package.name.to_string(),
                        package_id: package.id.repr.clone(),
                        target: target.name.clone(),
                        manifest_dir: manifest_dir.clone(),
                    });
                } else if target.is_test() {
                    skipped.push(format!("{}::{}", package.name, target.name));
                }
            }
        }
        out.sort();
        skipped.sort();
        Ok((out, skipped))
    }
}

/// The names of the `[[test]]` targets with `harness = false` in a manifest.
pub fn harness_false_tests(manifest: &Path) -> Result<BTreeSet<String>, ExpectedError> {
    let err = |source: Box<dyn std::error::Error + Send + Sync>| ExpectedError::Manifest {
        path: manifest.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(manifest).map_err(|e| err(e.into()))?;
    let doc: toml::Value = toml::from_str(&text).map_err(|e| err(e.into()))?;
    let mut out = BTreeSet::new();
    if let Some(tests) = doc.get("test").and_then(toml::Value::as_array) {
        for test in tests {
            let harness = test
                .get("harness")
                .and_then(toml::Value::as_bool)
                .unwrap_or(true);
            if let (false, Some(name)) = (harness, test.get("name").and_then(toml::Value::as_str)) {
                out.insert(name.to_owned());
            }
        }
    }
    Ok(out)
}

pub use buildtest::protocol::cargo_env::{crate_env_names, inherited_crate_env, is_crate_env};

/// The `cargo test --no-run` command line that builds `suites`.
pub fn build_command(opts: &CargoOpts, suites: &[SuiteTarget]) -> Vec<String> {
    let mut args: Vec<String> = [
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(opts.manifest_flags());
    args.extend(opts.feature_flags());
    if opts.release {
        args.push("--release".to_owned());
    }
    if let Some(dir) = &opts.target_dir {
        args.push("--target-dir".to_owned());
        args.push(dir.display().to_string());
    }
    let packages: BTreeSet<&str> = suites.iter().map(|s| s.package.as_str()).collect();
    for package in packages {
        args.push("-p".to_owned());
        args.push(package.to_owned());
    }
    let targets: BTreeSet<&str> = suites.iter().map(|s| s.target.as_str()).collect();
    for target in targets {
        args.push("--test".to_owned());
        args.push(target.to_owned());
    }
    args
}

/// Builds the suites, streaming cargo's own output to stderr, and returns them with their
/// executables (in the order of `suites`). `color` (`always`/`never`) is passed on to cargo.
pub fn build(
    opts: &CargoOpts,
    suites: &[SuiteTarget],
    color: Option<&str>,
) -> Result<Vec<Suite>, ExpectedError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut args = build_command(opts, suites);
    if let Some(color) = color {
        args.push(format!("--color={color}"));
    }
    let command_line = format!("cargo {}", args.join(" "));
    let mut command = Command::new(&cargo);
    for name in inherited_crate_env() {
        command.env_remove(name);
    }
    let mut child = command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| ExpectedError::Spawn {
            command: command_line.clone(),
            source,
        })?;
    let wanted: BTreeMap<(&str, &str), usize> = suites
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.package_id.as_str(), s.target.as_str()), i))
        .collect();
    let mut executables: Vec<Option<PathBuf>> = vec![None; suites.len()];
    if let Some(stdout) = child.stdout.take() {
        for message in Message::parse_stream(BufReader::new(stdout)) {
            let Ok(Message::CompilerArtifact(artifact)) = message else {
                continue;
            };
            let key = (
                artifact.package_id.repr.as_str(),
                artifact.target.name.as_str(),
            );
            if let (Some(&i), Some(exe), true) = (
                wanted.get(&key),
                &artifact.executable,
                artifact.profile.test,
            ) {
                executables[i] = Some(exe.clone().into_std_path_buf());
            }
        }
    }
    let status = child.wait().map_err(|source| ExpectedError::Spawn {
        command: command_line,
        source,
    })?;
    if !status.success() {
        return Err(ExpectedError::BuildFailed {
            status: status.to_string(),
        });
    }
    let mut out = Vec::new();
    for (target, exe) in suites.iter().zip(executables) {
        let executable = exe.ok_or_else(|| ExpectedError::BuildFailed {
            status: format!(
                "success, but cargo reported no executable for {}",
                target.name()
            ),
        })?;
        out.push(Suite {
            target: target.clone(),
            executable,
        });
    }
    Ok(out)
}

/// The libtest arguments that select tests: `--ignored`/`--include-ignored`, then the user's.
pub fn selection_args(ignored: bool, include_ignored: bool, test_args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if ignored {
        out.push("--ignored".to_owned());
    }
    if include_ignored {
        out.push("--include-ignored".to_owned());
    }
    out.extend(test_args.iter().cloned());
    out
}

/// Lists a suite's tests (`--list --format terse`): names in the binary's order.
pub fn list(suite: &Suite, selection: &[String]) -> Result<Vec<String>, ExpectedError> {
    let mut command = Command::new(&suite.executable);
    for name in inherited_crate_env() {
        command.env_remove(name);
    }
    let output = command
        .args(["--list", "--format", "terse"])
        .args(selection)
        .current_dir(&suite.target.manifest_dir)
        .env("CARGO_MANIFEST_DIR", &suite.target.manifest_dir)
        .env_remove(buildtest::protocol::settings::RESULTS.var)
        .env_remove(buildtest::protocol::settings::JUNIT.var)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ExpectedError::Spawn {
            command: format!("{} --list", suite.executable.display()),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(ExpectedError::ListFailed {
            suite: suite.target.name(),
            status: output.status.to_string(),
            stderr: if stderr.trim().is_empty() {
                String::new()
            } else {
                format!("\n{}", stderr.trim_end())
            },
        });
    }
    Ok(parse_terse_list(&String::from_utf8_lossy(&output.stdout)))
}

/// Parses libtest's `--list --format terse` output (`name: test` lines).
pub fn parse_terse_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn terse_lists_parse() {
        let out = "a::b: test\nc: test\n\nsome noise\nd: bench\n";
        assert_eq!(parse_terse_list(out), ["a::b", "c"]);
    }

    #[test]
    fn only_harness_false_tests_are_suites() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[package]\nname = \"p\"\n[[test]]\nname = \"images\"\nharness = false\n\
             [[test]]\nname = \"plain\"\n[[test]]\nname = \"other\"\nharness = true\n",
        )
        .unwrap();
        let names = harness_false_tests(&manifest).unwrap();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["images"]);
    }

    #[test]
    fn only_the_variables_cargo_sets_for_a_running_crate_are_scrubbed() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_MANIFEST_LINKS",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
            "CARGO_TARGET_TMPDIR",
        ] {
            assert!(is_crate_env(name), "{name} should be scrubbed");
        }
        // The user's configuration must reach the suites' build.
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO_BUILD_TARGET",
            "CARGO_PROFILE_DEV_OPT_LEVEL",
            "CARGO_INCREMENTAL",
            "CARGO_TERM_COLOR",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "RUSTC_WRAPPER",
            "PATH",
            "HOME",
        ] {
            assert!(!is_crate_env(name), "{name} must be kept");
        }
        let vars = [
            ("CARGO_MANIFEST_DIR", "/ws/cargo-buildtest"),
            ("CARGO_TARGET_DIR", "/t"),
            ("CARGO_PKG_VERSION", "0.1.0"),
            ("RUSTFLAGS", "-Cdebuginfo=0"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        assert_eq!(
            crate_env_names(vars),
            [
                OsString::from("CARGO_MANIFEST_DIR"),
                OsString::from("CARGO_PKG_VERSION")
            ]
        );
    }

    #[test]
    fn the_build_command_names_packages_and_targets_once() {
        let suite = |p: &str, t: &str| SuiteTarget {
            package: p.into(),
            package_id: format!("id-{p}"),
            target: t.into(),
            manifest_dir: PathBuf::new(),
        };
        let opts = CargoOpts {
            release: true,
            features: vec!["x".into()],
            ..CargoOpts::default()
        };
        let args = build_command(
            &opts,
            &[suite("a", "s1"), suite("a", "s2"), suite("b", "s1")],
        );
        assert_eq!(
            args.join(" "),
            "test --no-run --message-format=json-render-diagnostics --features x --release \
             -p a -p b --test s1 --test s2"
        );
    }
}
