//! Metadata checks: assertions on the input's image config (`ENV`, `ENTRYPOINT`, `CMD`,
//! `WORKDIR`, `USER`, `EXPOSE`, `VOLUME`, `LABEL`), evaluated by the runner from the config, with
//! no exec and no probe.
//!
//! ```
//! use buildtest::check::{Check, metadata};
//! use buildtest::llb::ImageConfig;
//!
//! let check = metadata()
//!     .env("MODE", "prod")
//!     .workdir("/srv")
//!     .exposes("8080")
//!     .label_matches("org.opencontainers.image.version", r"^\d+\.\d+");
//! assert_eq!(Check::from(check.clone()).label(), "metadata: env MODE, workdir, exposes 8080/tcp, label org.opencontainers.image.version");
//!
//! let config = ImageConfig::from_image_json(br#"{"config":{"Env":["MODE=test"],"WorkingDir":"/srv",
//!     "ExposedPorts":{"8080/tcp":{}},"Labels":{"org.opencontainers.image.version":"1.2.3"}}}"#)?;
//! let report = check.evaluate("example:1", &config)?;
//! assert_eq!(report.failed, 1);
//! assert_eq!(report.summary, r#"1 of 4 assertions failed: env MODE: expected "prod", got "test""#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What config an input carries and how values compare: see [`Metadata`].

use std::fmt;

use super::errors::CheckError;
use super::probe_report::{AssertionReport, CheckReport, Verdict};
use crate::llb::ImageConfig;

/// The label prefix of every metadata check (`metadata: env PATH, user`).
pub const METADATA_LABEL: &str = "metadata";

/// One assertion of a [`Metadata`] check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataAssertion {
    /// `ENV key=value`: the variable is set to exactly this value.
    Env {
        /// Variable name.
        key: String,
        /// Expected value.
        value: String,
    },
    /// The variable is set and the regex matches somewhere in its value.
    EnvMatches {
        /// Variable name.
        key: String,
        /// The regex.
        pattern: String,
    },
    /// `ENTRYPOINT` is exactly this argv.
    Entrypoint(Vec<String>),
    /// `CMD` is exactly this argv.
    Cmd(Vec<String>),
    /// `WORKDIR` is this path (unset reads as `/`).
    Workdir(String),
    /// `USER` is exactly this (unset reads as `""`).
    User(String),
    /// This port is exposed, as given (`8080`, `8080/tcp`, `53/udp`).
    Exposes(String),
    /// This path is a volume.
    Volume(String),
    /// `LABEL key=value`: the label has exactly this value.
    Label {
        /// Label key.
        key: String,
        /// Expected value.
        value: String,
    },
    /// The label is set and the regex matches somewhere in its value.
    LabelMatches {
        /// Label key.
        key: String,
        /// The regex.
        pattern: String,
    },
}

impl MetadataAssertion {
    /// The assertion's name in reports and labels: `env PATH`, `entrypoint`, `exposes 8080/tcp`,
    /// `label org.example`.
    pub fn name(&self) -> String {
        match self {
            MetadataAssertion::Env { key, .. } => format!("env {key}"),
            MetadataAssertion::EnvMatches { key, .. } => format!("env {key} (regex)"),
            MetadataAssertion::Entrypoint(_) => "entrypoint".to_owned(),
            MetadataAssertion::Cmd(_) => "cmd".to_owned(),
            MetadataAssertion::Workdir(_) => "workdir".to_owned(),
            MetadataAssertion::User(_) => "user".to_owned(),
            MetadataAssertion::Exposes(port) => format!("exposes {}", normalize_port(port)),
            MetadataAssertion::Volume(path) => format!("volume {path}"),
            MetadataAssertion::Label { key, .. } => format!("label {key}"),
            MetadataAssertion::LabelMatches { key, .. } => format!("label {key} (regex)"),
        }
    }

    /// The short name used in the check's label (no `(regex)` suffix).
    fn label_part(&self) -> String {
        match self {
            MetadataAssertion::EnvMatches { key, .. } => format!("env {key}"),
            MetadataAssertion::LabelMatches { key, .. } => format!("label {key}"),
            other => other.name(),
        }
    }
}

