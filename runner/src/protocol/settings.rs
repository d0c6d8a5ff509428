//! The settings a suite binary runs with: one typed struct, one table of the variables that carry
//! it, one reader, one writer and one value grammar.
//!
//! `cargo buildtest` reads each setting from its flag, the environment or a configuration file
//! ([`SuiteSettings::read`] with its own lookup), then hands the result to every suite binary as
//! environment variables ([`SuiteSettings::to_env`]); a suite binary run by `cargo test`, nextest
//! or an IDE reads the same variables ([`SuiteSettings::from_env`]). Every source goes through
//! the same parser, so a value means the same thing (and is refused with the same words)
//! wherever it is written.
//!
//! Adding a setting: a field of [`SuiteSettings`], a [`Setting`] in [`SETTINGS`] (its variable,
//! configuration key, flag, accepted forms, default and meaning), one line in
//! [`SuiteSettings::read`] and one in [`SuiteSettings::to_env`]. README's environment table and
//! `cargo buildtest --help` are checked against [`SETTINGS`].

use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::client::{CacheDirection, CacheEntry, Strategy, TlsOptions};

/// Concurrent solves when nothing sets `BUILDTEST_JOBS`.
pub const DEFAULT_JOBS: usize = 16;
/// Per-check timeout when nothing sets `BUILDTEST_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Who reads a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBy {
    /// `cargo buildtest` (flag, variable, configuration file) and the suite binaries (variable).
    Both,
    /// Only the suite binaries (`cargo buildtest` sets it for them).
    Harness,
}

impl ReadBy {
    /// The README's wording.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadBy::Both => "both",
            ReadBy::Harness => "harness",
        }
    }
}

/// One setting of the protocol: where it is written and what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable.
    pub var: &'static str,
    /// The key in `.config/buildtest.toml` and `[workspace.metadata.buildtest]`, if any.
    pub key: Option<&'static str>,
    /// The `cargo buildtest` flag, if any.
    pub flag: Option<&'static str>,
    /// The accepted forms, as error messages and the README state them.
    pub accepted: &'static str,
    /// What it means (README's environment table).
    pub meaning: &'static str,
    /// Who reads the variable.
    pub read_by: ReadBy,
}

