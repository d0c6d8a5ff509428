//! The gateway client: BuildKit's `LLBBridge` (package `moby.buildkit.v1.frontend`) on the client's
//! connection — whatever the transport (a buildkitd socket, or a Docker engine's `/grpc` upgrade),
//! it is the same tonic `Channel` as Control.
//!
//! - [`GatewayBuild`] ([`Client::gateway_build`](super::Client::gateway_build)): one gateway build — `Control.Solve` with no
//!   definition and no frontend, which the daemon keeps open until `LLBBridge.Return`; `Ping`
//!   gives its [`GatewayCaps`]. Several calls, then [`GatewayBuild::finish`]; dropping it cancels.
//! - Image configs ([`Client::resolve_image_config`](super::Client::resolve_image_config), [`GatewayBuild::resolve_image_config`]):
//!   `ResolveImageConfig` with the local-store preference, with the Docker engine's image-inspect
//!   API as the fallback; the config is an [`crate::llb::ImageConfig`] that
//!   [`crate::llb::State::with_image_config`] applies.
//! - Frontend solves ([`GatewayBuild::frontend_solve`] with a [`FrontendRequest`], e.g.
//!   `dockerfile.v0` with the Dockerfile and its context as LLB inputs): the result's definition,
//!   ops verbatim, to build checks on, and its image config.
//! - Plain definitions solved inside the build ([`GatewayBuild::evaluate`]): many solves in one
//!   job, with one Status stream ([`GatewayBuild::vertices`]); each failure is classified by its own
//!   definition's vertices, and [`GatewayBuild::evaluate_report`] gives the
//!   [`SolveReport`](crate::client::SolveReport) a `Control.Solve` would (the harness's
//!   `BUILDTEST_SOLVE=gateway`).
//!
//! ```no_run
//! # async fn demo(client: buildtest::client::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use buildtest::client::gateway::FrontendRequest;
//! use buildtest::llb::{FileAction, Platform, State};
//!
//! let platform = Platform::linux_amd64();
//! let image = client.resolve_image_config("buildtest/busybox:latest", &platform).await?;
//! println!("user: {:?}", image.config.user);
//!
//! let dockerfile = State::scratch()
//!     .file(FileAction::mkfile("/Dockerfile", 0o644, "FROM buildtest/busybox:latest\n"));
//! let build = client.gateway_build().await?;
//! let result = build
//!     .frontend_solve(
//!         FrontendRequest::dockerfile()
//!             .input("dockerfile", dockerfile.marshal(&platform)?.into_proto())
//!             .input("context", State::scratch().marshal(&platform)?.into_proto()),
//!     )
//!     .await?;
//! build.finish().await?;
//! println!("{} ops, config {:?}", result.definition.def.len(), result.config);
//! # Ok(()) }
//! ```

mod build;
mod errors;
mod evaluate;
mod export;
mod frontend;
mod image;
mod result_file;

pub use build::{BUILD_ID_METADATA, GatewayBuild, GatewayCaps, GatewayOptions};
pub use errors::{FrontendFailure, GatewayError};
pub use export::FinishedBuild;
pub use frontend::{
    CACHE_IMPORTS_OPT, DOCKERFILE_FRONTEND, FrontendRequest, FrontendResult, IMAGE_CONFIG_KEY,
};
pub use image::{ConfigSource, ResolvedImage};
