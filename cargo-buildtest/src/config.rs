//! Settings: flags > environment > configuration files > defaults, read into the one
//! [`SuiteSettings`] the suite binaries get (see `buildtest::protocol::settings` for every
//! setting, its variable, key, flag and accepted forms).
//!
//! Configuration is read from two places in the workspace root, key by key, the first one
//! that sets a key wins:
//!
//! 1. `.config/buildtest.toml` (top-level keys),
//! 2. `[workspace.metadata.buildtest]` in the workspace's `Cargo.toml`.
//!
//! The keys are the settings' ([`Setting::key`]): `builder` (a buildx builder name, or an address
//! as for `--addr`: a value with `://` is an address, e.g. `docker+unix:///var/run/docker.sock`
//! for the Docker engine's embedded BuildKit, `unix:///run/buildkit/buildkitd.sock` for a
//! buildkitd — a plain `unix://` address is spoken to as a buildkitd, so it fails on a Docker
//! socket), `strategy`, `jobs`, `timeout`, `junit` (a path relative to the workspace root),
//! `no-cache`. A value is read with the same parser as the variable of the same setting (a number
//! or boolean as its TOML spelling), so `timeout = "5m"` and `BUILDTEST_TIMEOUT=5m` mean the same.
//! Any other key is an error naming the file and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use buildtest::protocol::SuiteSettings;
use buildtest::protocol::settings::{
    BUILDKIT_HOST, BUILDX_BUILDER, JUNIT, Origin, RESULTS, Raw, SETTINGS, SUITE, Setting,
};
use serde::Deserialize;

use crate::args::Args;
use crate::errors::ExpectedError;

/// Where a setting came from, as the header shows it (`flag --addr`, `$BUILDKIT_HOST`, a file).
pub fn shown(origin: &Origin) -> String {
    match origin {
        Origin::Flag(flag) => format!("flag {flag}"),
        Origin::Env(var) => format!("${var}"),
        Origin::File { path, .. } => path.display().to_string(),
    }
}

/// A value in a configuration file: whatever TOML scalar, read as text by the setting's parser.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum FileValue {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Integer(i64),
    /// A number with a fraction.
    Float(f64),
    /// A string.
    Text(String),
    /// A list of strings (`nodes = ["docker+unix:///a.sock", "bx"]`), read comma-joined.
    List(Vec<String>),
}

impl FileValue {
    /// The value as the setting's parser reads it (its TOML spelling, strings unquoted).
    pub fn text(&self) -> String {
        match self {
            FileValue::Bool(b) => b.to_string(),
            FileValue::Integer(n) => n.to_string(),
            FileValue::Float(x) => x.to_string(),
            FileValue::Text(t) => t.clone(),
            FileValue::List(items) => items.join(","),
        }
    }
}

/// A configuration file that was read, with its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The file.
    pub path: PathBuf,
    /// Its keys (every one a [`Setting::key`]).
    pub values: BTreeMap<String, FileValue>,
}

impl Layer {
    /// Parses TOML text; `what` prefixes errors (`[workspace.metadata.buildtest]: `).
    pub fn parse_toml(path: PathBuf, text: &str) -> Result<Layer, ExpectedError> {
        let values = toml::from_str::<BTreeMap<String, FileValue>>(text).map_err(|e| {
            ExpectedError::Config {
                path: path.clone(),
                message: e.to_string().trim_end().to_owned(),
            }
        })?;
        Layer::checked(path, values, "")
    }

    fn checked(
        path: PathBuf,
        values: BTreeMap<String, FileValue>,
        what: &str,
    ) -> Result<Layer, ExpectedError> {
        let keys: Vec<&str> = SETTINGS.iter().filter_map(|s| s.key).collect();
        if let Some(unknown) = values.keys().find(|k| !keys.contains(&k.as_str())) {
            let mut expected: Vec<String> = Vec::new();
            for key in keys {
                let key = format!("`{key}`");
                if !expected.contains(&key) {
                    expected.push(key);
                }
            }
            return Err(ExpectedError::Config {
                path,
                message: format!(
                    "{what}unknown field `{unknown}`, expected one of {}",
                    expected.join(", ")
                ),
            });
        }
        Ok(Layer { path, values })
    }

