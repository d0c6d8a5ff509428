//! Resolving, connecting to and probing the builder once for the whole run, and telling every
//! suite binary to use that same builder and strategy.
//!
//! Resolution, connection, the capability probe and the choice of strategy are the
//! `buildtest::client` layer's; this module only feeds it the run's settings and turns the
//! result into a header and environment variables for the suite binaries:
//!
//! | variable | value |
//! |---|---|
//! | `BUILDKIT_HOST` | the address the builder was reached at (the user's own string when one was given) |
//! | `BUILDX_BUILDER` | the buildx builder name, when the builder was chosen by name (or is the store's current one and has no address) |
//! | `BUILDTEST_STRATEGY` | the strategy resolved from the probe (`passthrough`, `direct`, …) |
//! | `BUILDTEST_JOBS`, `BUILDTEST_TIMEOUT`, `BUILDTEST_NO_CACHE` | the run's settings |
//! | `BUILDTEST_TLSCACERT`, `BUILDTEST_TLSCERT`, `BUILDTEST_TLSKEY`, `BUILDTEST_TLSSERVERNAME` | the TLS flags, when given |
//!
//! At most one of `BUILDKIT_HOST` and `BUILDX_BUILDER` is set and the other is removed, so a
//! stale value in the caller's environment cannot send a suite to another builder than the
//! header's. Resolution here works the same way: the settings ([`crate::config`]) weigh flags,
//! environment and configuration, and the client sees only their choice, so `--addr` and
//! `--builder` beat `BUILDKIT_HOST` and `BUILDX_BUILDER`.
//!
//! `BUILDTEST_JUNIT` is removed: `cargo buildtest` writes the one JUnit file of the run itself.

use buildtest::client::{
    BuilderSpec, Client, Env, Reason, ResolveOptions, Socket, Strategy, TlsOptions, TransportSpec,
    resolve, resolve_strategy,
};
use buildtest::harness::config::{DEFAULT_JOBS, DEFAULT_TIMEOUT};

use crate::args::Args;
use crate::config::{BuilderChoice, Settings, Source, Sourced};
use crate::console::Header;
use crate::errors::{ExpectedError, render_chain};

/// The builder the run uses, and what the suite binaries need to use it too.
#[derive(Debug, Clone, Default)]
pub struct Connected {
    /// What the header shows.
    pub header: Header,
    /// Variables set for every suite binary.
    pub env: Vec<(String, String)>,
    /// Variables removed for every suite binary.
    pub env_remove: Vec<String>,
}

/// Parses a requested strategy (before anything is built, so a typo fails fast).
pub fn validate_strategy(strategy: Option<&Sourced<String>>) -> Result<Strategy, ExpectedError> {
    let Some(s) = strategy else {
        return Ok(Strategy::Auto);
    };
    s.value.parse::<Strategy>().map_err(|e| match &s.source {
        Source::Config(path) => ExpectedError::Config {
            path: path.clone(),
            message: format!("key `strategy`: failed to {e}"),
        },
        other => ExpectedError::usage(other.to_string(), e.to_string()),
    })
}

/// The TLS flags as the client layer takes them.
pub fn tls_options(args: &Args) -> TlsOptions {
    TlsOptions {
        ca_cert: args.tlscacert.clone(),
        cert: args.tlscert.clone(),
        key: args.tlskey.clone(),
        server_name: args.tlsservername.clone(),
    }
}