/// A check on the input's image config. Built with [`metadata`]; one check (one JUnit testcase)
/// with every assertion added to it.
///
/// # What config an input carries
///
/// A metadata check reads the config of the test's input:
///
/// - [`State::image`](crate::llb::State::image): the image's config, resolved by the runner once
///   per run and image (from the builder's local store first; on a Docker engine without the
///   gateway, from its image-inspect API).
/// - Any state with a config attached ([`State::with_image_config`](crate::llb::State::with_image_config)),
///   and every state derived from one by `run(..).root()`, `file(..)` or `requires(..)`: that
///   config. A step does not change the config (as a `RUN` or `COPY` in a Dockerfile does not).
/// - Scratch, a local directory, a merge or a diff, and steps on a state that has no config
///   attached: **no config**; every metadata check on it is an error saying why.
///
/// # How values compare
///
/// - `env(key, value)`: the variable's value exactly (`ENV` values are expanded at build time,
///   so `PATH=/opt/app/bin:$PATH` reads as the expanded path). `env_matches` and
///   `label_matches` search the value with a regex (`regex-lite`, the same syntax as the
///   [probe's](super#regex-syntax)); an unset variable or label fails either way.
/// - `entrypoint(argv)`, `cmd(argv)`: the exec-form list exactly (a shell-form instruction is
///   stored as `["/bin/sh", "-c", "…"]`).
/// - `workdir(path)`: `WorkingDir`, with an unset one read as `/` (where a container starts).
/// - `user(user)`: `User` exactly, as written in the Dockerfile (`app`, `1000:1000`); unset is
///   `""` (root).
/// - `exposes(port)`: `port/proto` is among `ExposedPorts`; a bare number means `/tcp`, as in
///   `EXPOSE 8080`.
/// - `volume(path)`: the path is among `Volumes`.
///
/// Every assertion is evaluated and every failing one reported with expected and actual values,
/// in the same report format as the probe's ([`CheckReport`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use = "a check does nothing unless passed to Test::check"]
pub struct Metadata {
    pub(crate) assertions: Vec<MetadataAssertion>,
}

/// A check on the input's image config, e.g.
/// `metadata().env("PATH", "/usr/bin:/bin").user("app").exposes("8080/tcp")`.
pub fn metadata() -> Metadata {
    Metadata::default()
}

impl Metadata {
    fn assert(mut self, assertion: MetadataAssertion) -> Metadata {
        self.assertions.push(assertion);
        self
    }

    /// Asserts that environment variable `key` is set to exactly `value`.
    pub fn env(self, key: impl Into<String>, value: impl Into<String>) -> Metadata {
        self.assert(MetadataAssertion::Env {
            key: key.into(),
            value: value.into(),
        })
    }

    /// Asserts that environment variable `key` is set and the regex `re` matches somewhere in
    /// its value.
    pub fn env_matches(self, key: impl Into<String>, re: impl Into<String>) -> Metadata {
        self.assert(MetadataAssertion::EnvMatches {
            key: key.into(),
            pattern: re.into(),
        })
    }

    /// Asserts that `ENTRYPOINT` is exactly `argv`.
    pub fn entrypoint(self, argv: impl IntoIterator<Item = impl Into<String>>) -> Metadata {
        self.assert(MetadataAssertion::Entrypoint(
            argv.into_iter().map(Into::into).collect(),
        ))
    }

    /// Asserts that `CMD` is exactly `argv`.
    pub fn cmd(self, argv: impl IntoIterator<Item = impl Into<String>>) -> Metadata {
        self.assert(MetadataAssertion::Cmd(
            argv.into_iter().map(Into::into).collect(),
        ))
    }

    /// Asserts that `WORKDIR` is `path` (an image without one starts in `/`).
    pub fn workdir(self, path: impl Into<String>) -> Metadata {
        self.assert(MetadataAssertion::Workdir(path.into()))
    }

    /// Asserts that `USER` is exactly `user` (`""` when the image sets none).
    pub fn user(self, user: impl Into<String>) -> Metadata {
        self.assert(MetadataAssertion::User(user.into()))
    }

    /// Asserts that `port` is exposed: `8080/tcp`, `53/udp`, or a bare `8080` (meaning tcp).
    pub fn exposes(self, port: impl Into<String>) -> Metadata {
        self.assert(MetadataAssertion::Exposes(port.into()))
    }

    /// Asserts that `path` is a volume.
    pub fn volume(self, path: impl Into<String>) -> Metadata {
        self.assert(MetadataAssertion::Volume(path.into()))
    }

    /// Asserts that label `key` is set to exactly `value`.
    pub fn label(self, key: impl Into<String>, value: impl Into<String>) -> Metadata {
        self.assert(MetadataAssertion::Label {
            key: key.into(),
            value: value.into(),
        })
    }