/// `BUILDKIT_HOST`: the builder's address.
pub const BUILDKIT_HOST: Setting = Setting {
    var: "BUILDKIT_HOST",
    key: Some("builder"),
    flag: Some("--addr"),
    accepted: "a builder address (`docker+unix://PATH`, `unix://PATH`, `tcp://HOST:PORT`, `docker-container://NAME`, …)",
    meaning: "builder address (forms above); the configuration key `builder` takes an address (with `://`) or a buildx builder name",
    read_by: ReadBy::Both,
};
/// `BUILDX_BUILDER`: a buildx builder name.
pub const BUILDX_BUILDER: Setting = Setting {
    var: "BUILDX_BUILDER",
    key: Some("builder"),
    flag: Some("--builder"),
    accepted: "a buildx builder name",
    meaning: "a buildx builder name (from the buildx store)",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_NODES`: several builders for one run (see [`crate::harness`]'s placement).
pub const NODES: Setting = Setting {
    var: "BUILDTEST_NODES",
    key: Some("nodes"),
    flag: Some("--addr"),
    accepted: "a comma-separated list of nodes, each a builder address (with `://`) or a buildx builder name",
    meaning: "run on several builders (`cargo buildtest`: `--addr`/`--builder` given more than once, addresses first): every check of one input goes to the same node (highest-random-weight hashing of the input's digest over the node names); a node unreachable at the start is left out, a node lost mid-run has its unfinished checks re-run on the others; when set, `BUILDKIT_HOST`/`BUILDX_BUILDER` are not read",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_STRATEGY`.
pub const STRATEGY: Setting = Setting {
    var: "BUILDTEST_STRATEGY",
    key: Some("strategy"),
    flag: Some("--strategy"),
    accepted: "one of auto, passthrough, direct, discard, mergediff",
    meaning: "how checks are attached to their input: `auto` (default), `passthrough`, `direct`, `discard`, `mergediff`",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_JOBS`.
pub const JOBS: Setting = Setting {
    var: "BUILDTEST_JOBS",
    key: Some("jobs"),
    flag: Some("--jobs"),
    accepted: "a whole number of concurrent solves, at least 1",
    meaning: "concurrent solves per suite (default 16); with several nodes, per node",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_TIMEOUT`.
pub const TIMEOUT: Setting = Setting {
    var: "BUILDTEST_TIMEOUT",
    key: Some("timeout"),
    flag: Some("--timeout"),
    accepted: "a duration above zero: seconds (`90`, `2.5`) or with a unit (`1500ms`, `90s`, `5m`, `1h`)",
    meaning: "per-check timeout: seconds (`90`, `2.5`) or with a unit (`1500ms`, `90s`, `5m`, `1h`) (default 300 s)",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_NO_CACHE`.
pub const NO_CACHE: Setting = Setting {
    var: "BUILDTEST_NO_CACHE",
    key: Some("no-cache"),
    flag: Some("--no-cache"),
    accepted: "a boolean: 1, true, yes, on or 0, false, no, off",
    meaning: "`1`/`true`/`yes`/`on`: re-run every check exec (inputs stay cached)",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_SOLVE`: how each check is solved (see [`SolvePath`]).
pub const SOLVE: Setting = Setting {
    var: "BUILDTEST_SOLVE",
    key: None,
    flag: Some("--solve"),
    accepted: "one of auto, gateway, control",
    meaning: "how each check is solved: `auto` (default: `gateway` where the builder's gateway has the capability `gateway.solve.evaluate`, unless `BUILDTEST_NO_CACHE` is set; else `control`), `gateway` (one gateway build per node for the run, each check an `LLBBridge.Solve` inside it; an error before anything runs where the builder cannot), `control` (one `Control.Solve` with its own job and Status stream per check)",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_EXPORT`.
pub const EXPORT: Setting = Setting {
    var: "BUILDTEST_EXPORT",
    key: None,
    flag: Some("--export"),
    accepted: "a boolean: 1, true, yes, on or 0, false, no, off",
    meaning: "`1`/`true`/`yes`/`on`: perform the selected tests' gated exports (`Test::export`) when all their checks pass; without it nothing is exported",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_JUNIT`.
pub const JUNIT: Setting = Setting {
    var: "BUILDTEST_JUNIT",
    key: Some("junit"),
    flag: Some("--junit"),
    accepted: "a file path",
    meaning: "JUnit path (for `cargo test`: this one binary's report; nothing is written without it; on Ctrl-C it is written with the checks that had finished and the binary exits 130)",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_PROBE`.
pub const PROBE: Setting = Setting {
    var: "BUILDTEST_PROBE",
    key: None,
    flag: None,
    accepted: "one of auto, image, inline, session",
    meaning: "how the probe reaches the builder: `auto` (default: loaded once into a Docker engine as image `buildtest/probe:<hash>`, else `session`), `image`, `session` (a local directory `<temp>/buildtest-probe-<hash>` served by the run's session: sent at most once per run, and not at all while the builder keeps the previous run's copy; the run's last line says `of which the probe: N bytes`), `inline` (a `mkfile` carrying the probe's bytes in every check's Definition)",
    read_by: ReadBy::Harness,
};
/// `BUILDTEST_PLATFORM`: the platform every input is solved for unless it pins its own.
pub const PLATFORM: Setting = Setting {
    var: "BUILDTEST_PLATFORM",
    key: Some("platform"),
    flag: Some("--platform"),
    accepted: "a platform a check probe exists for: linux/amd64 or linux/arm64 (`linux/arm64/v8`)",
    meaning: "the platform inputs are solved for unless they pin their own (`State::image_with(.., ImageOptions::new().platform(..))`): `linux/amd64` (default) or `linux/arm64` (needs an arm64 builder or emulation); each check runs the probe for its input's platform",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_PROBE_TOOLCHAIN_IMAGE`: the Rust toolchain image a builder compiles the probe in
/// when this build embeds none for the run's platform.
pub const PROBE_TOOLCHAIN_IMAGE: Setting = Setting {
    var: "BUILDTEST_PROBE_TOOLCHAIN_IMAGE",
    key: None,
    flag: None,
    accepted: "an image reference",
    meaning: "where this build of buildtest embeds no check probe for the run's platform (`BUILDTEST_PLATFORM`), the builder compiles one from the embedded source, offline, in this Rust toolchain image for that platform (default `rust:1-slim`, the official Rust image); cached by the builder like any build",
    read_by: ReadBy::Harness,
};
/// `BUILDTEST_RESULTS`.
pub const RESULTS: Setting = Setting {
    var: crate::report::RESULTS_ENV,
    key: None,
    flag: None,
    accepted: "a file path",
    meaning: "append per-check JSON-lines records to this file (`cargo buildtest` sets it)",
    read_by: ReadBy::Harness,
};
/// `BUILDTEST_SUITE`.
pub const SUITE: Setting = Setting {
    var: "BUILDTEST_SUITE",
    key: None,
    flag: None,
    accepted: "a suite name",
    meaning: "the suite name in records and JUnit (default `<package>::<target>`; `cargo buildtest` sets it)",
    read_by: ReadBy::Harness,
};
/// `BUILDTEST_CACHE_TO`: cache exports (see [`crate::client::cache`]).
pub const CACHE_TO: Setting = Setting {
    var: "BUILDTEST_CACHE_TO",
    key: None,
    flag: Some("--cache-to"),
    accepted: "cache exports in buildx's syntax (`type=local,dest=DIR`, `type=registry,ref=NAME[,mode=max]`, `type=inline`), several separated by `;`",
    meaning: "export the checks' cache once per suite after its checks ran (repeatable flag; each input whose checks all passed as one verdict, `mode=min` unless given (`mode=max` also exports the passing checks of an input with a failure, and the inputs' layers; where checks are solved by `Control.Solve`, the passing checks themselves, `mode=max` unless given); a `type=local` export is tagged with the suite's name in `DIR/index.json`; a relative `DIR` is relative to the current directory; `{suite}` in a registry `ref` stands for the suite's name); a builder that cannot export (a Docker engine with the graph-driver image store), and `type=inline` (it needs an exported image), are refused before anything runs",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_CACHE_FROM`: cache imports.
pub const CACHE_FROM: Setting = Setting {
    var: "BUILDTEST_CACHE_FROM",
    key: None,
    flag: Some("--cache-from"),
    accepted: "cache imports in buildx's syntax (`type=local,src=DIR`, `type=registry,ref=NAME`), several separated by `;`",
    meaning: "import cache on every solve (repeatable flag; a `type=local` import reads every tag of `DIR/index.json`, or only `tag=`'s); passing checks whose input did not change are then `(cached)`",
    read_by: ReadBy::Both,
};
/// `BUILDTEST_TLSCACERT`.
pub const TLS_CA_CERT: Setting = tls("BUILDTEST_TLSCACERT", "--tlscacert", "a file path");
/// `BUILDTEST_TLSCERT`.
pub const TLS_CERT: Setting = tls("BUILDTEST_TLSCERT", "--tlscert", "a file path");
/// `BUILDTEST_TLSKEY`.
pub const TLS_KEY: Setting = tls("BUILDTEST_TLSKEY", "--tlskey", "a file path");
/// `BUILDTEST_TLSSERVERNAME`.
pub const TLS_SERVER_NAME: Setting = tls("BUILDTEST_TLSSERVERNAME", "--tlsservername", "a name");

const fn tls(var: &'static str, flag: &'static str, accepted: &'static str) -> Setting {
    Setting {
        var,
        key: None,
        flag: Some(flag),
        accepted,
        meaning: "TLS for a `tcp://` `BUILDKIT_HOST` (buildctl's `--tls*` flags; `cargo buildtest` sets them from its flags)",
        read_by: ReadBy::Harness,
    }
}

/// Every setting, in documentation order.
pub const SETTINGS: &[Setting] = &[
    BUILDKIT_HOST,
    BUILDX_BUILDER,
    NODES,
    STRATEGY,
    JOBS,
    TIMEOUT,
    NO_CACHE,
    SOLVE,
    EXPORT,
    JUNIT,
    PROBE,
    PLATFORM,
    PROBE_TOOLCHAIN_IMAGE,
    TLS_CA_CERT,
    TLS_CERT,
    TLS_KEY,
    TLS_SERVER_NAME,
    RESULTS,
    SUITE,
    CACHE_TO,
    CACHE_FROM,
];

/// README's environment table, rendered from [`SETTINGS`] (a test checks that README holds it).
pub fn markdown() -> String {
    let mut out = String::from(
        "| variable | read by | configuration key, flag | accepted | meaning |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let mut places: Vec<String> = Vec::new();
        if let Some(key) = s.key {
            places.push(format!("`{key} =`"));
        }
        if let Some(flag) = s.flag {
            places.push(format!("`{flag}`"));
        }
        let places = if places.is_empty() {
            "—".to_owned()
        } else {
            places.join(", ")
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {places} | {} | {} |",
            s.var,
            s.read_by.as_str(),
            s.accepted,
            s.meaning
        );
    }
    out
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

impl ProbeDelivery {
    /// The value's spelling.
    pub fn name(self) -> &'static str {
        match self {
            ProbeDelivery::Auto => "auto",
            ProbeDelivery::Image => "image",
            ProbeDelivery::Inline => "inline",
            ProbeDelivery::Session => "session",
        }
    }
}

/// How each check is solved (`BUILDTEST_SOLVE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SolvePath {
    /// `auto` (default): [`SolvePath::Gateway`] where the builder's gateway can evaluate
    /// definitions (`gateway.solve.evaluate`) and `BUILDTEST_NO_CACHE` is not set, else
    /// [`SolvePath::Control`].
    #[default]
    Auto,
    /// `gateway`: one gateway build per node, open for the run; each check is an
    /// `LLBBridge.Solve` (evaluate) inside it, reported by the build's one Status stream.
    Gateway,
    /// `control`: one `Control.Solve` per check, with its own job and Status stream.
    Control,
}

impl SolvePath {
    /// The value's spelling.
    pub fn name(self) -> &'static str {
        match self {
            SolvePath::Auto => "auto",
            SolvePath::Gateway => "gateway",
            SolvePath::Control => "control",
        }
    }
}

/// The builder a run was told to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuilderChoice {
    /// An address (`unix://`, `tcp://`, `docker+unix://`, `docker-container://` …):
    /// `BUILDKIT_HOST`, `--addr`, or a configuration `builder` containing `://`.
    Addr(String),
    /// A buildx builder name: `BUILDX_BUILDER`, `--builder`, or a configuration `builder`
    /// without `://`.
    Named(String),
}

/// Where a raw value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A `cargo buildtest` flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of a configuration file.
    File {
        /// The file (`Cargo.toml` for `[workspace.metadata.buildtest]`).
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(var) => f.write_str(var),
            Origin::File { path, key } => write!(f, "key `{key}` of {}", path.display()),
        }
    }
}

