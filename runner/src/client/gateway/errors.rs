//! Typed errors of the gateway client.
//!
//! | error | when |
//! |---|---|
//! | [`GatewayError::Unsupported`] | the builder's gateway lacks a capability the call needs |
//! | [`GatewayError::ImageNotFound`] | an image's config cannot be resolved: not in the builder's store and not pullable |
//! | [`GatewayError::InvalidImageConfig`] | the builder returned an image config that is not the JSON we expect |
//! | [`GatewayError::Frontend`] | a frontend (e.g. `dockerfile.v0`) failed: the failing instruction, the message, the log tail |
//! | [`GatewayError::EmptyInput`] | a frontend input is an empty definition (refused before sending: it crashes BuildKit v0.8.3) |
//! | [`GatewayError::BuildEnded`] | the gateway build ended (its `Control.Solve` returned) before the call |
//! | [`GatewayError::Builder`] | the builder or the connection failed |
//! | [`GatewayError::Rpc`] | any other failure of an LLBBridge call |
//! | [`GatewayError::DockerApi`] | the Docker engine's image-inspect fallback failed |

use std::fmt;

use thiserror::Error;

use crate::client::BuilderError;

/// A gateway call failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayError {
    /// The builder's gateway does not offer a capability the call needs.
    #[error(
        "{what} on {builder}: its gateway lacks the capability `{cap}`{}",
        reason_suffix(reason)
    )]
    Unsupported {
        /// What was attempted (`resolve an image config`, `solve with a frontend`, …).
        what: &'static str,
        /// The builder.
        builder: String,
        /// The LLBBridge capability (`resolveimage`, `frontend.inputs`, …).
        cap: String,
        /// The daemon's reason, when it gave one.
        reason: String,
    },
    /// The image's config could not be resolved because the image is not there.
    #[error(
        "resolve the config of image `{image}`: it is not in the builder's local image store and \
         cannot be pulled (import or load it into the builder first): {message}"
    )]
    ImageNotFound {
        /// The image reference (normalized).
        image: String,
        /// The builder's message.
        message: String,
    },
    /// The builder answered with a config that does not parse.
    #[error("read the config of image `{image}`: {message}")]
    InvalidImageConfig {
        /// The image reference.
        image: String,
        /// Why it does not parse.
        message: String,
    },
    /// A frontend solve failed (for `dockerfile.v0`: a step failed or the Dockerfile is invalid).
    #[error("{0}")]
    Frontend(Box<FrontendFailure>),
    /// A frontend input is an empty definition (scratch). BuildKit cannot take one: v0.13.2 fails
    /// with "invalid nil input definition to definition op", and **v0.8.3 (Docker 20.10) crashes**
    /// (nil pointer in `llb.NewDefinitionOp`), so it is refused before anything is sent.
    #[error(
        "give input `{key}` to frontend {frontend}: it is empty (scratch); BuildKit refuses empty          frontend inputs, give a state with at least one op"
    )]
    EmptyInput {
        /// The frontend.
        frontend: String,
        /// The input's key (`context`, `dockerfile`, …).
        key: String,
    },
    /// The gateway build ended before or during the call.
    #[error("use gateway build {build_ref}: it has ended ({reason})")]
    BuildEnded {
        /// The build's ref.
        build_ref: String,
        /// How it ended.
        reason: String,
    },
    /// The builder or the connection failed.
    #[error(transparent)]
    Builder(#[from] BuilderError),
    /// Any other LLBBridge failure.
    #[error("call LLBBridge.{rpc}: {code}: {message}")]
    Rpc {
        /// The method.
        rpc: &'static str,
        /// gRPC code.
        code: tonic::Code,
        /// gRPC message.
        message: String,
    },
    /// The Docker engine's API failed (image-inspect fallback).
    #[error("{0}")]
    DockerApi(String),
}

/// Why a frontend solve failed: [`GatewayError::Frontend`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrontendFailure {
    /// The frontend (`dockerfile.v0`).
    pub frontend: String,
    /// The failing instruction as the user wrote it (e.g. `RUN exit 3`, when BuildKit attached
    /// the source: v0.13.2) or else the failing vertex's name (e.g. `[2/3] RUN exit 3`: v0.8.3).
    pub instruction: Option<String>,
    /// Where it is (`Dockerfile:4`), when BuildKit attached the source.
    pub location: Option<String>,
    /// The failing vertex's digest, when known.
    pub vertex: Option<String>,
    /// BuildKit's message (with what to do appended for a missing bridge network).
    pub message: String,
    /// The last lines the failing step wrote: its stdout, then its stderr.
    pub log_tail: String,
}

impl fmt::Display for FrontendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "solve with frontend {}", self.frontend)?;
        match (&self.instruction, &self.location) {
            (Some(i), Some(l)) => write!(f, ": `{i}` ({l})")?,
            (Some(i), None) => write!(f, ": `{i}`")?,
            (None, Some(l)) => write!(f, ": at {l}")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.message)?;
        let tail = self.log_tail.trim_end();
        if !tail.is_empty() {
            write!(f, "\n--- last output of the failing step ---\n{tail}")?;
        }
        Ok(())
    }
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

impl GatewayError {
    /// Classify a failed LLBBridge call that is not the graph's fault.
    pub(crate) fn from_status(rpc: &'static str, status: &tonic::Status) -> Self {
        match BuilderError::from_status(rpc_name(rpc), status) {
            BuilderError::Rpc { code, message, .. } => GatewayError::Rpc { rpc, code, message },
            other => GatewayError::Builder(other),
        }
    }
}

fn rpc_name(rpc: &'static str) -> &'static str {
    match rpc {
        "Ping" => "LLBBridge.Ping",
        "Solve" => "LLBBridge.Solve",
        "Return" => "LLBBridge.Return",
        "ResolveImageConfig" => "LLBBridge.ResolveImageConfig",
        "ReadFile" => "LLBBridge.ReadFile",
        _ => "LLBBridge",
    }
}
