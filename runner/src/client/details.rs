//! BuildKit's typed error details and the classification of a failed solve.
//!
//! BuildKit (`util/grpcerrors`) attaches `google.protobuf.Any`s to its gRPC statuses
//! (`grpc-status-details-bin` = a `google.rpc.Status`). Type URLs seen:
//!
//! | type URL | value |
//! |---|---|
//! | `github.com/moby/buildkit/errdefs.Vertex+json` | `{"digest":"sha256:…"}`: the failing op |
//! | `github.com/moby/buildkit/gatewayapi.ExitMessage+json` (also `moby.buildkit.v1.frontend.ExitMessage`) | `{"Code":N}`: the exec's exit code |
//! | `github.com/moby/buildkit/errdefs.Source+json` | where in the user's source the op came from |
//! | `github.com/moby/buildkit/errdefs.Solve+json` | the failed op (gateway path only) |
//! | `github.com/moby/buildkit/stack.Stack+json` | daemon stack traces (ignored) |
//!
//! Despite `+json`, the value is JSON on some daemon versions and protobuf on others (typeurl
//! marshals proto messages as proto); both are decoded. When no detail names the vertex, the
//! `Status` stream's failed vertex is used, and the message text is parsed for the exit code
//! (`process "…" did not complete successfully: exit code: N`, or BuildKit v0.8's
//! `executor failed running […]: exit code: N`).

use prost::Message;

use super::errors::{BuilderError, SolveError, is_connection_lost, transport_message};
use super::events::Tracker;
use super::graph::{Graph, OpKind, shell_words};
use crate::proto::{errdefs, frontend, google};

/// What BuildKit's status details say about a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetails {
    /// The failing op's digest (`errdefs.Vertex`).
    pub vertex: Option<String>,
    /// The exec's exit code (`ExitMessage`).
    pub exit_code: Option<u32>,
    /// A source location was attached (`errdefs.Source`).
    pub has_source: bool,
    /// Type URLs present, for diagnostics.
    pub type_urls: Vec<String>,
    /// How many detail values were JSON (the rest were protobuf), for diagnostics.
    pub json_values: usize,
}

/// Decode the details of a gRPC status (empty when there are none or they do not decode).
pub(crate) fn decode_details(status: &tonic::Status) -> ErrorDetails {
    let mut out = ErrorDetails::default();
    let Ok(rpc) = google::rpc::Status::decode(status.details()) else {
        return out;
    };
    for any in rpc.details {
        let url = any.type_url.as_str();
        let name = url
            .rsplit('/')
            .next()
            .unwrap_or(url)
            .trim_end_matches("+json");
        out.type_urls.push(url.to_owned());
        let json = serde_json::from_slice::<serde_json::Value>(&any.value)
            .ok()
            .filter(|v| v.is_object());
        out.json_values += usize::from(json.is_some());
        match name {
            "errdefs.Vertex" => {
                let digest = match &json {
                    Some(v) => v.get("digest").and_then(|d| d.as_str()).map(str::to_owned),
                    None => errdefs::Vertex::decode(any.value.as_slice())
                        .ok()
                        .map(|v| v.digest),
                };
                // The innermost (first) vertex wins: BuildKit wraps outward.
                if out.vertex.is_none() {
                    out.vertex = digest.filter(|d| !d.is_empty());
                }
            }
            "gatewayapi.ExitMessage" | "moby.buildkit.v1.frontend.ExitMessage" => {
                let code = match &json {
                    Some(v) => v
                        .get("Code")
                        .or_else(|| v.get("code"))
                        .and_then(serde_json::Value::as_u64),
                    None => frontend::ExitMessage::decode(any.value.as_slice())
                        .ok()
                        .map(|m| u64::from(m.code)),
                };
                if out.exit_code.is_none() {
                    out.exit_code = code.and_then(|c| u32::try_from(c).ok());
                }
            }
            "errdefs.Source" => out.has_source = true,
            _ => {}
        }
    }
    out
}