/// A value as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    /// The text (configuration numbers and booleans are given as their TOML spelling).
    pub text: String,
    /// Where it was written.
    pub origin: Origin,
}

impl Raw {
    /// A value read from environment variable `var`.
    pub fn env(var: &'static str, text: impl Into<String>) -> Raw {
        Raw {
            text: text.into(),
            origin: Origin::Env(var),
        }
    }
}

/// A value a setting does not accept. The message names where it was written, the value and
/// the accepted forms, the same whichever program reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read {origin}: `{value}` is not {accepted}")]
pub struct SettingError {
    /// Where the value was written.
    pub origin: Origin,
    /// The value.
    pub value: String,
    /// The accepted forms ([`Setting::accepted`]).
    pub accepted: &'static str,
}

/// Everything a suite binary's run depends on that is not a test's own code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteSettings {
    /// `BUILDKIT_HOST` / `BUILDX_BUILDER`: the builder asked for (`None`: the client's default
    /// resolution — Docker context, default socket …).
    pub builder: Option<BuilderChoice>,
    /// `BUILDTEST_NODES`: the run's builders when there are several (empty: one builder, from
    /// `builder`).
    pub nodes: Vec<BuilderChoice>,
    /// `BUILDTEST_STRATEGY`.
    pub strategy: Strategy,
    /// `BUILDTEST_JOBS`.
    pub jobs: usize,
    /// `BUILDTEST_TIMEOUT`.
    pub timeout: Duration,
    /// `BUILDTEST_NO_CACHE`.
    pub no_cache: bool,
    /// `BUILDTEST_SOLVE`.
    pub solve: SolvePath,
    /// `BUILDTEST_EXPORT`: perform gated exports.
    pub export: bool,
    /// `BUILDTEST_PROBE`.
    pub probe: ProbeDelivery,
    /// `BUILDTEST_PLATFORM` (`None`: linux/amd64).
    pub platform: Option<crate::llb::Platform>,
    /// `BUILDTEST_PROBE_TOOLCHAIN_IMAGE` (`None`: [`crate::check::DEFAULT_TOOLCHAIN_IMAGE`]).
    pub probe_toolchain_image: Option<String>,
    /// `BUILDTEST_JUNIT`.
    pub junit: Option<PathBuf>,
    /// `BUILDTEST_RESULTS`.
    pub results: Option<PathBuf>,
    /// `BUILDTEST_SUITE`.
    pub suite: Option<String>,
    /// `BUILDTEST_TLSCACERT`, `BUILDTEST_TLSCERT`, `BUILDTEST_TLSKEY`, `BUILDTEST_TLSSERVERNAME`.
    pub tls: TlsOptions,
    /// `BUILDTEST_CACHE_TO` (local directories absolute).
    pub cache_to: Vec<CacheEntry>,
    /// `BUILDTEST_CACHE_FROM` (local directories absolute).
    pub cache_from: Vec<CacheEntry>,
}

