//! Resolving, connecting to and probing the builder once for the whole run (the client's one
//! [`connect_and_probe`]), and telling every suite binary to use that same builder and strategy.
//!
//! The suite binaries get the run's [`SuiteSettings`] through the protocol's one writer
//! ([`SuiteSettings::to_env`]): the builder the header shows, by exactly one of `BUILDKIT_HOST`
//! (the address it was reached at, the user's own string when one was given) and `BUILDX_BUILDER`
//! (when it was chosen by name) — the other is removed, so a stale value in the caller's
//! environment cannot send a suite to another builder than the header's —, the strategy
//! resolved from the probe, the run's jobs, timeout, no-cache, probe delivery and TLS settings.
//! `BUILDTEST_JUNIT` is removed: `cargo buildtest` writes the one JUnit file of the run itself.
//!
//! Resolution here works as in the suites: the settings ([`crate::config`]) weigh flags,
//! environment and configuration, and the client sees only their choice, so `--addr` and
//! `--builder` beat `BUILDKIT_HOST` and `BUILDX_BUILDER`.

use buildtest::client::{
    BuilderSpec, ConnectOptions, Env, ProbeError, ProbeRequest, Reason, ResolveOptions, Socket,
    TransportSpec, connect_and_probe,
};
use buildtest::protocol::SuiteSettings;
use buildtest::protocol::events::Header;
use buildtest::protocol::settings::{BuilderChoice, STRATEGY};

use crate::config::Settings;
use crate::errors::ExpectedError;

/// The builder the run uses, and what the suite binaries need to use it too.
#[derive(Debug, Clone)]
pub struct Connected {
    /// What the header shows (`suites` and `tests` are filled in by the caller).
    pub header: Header,
    /// What every suite binary gets (each also gets its own results file and suite name).
    pub suite: SuiteSettings,
}

/// Resolves the builder from the settings, connects, probes its capabilities once and picks the
/// strategy. A strategy the builder cannot run is a setup error (exit 2: nothing was solved);
/// any other failure up to a working, probed connection is [`ExpectedError::NoBuilder`].
pub async fn connect(settings: &Settings) -> Result<Connected, ExpectedError> {
    let request = ProbeRequest {
        resolve: resolve_options(settings, Env::from_process()),
        connect: ConnectOptions::default(),
        strategy: settings.suite.strategy,
        strategy_from: settings.shown_origin(&STRATEGY),
    };
    let probed = connect_and_probe(&request).await.map_err(|err| match err {
        ProbeError::Strategy(source) => ExpectedError::Strategy {
            what: settings
                .shown_origin(&STRATEGY)
                .unwrap_or_else(|| "strategy".to_owned()),
            source,
        },
        other => ExpectedError::NoBuilder(other),
    })?;
    // A cache export the builder cannot do is refused here, before anything is built or run.
    if !settings.suite.cache_to.is_empty() {
        let support = probed
            .client
            .cache_support()
            .await
            .map_err(ExpectedError::CacheSupport)?;
        support.check(&probed.builder().to_string(), &settings.suite.cache_to)?;
    }
    let spec = probed.builder();
    let suite = suite_settings(settings, spec, probed.strategy);
    let header = Header::new(&probed, header_reason(settings, spec), &suite);
    Ok(Connected { header, suite })
}

