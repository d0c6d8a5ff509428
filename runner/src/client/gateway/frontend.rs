//! Frontend solves: `LLBBridge.Solve{Frontend, FrontendOpt, FrontendInputs}` (e.g. `dockerfile.v0`,
//! built into every BuildKit), returning the result's LLB definition (op bytes as the daemon sent
//! them, so their digests and the cache stay the daemon's) and its image config.
//!
//! The Dockerfile frontend reads the Dockerfile from the local `dockerfile` and the build context
//! from the local `context`; [`FrontendRequest::input`] with those keys replaces them with LLB
//! definitions (capability `frontend.inputs`, BuildKit v0.8.3 and later), so no session is needed
//! for contexts built as LLB.

use std::collections::BTreeMap;
use std::time::Duration;

use prost::Message;

use super::build::GatewayBuild;
use super::errors::{FrontendFailure, GatewayError};
use crate::client::details::{decode_details, missing_network_hint_dockerfile};
use crate::client::errors::is_connection_lost;
use crate::llb::{ImageConfig, Platform};
use crate::proto::control::CacheOptionsEntry;
use crate::proto::frontend::{ReadFileRequest, SolveRequest, result};
use crate::proto::{errdefs, google, pb};

/// The Dockerfile frontend's name.
pub const DOCKERFILE_FRONTEND: &str = "dockerfile.v0";

/// The result metadata key of the (single-platform) image config.
pub const IMAGE_CONFIG_KEY: &str = "containerimage.config";

/// The frontend option through which `dockerfile.v0` takes cache imports: a JSON array of
/// `{"Type", "Attrs"}` (BuildKit's `CacheOptionsEntry`), which the frontend passes to the solve
/// of the LLB it makes.
pub const CACHE_IMPORTS_OPT: &str = "cache-imports";

/// Lines of the failing step's output kept in [`GatewayError::Frontend`].
const LOG_TAIL_LINES: usize = 20;

/// How long a failure waits for the Status stream to report the failing vertex.
const STATUS_GRACE: Duration = Duration::from_millis(500);

/// A frontend solve: the frontend, its options and its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontendRequest {
    frontend: String,
    opts: BTreeMap<String, String>,
    inputs: BTreeMap<String, pb::Definition>,
    evaluate: bool,
    cache_imports: Vec<CacheOptionsEntry>,
}

impl FrontendRequest {
    /// A solve with `frontend` and no options.
    pub fn new(frontend: impl Into<String>) -> Self {
        Self {
            frontend: frontend.into(),
            opts: BTreeMap::new(),
            inputs: BTreeMap::new(),
            evaluate: true,
            cache_imports: Vec::new(),
        }
    }

    /// A `dockerfile.v0` solve.
    pub fn dockerfile() -> Self {
        Self::new(DOCKERFILE_FRONTEND)
    }

    /// Sets frontend option `key` (`FrontendOpt`).
    #[must_use]
    pub fn opt(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.opts.insert(key.into(), value.into());
        self
    }

    /// Builds the stage `target` (`target`).
    #[must_use]
    pub fn target(self, target: impl Into<String>) -> Self {
        self.opt("target", target)
    }

    /// Sets build argument `key` (`build-arg:KEY`).
    #[must_use]
    pub fn build_arg(self, key: &str, value: impl Into<String>) -> Self {
        self.opt(format!("build-arg:{key}"), value)
    }

    /// The Dockerfile's path inside the `dockerfile` input (`filename`, default `Dockerfile`).
    #[must_use]
    pub fn filename(self, name: impl Into<String>) -> Self {
        self.opt("filename", name)
    }

    /// The target platform (`platform`, e.g. `linux/amd64`).
    #[must_use]
    pub fn platform(self, platform: &Platform) -> Self {
        self.opt("platform", platform.to_string())
    }

    /// Gives input `key` as an LLB definition (`FrontendInputs`; for `dockerfile.v0`: `context`
    /// and `dockerfile`). It must not be empty (scratch): see [`GatewayError::EmptyInput`].
    #[must_use]
    pub fn input(mut self, key: impl Into<String>, definition: pb::Definition) -> Self {
        self.inputs.insert(key.into(), definition);
        self
    }

    /// Whether the result is built before the call returns (default `true`; needs the capability
    /// `gateway.solve.evaluate`, which v0.8.3 and v0.13.2 both have).
    ///
    /// Without it a frontend solve only *plans* the build: `dockerfile.v0` answers with the LLB
    /// at once, and a failing step surfaces only when something solves the result. With it, a
    /// failing step fails this call as [`GatewayError::Frontend`] naming the instruction, and the
    /// built result is in the daemon's cache for the solves built on it.
    ///
    /// BuildKit v0.8.3 ignores `Evaluate` on a *frontend* solve (observed: a Dockerfile with a
    /// failing `RUN` answers at once), so the result's definition is then solved again with
    /// `Evaluate` (a second `LLBBridge.Solve`, a cache hit where the frontend already built it).
    #[must_use]
    pub fn evaluate(mut self, evaluate: bool) -> Self {
        self.evaluate = evaluate;
        self
    }