impl Default for SuiteSettings {
    fn default() -> Self {
        SuiteSettings {
            builder: None,
            nodes: Vec::new(),
            strategy: Strategy::Auto,
            jobs: DEFAULT_JOBS,
            timeout: DEFAULT_TIMEOUT,
            no_cache: false,
            solve: SolvePath::Auto,
            export: false,
            probe: ProbeDelivery::Auto,
            platform: None,
            probe_toolchain_image: None,
            junit: None,
            results: None,
            suite: None,
            tls: TlsOptions::default(),
            cache_to: Vec::new(),
            cache_from: Vec::new(),
        }
    }
}

impl SuiteSettings {
    /// Reads the process environment (empty values count as unset).
    pub fn from_env() -> Result<SuiteSettings, SettingError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads environment variables through `lookup` (empty values count as unset).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SuiteSettings, SettingError> {
        Self::read(|setting| {
            lookup(setting.var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| Raw::env(setting.var, v))
        })
    }

    /// The one reader: `lookup` gives the raw value of a setting and where it was written (or
    /// `None`: the default). [`BUILDKIT_HOST`] is asked before [`BUILDX_BUILDER`]; the first that
    /// answers names the builder.
    pub fn read(lookup: impl Fn(&Setting) -> Option<Raw>) -> Result<SuiteSettings, SettingError> {
        let d = SuiteSettings::default();
        let get = |setting: &Setting| lookup(setting);
        let builder = match get(&BUILDKIT_HOST) {
            Some(raw) => Some(parse_builder(&raw, true)),
            None => get(&BUILDX_BUILDER).map(|raw| parse_builder(&raw, false)),
        };
        Ok(SuiteSettings {
            builder,
            nodes: value(get(&NODES), &NODES, parse_nodes)?.unwrap_or_default(),
            strategy: value(get(&STRATEGY), &STRATEGY, parse_strategy)?.unwrap_or(d.strategy),
            jobs: value(get(&JOBS), &JOBS, parse_jobs)?.unwrap_or(d.jobs),
            timeout: value(get(&TIMEOUT), &TIMEOUT, parse_duration)?.unwrap_or(d.timeout),
            no_cache: value(get(&NO_CACHE), &NO_CACHE, parse_bool)?.unwrap_or(d.no_cache),
            solve: value(get(&SOLVE), &SOLVE, parse_solve_path)?.unwrap_or(d.solve),
            export: value(get(&EXPORT), &EXPORT, parse_bool)?.unwrap_or(d.export),
            probe: value(get(&PROBE), &PROBE, parse_probe)?.unwrap_or(d.probe),
            platform: value(get(&PLATFORM), &PLATFORM, parse_platform)?,
            probe_toolchain_image: get(&PROBE_TOOLCHAIN_IMAGE)
                .map(|raw| raw.text.trim().to_owned()),
            junit: get(&JUNIT).map(|raw| PathBuf::from(raw.text.trim())),
            results: get(&RESULTS).map(|raw| PathBuf::from(raw.text.trim())),
            suite: get(&SUITE).map(|raw| raw.text.trim().to_owned()),
            tls: TlsOptions {
                ca_cert: get(&TLS_CA_CERT).map(|raw| PathBuf::from(raw.text.trim())),
                cert: get(&TLS_CERT).map(|raw| PathBuf::from(raw.text.trim())),
                key: get(&TLS_KEY).map(|raw| PathBuf::from(raw.text.trim())),
                server_name: get(&TLS_SERVER_NAME).map(|raw| raw.text.trim().to_owned()),
            },
            cache_to: value(get(&CACHE_TO), &CACHE_TO, parse_cache_to)?.unwrap_or_default(),
            cache_from: value(get(&CACHE_FROM), &CACHE_FROM, parse_cache_from)?.unwrap_or_default(),
        })
    }