/// Resolves the builder from the settings, connects, probes its capabilities once and picks the
/// strategy. Any failure up to a working, probed connection is [`ExpectedError::NoBuilder`].
pub async fn connect(args: &Args, settings: &Settings) -> Result<Connected, ExpectedError> {
    let requested = validate_strategy(settings.strategy.as_ref())?;
    let options = resolve_options(args, settings, Env::from_process());
    let no_builder = |err: &dyn std::error::Error| ExpectedError::NoBuilder {
        message: render_chain(err),
    };
    let resolved = resolve(&options).map_err(|e| no_builder(&e))?;
    let client = Client::connect(&resolved)
        .await
        .map_err(|e| no_builder(&e))?;
    let caps = client.caps().await.map_err(|e| ExpectedError::NoBuilder {
        message: format!(
            "probe the capabilities of {}: {}",
            client.builder(),
            render_chain(&e)
        ),
    })?;
    let strategy = resolve_strategy(requested, caps).map_err(|e| {
        let what = settings
            .strategy
            .as_ref()
            .map_or_else(|| "strategy".to_owned(), |s| s.source.to_string());
        ExpectedError::usage(what, e.to_string())
    })?;

    let spec = client.builder();
    let reason = header_reason(settings, spec);
    let strategy_note = match (requested, settings.strategy.as_ref()) {
        (Strategy::Auto, _) if caps.passthrough => {
            "auto: the builder supports passthroughop".to_owned()
        }
        (Strategy::Auto, _) => {
            "auto: the builder lacks passthroughop (BuildKit < v0.31), checks run as direct execs"
                .to_owned()
        }
        (_, Some(s)) => format!("from {}", s.source),
        (_, None) => String::new(),
    };
    let jobs = settings.jobs.as_ref().map_or(DEFAULT_JOBS, |j| j.value);
    let timeout = settings
        .timeout
        .as_ref()
        .map_or(DEFAULT_TIMEOUT, |t| t.value);
    let header = Header {
        builder: spec.transport.to_string(),
        reason,
        buildkit: caps
            .version
            .as_ref()
            .map(|v| format!("{} {}", v.package, v.version).trim().to_owned()),
        strategy: format!("{strategy} ({strategy_note})"),
        jobs,
        timeout,
        no_cache: settings.no_cache,
        suites: 0,
        tests: 0,
    };

    let (env, env_remove) = suite_env(args, settings, spec, strategy, jobs, timeout);
    Ok(Connected {
        header,
        env,
        env_remove,
    })
}

/// What resolution gets: the builder [`Settings`] chose (flags > environment > configuration)
/// as `--addr`/`--builder`, and `env` without `BUILDKIT_HOST` and `BUILDX_BUILDER`.
///
/// The client reads `BUILDKIT_HOST` before `--builder`; the settings have already weighed those
/// variables against the flags, so leaving them in would let a stale `BUILDKIT_HOST` beat an
/// explicit `--builder` (and the header would name the flag for a builder it did not pick).
pub fn resolve_options(args: &Args, settings: &Settings, env: Env) -> ResolveOptions {
    let mut options = ResolveOptions {
        tls: tls_options(args),
        env: env.var("BUILDKIT_HOST", "").var("BUILDX_BUILDER", ""),
        ..ResolveOptions::default()
    };
    match settings.builder.as_ref().map(|b| &b.value) {
        Some(BuilderChoice::Addr(addr)) => options.addr = Some(addr.clone()),
        Some(BuilderChoice::Named(name)) => options.builder = Some(name.clone()),
        None => {}
    }
    options
}

/// Why the header's builder was chosen: the setting that named it (`flag --builder`,
/// `$BUILDKIT_HOST`, a configuration file), else the client's own reason (Docker context,
/// default socket …).
pub fn header_reason(settings: &Settings, spec: &BuilderSpec) -> String {
    match &settings.builder {
        Some(choice) => choice.source.to_string(),
        None => spec.reason.to_string(),
    }
}