    fn raw(&self, key: &'static str) -> Option<Raw> {
        self.values.get(key).map(|v| Raw {
            text: v.text(),
            origin: Origin::File {
                path: self.path.clone(),
                key,
            },
        })
    }
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
        Ok(text) => layers.push(Layer::parse_toml(file, &text)?),
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
        const WHAT: &str = "[workspace.metadata.buildtest]: ";
        let path = root.join("Cargo.toml");
        let values =
            serde_json::from_value::<BTreeMap<String, FileValue>>(table.clone()).map_err(|e| {
                ExpectedError::Config {
                    path: path.clone(),
                    message: format!("{WHAT}{e}"),
                }
            })?;
        layers.push(Layer::checked(path, values, WHAT)?);
    }
    Ok(layers)
}

/// The effective settings of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// What the suite binaries get (the builder is the one asked for; `cargo buildtest` fills in
    /// the one it reached, the strategy it resolved, each suite's results file and name).
    pub suite: SuiteSettings,
    /// Where each setting that is not a default came from, by variable.
    pub origins: BTreeMap<&'static str, Origin>,
    /// The JUnit file `cargo buildtest` writes (a relative path in a configuration file is taken
    /// from the workspace root; default `<target-dir>/buildtest/junit.xml`).
    pub junit: PathBuf,
}

/// Reads an environment variable (a function so tests need not touch the process environment).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, with empty values treated as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Settings {
    /// Combines flags, environment and configuration layers through the protocol's one reader;
    /// `default_junit` is used when nothing names a JUnit path, `root` anchors relative paths of
    /// configuration files.
    pub fn resolve(
        args: &Args,
        env: EnvLookup<'_>,
        layers: &[Layer],
        root: &Path,
        default_junit: PathBuf,
    ) -> Result<Settings, ExpectedError> {
        let seen = std::cell::RefCell::new(BTreeMap::new());
        let lookup = |setting: &Setting| {
            let raw = raw_value(setting, args, env, layers);
            if let Some(raw) = &raw {
                seen.borrow_mut().insert(setting.var, raw.origin.clone());
            }
            raw
        };
        let mut suite = SuiteSettings::read(lookup)?;
        let origins = seen.into_inner();
        let junit = match (suite.junit.take(), origins.get(JUNIT.var)) {
            (Some(path), Some(Origin::File { .. })) => root.join(path),
            (Some(path), _) => path,
            (None, _) => default_junit,
        };
        Ok(Settings {
            suite,
            origins,
            junit,
        })
    }

    /// Where `setting` came from, as the header shows it (`None`: its default).
    pub fn shown_origin(&self, setting: &Setting) -> Option<String> {
        self.origins.get(setting.var).map(shown)
    }

    /// The setting that named the builder, as the header shows it.
    pub fn builder_origin(&self) -> Option<String> {
        self.shown_origin(&BUILDKIT_HOST)
            .or_else(|| self.shown_origin(&BUILDX_BUILDER))
    }
}

