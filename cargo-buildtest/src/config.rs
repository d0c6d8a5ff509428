//! Settings: flags > environment > configuration files > defaults.
//!
//! Configuration is read from two places in the workspace root, key by key, the first one
//! that sets a key wins:
//!
//! 1. `.config/buildtest.toml` (top-level keys),
//! 2. `[workspace.metadata.buildtest]` in the workspace's `Cargo.toml`.
//!
//! Keys: `builder` (a buildx builder name, or an address as for `--addr`: a value with `://` is
//! an address, e.g. `docker+unix:///var/run/docker.sock` for the Docker engine's embedded
//! BuildKit, `unix:///run/buildkit/buildkitd.sock` for a buildkitd — a plain `unix://` address
//! is spoken to as a buildkitd, so it fails on a Docker socket),
//! `strategy`, `jobs`, `timeout` (seconds, or a string with a unit: `"90s"`, `"5m"`), `junit`
//! (a path relative to the workspace root), `no-cache`. Any other key is an error naming the file
//! and the key.
//!
//! The environment: `BUILDKIT_HOST` (an address), `BUILDX_BUILDER` (a buildx builder name),
//! `BUILDTEST_STRATEGY`, `BUILDTEST_JOBS`, `BUILDTEST_TIMEOUT`, `BUILDTEST_NO_CACHE`
//! (`1`/`true`), `BUILDTEST_JUNIT`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::args::Args;
use crate::errors::ExpectedError;

/// Where a setting came from (shown in the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A configuration file.
    Config(PathBuf),
    /// The built-in default.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "${var}"),
            Source::Config(path) => write!(f, "{}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// The builder the user asked for, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuilderChoice {
    /// An address (`unix://`, `tcp://`, `docker-container://` …).
    Addr(String),
    /// A buildx builder name.
    Named(String),
}

/// A value with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// The `[workspace.metadata.buildtest]` table and `.config/buildtest.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// A buildx builder name or an address.
    pub builder: Option<String>,
    /// The strategy.
    pub strategy: Option<String>,
    /// Concurrent solves.
    pub jobs: Option<usize>,
    /// Per-check timeout.
    pub timeout: Option<TimeoutValue>,
    /// JUnit path, relative to the workspace root.
    pub junit: Option<PathBuf>,
    /// Re-run checks without the cache.
    pub no_cache: Option<bool>,
}

/// A timeout in a configuration file: seconds, or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TimeoutValue {
    /// Seconds.
    Seconds(u64),
    /// `"90s"`, `"5m"` …
    Text(String),
}

/// A configuration file that was read, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The file.
    pub path: PathBuf,
    /// Its settings.
    pub config: FileConfig,
}

/// Reads `.config/buildtest.toml` under `root` (if present) and `[workspace.metadata.buildtest]`
/// (given as cargo metadata's `workspace_metadata`), highest precedence first.
pub fn load_layers(
    root: &Path,
    workspace_metadata: &serde_json::Value,
) -> Result<Vec<Layer>, ExpectedError> {
    let mut layers = Vec::new();
    let file = root.join(".config").join("buildtest.toml");
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let config =
                toml::from_str::<FileConfig>(&text).map_err(|e| ExpectedError::Config {
                    path: file.clone(),
                    message: e.to_string().trim_end().to_owned(),
                })?;
            layers.push(Layer { path: file, config });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ExpectedError::Io {
                action: "read configuration",
                path: file,
                source,
            });
        }
    }
    if let Some(table) = workspace_metadata.get("buildtest") {
        let path = root.join("Cargo.toml");
        let config = serde_json::from_value::<FileConfig>(table.clone()).map_err(|e| {
            ExpectedError::Config {
                path: path.clone(),
                message: format!("[workspace.metadata.buildtest]: {e}"),
            }
        })?;
        layers.push(Layer { path, config });
    }
    Ok(layers)
}

/// The effective settings of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The builder asked for; `None` lets the client pick its default (the Docker engine …).
    pub builder: Option<Sourced<BuilderChoice>>,
    /// The strategy asked for; `None` = probe the builder.
    pub strategy: Option<Sourced<String>>,
    /// Concurrent solves per suite; `None` = the harness's default.
    pub jobs: Option<Sourced<usize>>,
    /// Per-check timeout; `None` = the harness's default.
    pub timeout: Option<Sourced<Duration>>,
    /// Re-run checks without the cache.
    pub no_cache: bool,
    /// The JUnit file.
    pub junit: Sourced<PathBuf>,
}