    /// Asserts that label `key` is set and the regex `re` matches somewhere in its value.
    pub fn label_matches(self, key: impl Into<String>, re: impl Into<String>) -> Metadata {
        self.assert(MetadataAssertion::LabelMatches {
            key: key.into(),
            pattern: re.into(),
        })
    }

    /// The assertions, in the order they were added.
    pub fn assertions(&self) -> &[MetadataAssertion] {
        &self.assertions
    }

    /// The label's text after `metadata: `: the assertions' short names, comma-separated.
    pub(crate) fn label_body(&self) -> String {
        let parts: Vec<String> = self
            .assertions
            .iter()
            .map(MetadataAssertion::label_part)
            .collect();
        parts.join(", ")
    }

    /// Validates the check: at least one assertion, environment variable names, ports, and every
    /// regex (compiled with the probe's engine, `regex-lite`). `label` names the check in errors.
    pub fn validate(&self, label: &str) -> Result<(), CheckError> {
        if self.assertions.is_empty() {
            return Err(CheckError::NoAssertions {
                label: label.to_owned(),
            });
        }
        for assertion in &self.assertions {
            match assertion {
                MetadataAssertion::Env { key, .. } | MetadataAssertion::EnvMatches { key, .. }
                    if key.is_empty() || key.contains('=') =>
                {
                    return Err(CheckError::InvalidEnvKey {
                        label: label.to_owned(),
                        key: key.clone(),
                    });
                }
                MetadataAssertion::Exposes(port) if parse_port(port).is_none() => {
                    return Err(CheckError::InvalidPort {
                        label: label.to_owned(),
                        port: port.clone(),
                    });
                }
                _ => {}
            }
            if let MetadataAssertion::EnvMatches { pattern, .. }
            | MetadataAssertion::LabelMatches { pattern, .. } = assertion
            {
                compile(label, pattern)?;
            }
        }
        Ok(())
    }