/// The exit code in a BuildKit exec error message (`…: exit code: 3`).
pub(crate) fn exit_code_in(message: &str) -> Option<i32> {
    let idx = message.rfind("exit code: ")?;
    let digits: String = message[idx + "exit code: ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Markers of an image that could not be resolved or pulled.
const PULL_FAILURE: &[&str] = &[
    "failed to resolve source metadata",
    "pull access denied",
    "failed to do request",
    "no such host",
    "failed to authorize",
    "manifest unknown",
    "not found",
    "dial tcp",
    "server misbehaving",
];

/// Daemon-internal failures that say nothing about the graph and go away when solved again.
/// `flightcontrol: exceeded retry timeout`: BuildKit's de-duplication gives up waiting for a shared
/// step under load (seen here on Docker 20.10 / BuildKit v0.8.3 with 64 concurrent solves on 2 cores).
/// `invalid request {0 0xc…} for build`: BuildKit v0.8.3's scheduler lost the edge of a vertex shared
/// with a concurrent solve that had just ended (its `getEdge` returned nil; seen here on busy runs of
/// the harness tests, each time for a different, valid check).
const TRANSIENT: &[&str] = &["flightcontrol: exceeded retry timeout", "invalid request {"];

/// BuildKit's message when an exec asks for the default (sandbox) network on an engine that has
/// no `bridge` network (e.g. a dockerd started with `--bridge=none`, as this project's engines are).
const NO_BRIDGE: &str = "network bridge not found";

/// What to do about a missing bridge network, if `message` is BuildKit's "network bridge not
/// found" (for an LLB `run` step; [`missing_network_hint_dockerfile`] for a Dockerfile's `RUN`).
pub(crate) fn missing_network_hint(message: &str) -> Option<&'static str> {
    message.contains(NO_BRIDGE).then_some(
        "the builder has no bridge network for the step's default network: give the step no \
         network with `.network(NetMode::None)`, or use a builder with networking",
    )
}

/// [`missing_network_hint`] for a Dockerfile's `RUN` steps.
pub(crate) fn missing_network_hint_dockerfile(message: &str) -> Option<&'static str> {
    message.contains(NO_BRIDGE).then_some(
        "the builder has no bridge network for `RUN` steps: build without network \
         (`DockerfileOptions::network(NetMode::None)`, frontend option `force-network-mode=none`, \
         or `RUN --network=none`), or use a builder with networking",
    )
}

/// `message` with the hint appended, when there is one.
fn with_hint(message: String) -> String {
    match missing_network_hint(&message) {
        Some(hint) => format!("{message} ({hint})"),
        None => message,
    }
}

/// The capability named in a BuildKit capability error, if `message` is one.
pub(crate) fn unsupported_cap(message: &str) -> Option<String> {
    const MARKERS: &[&str] = &[
        "unknown API capability ",
        "requested experimental feature ",
        "requested feature ",
    ];
    for marker in MARKERS {
        if let Some(idx) = message.find(marker) {
            let cap: String = message[idx + marker.len()..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ',')
                .collect();
            return Some(cap);
        }
    }
    if let Some(idx) = message.find(" is not supported by build server") {
        let before = &message[..idx];
        return Some(before.rsplit(' ').next().unwrap_or(before).to_owned());
    }
    if message.contains("invalid action type") {
        // An older BuildKit decodes a FileOp action it does not know (`symlink`, new in BuildKit
        // v0.19) as nil and says only `invalid action type <nil>`.
        return Some(
            "a file action in this graph (this BuildKit does not know it; \
             `FileAction::symlink` needs BuildKit v0.19 or later)"
                .to_owned(),
        );
    }
    if message.contains("no support for <nil>") || message.contains("invalid op") {
        return Some("an op in this graph (the builder could not decode it)".to_owned());
    }
    None
}

