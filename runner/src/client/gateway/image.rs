//! Image configs: `LLBBridge.ResolveImageConfig`, and the Docker engine's image-inspect API as the
//! fallback.
//!
//! What the engines here do (observed, see `tests/gateway.rs`):
//!
//! - Docker 20.10 (BuildKit v0.8.3, graphdriver store): every mode but `pull` looks in the engine's
//!   image store first and answers with the stored image JSON and an **empty digest**.
//! - Docker 26.1 (BuildKit v0.13.2, graphdriver store): the same for `local` (and `default`).
//! - `pull` goes to the registry, which is unreachable here.
//!
//! [`Client::resolve_image_config`] asks with the `local` preference, so images loaded into the
//! builder resolve offline; on a Docker engine, when the gateway call fails, it asks
//! `GET /images/{name}/json` before giving up.

use super::build::GatewayBuild;
use super::errors::GatewayError;
use crate::client::control::Client;
use crate::llb::{self, ImageConfig, Platform, ResolveMode};
use crate::proto::frontend::ResolveImageConfigRequest;

/// Where a config came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// `LLBBridge.ResolveImageConfig`.
    Gateway,
    /// The Docker engine's `GET /images/{name}/json`.
    DockerEngine,
}

/// A resolved image: its config and, when the builder says, its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The normalized reference that was resolved (`docker.io/library/alpine:3.20`).
    pub reference: String,
    /// The digest of the resolved top-level descriptor (`sha256:…`); `None` when the builder gives
    /// none (Docker 20.10 for local images).
    pub digest: Option<String>,
    /// The config.
    pub config: ImageConfig,
    /// Where it came from.
    pub source: ConfigSource,
}

fn mode_name(mode: ResolveMode) -> &'static str {
    match mode {
        ResolveMode::ForcePull => "pull",
        ResolveMode::PreferLocal => "local",
        _ => "default",
    }
}

/// BuildKit's messages for an image that is neither in the store nor pullable.
fn is_missing_image(message: &str) -> bool {
    const MARKERS: &[&str] = &[
        "not found",
        "pull access denied",
        "failed to do request",
        "no such host",
        "failed to resolve source metadata",
        "dial tcp",
        "server misbehaving",
        "manifest unknown",
        "failed to authorize",
        "connection refused",
    ];
    MARKERS.iter().any(|m| message.contains(m))
}

fn normalize(reference: &str) -> Result<String, GatewayError> {
    llb::normalize_reference(reference).map_err(|e| GatewayError::InvalidImageConfig {
        image: reference.to_owned(),
        message: e.to_string(),
    })
}

impl GatewayBuild {
    /// `LLBBridge.ResolveImageConfig` for `reference` (normalized like [`llb::State::image`]) on
    /// `platform`, with `mode` (`Default` sends `default`). Needs the capability `resolveimage`.
    pub async fn resolve_image_config(
        &self,
        reference: &str,
        platform: &Platform,
        mode: ResolveMode,
    ) -> Result<ResolvedImage, GatewayError> {
        self.require("resolve an image config", "resolveimage")?;
        if mode != ResolveMode::Default {
            self.require("resolve an image config", "resolveimage.resolvemode")?;
        }
        let normalized = normalize(reference)?;
        let request = self.request(ResolveImageConfigRequest {
            r#ref: normalized.clone(),
            platform: Some(platform.to_proto()),
            resolve_mode: mode_name(mode).to_owned(),
            log_name: format!("[buildtest] resolve image config for {normalized}"),
            ..ResolveImageConfigRequest::default()
        })?;
        let answer = self
            .bridge
            .clone()
            .resolve_image_config(request)
            .await
            .map_err(|status| {
                if self.ended().is_none() && is_missing_image(status.message()) {
                    GatewayError::ImageNotFound {
                        image: normalized.clone(),
                        message: status.message().to_owned(),
                    }
                } else {
                    self.call_error("ResolveImageConfig", &status)
                }
            })?
            .into_inner();
        let config = ImageConfig::from_image_json(&answer.config).map_err(|e| {
            GatewayError::InvalidImageConfig {
                image: normalized.clone(),
                message: e.to_string(),
            }
        })?;
        Ok(ResolvedImage {
            reference: normalized,
            digest: Some(answer.digest).filter(|d| !d.is_empty()),
            config,
            source: ConfigSource::Gateway,
        })
    }
}

impl Client {
    /// The config of image `reference` on `platform`, preferring the builder's local image store
    /// (so images loaded into the builder resolve without a registry).
    ///
    /// Opens a gateway build for the one call (resolve several images through one
    /// [`GatewayBuild`] with [`GatewayBuild::resolve_image_config`]). On a Docker engine, when the
    /// gateway call fails (whatever the reason), asks the engine's `GET /images/{name}/json`
    /// before giving up. A missing image is
    /// [`GatewayError::ImageNotFound`], naming it.
    pub async fn resolve_image_config(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<ResolvedImage, GatewayError> {
        let normalized = normalize(reference)?;
        let via_gateway = async {
            let build = self.gateway_build().await?;
            let resolved = build
                .resolve_image_config(&normalized, platform, ResolveMode::PreferLocal)
                .await;
            let finished = build.finish().await;
            let resolved = resolved?;
            finished?;
            Ok::<_, GatewayError>(resolved)
        }
        .await;
        match via_gateway {
            Ok(resolved) => Ok(resolved),
            Err(e) if !self.is_docker_engine() => Err(e),
            Err(gateway_error) => match self.docker_image_config(&normalized).await {
                Ok(Some(resolved)) => Ok(resolved),
                Ok(None) => match gateway_error {
                    e @ GatewayError::ImageNotFound { .. } => Err(e),
                    other => Err(GatewayError::ImageNotFound {
                        image: normalized,
                        message: format!(
                            "the Docker engine has no such image; the gateway said: {other}"
                        ),
                    }),
                },
                Err(e) => Err(GatewayError::DockerApi(format!(
                    "{e} (after the gateway failed: {gateway_error})"
                ))),
            },
        }
    }

    /// The config of image `reference` from a Docker engine's `GET /images/{name}/json` (no
    /// digest); `Ok(None)` when the engine has no such image. Fails with
    /// [`GatewayError::DockerApi`] when this builder is not a Docker engine.
    pub async fn docker_image_config(
        &self,
        reference: &str,
    ) -> Result<Option<ResolvedImage>, GatewayError> {
        let normalized = normalize(reference)?;
        let Some(json) = self
            .docker_image_inspect(&normalized)
            .await
            .map_err(|e| GatewayError::DockerApi(e.to_string()))?
        else {
            return Ok(None);
        };
        let config = docker_config(&json).map_err(|message| GatewayError::InvalidImageConfig {
            image: normalized.clone(),
            message,
        })?;
        Ok(Some(ResolvedImage {
            reference: normalized,
            digest: None,
            config,
            source: ConfigSource::DockerEngine,
        }))
    }
}

/// The `Config` of a Docker image-inspect answer.
fn docker_config(json: &[u8]) -> Result<ImageConfig, String> {
    #[derive(serde::Deserialize)]
    struct Inspect {
        #[serde(rename = "Config", default)]
        config: Option<ImageConfig>,
    }
    let inspect: Inspect = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    Ok(inspect.config.unwrap_or_default())
}