    /// The one writer: every variable of [`SETTINGS`] with the value a suite binary must see
    /// (`Some`), or `None` where the variable must be removed so that a stale value in the
    /// caller's environment cannot change the run. `from_lookup` of the result gives `self` back.
    pub fn to_env(&self) -> Vec<(&'static str, Option<String>)> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let (addr, name) = match &self.builder {
            Some(BuilderChoice::Addr(a)) => (Some(a.clone()), None),
            Some(BuilderChoice::Named(n)) => (None, Some(n.clone())),
            None => (None, None),
        };
        let values = [
            (BUILDKIT_HOST, addr),
            (BUILDX_BUILDER, name),
            (NODES, format_nodes(&self.nodes)),
            (STRATEGY, Some(self.strategy.name().to_owned())),
            (JOBS, Some(self.jobs.to_string())),
            (TIMEOUT, Some(format_duration(self.timeout))),
            (NO_CACHE, self.no_cache.then(|| "1".to_owned())),
            (SOLVE, Some(self.solve.name().to_owned())),
            (EXPORT, self.export.then(|| "1".to_owned())),
            (JUNIT, path(&self.junit)),
            (PROBE, Some(self.probe.name().to_owned())),
            (PLATFORM, self.platform.as_ref().map(ToString::to_string)),
            (PROBE_TOOLCHAIN_IMAGE, self.probe_toolchain_image.clone()),
            (TLS_CA_CERT, path(&self.tls.ca_cert)),
            (TLS_CERT, path(&self.tls.cert)),
            (TLS_KEY, path(&self.tls.key)),
            (TLS_SERVER_NAME, self.tls.server_name.clone()),
            (RESULTS, path(&self.results)),
            (SUITE, self.suite.clone()),
            (CACHE_TO, cache_list(&self.cache_to)),
            (CACHE_FROM, cache_list(&self.cache_from)),
        ];
        values.into_iter().map(|(s, v)| (s.var, v)).collect()
    }
}