/// Reads an environment variable (a function so tests need not touch the process environment).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, with empty values treated as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Settings {
    /// Combines flags, environment and configuration layers; `default_junit` is used when
    /// nothing names a JUnit path, `root` anchors relative paths of configuration files.
    pub fn resolve(
        args: &Args,
        env: EnvLookup<'_>,
        layers: &[Layer],
        root: &Path,
        default_junit: PathBuf,
    ) -> Result<Settings, ExpectedError> {
        let from_file = |pick: &dyn Fn(&FileConfig) -> bool| {
            layers
                .iter()
                .find(|l| pick(&l.config))
                .map(|l| (l.path.clone(), &l.config))
        };

        let builder = if let Some(addr) = &args.addr {
            Some(sourced(
                BuilderChoice::Addr(addr.clone()),
                Source::Flag("--addr"),
            ))
        } else if let Some(name) = &args.builder {
            Some(sourced(
                BuilderChoice::Named(name.clone()),
                Source::Flag("--builder"),
            ))
        } else if let Some(addr) = env("BUILDKIT_HOST") {
            Some(sourced(
                BuilderChoice::Addr(addr),
                Source::Env("BUILDKIT_HOST"),
            ))
        } else if let Some(name) = env("BUILDX_BUILDER") {
            Some(sourced(
                BuilderChoice::Named(name),
                Source::Env("BUILDX_BUILDER"),
            ))
        } else if let Some((path, c)) = from_file(&|c| c.builder.is_some()) {
            let value = c.builder.clone().unwrap_or_default();
            let choice = if value.contains("://") {
                BuilderChoice::Addr(value)
            } else {
                BuilderChoice::Named(value)
            };
            Some(sourced(choice, Source::Config(path)))
        } else {
            None
        };

        let strategy = if let Some(s) = &args.strategy {
            Some(sourced(s.clone(), Source::Flag("--strategy")))
        } else if let Some(s) = env("BUILDTEST_STRATEGY") {
            Some(sourced(s, Source::Env("BUILDTEST_STRATEGY")))
        } else {
            from_file(&|c| c.strategy.is_some())
                .map(|(p, c)| sourced(c.strategy.clone().unwrap_or_default(), Source::Config(p)))
        };

        let jobs = if let Some(j) = args.jobs {
            Some(sourced(j, Source::Flag("--jobs")))
        } else if let Some(j) = env("BUILDTEST_JOBS") {
            let n = j.trim().parse::<usize>().map_err(|_| {
                ExpectedError::usage("BUILDTEST_JOBS", format!("`{j}` is not a number"))
            })?;
            Some(sourced(n, Source::Env("BUILDTEST_JOBS")))
        } else {
            from_file(&|c| c.jobs.is_some())
                .map(|(p, c)| sourced(c.jobs.unwrap_or_default(), Source::Config(p)))
        };
        if let Some(j) = jobs.as_ref().filter(|j| j.value == 0) {
            return Err(invalid(&j.source, "jobs must be at least 1"));
        }

        let timeout = if let Some(t) = &args.timeout {
            let d = parse_duration(t).map_err(|m| ExpectedError::usage("--timeout", m))?;
            Some(sourced(d, Source::Flag("--timeout")))
        } else if let Some(t) = env("BUILDTEST_TIMEOUT") {
            let d = parse_duration(&t).map_err(|m| ExpectedError::usage("BUILDTEST_TIMEOUT", m))?;
            Some(sourced(d, Source::Env("BUILDTEST_TIMEOUT")))
        } else if let Some((path, c)) = from_file(&|c| c.timeout.is_some()) {
            let d = match &c.timeout {
                Some(TimeoutValue::Seconds(s)) => Ok(Duration::from_secs(*s)),
                Some(TimeoutValue::Text(t)) => parse_duration(t),
                None => Err("missing".to_owned()),
            }
            .map_err(|m| ExpectedError::Config {
                path: path.clone(),
                message: format!("key `timeout`: {m}"),
            })?;
            Some(sourced(d, Source::Config(path)))
        } else {
            None
        };
        if let Some(t) = timeout.as_ref().filter(|t| t.value.is_zero()) {
            return Err(invalid(&t.source, "timeout must be greater than zero"));
        }

        let no_cache = if args.no_cache {
            true
        } else if let Some(v) = env("BUILDTEST_NO_CACHE") {
            parse_bool(&v).ok_or_else(|| {
                ExpectedError::usage("BUILDTEST_NO_CACHE", format!("`{v}` is not 1/0/true/false"))
            })?
        } else {
            from_file(&|c| c.no_cache.is_some())
                .and_then(|(_, c)| c.no_cache)
                .unwrap_or(false)
        };

        let junit = if let Some(p) = &args.junit {
            sourced(p.clone(), Source::Flag("--junit"))
        } else if let Some(p) = env("BUILDTEST_JUNIT") {
            sourced(PathBuf::from(p), Source::Env("BUILDTEST_JUNIT"))
        } else if let Some((path, c)) = from_file(&|c| c.junit.is_some()) {
            sourced(
                root.join(c.junit.clone().unwrap_or_default()),
                Source::Config(path),
            )
        } else {
            sourced(default_junit, Source::Default)
        };

        Ok(Settings {
            builder,
            strategy,
            jobs,
            timeout,
            no_cache,
            junit,
        })
    }
}