/// The variables set for (and removed from) every suite binary so that it reaches the builder
/// the header shows, with the run's settings, whatever the caller's environment holds.
pub fn suite_env(
    args: &Args,
    settings: &Settings,
    spec: &BuilderSpec,
    strategy: Strategy,
    jobs: usize,
    timeout: std::time::Duration,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut env = vec![
        ("BUILDTEST_STRATEGY".to_owned(), strategy.name().to_owned()),
        ("BUILDTEST_JOBS".to_owned(), jobs.to_string()),
        (
            "BUILDTEST_TIMEOUT".to_owned(),
            timeout.as_secs_f64().to_string(),
        ),
    ];
    if settings.no_cache {
        env.push(("BUILDTEST_NO_CACHE".to_owned(), "1".to_owned()));
    }
    // The suites resolve the builder like the client did: BUILDKIT_HOST first, then
    // BUILDX_BUILDER. Exactly one of them names the chosen builder; the other is removed.
    let mut env_remove = vec![
        "BUILDTEST_JUNIT".to_owned(),
        "BUILDTEST_NO_CACHE".to_owned(),
        "BUILDKIT_HOST".to_owned(),
        "BUILDX_BUILDER".to_owned(),
    ];
    match settings.builder.as_ref().map(|b| &b.value) {
        Some(BuilderChoice::Addr(addr)) => {
            env.push(("BUILDKIT_HOST".to_owned(), addr.clone()));
        }
        Some(BuilderChoice::Named(name)) => {
            env.push(("BUILDX_BUILDER".to_owned(), name.clone()));
        }
        None => {
            // Nothing named a builder: the one that answered (of the client's candidates) by its
            // address, else by its buildx name; otherwise the suites repeat the same resolution
            // (Docker context …) from the same environment.
            if let Some(addr) = address_of(&spec.transport) {
                env.push(("BUILDKIT_HOST".to_owned(), addr));
            } else if let Reason::BuildxBuilder { name, .. } = &spec.reason {
                env.push(("BUILDX_BUILDER".to_owned(), name.clone()));
            }
        }
    }
    let tls = tls_options(args);
    for (name, value) in [
        (
            "BUILDTEST_TLSCACERT",
            tls.ca_cert.map(|p| p.display().to_string()),
        ),
        (
            "BUILDTEST_TLSCERT",
            tls.cert.map(|p| p.display().to_string()),
        ),
        ("BUILDTEST_TLSKEY", tls.key.map(|p| p.display().to_string())),
        ("BUILDTEST_TLSSERVERNAME", tls.server_name),
    ] {
        if let Some(value) = value {
            env.push((name.to_owned(), value));
        }
    }
    // Settings from the run win over whatever the caller's environment had.
    env_remove.retain(|k| !env.iter().any(|(set, _)| set == k));
    (env, env_remove)
}