fn value<T>(
    raw: Option<Raw>,
    setting: &Setting,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, SettingError> {
    let Some(raw) = raw else { return Ok(None) };
    match parse(raw.text.trim()) {
        Some(v) => Ok(Some(v)),
        None => Err(SettingError {
            origin: raw.origin,
            value: raw.text,
            accepted: setting.accepted,
        }),
    }
}

/// `linux/amd64`, `linux/arm64` or `linux/arm64/v8` (the platforms a check probe exists for).
fn parse_platform(text: &str) -> Option<crate::llb::Platform> {
    use crate::llb::Platform;
    match text {
        "linux/amd64" => Some(Platform::linux_amd64()),
        "linux/arm64" => Some(Platform::linux_arm64()),
        "linux/arm64/v8" => Some(Platform::linux_arm64().with_variant("v8")),
        _ => None,
    }
}

impl SuiteSettings {
    /// The platform inputs are solved for: `BUILDTEST_PLATFORM`, else linux/amd64.
    pub fn run_platform(&self) -> crate::llb::Platform {
        self.platform
            .clone()
            .unwrap_or_else(crate::llb::Platform::linux_amd64)
    }
}

fn parse_builder(raw: &Raw, addr_var: bool) -> BuilderChoice {
    let text = raw.text.trim().to_owned();
    let is_addr = match &raw.origin {
        Origin::File { .. } => text.contains("://"),
        _ => addr_var,
    };
    if is_addr {
        BuilderChoice::Addr(text)
    } else {
        BuilderChoice::Named(text)
    }
}

/// Cache exports (`;`-separated buildx entries), local directories made absolute.
pub fn parse_cache_to(text: &str) -> Option<Vec<CacheEntry>> {
    parse_cache(text, CacheDirection::Export)
}

/// Cache imports (`;`-separated buildx entries), local directories made absolute.
pub fn parse_cache_from(text: &str) -> Option<Vec<CacheEntry>> {
    parse_cache(text, CacheDirection::Import)
}

fn parse_cache(text: &str, direction: CacheDirection) -> Option<Vec<CacheEntry>> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let entries = CacheEntry::parse_list(text, direction).ok()?;
    Some(entries.into_iter().map(|e| e.absolute(&cwd)).collect())
}