fn sourced<T>(value: T, source: Source) -> Sourced<T> {
    Sourced { value, source }
}

fn invalid(source: &Source, message: &str) -> ExpectedError {
    match source {
        Source::Config(path) => ExpectedError::Config {
            path: path.clone(),
            message: message.to_owned(),
        },
        other => ExpectedError::usage(other.to_string(), message),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses `90`, `90s`, `1500ms`, `5m`, `1h` into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try `90`, `90s`, `5m`)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m or h)"
            ));
        }
    };
    if !seconds.is_finite() || !(0.0..=1.0e9).contains(&seconds) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn layer(path: &str, toml_text: &str) -> Layer {
        Layer {
            path: PathBuf::from(path),
            config: toml::from_str(toml_text).unwrap(),
        }
    }

    fn resolve(args: &Args, env: &[(&str, &str)], layers: &[Layer]) -> Settings {
        let env = env_of(env);
        Settings::resolve(
            args,
            &env,
            layers,
            Path::new("/ws"),
            "/ws/target/buildtest/junit.xml".into(),
        )
        .unwrap()
    }

    #[test]
    fn flags_beat_env_beat_config_beat_defaults() {
        let cfg = [layer(
            "/ws/.config/buildtest.toml",
            "jobs = 3\ntimeout = 30\nbuilder = \"unix:///c.sock\"\njunit = \"out/j.xml\"",
        )];
        let s = resolve(&Args::default(), &[], &[]);
        assert_eq!(s.jobs, None);
        assert_eq!(s.junit.source, Source::Default);
        assert_eq!(s.builder, None);

        let s = resolve(&Args::default(), &[], &cfg);
        assert_eq!(s.jobs.as_ref().unwrap().value, 3);
        assert_eq!(s.junit.value, PathBuf::from("/ws/out/j.xml"));
        assert_eq!(
            s.builder.unwrap().value,
            BuilderChoice::Addr("unix:///c.sock".into())
        );
        assert_eq!(s.timeout.unwrap().value, Duration::from_secs(30));

        let env = [
            ("BUILDTEST_JOBS", "5"),
            ("BUILDX_BUILDER", "bx"),
            ("BUILDTEST_TIMEOUT", "2m"),
        ];
        let s = resolve(&Args::default(), &env, &cfg);
        assert_eq!(s.jobs.as_ref().unwrap().value, 5);
        assert_eq!(s.jobs.unwrap().source, Source::Env("BUILDTEST_JOBS"));
        assert_eq!(s.builder.unwrap().value, BuilderChoice::Named("bx".into()));
        assert_eq!(s.timeout.unwrap().value, Duration::from_secs(120));

        let args = Args {
            jobs: Some(7),
            addr: Some("tcp://127.0.0.1:1".into()),
            ..Args::default()
        };
        let s = resolve(&args, &env, &cfg);
        assert_eq!(s.jobs.unwrap().value, 7);
        assert_eq!(s.builder.unwrap().source, Source::Flag("--addr"));
    }

    #[test]
    fn the_first_layer_that_sets_a_key_wins() {
        let layers = [
            layer("/ws/.config/buildtest.toml", "jobs = 2"),
            layer("/ws/Cargo.toml", "jobs = 9\nstrategy = \"direct\""),
        ];
        let s = resolve(&Args::default(), &[], &layers);
        assert_eq!(s.jobs.unwrap().value, 2);
        let strategy = s.strategy.unwrap();
        assert_eq!(strategy.value, "direct");
        assert_eq!(strategy.source, Source::Config("/ws/Cargo.toml".into()));
    }

    #[test]
    fn unknown_keys_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".config")).unwrap();
        std::fs::write(
            dir.path().join(".config/buildtest.toml"),
            "jobs = 2\nparallel = 4\n",
        )
        .unwrap();
        let err = load_layers(dir.path(), &serde_json::Value::Null).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(".config/buildtest.toml"), "{text}");
        assert!(text.contains("unknown field `parallel`"), "{text}");
        assert_eq!(err.process_exit_code(), 2);

        std::fs::remove_file(dir.path().join(".config/buildtest.toml")).unwrap();
        let meta = serde_json::json!({"buildtest": {"jobz": 1}});
        let text = load_layers(dir.path(), &meta).unwrap_err().to_string();
        assert!(text.contains("Cargo.toml"), "{text}");
        assert!(text.contains("[workspace.metadata.buildtest]"), "{text}");
        assert!(text.contains("unknown field `jobz`"), "{text}");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let env = env_of(&[("BUILDTEST_JOBS", "many")]);
        let err =
            Settings::resolve(&Args::default(), &env, &[], Path::new("/"), "j".into()).unwrap_err();
        assert!(err.to_string().contains("BUILDTEST_JOBS"), "{err}");
        let args = Args {
            jobs: Some(0),
            ..Args::default()
        };
        let err =
            Settings::resolve(&args, &env_of(&[]), &[], Path::new("/"), "j".into()).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
