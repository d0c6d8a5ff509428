//! Layer 3 — `client`: connecting to a BuildKit builder and its Control API.
//!
//! 1. **Resolve** ([`resolve`]): flags and environment → [`Resolved`], the builders to try, each a
//!    [`BuilderSpec`] saying how to reach it ([`TransportSpec`]) and why it was chosen ([`Reason`]).
//!    Address forms, including the explicit Docker-engine form `docker+unix://…`, are in [`addr`].
//! 2. **Connect** ([`Client::connect`]): every transport ends in one tonic `Channel` ([`transport`]):
//!    unix/tcp(+TLS) gRPC to a buildkitd, a Docker engine's `/grpc` upgraded to h2c, or a
//!    `docker exec … buildctl dial-stdio` child. The first candidate whose `ListWorkers` answers within
//!    the connect timeout wins; otherwise [`ConnectError`] lists every attempt.
//! 3. **Solve** ([`Client::solve`]): `Solve` + `Status` for one fresh ref → [`SolveEvent`]s and a
//!    [`SolveReport`]; failures are classified into [`SolveError`] (the exec under test, an input, a
//!    missing image, an unsupported op, or the builder). Dropping a [`Solve`] cancels it.
//! 4. **Session** ([`Client::start_session`], [`session`]): the stream in which the client serves
//!    local directories ([`LocalDirs`]), anonymous registry auth and health checks to the daemon; one
//!    per run, its id in [`SolveOptions::session`] for solves with local sources.
//! 5. **Gateway** ([`gateway`]): `LLBBridge` on the same connection — image configs
//!    ([`Client::resolve_image_config`]) and frontend solves such as `dockerfile.v0`
//!    ([`gateway::GatewayBuild::frontend_solve`]).
//! 6. **Capabilities and strategy** ([`Client::caps`], [`resolve_strategy`], [`Strategy::wrap`]): probe
//!    once whether the builder accepts `passthroughop` (and merge/diff), and pick how checks attach to
//!    their input.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use buildtest::client::{Client, ResolveOptions, SolveOptions, resolve};
//! use buildtest::llb::{Platform, State};
//!
//! let resolved = resolve(&ResolveOptions::from_env())?;
//! let client = Client::connect(&resolved).await?;
//! println!("builder: {}", client.builder());
//! let def = State::image("busybox:latest").run(["true"]).root().marshal(&Platform::linux_amd64())?;
//! let report = client.solve_and_wait(def.into_proto(), SolveOptions::default()).await;
//! report.result?;
//! # Ok(()) }
//! ```

pub mod addr;
pub mod buildx;
pub mod cache;
mod caps;
mod control;
mod details;
mod docker;
pub mod docker_context;
mod env;
mod errors;
mod events;
pub mod export;
pub mod gateway;
mod graph;
mod probed;
mod resolve;
pub mod session;
mod solve;
mod strategy;
mod tls;
pub mod transport;

pub use addr::{BuilderSpec, CommandSpec, Reason, Socket, TransportSpec};
pub use cache::{
    CacheDirection, CacheEntry, CacheKind, CacheSpecError, CacheSupport, CacheUnsupported,
};
pub use caps::Caps;
pub use control::{Client, ConnectOptions, PruneSummary};
pub use details::ErrorDetails;
pub use env::Env;
pub use errors::{
    AttemptError, BuilderError, ClientError, ConnectError, ResolveError, SolveError, TlsError,
    one_line_chain,
};
pub use events::{LogStream, SolveEvent, VertexReport, Warning};
pub use export::{ExportTarget, ExportTargets, ExporterSpec};
pub use graph::{OpKind, shell_words};
pub use probed::{
    ProbeError, ProbeRequest, Probed, StrategyReason, connect_and_probe, connect_only,
    probe_connected,
};
pub use resolve::{ResolveOptions, Resolved, resolve};
pub use session::{
    ContentStats, ContentStores, FileSendTarget, LocalDirs, Secrets, Session, SessionEnd,
    SessionError, SessionOptions, SessionStatus, TransferStats, TunnelKind,
};
pub(crate) use solve::sanitize;
pub use solve::{Solve, SolveOptions, SolveReport, new_ref};
pub use strategy::{CHECK_MOUNT, ParseStrategyError, Strategy, StrategyError, resolve_strategy};
pub use tls::TlsOptions;