fn cache_list(entries: &[CacheEntry]) -> Option<String> {
    (!entries.is_empty()).then(|| CacheEntry::format_list(entries))
}

/// `BUILDTEST_NODES`: comma-separated entries, each an address (with `://`) or a buildx builder
/// name; none empty, none twice.
pub fn parse_nodes(text: &str) -> Option<Vec<BuilderChoice>> {
    let mut nodes: Vec<BuilderChoice> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        if entry.is_empty() || entry.contains(char::is_whitespace) {
            return None;
        }
        let node = if entry.contains("://") {
            BuilderChoice::Addr(entry.to_owned())
        } else {
            BuilderChoice::Named(entry.to_owned())
        };
        if nodes.contains(&node) {
            return None;
        }
        nodes.push(node);
    }
    Some(nodes)
}

/// `BUILDTEST_NODES` as [`parse_nodes`] reads it back (`None` for no nodes).
pub fn format_nodes(nodes: &[BuilderChoice]) -> Option<String> {
    if nodes.is_empty() {
        return None;
    }
    let names: Vec<&str> = nodes
        .iter()
        .map(|n| match n {
            BuilderChoice::Addr(a) | BuilderChoice::Named(a) => a.as_str(),
        })
        .collect();
    Some(names.join(","))
}

/// `auto`, `passthrough`, `direct`, `discard`, `mergediff`.
pub fn parse_strategy(text: &str) -> Option<Strategy> {
    Strategy::from_str(text).ok()
}

/// `auto`, `gateway`, `control`.
pub fn parse_solve_path(text: &str) -> Option<SolvePath> {
    match text {
        "auto" => Some(SolvePath::Auto),
        "gateway" => Some(SolvePath::Gateway),
        "control" => Some(SolvePath::Control),
        _ => None,
    }
}

/// A whole number, at least 1.
pub fn parse_jobs(text: &str) -> Option<usize> {
    text.parse::<usize>().ok().filter(|n| *n > 0)
}