/// The `--addr` form that reaches `transport` again, when it has one without extra settings.
pub fn address_of(transport: &TransportSpec) -> Option<String> {
    match transport {
        TransportSpec::Buildkitd {
            socket: Socket::Unix(path),
            tls: None,
        } => Some(format!("unix://{}", path.display())),
        TransportSpec::Buildkitd {
            socket: Socket::Tcp { host, port },
            tls: None,
        } => Some(format!("tcp://{host}:{port}")),
        TransportSpec::DockerEngine {
            socket: Socket::Unix(path),
            tls: None,
        } => Some(format!("docker+unix://{}", path.display())),
        TransportSpec::DockerEngine {
            socket: Socket::Tcp { host, port },
            tls: None,
        } => Some(format!("docker+tcp://{host}:{port}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn addresses_round_trip_for_plain_transports() {
        let engine = TransportSpec::DockerEngine {
            socket: Socket::Unix(PathBuf::from("/var/run/docker.sock")),
            tls: None,
        };
        assert_eq!(
            address_of(&engine).as_deref(),
            Some("docker+unix:///var/run/docker.sock")
        );
        let kit = TransportSpec::Buildkitd {
            socket: Socket::Tcp {
                host: "127.0.0.1".into(),
                port: 1234,
            },
            tls: Some(TlsOptions::default()),
        };
        assert_eq!(address_of(&kit), None);
    }

    const STALE_HOST: &str = "unix:///nonexistent.sock";

    /// A buildx store with one `docker`-driver builder `bx` on the engine at `socket`.
    fn store(socket: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("instances")).unwrap();
        std::fs::write(
            dir.path().join("instances/bx"),
            format!(
                r#"{{"Name":"bx","Driver":"docker","Nodes":[{{"Name":"bx0","Endpoint":"unix://{socket}"}}]}}"#
            ),
        )
        .unwrap();
        dir
    }

    /// The settings for `args` in an environment of `vars`, and that environment as an [`Env`].
    fn settings_for(args: &Args, vars: &[(&str, &str)]) -> (Settings, Env) {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
                .filter(|v| !v.is_empty())
        };
        let settings = Settings::resolve(
            args,
            &lookup,
            &[],
            std::path::Path::new("/ws"),
            "/ws/j.xml".into(),
        )
        .unwrap();
        let env = vars.iter().fold(Env::empty(), |env, (k, v)| env.var(k, *v));
        (settings, env)
    }

    /// What a suite binary resolves (as the harness does: its environment, no flags) after
    /// `suite_env` was applied to the caller's environment `vars`.
    fn suite_resolves(
        args: &Args,
        settings: &Settings,
        spec: &BuilderSpec,
        vars: &[(&str, &str)],
    ) -> BuilderSpec {
        let (set, removed) = suite_env(
            args,
            settings,
            spec,
            Strategy::Direct,
            DEFAULT_JOBS,
            DEFAULT_TIMEOUT,
        );
        let mut child: Vec<(String, String)> = vars
            .iter()
            .filter(|(k, _)| !removed.iter().any(|r| r == k))
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        child.retain(|(k, _)| !set.iter().any(|(s, _)| s == k));
        child.extend(set);
        let env = child.iter().fold(Env::empty(), |env, (k, v)| env.var(k, v));
        let resolved = resolve(&ResolveOptions {
            env,
            ..ResolveOptions::default()
        })
        .unwrap();
        resolved.candidates[0].clone()
    }

    fn engine(path: &str) -> TransportSpec {
        TransportSpec::DockerEngine {
            socket: Socket::Unix(PathBuf::from(path)),
            tls: None,
        }
    }

    #[test]
    fn the_builder_flag_beats_buildkit_host_and_buildx_builder() {
        let store = store("/run/chosen.sock");
        let bx_config = store.path().display().to_string();
        let vars = [
            ("BUILDKIT_HOST", STALE_HOST),
            ("BUILDX_BUILDER", "stale"),
            ("BUILDX_CONFIG", bx_config.as_str()),
        ];
        let args = Args {
            builder: Some("bx".into()),
            ..Args::default()
        };
        let (settings, env) = settings_for(&args, &vars);
        let resolved = resolve(&resolve_options(&args, &settings, env)).unwrap();
        assert_eq!(resolved.candidates.len(), 1, "{resolved}");
        let spec = &resolved.candidates[0];
        assert_eq!(spec.transport, engine("/run/chosen.sock"), "{resolved}");
        assert!(
            matches!(&spec.reason, Reason::BuildxBuilder { name, via, .. } if name == "bx" && via == "--builder"),
            "{resolved}"
        );
        assert_eq!(header_reason(&settings, spec), "flag --builder");
        // The suites reach the same builder, whatever the caller's environment says.
        assert_eq!(
            suite_resolves(&args, &settings, spec, &vars).transport,
            spec.transport
        );
    }

    #[test]
    fn the_addr_flag_beats_every_variable() {
        let store = store("/run/other.sock");
        let bx_config = store.path().display().to_string();
        let vars = [
            ("BUILDKIT_HOST", STALE_HOST),
            ("BUILDX_BUILDER", "bx"),
            ("BUILDX_CONFIG", bx_config.as_str()),
            ("DOCKER_HOST", "unix:///run/docker-host.sock"),
        ];
        let args = Args {
            addr: Some("docker+unix:///run/chosen.sock".into()),
            ..Args::default()
        };
        let (settings, env) = settings_for(&args, &vars);
        let resolved = resolve(&resolve_options(&args, &settings, env)).unwrap();
        let spec = &resolved.candidates[0];
        assert_eq!(spec.transport, engine("/run/chosen.sock"), "{resolved}");
        assert_eq!(header_reason(&settings, spec), "flag --addr");
        assert_eq!(
            suite_resolves(&args, &settings, spec, &vars).transport,
            spec.transport
        );
    }

    #[test]
    fn without_flags_buildkit_host_beats_buildx_builder() {
        let store = store("/run/bx.sock");
        let bx_config = store.path().display().to_string();
        let vars = [
            ("BUILDKIT_HOST", "docker+unix:///run/host.sock"),
            ("BUILDX_BUILDER", "bx"),
            ("BUILDX_CONFIG", bx_config.as_str()),
        ];
        let args = Args::default();
        let (settings, env) = settings_for(&args, &vars);
        let resolved = resolve(&resolve_options(&args, &settings, env)).unwrap();
        let spec = &resolved.candidates[0];
        assert_eq!(spec.transport, engine("/run/host.sock"), "{resolved}");
        assert_eq!(header_reason(&settings, spec), "$BUILDKIT_HOST");
        assert_eq!(
            suite_resolves(&args, &settings, spec, &vars).transport,
            spec.transport
        );

        // BUILDX_BUILDER alone names the builder.
        let vars = [
            ("BUILDX_BUILDER", "bx"),
            ("BUILDX_CONFIG", bx_config.as_str()),
        ];
        let (settings, env) = settings_for(&args, &vars);
        let resolved = resolve(&resolve_options(&args, &settings, env)).unwrap();
        let spec = &resolved.candidates[0];
        assert_eq!(spec.transport, engine("/run/bx.sock"), "{resolved}");
        assert_eq!(header_reason(&settings, spec), "$BUILDX_BUILDER");
    }

    #[test]
    fn suites_get_exactly_one_builder_variable() {
        let store = store("/run/chosen.sock");
        let bx_config = store.path().display().to_string();
        let spec = BuilderSpec {
            transport: engine("/run/chosen.sock"),
            reason: Reason::DockerHost,
        };
        let get = |set: &[(String, String)], name: &str| {
            set.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        };
        let vars = [
            ("BUILDKIT_HOST", STALE_HOST),
            ("BUILDX_CONFIG", bx_config.as_str()),
        ];
        let args = Args {
            builder: Some("bx".into()),
            ..Args::default()
        };
        let (s, _) = settings_for(&args, &vars);
        let (set, removed) = suite_env(&args, &s, &spec, Strategy::Direct, 3, DEFAULT_TIMEOUT);
        assert_eq!(get(&set, "BUILDX_BUILDER").as_deref(), Some("bx"));
        assert_eq!(get(&set, "BUILDTEST_JOBS").as_deref(), Some("3"));
        assert!(removed.contains(&"BUILDKIT_HOST".to_owned()), "{removed:?}");

        // Nothing named: the builder that answered, by address.
        let (s, _) = settings_for(&Args::default(), &[]);
        let (set, removed) = suite_env(
            &Args::default(),
            &s,
            &spec,
            Strategy::Direct,
            3,
            DEFAULT_TIMEOUT,
        );
        assert_eq!(
            get(&set, "BUILDKIT_HOST").as_deref(),
            Some("docker+unix:///run/chosen.sock")
        );
        assert!(
            removed.contains(&"BUILDX_BUILDER".to_owned()),
            "{removed:?}"
        );
        assert!(
            !removed.contains(&"BUILDKIT_HOST".to_owned()),
            "{removed:?}"
        );
    }

    #[test]
    fn strategy_names_are_checked_early() {
        let bad = Sourced {
            value: "sideways".to_owned(),
            source: Source::Flag("--strategy"),
        };
        let err = validate_strategy(Some(&bad)).unwrap_err();
        assert_eq!(err.process_exit_code(), 2);
        assert!(err.to_string().contains("sideways"), "{err}");
        let ok = Sourced {
            value: "direct".to_owned(),
            source: Source::Env("BUILDTEST_STRATEGY"),
        };
        assert_eq!(validate_strategy(Some(&ok)).unwrap(), Strategy::Direct);
    }
}