/// One setting's raw value: its flag, else its variable, else the first configuration file that
/// has its key. The builder is one choice over two settings: `--addr`, `--builder`,
/// `BUILDKIT_HOST`, `BUILDX_BUILDER`, then `builder =` (an address when it contains `://`).
fn raw_value(setting: &Setting, args: &Args, env: EnvLookup<'_>, layers: &[Layer]) -> Option<Raw> {
    // `cargo buildtest` names each suite's results file and suite itself.
    if setting.var == RESULTS.var || setting.var == SUITE.var {
        return None;
    }
    if let Some(raw) = args.flag_value(setting) {
        return Some(raw);
    }
    if setting.var == BUILDKIT_HOST.var && args.flag_value(&BUILDX_BUILDER).is_some() {
        return None;
    }
    if let Some(text) = env(setting.var).filter(|v| !v.trim().is_empty()) {
        return Some(Raw::env(setting.var, text));
    }
    if setting.var == BUILDKIT_HOST.var && env(BUILDX_BUILDER.var).is_some() {
        return None;
    }
    let key = setting.key?;
    layers.iter().find_map(|layer| layer.raw(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use buildtest::client::Strategy;
    use buildtest::protocol::settings::{BuilderChoice, PLATFORM};
    use std::time::Duration;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn layer(path: &str, toml_text: &str) -> Layer {
        Layer::parse_toml(PathBuf::from(path), toml_text).unwrap()
    }

    fn try_resolve(
        args: &Args,
        env: &[(&str, &str)],
        layers: &[Layer],
    ) -> Result<Settings, ExpectedError> {
        let env = env_of(env);
        Settings::resolve(
            args,
            &env,
            layers,
            Path::new("/ws"),
            "/ws/target/buildtest/junit.xml".into(),
        )
    }

    fn resolve(args: &Args, env: &[(&str, &str)], layers: &[Layer]) -> Settings {
        try_resolve(args, env, layers).unwrap()
    }

    #[test]
    fn flags_beat_env_beat_config_beat_defaults() {
        let cfg = [layer(
            "/ws/.config/buildtest.toml",
            "jobs = 3\ntimeout = 30\nbuilder = \"unix:///c.sock\"\njunit = \"out/j.xml\"",
        )];
        let s = resolve(&Args::default(), &[], &[]);
        assert_eq!(s.suite, SuiteSettings::default());
        assert_eq!(s.junit, PathBuf::from("/ws/target/buildtest/junit.xml"));
        assert!(s.origins.is_empty());

        let s = resolve(&Args::default(), &[], &cfg);
        assert_eq!(s.suite.jobs, 3);
        assert_eq!(s.junit, PathBuf::from("/ws/out/j.xml"));
        assert_eq!(
            s.suite.builder,
            Some(BuilderChoice::Addr("unix:///c.sock".into()))
        );
        assert_eq!(s.suite.timeout, Duration::from_secs(30));

        let env = [
            ("BUILDTEST_JOBS", "5"),
            ("BUILDX_BUILDER", "bx"),
            ("BUILDTEST_TIMEOUT", "2m"),
        ];
        let s = resolve(&Args::default(), &env, &cfg);
        assert_eq!(s.suite.jobs, 5);
        assert_eq!(
            s.shown_origin(&buildtest::protocol::settings::JOBS)
                .as_deref(),
            Some("$BUILDTEST_JOBS")
        );
        assert_eq!(s.suite.builder, Some(BuilderChoice::Named("bx".into())));
        assert_eq!(s.builder_origin().as_deref(), Some("$BUILDX_BUILDER"));
        assert_eq!(s.suite.timeout, Duration::from_secs(120));

        let args = Args {
            jobs: Some("7".into()),
            addr: vec!["tcp://127.0.0.1:1".into()],
            ..Args::default()
        };
        let s = resolve(&args, &env, &cfg);
        assert_eq!(s.suite.jobs, 7);
        assert_eq!(s.builder_origin().as_deref(), Some("flag --addr"));
    }

    #[test]
    fn the_first_layer_that_sets_a_key_wins() {
        let layers = [
            layer("/ws/.config/buildtest.toml", "jobs = 2"),
            layer("/ws/Cargo.toml", "jobs = 9\nstrategy = \"direct\""),
        ];
        let s = resolve(&Args::default(), &[], &layers);
        assert_eq!(s.suite.jobs, 2);
        assert_eq!(s.suite.strategy, Strategy::Direct);
        assert_eq!(
            s.shown_origin(&buildtest::protocol::settings::STRATEGY)
                .as_deref(),
            Some("/ws/Cargo.toml")
        );
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
        assert!(
            text.contains(
                "expected one of `builder`, `nodes`, `strategy`, `jobs`, `timeout`, `no-cache`, `junit`"
            ),
            "{text}"
        );
        assert_eq!(err.process_exit_code(), 2);

        std::fs::remove_file(dir.path().join(".config/buildtest.toml")).unwrap();
        let meta = serde_json::json!({"buildtest": {"jobz": 1}});
        let text = load_layers(dir.path(), &meta).unwrap_err().to_string();
        assert!(text.contains("Cargo.toml"), "{text}");
        assert!(text.contains("[workspace.metadata.buildtest]"), "{text}");
        assert!(text.contains("unknown field `jobz`"), "{text}");
    }

    #[test]
    fn bad_values_are_setup_errors() {
        let err = try_resolve(&Args::default(), &[("BUILDTEST_JOBS", "many")], &[]).unwrap_err();
        assert_eq!(err.process_exit_code(), 2);
        assert!(
            err.to_string().contains("read BUILDTEST_JOBS: `many`"),
            "{err}"
        );
        let args = Args {
            jobs: Some("0".into()),
            ..Args::default()
        };
        let err = try_resolve(&args, &[], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "read flag --jobs: `0` is not a whole number of concurrent solves, at least 1"
        );
        let err =
            try_resolve(&Args::default(), &[("BUILDTEST_STRATEGY", "bogus")], &[]).unwrap_err();
        assert_eq!(err.process_exit_code(), 2, "{err}");
    }

    /// One setting's cases: the variable, its TOML form in a configuration file, and what the
    /// value is expected to read as (`Ok(debug text of the field)` or `Err(())`).
    struct Case {
        setting: &'static Setting,
        text: &'static str,
        toml: &'static str,
        valid: bool,
    }

    const fn case(
        setting: &'static Setting,
        text: &'static str,
        toml: &'static str,
        valid: bool,
    ) -> Case {
        Case {
            setting,
            text,
            toml,
            valid,
        }
    }

    /// The field a setting sets, as text (to compare across the three readers).
    fn field(s: &SuiteSettings, setting: &Setting) -> String {
        use buildtest::protocol::settings::{JOBS, NO_CACHE, STRATEGY, TIMEOUT};
        match setting.var {
            v if v == STRATEGY.var => format!("{:?}", s.strategy),
            v if v == JOBS.var => format!("{:?}", s.jobs),
            v if v == TIMEOUT.var => format!("{:?}", s.timeout),
            v if v == NO_CACHE.var => format!("{:?}", s.no_cache),
            v if v == BUILDKIT_HOST.var || v == BUILDX_BUILDER.var => format!("{:?}", s.builder),
            v if v == buildtest::protocol::settings::PLATFORM.var => format!("{:?}", s.platform),
            v if v == buildtest::protocol::settings::NODES.var => format!("{:?}", s.nodes),
            other => panic!("no field for {other}"),
        }
    }

    /// The table test: every setting that `cargo buildtest`, a suite binary (`cargo test`) and a
    /// configuration file all read, with valid and invalid forms, reads as the same value — or is
    /// refused with the same error (value and accepted forms; word for word for the variable).
    #[test]
    fn every_setting_reads_the_same_under_cargo_buildtest_cargo_test_and_the_configuration_file() {
        use buildtest::protocol::settings::{JOBS, NO_CACHE, STRATEGY, TIMEOUT};
        let cases = [
            case(&TIMEOUT, "5m", "\"5m\"", true),
            case(&TIMEOUT, "90s", "\"90s\"", true),
            case(&TIMEOUT, "1.5s", "\"1.5s\"", true),
            case(&TIMEOUT, "1500ms", "\"1500ms\"", true),
            case(&TIMEOUT, "90", "90", true),
            case(&TIMEOUT, "2.5", "2.5", true),
            case(&TIMEOUT, "1h", "\"1h\"", true),
            case(&TIMEOUT, "0", "0", false),
            case(&TIMEOUT, "soon", "\"soon\"", false),
            case(&TIMEOUT, "5 parsecs", "\"5 parsecs\"", false),
            case(&TIMEOUT, "-3", "-3", false),
            case(&JOBS, "3", "3", true),
            case(&JOBS, "0", "0", false),
            case(&JOBS, "many", "\"many\"", false),
            case(&JOBS, "-1", "-1", false),
            case(&NO_CACHE, "1", "1", true),
            case(&NO_CACHE, "true", "true", true),
            case(&NO_CACHE, "yes", "\"yes\"", true),
            case(&NO_CACHE, "off", "\"off\"", true),
            case(&NO_CACHE, "0", "0", true),
            case(&NO_CACHE, "false", "false", true),
            case(&NO_CACHE, "maybe", "\"maybe\"", false),
            case(&STRATEGY, "auto", "\"auto\"", true),
            case(&STRATEGY, "direct", "\"direct\"", true),
            case(&STRATEGY, "mergediff", "\"mergediff\"", true),
            case(&STRATEGY, "bogus", "\"bogus\"", false),
            case(
                &BUILDKIT_HOST,
                "docker+unix:///x.sock",
                "\"docker+unix:///x.sock\"",
                true,
            ),
            case(&BUILDX_BUILDER, "bx", "\"bx\"", true),
            case(&PLATFORM, "linux/arm64", "\"linux/arm64\"", true),
            case(&PLATFORM, "linux/amd64", "\"linux/amd64\"", true),
            case(&PLATFORM, "linux/arm64/v8", "\"linux/arm64/v8\"", true),
            case(&PLATFORM, "linux/s390x", "\"linux/s390x\"", false),
            case(&PLATFORM, "arm64", "\"arm64\"", false),
            case(
                &buildtest::protocol::settings::NODES,
                "docker+unix:///x.sock,bx",
                "[\"docker+unix:///x.sock\", \"bx\"]",
                true,
            ),
            case(
                &buildtest::protocol::settings::NODES,
                "bx,,by",
                "\"bx,,by\"",
                false,
            ),
        ];
        for c in &cases {
            let var = c.setting.var;
            let harness = SuiteSettings::from_lookup(|n| (n == var).then(|| c.text.to_owned()));
            let cli_env = try_resolve(&Args::default(), &[(var, c.text)], &[]);
            let key = c.setting.key.unwrap();
            let file = Layer::parse_toml(
                PathBuf::from("/ws/.config/buildtest.toml"),
                &format!("{key} = {}", c.toml),
            )
            .map_err(|e| e.to_string())
            .and_then(|l| try_resolve(&Args::default(), &[], &[l]).map_err(|e| e.to_string()));
            let what = format!("{var}={:?} / {key} = {}", c.text, c.toml);
            if c.valid {
                let h = field(
                    &harness.unwrap_or_else(|e| panic!("{what}: harness: {e}")),
                    c.setting,
                );
                let e = field(
                    &cli_env.unwrap_or_else(|e| panic!("{what}: cli: {e}")).suite,
                    c.setting,
                );
                let f = field(
                    &file.unwrap_or_else(|e| panic!("{what}: file: {e}")).suite,
                    c.setting,
                );
                assert_eq!(h, e, "{what}");
                assert_eq!(h, f, "{what}");
                if c.setting.flag.is_some() && c.setting.var != NO_CACHE.var {
                    let args = flag_args(c.setting, c.text);
                    let flag = field(&try_resolve(&args, &[], &[]).unwrap().suite, c.setting);
                    assert_eq!(h, flag, "{what}: flag");
                }
            } else {
                let h = harness.expect_err(&what);
                let e = cli_env.expect_err(&what).to_string();
                assert_eq!(
                    h.to_string(),
                    e,
                    "{what}: the variable's error is word for word the same"
                );
                assert!(
                    e.starts_with(&format!("read {var}: `{}` is not ", c.text)),
                    "{e}"
                );
                assert!(e.ends_with(c.setting.accepted), "{e}");
                let f = file.expect_err(&what);
                assert!(
                    f.ends_with(&format!("is not {}", c.setting.accepted)),
                    "{what}: the file's error names the accepted forms: {f}"
                );
                assert!(
                    f.contains(&format!(
                        "read key `{key}` of /ws/.config/buildtest.toml: `"
                    )),
                    "{f}"
                );
                // `--no-cache` is a switch: it takes no value to refuse.
                if let Some(flag_name) = c.setting.flag.filter(|_| c.setting.var != NO_CACHE.var) {
                    let args = flag_args(c.setting, c.text);
                    let flag = try_resolve(&args, &[], &[]).unwrap_err().to_string();
                    assert_eq!(
                        flag,
                        format!(
                            "read flag {}: `{}` is not {}",
                            flag_name, c.text, c.setting.accepted
                        )
                    );
                }
            }
        }
        // Every setting with a configuration key is covered.
        for s in SETTINGS.iter().filter(|s| s.key.is_some()) {
            if s.var == JUNIT.var {
                continue; // a path: any text is valid
            }
            assert!(
                cases.iter().any(|c| c.setting.var == s.var),
                "no case for {}",
                s.var
            );
        }
    }

    fn flag_args(setting: &Setting, text: &str) -> Args {
        use buildtest::protocol::settings::{JOBS, STRATEGY, TIMEOUT};
        let mut args = Args::default();
        match setting.var {
            v if v == STRATEGY.var => args.strategy = Some(text.into()),
            v if v == JOBS.var => args.jobs = Some(text.into()),
            v if v == TIMEOUT.var => args.timeout = Some(text.into()),
            v if v == PLATFORM.var => args.platform = Some(text.into()),
            v if v == BUILDKIT_HOST.var => args.addr = vec![text.into()],
            v if v == BUILDX_BUILDER.var => args.builder = vec![text.into()],
            v if v == buildtest::protocol::settings::NODES.var => {
                args.addr = text.split(',').map(str::to_owned).collect();
            }
            other => panic!("no flag for {other}"),
        }
        args
    }
}