/// `auto`, `image`, `inline`.
pub fn parse_probe(text: &str) -> Option<ProbeDelivery> {
    match text {
        "auto" => Some(ProbeDelivery::Auto),
        "image" => Some(ProbeDelivery::Image),
        "inline" => Some(ProbeDelivery::Inline),
        "session" => Some(ProbeDelivery::Session),
        _ => None,
    }
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off` (any case).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `90`, `2.5`, `90s`, `1500ms`, `5m`, `1h`: above zero, at most 10⁹ s.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds > 0.0 && seconds <= 1.0e9)
        .then(|| Duration::from_secs_f64(seconds))
}

/// A duration as [`parse_duration`] reads it back exactly: whole seconds as `90`, else
/// milliseconds or nanoseconds with their unit.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}", d.as_secs_f64())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<SuiteSettings, SettingError> {
        SuiteSettings::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_platform_is_one_a_probe_exists_for() {
        use crate::llb::Platform;
        assert_eq!(env(&[]).unwrap().run_platform(), Platform::linux_amd64());
        let arm = env(&[("BUILDTEST_PLATFORM", "linux/arm64")]).unwrap();
        assert_eq!(arm.platform, Some(Platform::linux_arm64()));
        assert_eq!(arm.run_platform(), Platform::linux_arm64());
        let e = env(&[("BUILDTEST_PLATFORM", "linux/riscv64")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "read BUILDTEST_PLATFORM: `linux/riscv64` is not a platform a check probe exists for: \
             linux/amd64 or linux/arm64 (`linux/arm64/v8`)"
        );
    }

    #[test]
    fn defaults() {
        assert_eq!(env(&[]).unwrap(), SuiteSettings::default());
        assert_eq!(env(&[("BUILDTEST_JOBS", " ")]).unwrap().jobs, DEFAULT_JOBS);
    }

    #[test]
    fn the_writer_and_the_reader_agree() {
        let settings = SuiteSettings {
            builder: Some(BuilderChoice::Named("bx".into())),
            nodes: vec![
                BuilderChoice::Addr("unix:///run/a.sock".into()),
                BuilderChoice::Named("bx2".into()),
            ],
            strategy: Strategy::Discard,
            jobs: 3,
            timeout: Duration::from_millis(2500),
            no_cache: true,
            solve: SolvePath::Gateway,
            export: true,
            probe: ProbeDelivery::Inline,
            platform: Some(crate::llb::Platform::linux_arm64().with_variant("v8")),
            probe_toolchain_image: Some("buildtest/rust:bookworm".into()),
            junit: Some("out/j.xml".into()),
            results: Some("/tmp/r.jsonl".into()),
            suite: Some("pkg::suite".into()),
            tls: TlsOptions {
                ca_cert: Some("/c/ca.pem".into()),
                cert: None,
                key: None,
                server_name: Some("kit".into()),
            },
            cache_to: parse_cache_to("type=local,dest=/c;type=registry,ref=r:5000/c,mode=max")
                .unwrap(),
            cache_from: parse_cache_from("type=local,src=/c").unwrap(),
        };
        let written = settings.to_env();
        let back = SuiteSettings::from_lookup(|name| {
            written
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.clone())
        })
        .unwrap();
        assert_eq!(back, settings);
        let names: Vec<&str> = written.iter().map(|(n, _)| *n).collect();
        let table: Vec<&str> = SETTINGS.iter().map(|s| s.var).collect();
        assert_eq!(names, table, "the writer covers every setting, in order");
    }

    #[test]
    fn nodes_are_a_list_of_addresses_and_names() {
        let got = env(&[(
            "BUILDTEST_NODES",
            "docker+unix:///var/run/docker.sock, bx ,tcp://127.0.0.1:1",
        )])
        .unwrap();
        assert_eq!(
            got.nodes,
            vec![
                BuilderChoice::Addr("docker+unix:///var/run/docker.sock".into()),
                BuilderChoice::Named("bx".into()),
                BuilderChoice::Addr("tcp://127.0.0.1:1".into()),
            ]
        );
        for bad in ["a,,b", "a,a", "a b"] {
            let err = env(&[("BUILDTEST_NODES", bad)]).unwrap_err();
            assert_eq!(err.accepted, NODES.accepted, "{bad}");
        }
    }

    #[test]
    fn durations_round_trip() {
        for d in [
            Duration::from_secs(300),
            Duration::from_millis(2500),
            Duration::from_nanos(1_000_000_001),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Some(d), "{d:?}");
        }
    }

    #[test]
    fn errors_name_the_variable_the_value_and_the_forms() {
        let err = env(&[("BUILDTEST_JOBS", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "read BUILDTEST_JOBS: `0` is not a whole number of concurrent solves, at least 1"
        );
        let err = env(&[("BUILDTEST_CACHE_TO", "type=local,src=/x")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("read BUILDTEST_CACHE_TO: `type=local,src=/x` is not cache exports"),
            "{err}"
        );
        let err = env(&[("BUILDTEST_SOLVE", "fast")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "read BUILDTEST_SOLVE: `fast` is not one of auto, gateway, control"
        );
        assert_eq!(
            env(&[("BUILDTEST_SOLVE", " control ")]).unwrap().solve,
            SolvePath::Control
        );
        let err = env(&[("BUILDTEST_STRATEGY", "bogus")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "read BUILDTEST_STRATEGY: `bogus` is not one of auto, passthrough, direct, discard, mergediff"
        );
    }
}