    /// Evaluates every assertion against `config`, the config of image `subject` (a name for the
    /// report). The report has the probe's shape: every assertion in order, a one-line summary of
    /// the failures with expected and actual values. Fails only on an invalid check (see
    /// [`Metadata::validate`]).
    pub fn evaluate(&self, subject: &str, config: &ImageConfig) -> Result<CheckReport, CheckError> {
        let label = format!("{METADATA_LABEL}: {}", self.label_body());
        self.validate(&label)?;
        let env = config.env_pairs();
        let env_var = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let mut assertions = Vec::with_capacity(self.assertions.len());
        for assertion in &self.assertions {
            let (expected, actual, held) = match assertion {
                MetadataAssertion::Env { key, value } => {
                    let actual = env_var(key);
                    (
                        show(value),
                        show_opt(actual),
                        actual == Some(value.as_str()),
                    )
                }
                MetadataAssertion::EnvMatches { key, pattern } => {
                    let actual = env_var(key);
                    let re = compile(&label, pattern)?;
                    (
                        format!("a match of /{pattern}/"),
                        show_opt(actual),
                        actual.is_some_and(|v| re.is_match(v)),
                    )
                }
                MetadataAssertion::Entrypoint(argv) => (
                    show_list(argv),
                    show_list(&config.entrypoint),
                    *argv == config.entrypoint,
                ),
                MetadataAssertion::Cmd(argv) => {
                    (show_list(argv), show_list(&config.cmd), *argv == config.cmd)
                }
                MetadataAssertion::Workdir(path) => {
                    let actual = config.exec_cwd();
                    let shown = if config.working_dir.is_empty() {
                        format!("{} (not set)", show(&actual))
                    } else {
                        show(&config.working_dir)
                    };
                    (show(path), shown, *path == actual)
                }
                MetadataAssertion::User(user) => {
                    let shown = if config.user.is_empty() {
                        "\"\" (not set: root)".to_owned()
                    } else {
                        show(&config.user)
                    };
                    (show(user), shown, *user == config.user)
                }
                MetadataAssertion::Exposes(port) => {
                    let port = normalize_port(port);
                    let actual: Vec<String> = config.exposed_ports.iter().cloned().collect();
                    (
                        format!("{} among the exposed ports", show(&port)),
                        show_set(&actual),
                        config.exposed_ports.contains(&port),
                    )
                }
                MetadataAssertion::Volume(path) => {
                    let actual: Vec<String> = config.volumes.iter().cloned().collect();
                    (
                        format!("{} among the volumes", show(path)),
                        show_set(&actual),
                        config.volumes.contains(path),
                    )
                }
                MetadataAssertion::Label { key, value } => {
                    let actual = config.labels.get(key).map(String::as_str);
                    (
                        show(value),
                        show_opt(actual),
                        actual == Some(value.as_str()),
                    )
                }
                MetadataAssertion::LabelMatches { key, pattern } => {
                    let actual = config.labels.get(key).map(String::as_str);
                    let re = compile(&label, pattern)?;
                    (
                        format!("a match of /{pattern}/"),
                        show_opt(actual),
                        actual.is_some_and(|v| re.is_match(v)),
                    )
                }
            };
            assertions.push(AssertionReport {
                name: assertion.name(),
                held,
                expected,
                actual: if held { None } else { Some(actual) },
                notes: Vec::new(),
            });
        }
        let failed: Vec<&AssertionReport> = assertions.iter().filter(|a| !a.held).collect();
        let total = assertions.len();
        let plural = if total == 1 { "" } else { "s" };
        let summary = if failed.is_empty() {
            format!("all {total} assertion{plural} held")
        } else {
            let details: Vec<String> = failed
                .iter()
                .map(|a| {
                    format!(
                        "{}: expected {}, got {}",
                        a.name,
                        a.expected,
                        a.actual.as_deref().unwrap_or("")
                    )
                })
                .collect();
            format!(
                "{} of {total} assertion{plural} failed: {}",
                failed.len(),
                details.join("; ")
            )
        };
        let failed = failed.len();
        Ok(CheckReport {
            version: super::SPEC_VERSION.to_owned(),
            subject: format!("{METADATA_LABEL} {}", show(subject)),
            verdict: if failed == 0 {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            assertions,
            error: None,
            summary,
            failed,
            total,
        })
    }
}

impl fmt::Display for MetadataAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

fn compile(label: &str, pattern: &str) -> Result<regex_lite::Regex, CheckError> {
    regex_lite::Regex::new(pattern).map_err(|e| CheckError::InvalidRegex {
        label: label.to_owned(),
        pattern: pattern.to_owned(),
        reason: e.to_string(),
    })
}

/// `(port, proto)` of `8080`, `8080/tcp`, `53/udp`, `9/sctp`; `None` for anything else.
fn parse_port(port: &str) -> Option<(u16, &str)> {
    let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
    let number: u16 = number.parse().ok().filter(|n| *n > 0)?;
    matches!(proto, "tcp" | "udp" | "sctp").then_some((number, proto))
}

/// `8080` → `8080/tcp` (as `EXPOSE` stores it); anything else as given.
fn normalize_port(port: &str) -> String {
    match parse_port(port) {
        Some((number, proto)) => format!("{number}/{proto}"),
        None => port.to_owned(),
    }
}

/// A value quoted on one line.
fn show(value: &str) -> String {
    format!("{value:?}")
}

fn show_opt(value: Option<&str>) -> String {
    value.map_or_else(|| "(not set)".to_owned(), show)
}

fn show_list(items: &[String]) -> String {
    if items.is_empty() {
        return "[] (not set)".to_owned();
    }
    let shown: Vec<String> = items.iter().map(|s| show(s)).collect();
    format!("[{}]", shown.join(", "))
}

fn show_set(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    let shown: Vec<String> = items.iter().map(|s| show(s)).collect();
    shown.join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DOC: &[u8] = br#"{"config":{
        "User":"app","Env":["PATH=/opt/app/bin:/usr/bin:/bin","MODE=prod"],
        "Entrypoint":["/opt/app/bin/app"],"Cmd":["--serve","--port=8080"],"WorkingDir":"/srv",
        "ExposedPorts":{"8080/tcp":{},"53/udp":{}},"Volumes":{"/data":{}},
        "Labels":{"org.example.version":"1.2.3","team":"infra"}}}"#;

    fn config() -> ImageConfig {
        ImageConfig::from_image_json(DOC).unwrap()
    }

    #[test]
    fn every_assertion_holds_on_matching_values() {
        let m = metadata()
            .env("PATH", "/opt/app/bin:/usr/bin:/bin")
            .env_matches("MODE", "^pr")
            .entrypoint(["/opt/app/bin/app"])
            .cmd(["--serve", "--port=8080"])
            .workdir("/srv")
            .user("app")
            .exposes("8080")
            .exposes("8080/tcp")
            .exposes("53/udp")
            .volume("/data")
            .label("team", "infra")
            .label_matches("org.example.version", r"^\d+\.\d+\.\d+$");
        let report = m.evaluate("img", &config()).unwrap();
        assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
        assert_eq!((report.failed, report.total), (0, 12));
        assert_eq!(report.summary, "all 12 assertions held");
        assert_eq!(report.subject, "metadata \"img\"");
    }

    #[test]
    fn every_failing_assertion_is_reported_with_expected_and_actual() {
        let m = metadata()
            .env("PATH", "/usr/bin")
            .env("MISSING", "x")
            .env_matches("MODE", "^dev")
            .entrypoint(["app"])
            .cmd(Vec::<String>::new())
            .workdir("/")
            .user("root")
            .exposes("9090")
            .volume("/cache")
            .label("team", "web")
            .label_matches("absent", ".")
            .user("app");
        let report = m.evaluate("img", &config()).unwrap();
        assert_eq!(report.verdict, Verdict::Fail);
        assert_eq!((report.failed, report.total), (11, 12));
        let by_name = |n: &str| {
            report
                .assertions
                .iter()
                .find(|a| a.name == n)
                .unwrap()
                .clone()
        };
        let path = by_name("env PATH");
        assert_eq!(path.expected, "\"/usr/bin\"");
        assert_eq!(
            path.actual.as_deref(),
            Some("\"/opt/app/bin:/usr/bin:/bin\"")
        );
        assert_eq!(by_name("env MISSING").actual.as_deref(), Some("(not set)"));
        assert_eq!(by_name("env MODE (regex)").expected, "a match of /^dev/");
        assert_eq!(
            by_name("entrypoint").actual.as_deref(),
            Some("[\"/opt/app/bin/app\"]")
        );
        assert_eq!(by_name("cmd").expected, "[] (not set)");
        assert_eq!(by_name("workdir").actual.as_deref(), Some("\"/srv\""));
        assert_eq!(
            by_name("exposes 9090/tcp").actual.as_deref(),
            Some("\"53/udp\", \"8080/tcp\"")
        );
        assert_eq!(
            by_name("volume /cache").actual.as_deref(),
            Some("\"/data\"")
        );
        assert_eq!(by_name("label team").actual.as_deref(), Some("\"infra\""));
        assert_eq!(
            by_name("label absent (regex)").actual.as_deref(),
            Some("(not set)")
        );
        assert!(
            report.summary.starts_with(
                "11 of 12 assertions failed: env PATH: expected \"/usr/bin\", got \"/opt/app/bin:/usr/bin:/bin\"; env MISSING"
            ),
            "{}",
            report.summary
        );
        // The last `user` held: it is in the report, not in the failures.
        assert!(report.assertions.last().unwrap().held);
        let details = report.details();
        assert!(
            details.contains("user: expected \"root\"\n    actual: \"app\""),
            "{details}"
        );
    }

    #[test]
    fn unset_fields_read_as_docker_run_would_start() {
        let empty = ImageConfig::default();
        let report = metadata()
            .workdir("/")
            .user("")
            .evaluate("scratchy", &empty)
            .unwrap();
        assert_eq!(report.verdict, Verdict::Pass);
        let report = metadata()
            .user("root")
            .workdir("/srv")
            .evaluate("x", &empty)
            .unwrap();
        assert_eq!(
            report.summary,
            "2 of 2 assertions failed: user: expected \"root\", got \"\" (not set: root); workdir: expected \"/srv\", got \"/\" (not set)"
        );
    }

    #[test]
    fn invalid_checks_are_typed_errors() {
        let e = metadata().validate("metadata").unwrap_err();
        assert!(matches!(e, CheckError::NoAssertions { .. }), "{e:?}");
        let e = metadata()
            .env_matches("A", "(")
            .evaluate("x", &config())
            .unwrap_err();
        assert!(
            matches!(&e, CheckError::InvalidRegex { pattern, .. } if pattern == "("),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("compile regex \"(\" of check `metadata: env A`"),
            "{e}"
        );
        let e = metadata()
            .label_matches("k", "[")
            .validate("m")
            .unwrap_err();
        assert!(matches!(e, CheckError::InvalidRegex { .. }), "{e:?}");
        for bad in ["", "http", "0", "70000", "80/icmp", "80/"] {
            let e = metadata().exposes(bad).validate("m").unwrap_err();
            assert!(matches!(e, CheckError::InvalidPort { .. }), "{bad}: {e:?}");
        }
        let e = metadata().env("A=B", "x").validate("m").unwrap_err();
        assert!(matches!(e, CheckError::InvalidEnvKey { .. }), "{e:?}");
    }

    #[test]
    fn ports_normalize_like_expose() {
        assert_eq!(normalize_port("8080"), "8080/tcp");
        assert_eq!(normalize_port("53/udp"), "53/udp");
        assert_eq!(parse_port("0080"), Some((80, "tcp")));
    }
}
