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
    #[error("{}", frontend_message(frontend, instruction.as_deref(), location.as_deref(), message, log_tail))]
    Frontend {
        /// The frontend (`dockerfile.v0`).
        frontend: String,
        /// The failing instruction as the user wrote it (e.g. `RUN exit 3`) or, when the source
        /// was not attached, the failing vertex's name (e.g. `[a 2/2] RUN exit 3`).
        instruction: Option<String>,
        /// Where it is (`Dockerfile:4`), when BuildKit attached the source.
        location: Option<String>,
        /// The failing vertex's digest, when known.
        vertex: Option<String>,
        /// BuildKit's message.
        message: String,
        /// The last lines the failing step wrote (stdout and stderr interleaved as received).
        log_tail: String,
    },
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

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

fn frontend_message(
    frontend: &str,
    instruction: Option<&str>,
    location: Option<&str>,
    message: &str,
    log_tail: &str,
) -> String {
    let mut out = format!("solve with frontend {frontend}");
    match (instruction, location) {
        (Some(i), Some(l)) => out.push_str(&format!(": `{i}` ({l})")),
        (Some(i), None) => out.push_str(&format!(": `{i}`")),
        (None, Some(l)) => out.push_str(&format!(": at {l}")),
        (None, None) => {}
    }
    out.push_str(": ");
    out.push_str(message);
    let tail = log_tail.trim_end();
    if !tail.is_empty() {
        out.push_str("\n--- last output of the failing step ---\n");
        out.push_str(tail);
    }
    out
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