/// Classify a failed `Control.Solve`.
///
/// `checks` are the digests of the vertices under test (the root when empty): a failure there is
/// [`SolveError::ExecFailed`]; anywhere else it is [`SolveError::InputFailed`] or, for an image
/// source, [`SolveError::ImageNotFound`].
pub(crate) fn classify(
    status: &tonic::Status,
    graph: &Graph,
    tracker: &Tracker,
    checks: &[String],
) -> SolveError {
    let message = with_hint(status.message().trim().to_owned());
    if is_connection_lost(status) {
        return BuilderError::ConnectionLost {
            message: transport_message(status),
        }
        .into();
    }
    match status.code() {
        tonic::Code::Unavailable => return BuilderError::Unavailable { message }.into(),
        tonic::Code::Cancelled => return BuilderError::Cancelled { message }.into(),
        _ => {}
    }
    if TRANSIENT.iter().any(|m| message.contains(m)) {
        return BuilderError::Transient { message }.into();
    }
    if let Some(what) = unsupported_cap(&message) {
        return SolveError::Unsupported { what, message };
    }
    let details = decode_details(status);
    // The vertex: from the details, else the Status stream's failed vertex (not a cancelled sibling).
    let vertex = details.vertex.clone().or_else(|| {
        let mut failed: Vec<_> = tracker.failed().collect();
        failed.sort_by_key(|v| {
            v.error
                .as_deref()
                .is_some_and(|e| e.contains("context canceled"))
        });
        failed.first().map(|v| v.digest.clone())
    });
    let exit_code = details
        .exit_code
        .and_then(|c| i32::try_from(c).ok())
        .or_else(|| exit_code_in(&message));
    let Some(vertex) = vertex else {
        // No vertex named: a pull failure still names an image of the graph.
        if let Some((digest, image)) = image_in_message(graph, &message) {
            return SolveError::ImageNotFound {
                image,
                vertex: digest,
                message,
            };
        }
        return SolveError::Other {
            code: status.code(),
            vertex: None,
            message,
        };
    };
    let op = graph.op(&vertex);
    let name = tracker
        .vertex(&vertex)
        .map(|v| v.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| op.map(|o| o.display_name()))
        .unwrap_or_else(|| "unknown vertex".to_owned());
    if let Some(OpKind::Source { identifier }) = op.map(|o| &o.kind)
        && let Some(image) = identifier.strip_prefix("docker-image://")
        && PULL_FAILURE.iter().any(|m| message.contains(m))
    {
        return SolveError::ImageNotFound {
            image: image.to_owned(),
            vertex,
            message,
        };
    }
    let is_check = if checks.is_empty() {
        graph.root() == Some(vertex.as_str())
    } else {
        checks.contains(&vertex)
    };
    if is_check {
        let command = match op.map(|o| &o.kind) {
            Some(OpKind::Exec { args }) => format!("`{}`", shell_words(args)),
            _ => name,
        };
        return SolveError::ExecFailed {
            vertex,
            command,
            exit_code,
            message,
        };
    }
    SolveError::InputFailed {
        vertex,
        name,
        message,
    }
}

