//! Connect and probe: resolve the builder, connect, probe its capabilities once and choose the
//! strategy — the one sequence `cargo buildtest` and every suite binary run, giving one value
//! ([`Probed`]) from which both build the run's header (`buildtest::protocol::events::Header`:
//! the CLI's status lines, the harness's stderr line).

use std::fmt;

use super::addr::BuilderSpec;
use super::caps::Caps;
use super::control::{Client, ConnectOptions};
use super::errors::{ClientError, ConnectError, ResolveError};
use super::resolve::{ResolveOptions, resolve};
use super::strategy::{Strategy, StrategyError, resolve_strategy};

/// What to connect to and which strategy was asked for.
#[derive(Debug, Clone, Default)]
pub struct ProbeRequest {
    /// Builder resolution.
    pub resolve: ResolveOptions,
    /// Connection options.
    pub connect: ConnectOptions,
    /// The strategy asked for (`auto` unless a setting names one).
    pub strategy: Strategy,
    /// The setting that named the strategy (`BUILDTEST_STRATEGY`, `flag --strategy`, a
    /// configuration file), for the reason shown.
    pub strategy_from: Option<String>,
}

/// Why the strategy in use was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategyReason {
    /// `auto`, and the builder supports `passthroughop`.
    AutoPassthrough,
    /// `auto`, and the builder lacks `passthroughop`: checks run as direct execs.
    AutoFallback,
    /// A setting named it.
    Requested {
        /// Which setting (`None` when the caller did not say).
        from: Option<String>,
    },
}

impl fmt::Display for StrategyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrategyReason::AutoPassthrough => f.write_str("auto: the builder supports passthroughop"),
            StrategyReason::AutoFallback => f.write_str(
                "auto: the builder lacks passthroughop (BuildKit < v0.31), checks run as direct execs",
            ),
            StrategyReason::Requested { from: Some(from) } => write!(f, "from {from}"),
            StrategyReason::Requested { from: None } => f.write_str("requested"),
        }
    }
}

/// A connected, probed builder and the strategy checks will use on it.
#[derive(Debug, Clone)]
pub struct Probed {
    /// The connection.
    pub client: Client,
    /// What the builder supports.
    pub caps: Caps,
    /// The strategy in use (never `auto`).
    pub strategy: Strategy,
    /// Why.
    pub reason: StrategyReason,
}

impl Probed {
    /// The builder the client is connected to, and why it was chosen.
    pub fn builder(&self) -> &BuilderSpec {
        self.client.builder()
    }

    /// BuildKit's `package version`, when the builder reports it (`Control.Info`, v0.11+).
    pub fn buildkit_version(&self) -> Option<String> {
        self.caps
            .version
            .as_ref()
            .map(|v| format!("{} {}", v.package, v.version).trim().to_owned())
    }
}

/// Why connect-and-probe failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The settings name no usable builder.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// No candidate answered.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The capability probe failed.
    #[error("probe the capabilities of {builder}")]
    Caps {
        /// The builder.
        builder: String,
        /// Why.
        #[source]
        source: Box<ClientError>,
    },
    /// The strategy asked for cannot run on this builder (a setup error: nothing was solved).
    #[error(transparent)]
    Strategy(#[from] StrategyError),
}

/// Resolves, connects, probes the capabilities once and chooses the strategy.
pub async fn connect_and_probe(request: &ProbeRequest) -> Result<Probed, ProbeError> {
    let client = connect_only(request).await?;
    probe_connected(client, request).await
}

/// The first half of [`connect_and_probe`]: resolves and connects, without probing (so a caller
/// can ask other things of the builder while [`probe_connected`] runs).
pub async fn connect_only(request: &ProbeRequest) -> Result<Client, ProbeError> {
    let resolved = resolve(&request.resolve)?;
    Ok(Client::connect_with(&resolved, &request.connect).await?)
}

/// The second half of [`connect_and_probe`]: probes the capabilities of a connected `client`
/// once and chooses the strategy.
pub async fn probe_connected(client: Client, request: &ProbeRequest) -> Result<Probed, ProbeError> {
    let caps = client
        .caps()
        .await
        .map_err(|source| ProbeError::Caps {
            builder: client.builder().to_string(),
            source: Box::new(source),
        })?
        .clone();
    let strategy = resolve_strategy(request.strategy, &caps)?;
    let reason = match request.strategy {
        Strategy::Auto if caps.passthrough => StrategyReason::AutoPassthrough,
        Strategy::Auto => StrategyReason::AutoFallback,
        _ => StrategyReason::Requested {
            from: request.strategy_from.clone(),
        },
    };
    Ok(Probed {
        client,
        caps,
        strategy,
        reason,
    })
}
