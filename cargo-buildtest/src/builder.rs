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
//! | `BUILDX_BUILDER` | the buildx builder name, when the builder was chosen by name |
//! | `BUILDTEST_STRATEGY` | the strategy resolved from the probe (`passthrough`, `direct`, …) |
//! | `BUILDTEST_JOBS`, `BUILDTEST_TIMEOUT`, `BUILDTEST_NO_CACHE` | the run's settings |
//! | `BUILDTEST_TLSCACERT`, `BUILDTEST_TLSCERT`, `BUILDTEST_TLSKEY`, `BUILDTEST_TLSSERVERNAME` | the TLS flags, when given |
//!
//! `BUILDTEST_JUNIT` is removed: `cargo buildtest` writes the one JUnit file of the run itself.

use buildtest::client::{
    Client, Env, ResolveOptions, Socket, Strategy, TlsOptions, TransportSpec, resolve,
    resolve_strategy,
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
    let mut options = ResolveOptions {
        tls: tls_options(args),
        env: Env::from_process(),
        ..ResolveOptions::default()
    };
    match settings.builder.as_ref().map(|b| &b.value) {
        Some(BuilderChoice::Addr(addr)) => options.addr = Some(addr.clone()),
        Some(BuilderChoice::Named(name)) => options.builder = Some(name.clone()),
        None => {}
    }
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
    let reason = match &settings.builder {
        Some(choice) => choice.source.to_string(),
        None => spec.reason.to_string(),
    };
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
    let mut env_remove = vec![
        "BUILDTEST_JUNIT".to_owned(),
        "BUILDTEST_NO_CACHE".to_owned(),
    ];
    match settings.builder.as_ref().map(|b| &b.value) {
        Some(BuilderChoice::Addr(addr)) => {
            env.push(("BUILDKIT_HOST".to_owned(), addr.clone()));
            env_remove.push("BUILDX_BUILDER".to_owned());
        }
        Some(BuilderChoice::Named(name)) => {
            env.push(("BUILDX_BUILDER".to_owned(), name.clone()));
            env_remove.push("BUILDKIT_HOST".to_owned());
        }
        None => {
            if let Some(addr) = address_of(&spec.transport) {
                env.push(("BUILDKIT_HOST".to_owned(), addr));
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
    Ok(Connected {
        header,
        env,
        env_remove,
    })
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