fn image_in_message(graph: &Graph, message: &str) -> Option<(String, String)> {
    if !PULL_FAILURE.iter().any(|m| message.contains(m)) {
        return None;
    }
    graph.images().into_iter().find_map(|(digest, image)| {
        let short = image.strip_prefix("docker.io/").unwrap_or(image);
        let short = short.strip_prefix("library/").unwrap_or(short);
        let repo = image.rsplit_once(':').map_or(image, |(r, _)| r);
        (message.contains(image) || message.contains(short) || message.contains(repo))
            .then(|| (digest.to_owned(), image.to_owned()))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost_types::Any;

    fn status_with(details: Vec<Any>, message: &str) -> tonic::Status {
        let rpc = google::rpc::Status {
            code: 2,
            message: message.to_owned(),
            details,
        };
        tonic::Status::with_details(tonic::Code::Unknown, message, rpc.encode_to_vec().into())
    }

    #[test]
    fn json_and_proto_details_both_decode() {
        let json = status_with(
            vec![
                Any {
                    type_url: "github.com/moby/buildkit/stack.Stack+json".into(),
                    value: b"{}".to_vec(),
                },
                Any {
                    type_url: "github.com/moby/buildkit/errdefs.Vertex+json".into(),
                    value: br#"{"digest":"sha256:abc"}"#.to_vec(),
                },
                Any {
                    type_url: "github.com/moby/buildkit/gatewayapi.ExitMessage+json".into(),
                    value: br#"{"Code":3}"#.to_vec(),
                },
            ],
            "x",
        );
        let d = decode_details(&json);
        assert_eq!(
            (d.vertex.as_deref(), d.exit_code),
            (Some("sha256:abc"), Some(3))
        );
        let proto = status_with(
            vec![
                Any {
                    type_url: "github.com/moby/buildkit/errdefs.Vertex+json".into(),
                    value: errdefs::Vertex {
                        digest: "sha256:def".into(),
                    }
                    .encode_to_vec(),
                },
                Any {
                    type_url: "type.googleapis.com/moby.buildkit.v1.frontend.ExitMessage".into(),
                    value: frontend::ExitMessage {
                        code: 42,
                        error: String::new(),
                    }
                    .encode_to_vec(),
                },
            ],
            "x",
        );
        let d = decode_details(&proto);
        assert_eq!(
            (d.vertex.as_deref(), d.exit_code),
            (Some("sha256:def"), Some(42))
        );
        assert_eq!(
            decode_details(&tonic::Status::unknown("plain")),
            ErrorDetails::default()
        );
    }

    #[test]
    fn message_fallbacks() {
        assert_eq!(
            exit_code_in(
                r#"process "/bin/sh -c exit 3" did not complete successfully: exit code: 3"#
            ),
            Some(3)
        );
        assert_eq!(
            exit_code_in("executor failed running [/bin/sh -c exit 7]: exit code: 7"),
            Some(7)
        );
        assert_eq!(exit_code_in("something else"), None);
        assert_eq!(
            unsupported_cap("unknown API capability passthroughop").as_deref(),
            Some("passthroughop")
        );
        assert_eq!(
            unsupported_cap(
                "requested experimental feature mergeop  has been disabled on the build server"
            )
            .as_deref(),
            Some("mergeop")
        );
        assert_eq!(
            unsupported_cap(
                "failed to load LLB: requested feature mergeop  has been disabled on the build server: \
                 only enabled with containerd image store backend"
            )
            .as_deref(),
            Some("mergeop")
        );
        assert!(unsupported_cap("no support for <nil>").is_some());
        assert!(
            unsupported_cap("failed to solve: invalid action type <nil>")
                .is_some_and(|what| what.contains("FileAction::symlink"))
        );
        assert_eq!(unsupported_cap("exit code: 1"), None);
        let g = Graph::default();
        let t = Tracker::default();
        let e = classify(
            &tonic::Status::unknown(
                r#"process "/bin/sh -c true" did not complete successfully: network bridge not found"#,
            ),
            &g,
            &t,
            &[],
        );
        assert!(e.to_string().contains("NetMode::None"), "{e}");
        assert!(missing_network_hint("exit code: 1").is_none());
        assert!(
            missing_network_hint_dockerfile(
                "executor failed running [x]: network bridge not found"
            )
            .is_some_and(|h| h.contains("force-network-mode=none"))
        );
    }

    #[test]
    fn cancellation_and_transport_are_builder_errors() {
        let g = Graph::default();
        let t = Tracker::default();
        let e = classify(&tonic::Status::cancelled("context canceled"), &g, &t, &[]);
        assert!(
            matches!(e, SolveError::Builder(BuilderError::Cancelled { .. })),
            "{e:?}"
        );
        for msg in [
            "executor failed running [sh -c true]: flightcontrol: exceeded retry timeout",
            "invalid request {0 0xc000a1b2c0} for build",
        ] {
            let e = classify(&tonic::Status::unknown(msg), &g, &t, &[]);
            assert!(
                matches!(e, SolveError::Builder(BuilderError::Transient { .. })),
                "{e:?}"
            );
        }
        let e = classify(&tonic::Status::unknown("transport error"), &g, &t, &[]);
        assert!(
            matches!(e, SolveError::Builder(BuilderError::ConnectionLost { .. })),
            "{e:?}"
        );
    }
}