    /// Runs `RUN` steps without network (`force-network-mode=none`), for builders without a
    /// bridge network (such as this project's engines) and for hermetic builds.
    #[must_use]
    pub fn without_network(self) -> Self {
        self.opt("force-network-mode", "none")
    }

    /// Imports `entries` into the frontend's build (the option [`CACHE_IMPORTS_OPT`]) and into the
    /// solve that evaluates its result (`SolveRequest.CacheImports`).
    ///
    /// `LLBBridge.Solve` applies its own `CacheImports` only to a *definition*; a frontend solves
    /// through the daemon's bridge without them (BuildKit v0.8.3 and v0.13.2 alike), so the
    /// Dockerfile frontend has to be told in its options. Without the import its steps execute
    /// on a builder that lacks them, and everything built on that result is keyed on the
    /// executed steps, not on the imported ones: a check on it misses an imported cache it is in.
    /// A `type=local` entry needs the build's session to serve its content store. No entries: no
    /// option.
    #[must_use]
    pub fn cache_imports(mut self, entries: &[CacheOptionsEntry]) -> Self {
        if entries.is_empty() {
            self.opts.remove(CACHE_IMPORTS_OPT);
            self.cache_imports.clear();
            return self;
        }
        let json: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| serde_json::json!({ "Type": e.r#type, "Attrs": e.attrs }))
            .collect();
        self.cache_imports = entries.to_vec();
        self.opt(
            CACHE_IMPORTS_OPT,
            serde_json::Value::Array(json).to_string(),
        )
    }

    /// The frontend.
    pub fn frontend(&self) -> &str {
        &self.frontend
    }

    /// The options.
    pub fn opts(&self) -> &BTreeMap<String, String> {
        &self.opts
    }
}

/// What a frontend solve produced.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontendResult {
    /// The result's id on the daemon (valid while the gateway build is open).
    pub ref_id: String,
    /// The LLB that produces the result, ops exactly as the daemon sent them; build on it with
    /// more ops and solve it like any definition. Empty when the result is empty (scratch).
    pub definition: pb::Definition,
    /// The image config from the result's `containerimage.config`, when it has one.
    pub config: Option<ImageConfig>,
    /// All result metadata.
    pub metadata: BTreeMap<String, Vec<u8>>,
}

impl GatewayBuild {
    /// Solve `request` through the frontend and return the result's definition and image config.
    /// Needs the capabilities `proto.refarray` (results as refs with their definition) and, with
    /// inputs, `frontend.inputs`. A failing build is [`GatewayError::Frontend`] with the failing
    /// instruction and its last output.
    pub async fn frontend_solve(
        &self,
        request: FrontendRequest,
    ) -> Result<FrontendResult, GatewayError> {
        const WHAT: &str = "solve with a frontend";
        self.require(WHAT, "proto.refarray")?;
        let evaluate = request.evaluate;
        if evaluate {
            self.require(WHAT, "gateway.solve.evaluate")?;
        }
        if !request.inputs.is_empty() {
            self.require(WHAT, "frontend.inputs")?;
        }
        let frontend = request.frontend.clone();
        let cache_imports = request.cache_imports;
        let mut inputs = request.inputs;
        for (key, definition) in &mut inputs {
            if definition.def.is_empty() {
                return Err(GatewayError::EmptyInput {
                    frontend,
                    key: key.clone(),
                });
            }
            crate::client::sanitize(definition);
        }
        let call = self.request(SolveRequest {
            frontend: request.frontend,
            frontend_opt: request.opts,
            frontend_inputs: inputs,
            allow_result_return: true,
            allow_result_array_ref: true,
            evaluate,
            ..SolveRequest::default()
        })?;
        let failed_before = self.failed_digests();
        let answer = match self.bridge.clone().solve(call).await {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                return Err(self
                    .frontend_error(&frontend, &status, &failed_before)
                    .await);
            }
        };
        let Some(result) = answer.result else {
            return Err(GatewayError::Rpc {
                rpc: "Solve",
                code: tonic::Code::Internal,
                message: format!(
                    "frontend {frontend} returned no result (ref {:?})",
                    answer.r#ref
                ),
            });
        };
        let (ref_id, definition) = match result.result {
            Some(result::Result::Ref(r)) => (r.id, r.def.unwrap_or_default()),
            None => (String::new(), pb::Definition::default()),
            Some(other) => {
                return Err(GatewayError::Rpc {
                    rpc: "Solve",
                    code: tonic::Code::Internal,
                    message: format!(
                        "frontend {frontend} returned a result of a form this client does not read ({})",
                        match other {
                            result::Result::Refs(_) => "a map of refs",
                            _ => "a deprecated string ref",
                        }
                    ),
                });
            }
        };
        let config = match result.metadata.get(IMAGE_CONFIG_KEY) {
            None => None,
            Some(json) => Some(ImageConfig::from_image_json(json).map_err(|e| {
                GatewayError::InvalidImageConfig {
                    image: format!("the result of frontend {frontend}"),
                    message: e.to_string(),
                }
            })?),
        };
        if evaluate && !definition.def.is_empty() {
            let call = self.request(SolveRequest {
                definition: Some(definition.clone()),
                allow_result_return: true,
                allow_result_array_ref: true,
                evaluate: true,
                cache_imports,
                ..SolveRequest::default()
            })?;
            if let Err(status) = self.bridge.clone().solve(call).await {
                return Err(self
                    .frontend_error(&frontend, &status, &failed_before)
                    .await);
            }
        }
        Ok(FrontendResult {
            ref_id,
            definition,
            config,
            metadata: result.metadata.into_iter().collect(),
        })
    }