/// What resolution gets: the builder [`Settings`] chose (flags > environment > configuration)
/// as `--addr`/`--builder`, and `env` without `BUILDKIT_HOST` and `BUILDX_BUILDER`.
///
/// The client reads `BUILDKIT_HOST` before `--builder`; the settings have already weighed those
/// variables against the flags, so leaving them in would let a stale `BUILDKIT_HOST` beat an
/// explicit `--builder` (and the header would name the flag for a builder it did not pick).
pub fn resolve_options(settings: &Settings, env: Env) -> ResolveOptions {
    let mut options = ResolveOptions {
        tls: settings.suite.tls.clone(),
        env: env.var("BUILDKIT_HOST", "").var("BUILDX_BUILDER", ""),
        ..ResolveOptions::default()
    };
    match &settings.suite.builder {
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
    settings
        .builder_origin()
        .unwrap_or_else(|| spec.reason.to_string())
}

/// The settings every suite binary runs with: the run's, with the builder that answered and the
/// strategy resolved from the probe, and no JUnit file of its own.
pub fn suite_settings(
    settings: &Settings,
    spec: &BuilderSpec,
    strategy: buildtest::client::Strategy,
) -> SuiteSettings {
    let mut suite = settings.suite.clone();
    suite.strategy = strategy;
    suite.junit = None;
    if suite.builder.is_none() {
        // Nothing named a builder: the one that answered (of the client's candidates) by its
        // address, else by its buildx name; otherwise the suites repeat the same resolution
        // (Docker context …) from the same environment.
        suite.builder = match (address_of(&spec.transport), &spec.reason) {
            (Some(addr), _) => Some(BuilderChoice::Addr(addr)),
            (None, Reason::BuildxBuilder { name, .. }) => Some(BuilderChoice::Named(name.clone())),
            (None, _) => None,
        };
    }
    suite
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
    use crate::args::Args;
    use buildtest::client::{Strategy, TlsOptions, resolve};
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
    /// the suite settings were written over the caller's environment `vars`.
    fn suite_resolves(
        settings: &Settings,
        spec: &BuilderSpec,
        vars: &[(&str, &str)],
    ) -> BuilderSpec {
        let written = suite_settings(settings, spec, Strategy::Direct).to_env();
        let mut child: Vec<(String, String)> = vars
            .iter()
            .filter(|(k, _)| !written.iter().any(|(w, _)| w == k))
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        child.extend(
            written
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))),
        );
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
            builder: vec!["bx".into()],
            ..Args::default()
        };
        let (settings, env) = settings_for(&args, &vars);
        let resolved = resolve(&resolve_options(&settings, env)).unwrap();
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
            suite_resolves(&settings, spec, &vars).transport,
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
            addr: vec!["docker+unix:///run/chosen.sock".into()],
            ..Args::default()
        };
        let (settings, env) = settings_for(&args, &vars);
        let resolved = resolve(&resolve_options(&settings, env)).unwrap();
        let spec = &resolved.candidates[0];
        assert_eq!(spec.transport, engine("/run/chosen.sock"), "{resolved}");
        assert_eq!(header_reason(&settings, spec), "flag --addr");
        assert_eq!(
            suite_resolves(&settings, spec, &vars).transport,
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
        let resolved = resolve(&resolve_options(&settings, env)).unwrap();
        let spec = &resolved.candidates[0];
        assert_eq!(spec.transport, engine("/run/host.sock"), "{resolved}");
        assert_eq!(header_reason(&settings, spec), "$BUILDKIT_HOST");
        assert_eq!(
            suite_resolves(&settings, spec, &vars).transport,
            spec.transport
        );

        // BUILDX_BUILDER alone names the builder.
        let vars = [
            ("BUILDX_BUILDER", "bx"),
            ("BUILDX_CONFIG", bx_config.as_str()),
        ];
        let (settings, env) = settings_for(&args, &vars);
        let resolved = resolve(&resolve_options(&settings, env)).unwrap();
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
        let get = |set: &[(&str, Option<String>)], name: &str| {
            set.iter()
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| v.clone())
        };
        let vars = [
            ("BUILDKIT_HOST", STALE_HOST),
            ("BUILDX_CONFIG", bx_config.as_str()),
            ("BUILDTEST_JOBS", "3"),
        ];
        let args = Args {
            builder: vec!["bx".into()],
            ..Args::default()
        };
        let (s, _) = settings_for(&args, &vars);
        let set = suite_settings(&s, &spec, Strategy::Direct).to_env();
        assert_eq!(get(&set, "BUILDX_BUILDER").as_deref(), Some("bx"));
        assert_eq!(get(&set, "BUILDTEST_JOBS").as_deref(), Some("3"));
        assert_eq!(get(&set, "BUILDTEST_STRATEGY").as_deref(), Some("direct"));
        assert_eq!(get(&set, "BUILDKIT_HOST"), None, "removed: {set:?}");
        assert_eq!(get(&set, "BUILDTEST_JUNIT"), None, "removed: {set:?}");

        // Nothing named: the builder that answered, by address.
        let (s, _) = settings_for(&Args::default(), &[]);
        let set = suite_settings(&s, &spec, Strategy::Direct).to_env();
        assert_eq!(
            get(&set, "BUILDKIT_HOST").as_deref(),
            Some("docker+unix:///run/chosen.sock")
        );
        assert_eq!(get(&set, "BUILDX_BUILDER"), None, "removed: {set:?}");
    }
}
