//! The harness's configuration from the environment (see the table in [`crate::harness`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::client::TlsOptions;

/// Concurrent solves when `BUILDTEST_JOBS` is not set.
pub const DEFAULT_JOBS: usize = 16;
/// Per-check timeout when `BUILDTEST_TIMEOUT` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// An environment variable with a value the harness cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read {name}={value:?}: {expected}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What was expected.
    pub expected: &'static str,
}

/// How the check probe reaches the builder (`BUILDTEST_PROBE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProbeDelivery {
    /// `auto` (default): `image` on a Docker engine, else `session`; when loading the image
    /// fails, `inline` with the reason in the run's header.
    #[default]
    Auto,
    /// `image`: loaded once into the Docker engine's image store as `buildtest/probe:<hash>` and
    /// referenced by every check (an error on builders that are not a Docker engine).
    Image,
    /// `inline`: a `mkfile` op carrying the probe's bytes in every check's Definition.
    Inline,
    /// `session`: a local directory served by the run's client session, so the probe's bytes
    /// reach the builder at most once per run (and not again while the builder keeps them); the
    /// default on builders that are not a Docker engine.
    Session,
}

/// Settings read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `BUILDTEST_JOBS`: how many checks are solved at once.
    pub jobs: usize,
    /// `BUILDTEST_TIMEOUT` (seconds): per-check timeout.
    pub timeout: Duration,
    /// `BUILDTEST_STRATEGY`: `auto` (default), `passthrough`, `direct`, `discard`, `mergediff`.
    pub strategy: Option<String>,
    /// `BUILDTEST_NO_CACHE`: re-run every check exec (inputs stay cached).
    pub no_cache: bool,
    /// `BUILDTEST_PROBE`: how the check probe reaches the builder.
    pub probe: ProbeDelivery,
    /// `BUILDTEST_JUNIT`: write JUnit XML for this binary to this path.
    pub junit: Option<PathBuf>,
    /// `BUILDTEST_RESULTS`: append JSON-lines records to this file.
    pub results: Option<PathBuf>,
    /// `BUILDTEST_SUITE`: the suite name in records and JUnit.
    pub suite: Option<String>,
    /// `BUILDTEST_TLSCACERT`, `BUILDTEST_TLSCERT`, `BUILDTEST_TLSKEY`, `BUILDTEST_TLSSERVERNAME`:
    /// buildctl's TLS flags for a `tcp://` `BUILDKIT_HOST` (set by `cargo buildtest`).
    pub tls: TlsOptions,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let jobs = match get("BUILDTEST_JOBS") {
            None => DEFAULT_JOBS,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(ConfigError {
                        name: "BUILDTEST_JOBS",
                        value: v,
                        expected: "a positive number of concurrent solves",
                    });
                }
            },
        };
        let timeout = match get("BUILDTEST_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some(v) => match v.parse::<f64>() {
                Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
                    Duration::from_secs_f64(secs)
                }
                _ => {
                    return Err(ConfigError {
                        name: "BUILDTEST_TIMEOUT",
                        value: v,
                        expected: "a positive number of seconds",
                    });
                }
            },
        };
        let no_cache = match get("BUILDTEST_NO_CACHE").as_deref() {
            None | Some("0" | "false" | "no" | "off") => false,
            Some("1" | "true" | "yes" | "on") => true,
            Some(other) => {
                return Err(ConfigError {
                    name: "BUILDTEST_NO_CACHE",
                    value: other.to_owned(),
                    expected: "1/true/yes/on or 0/false/no/off",
                });
            }
        };
        let probe = match get("BUILDTEST_PROBE").as_deref() {
            None | Some("auto") => ProbeDelivery::Auto,
            Some("image") => ProbeDelivery::Image,
            Some("inline") => ProbeDelivery::Inline,
            Some("session") => ProbeDelivery::Session,
            Some(other) => {
                return Err(ConfigError {
                    name: "BUILDTEST_PROBE",
                    value: other.to_owned(),
                    expected: "auto, image, inline or session",
                });
            }
        };
        Ok(Config {
            jobs,
            timeout,
            strategy: get("BUILDTEST_STRATEGY"),
            no_cache,
            probe,
            junit: get("BUILDTEST_JUNIT").map(PathBuf::from),
            results: get("BUILDTEST_RESULTS").map(PathBuf::from),
            suite: get("BUILDTEST_SUITE"),
            tls: TlsOptions {
                ca_cert: get("BUILDTEST_TLSCACERT").map(PathBuf::from),
                cert: get("BUILDTEST_TLSCERT").map(PathBuf::from),
                key: get("BUILDTEST_TLSKEY").map(PathBuf::from),
                server_name: get("BUILDTEST_TLSSERVERNAME"),
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.jobs, DEFAULT_JOBS);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert!(!c.no_cache);
        assert_eq!(c.probe, ProbeDelivery::Auto);
        assert_eq!(c.junit, None);
    }

    #[test]
    fn values_and_errors() {
        let c = config(&[
            ("BUILDTEST_JOBS", "3"),
            ("BUILDTEST_TIMEOUT", "2.5"),
            ("BUILDTEST_NO_CACHE", "1"),
            ("BUILDTEST_JUNIT", "out/j.xml"),
            ("BUILDTEST_TLSCACERT", "/certs/ca.pem"),
            ("BUILDTEST_TLSSERVERNAME", "buildkitd"),
        ])
        .unwrap();
        assert_eq!(c.jobs, 3);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert!(c.no_cache);
        assert_eq!(c.junit, Some(PathBuf::from("out/j.xml")));
        assert_eq!(c.tls.ca_cert, Some(PathBuf::from("/certs/ca.pem")));
        assert_eq!(c.tls.server_name.as_deref(), Some("buildkitd"));
        assert_eq!(c.tls.cert, None);
        let err = config(&[("BUILDTEST_JOBS", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "read BUILDTEST_JOBS=\"0\": a positive number of concurrent solves"
        );
        assert!(config(&[("BUILDTEST_TIMEOUT", "soon")]).is_err());
        assert!(config(&[("BUILDTEST_NO_CACHE", "maybe")]).is_err());
        let probe = |v: &str| config(&[("BUILDTEST_PROBE", v)]).map(|c| c.probe);
        assert_eq!(probe("image").unwrap(), ProbeDelivery::Image);
        assert_eq!(probe("inline").unwrap(), ProbeDelivery::Inline);
        assert_eq!(
            probe("registry").unwrap_err().to_string(),
            "read BUILDTEST_PROBE=\"registry\": auto, image, inline or session"
        );
    }
}