    /// `LLBBridge.ReadFile`: the contents of `path` in the result `ref_id` (a
    /// [`FrontendResult::ref_id`] of this build). Needs the capability `readfile`.
    pub async fn read_file(&self, ref_id: &str, path: &str) -> Result<Vec<u8>, GatewayError> {
        self.require("read a file of a result", "readfile")?;
        let call = self.request(ReadFileRequest {
            r#ref: ref_id.to_owned(),
            file_path: path.to_owned(),
            range: None,
        })?;
        match self.bridge.clone().read_file(call).await {
            Ok(answer) => Ok(answer.into_inner().data),
            Err(status) => Err(self.call_error("ReadFile", &status)),
        }
    }

    async fn frontend_error(
        &self,
        frontend: &str,
        status: &tonic::Status,
        failed_before: &[String],
    ) -> GatewayError {
        if is_connection_lost(status)
            || matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Cancelled
            )
            || self.ended().is_some()
        {
            return self.call_error("Solve", status);
        }
        let details = decode_details(status);
        let source = decode_source(status);
        // The Status stream may lag behind the answer: give it a moment to name the vertex.
        let deadline = tokio::time::Instant::now() + STATUS_GRACE;
        let vertex = loop {
            let found = {
                let tracker = self
                    .shared
                    .tracker
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let failed = |d: &str| tracker.vertex(d).is_some_and(|v| v.error.is_some());
                match &details.vertex {
                    Some(d) if failed(d) => tracker.vertex(d).cloned(),
                    Some(_) => None,
                    None => tracker
                        .failed()
                        .find(|v| {
                            !failed_before.contains(&v.digest)
                                && !v
                                    .error
                                    .as_deref()
                                    .is_some_and(|e| e.contains("context canceled"))
                        })
                        .cloned(),
                }
            };
            if found.is_some() || tokio::time::Instant::now() >= deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let (instruction, location) = match &source {
            Some((text, location)) => (Some(text.clone()), Some(location.clone())),
            None => (
                vertex
                    .as_ref()
                    .map(|v| v.name.clone())
                    .filter(|n| !n.is_empty()),
                None,
            ),
        };
        let log_tail = vertex.as_ref().map(log_tail).unwrap_or_default();
        let mut message = status.message().trim().to_owned();
        if let Some(hint) = missing_network_hint_dockerfile(&message) {
            message = format!("{message} ({hint})");
        }
        GatewayError::Frontend(Box::new(FrontendFailure {
            frontend: frontend.to_owned(),
            instruction,
            location,
            vertex: details.vertex.clone().or_else(|| vertex.map(|v| v.digest)),
            message,
            log_tail,
        }))
    }
}

/// The last [`LOG_TAIL_LINES`] lines of a vertex's output (stdout, then stderr).
fn log_tail(vertex: &crate::client::VertexReport) -> String {
    let mut all = String::from_utf8_lossy(&vertex.stdout).into_owned();
    if !all.is_empty() && !all.ends_with('\n') {
        all.push('\n');
    }
    all.push_str(&String::from_utf8_lossy(&vertex.stderr));
    let lines: Vec<&str> = all.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// The source text and location (`Dockerfile:3`) BuildKit attached to a failure
/// (`errdefs.Source`, protobuf or JSON).
fn decode_source(status: &tonic::Status) -> Option<(String, String)> {
    let rpc = google::rpc::Status::decode(status.details()).ok()?;
    rpc.details.iter().find_map(|any| {
        let name = any.type_url.rsplit('/').next().unwrap_or(&any.type_url);
        if name.trim_end_matches("+json") != "errdefs.Source" {
            return None;
        }
        let source = serde_json::from_slice::<serde_json::Value>(&any.value)
            .ok()
            .and_then(|v| source_from_json(&v))
            .or_else(|| errdefs::Source::decode(any.value.as_slice()).ok())?;
        describe_source(&source)
    })
}

fn source_from_json(value: &serde_json::Value) -> Option<errdefs::Source> {
    let info = value.get("info")?;
    let data = info.get("data")?.as_str()?;
    let ranges = value
        .get("ranges")?
        .as_array()?
        .iter()
        .map(|r| {
            let line = |key: &str| {
                r.get(key)
                    .and_then(|p| p.get("line"))
                    .and_then(serde_json::Value::as_i64)
                    .and_then(|l| i32::try_from(l).ok())
                    .unwrap_or(0)
            };
            pb::Range {
                start: Some(pb::Position {
                    line: line("start"),
                    character: 0,
                }),
                end: Some(pb::Position {
                    line: line("end"),
                    character: 0,
                }),
            }
        })
        .collect();
    Some(errdefs::Source {
        info: Some(pb::SourceInfo {
            filename: info
                .get("filename")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            data: base64_decode(data)?,
            definition: None,
            language: String::new(),
        }),
        ranges,
    })
}

fn describe_source(source: &errdefs::Source) -> Option<(String, String)> {
    let info = source.info.as_ref()?;
    let range = source.ranges.first()?;
    let start = usize::try_from(range.start.as_ref()?.line).ok()?.max(1);
    let end = range
        .end
        .as_ref()
        .and_then(|p| usize::try_from(p.line).ok())
        .unwrap_or(start)
        .max(start);
    let text = String::from_utf8_lossy(&info.data);
    let lines: Vec<&str> = text.lines().skip(start - 1).take(end - start + 1).collect();
    if lines.is_empty() {
        return None;
    }
    let filename = if info.filename.is_empty() {
        "Dockerfile"
    } else {
        info.filename.as_str()
    };
    let location = if end > start {
        format!("{filename}:{start}-{end}")
    } else {
        format!("{filename}:{start}")
    };
    Some((lines.join("\n").trim().to_owned(), location))
}

/// Standard base64 with padding (how Go's `encoding/json` writes `[]byte`).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let produced = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        for i in 0..produced {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cache_imports_are_the_frontends_json_option_and_the_evaluating_solves() {
        let entry = |kind: &str, attrs: &[(&str, &str)]| CacheOptionsEntry {
            r#type: kind.to_owned(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let entries = [
            entry("local", &[("src", "/c"), ("digest", "sha256:ab")]),
            entry("registry", &[("ref", "127.0.0.1:5000/c:t")]),
        ];
        let request = FrontendRequest::dockerfile().cache_imports(&entries);
        assert_eq!(
            request.opts()[CACHE_IMPORTS_OPT],
            r#"[{"Attrs":{"digest":"sha256:ab","src":"/c"},"Type":"local"},{"Attrs":{"ref":"127.0.0.1:5000/c:t"},"Type":"registry"}]"#
        );
        assert_eq!(request.cache_imports, entries);
        // No entries: no option (the frontend is asked nothing about caches).
        let cleared = request.cache_imports(&[]);
        assert!(!cleared.opts().contains_key(CACHE_IMPORTS_OPT));
        assert!(cleared.cache_imports.is_empty());
    }

    #[test]
    fn base64_matches_go() {
        assert_eq!(base64_decode("RlJPTSBhCg==").unwrap(), b"FROM a\n");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("!!!!").is_none());
    }

    #[test]
    fn sources_name_the_instruction() {
        let source = errdefs::Source {
            info: Some(pb::SourceInfo {
                filename: "Dockerfile".into(),
                data: b"FROM a AS x\nRUN echo hi \\\n  && exit 3\nCMD x\n".to_vec(),
                ..Default::default()
            }),
            ranges: vec![pb::Range {
                start: Some(pb::Position {
                    line: 2,
                    character: 0,
                }),
                end: Some(pb::Position {
                    line: 3,
                    character: 0,
                }),
            }],
        };
        let (text, location) = describe_source(&source).unwrap();
        assert_eq!(text, "RUN echo hi \\\n  && exit 3");
        assert_eq!(location, "Dockerfile:2-3");
        let json = serde_json::json!({
            "info": {"filename": "Dockerfile", "data": "RlJPTSBhCg=="},
            "ranges": [{"start": {"line": 1}, "end": {"line": 1}}]
        });
        let decoded = source_from_json(&json).unwrap();
        assert_eq!(
            describe_source(&decoded).unwrap(),
            ("FROM a".to_owned(), "Dockerfile:1".to_owned())
        );
    }
}
