//! `State`, the graph's vertices and outputs, and `Platform`.
//!
//! A [`State`] is one output of one vertex (or scratch, the empty
//! filesystem). Vertices are immutable and shared through `Arc`, so cloning a
//! state is cheap and building on it never changes it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::definition::RawOp;
use super::diff::DiffOp;
use super::error::LlbError;
use super::exec::ExecOp;
use super::file::FileOp;
use super::marshal::{Body, OpCx};
use super::merge::MergeOp;
use super::passthrough::PassthroughOp;
use super::source::SourceOp;
use crate::proto::pb;

/// The platform an op runs for (`pb.Platform`): OS, architecture and variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `GOOS`-style operating system, e.g. `linux`.
    pub os: String,
    /// `GOARCH`-style architecture, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v7` for `arm`; empty when none.
    pub variant: String,
}

impl Platform {
    /// A platform from OS and architecture, without variant.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Self {
        Self {
            os: os.into(),
            architecture: architecture.into(),
            variant: String::new(),
        }
    }

    /// `linux/amd64`, the platform the golden vectors use.
    pub fn linux_amd64() -> Self {
        Self::new("linux", "amd64")
    }

    /// `linux/arm64`.
    pub fn linux_arm64() -> Self {
        Self::new("linux", "arm64")
    }

    /// The same platform with a CPU variant.
    #[must_use]
    pub fn with_variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = variant.into();
        self
    }

    pub(crate) fn to_proto(&self) -> pb::Platform {
        pb::Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
            ..Default::default()
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// Per-vertex metadata that is not part of the op's bytes (so not of its digest).
#[derive(Debug, Clone, Default)]
pub(crate) struct VertexMeta {
    pub(crate) ignore_cache: bool,
    pub(crate) description: BTreeMap<String, String>,
}

/// Key of the vertex name in `OpMetadata.description`.
pub(crate) const CUSTOM_NAME_KEY: &str = "llb.customname";

/// One op of the graph.
#[derive(Debug, Clone)]
pub(crate) struct Vertex {
    pub(crate) op: OpKind,
    pub(crate) meta: VertexMeta,
    /// This vertex's encoded op per platform, filled by `marshal` (see [`EncodedOp`]).
    pub(crate) encoded: EncodedCache,
}

/// An op as `marshal` encoded it for one platform: its digest, its bytes and its caps.
///
/// A vertex and its inputs never change, so its encoding depends on the platform alone. Caching
/// it makes every later `marshal` of a graph that shares the vertex skip re-encoding and
/// re-hashing it, and makes every such Definition share one copy of its bytes (the check probe's
/// `FileOp` is 1.4 MB; Go's client caches the same way in `MarshalCache`).
#[derive(Debug, Clone)]
pub(crate) struct EncodedOp {
    pub(crate) digest: String,
    pub(crate) bytes: bytes::Bytes,
    pub(crate) caps: Vec<&'static str>,
}

/// Per-platform [`EncodedOp`]s of one vertex. Cloning a vertex (to change its metadata) starts
/// with an empty cache.
#[derive(Default)]
pub(crate) struct EncodedCache(std::sync::Mutex<Vec<(Platform, EncodedOp)>>);

impl EncodedCache {
    pub(crate) fn get(&self, platform: &Platform) -> Option<EncodedOp> {
        let entries = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .iter()
            .find(|(p, _)| p == platform)
            .map(|(_, e)| e.clone())
    }

    pub(crate) fn put(&self, platform: &Platform, op: &EncodedOp) {
        let mut entries = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !entries.iter().any(|(p, _)| p == platform) {
            entries.push((platform.clone(), op.clone()));
        }
    }
}

impl Clone for EncodedCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl fmt::Debug for EncodedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncodedCache")
    }
}

#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    Source(SourceOp),
    Exec(ExecOp),
    File(FileOp),
    Merge(MergeOp),
    Diff(DiffOp),
    Passthrough(PassthroughOp),
    /// An op taken verbatim from a definition made elsewhere.
    Raw(Box<RawOp>),
    /// A Dockerfile input the runner has not built yet; marshalling it is an error.
    Dockerfile(Box<super::dockerfile::DockerfileOp>),
    /// A vertex that could not be built; marshalling it returns the error.
    Invalid(LlbError),
}

impl Vertex {
    pub(crate) fn new(op: OpKind) -> Arc<Self> {
        Arc::new(Self {
            op,
            meta: VertexMeta::default(),
            encoded: EncodedCache::default(),
        })
    }

    /// Outputs this vertex depends on, in the order the Go client walks them.
    pub(crate) fn inputs(&self) -> Vec<&Output> {
        match &self.op {
            OpKind::Source(_) | OpKind::Invalid(_) | OpKind::Dockerfile(_) => Vec::new(),
            OpKind::Exec(op) => op.walk_inputs(),
            OpKind::File(op) => op.walk_inputs(),
            OpKind::Merge(op) => op.inputs.iter().collect(),
            OpKind::Diff(op) => op.walk_inputs(),
            OpKind::Passthrough(op) => op.inputs.iter().collect(),
            OpKind::Raw(op) => op.inputs.iter().collect(),
        }
    }

    /// The op's inputs, platform flag, body and caps.
    pub(crate) fn marshal_body(&self, cx: &OpCx<'_>) -> Result<Body, LlbError> {
        match &self.op {
            OpKind::Source(op) => Ok(op.marshal(cx)),
            OpKind::Exec(op) => op.marshal(cx),
            OpKind::File(op) => op.marshal(cx),
            OpKind::Merge(op) => Ok(op.marshal(cx)),
            OpKind::Diff(op) => Ok(op.marshal(cx)),
            OpKind::Passthrough(op) => op.marshal(cx),
            // `marshal` takes a raw op's bytes as they are and never asks for a body.
            OpKind::Raw(op) => Err(LlbError::InvalidDefinition {
                reason: format!("op {} cannot be re-encoded", op.digest),
            }),
            OpKind::Invalid(err) => Err(err.clone()),
            OpKind::Dockerfile(op) => Err(op.unresolved()),
        }
    }

    fn kind_name(&self) -> &'static str {
        match &self.op {
            OpKind::Source(_) => "source",
            OpKind::Exec(_) => "exec",
            OpKind::File(_) => "file",
            OpKind::Merge(_) => "merge",
            OpKind::Diff(_) => "diff",
            OpKind::Passthrough(_) => "passthrough",
            OpKind::Raw(op) => op.kind,
            OpKind::Invalid(_) => "invalid",
            OpKind::Dockerfile(_) => "dockerfile",
        }
    }
}

/// One output of a vertex: what an op input (`pb.Input`) points at.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub(crate) vertex: Arc<Vertex>,
    pub(crate) index: i64,
}

impl Output {
    pub(crate) fn new(vertex: Arc<Vertex>, index: i64) -> Self {
        Self { vertex, index }
    }

    /// Identity of the vertex (pointer), for memoisation during a walk.
    pub(crate) fn vertex_key(&self) -> usize {
        Arc::as_ptr(&self.vertex) as usize
    }

    /// Same vertex object and same output index.
    pub(crate) fn same(&self, other: &Output) -> bool {
        Arc::ptr_eq(&self.vertex, &other.vertex) && self.index == other.index
    }
}

/// An immutable LLB state: one output of an op graph, or scratch.
///
/// Cloning is cheap (an `Arc` and an index); every builder method returns a
/// new state and leaves `self` untouched. Nothing is validated until
/// [`State::marshal`], which returns the first error of the graph.
#[derive(Clone)]
pub struct State {
    pub(crate) output: Option<Output>,
    /// Platform inherited from an image with an explicit platform; `None`
    /// means "the platform given to `marshal`".
    pub(crate) platform: Option<Platform>,
    /// The image config execs on this state start from (`image_config.rs`): unset for most
    /// states, and then execs marshal exactly as without this field.
    pub(crate) config: super::image_config::ConfigState,
}

impl State {
    /// The empty filesystem. It has no op: marshalled alone it gives an empty
    /// definition, and merges drop it.
    pub fn scratch() -> Self {
        Self {
            output: None,
            platform: None,
            config: super::image_config::ConfigState::Unset,
        }
    }

    /// Whether this is scratch.
    pub fn is_scratch(&self) -> bool {
        self.output.is_none()
    }

    pub(crate) fn from_vertex(vertex: Arc<Vertex>, index: i64, platform: Option<Platform>) -> Self {
        Self {
            output: Some(Output::new(vertex, index)),
            platform,
            config: super::image_config::ConfigState::Unset,
        }
    }

    pub(crate) fn invalid(err: LlbError) -> Self {
        Self::from_vertex(Vertex::new(OpKind::Invalid(err)), 0, None)
    }

    /// Sets the vertex name shown in BuildKit's progress
    /// (`OpMetadata.description["llb.customname"]`) on the op producing this
    /// state. The name is metadata: it does not change the op's digest.
    /// No effect on scratch.
    #[must_use]
    pub fn custom_name(&self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with_meta(|meta| {
            meta.description.insert(CUSTOM_NAME_KEY.to_owned(), name);
        })
    }

    /// Marks the op producing this state as never cached
    /// (`OpMetadata.ignore_cache`). No effect on scratch.
    #[must_use]
    pub fn ignore_cache(&self) -> Self {
        self.with_meta(|meta| meta.ignore_cache = true)
    }

    fn with_meta(&self, f: impl FnOnce(&mut VertexMeta)) -> Self {
        let Some(out) = &self.output else {
            return self.clone();
        };
        let mut vertex = Vertex::clone(&out.vertex);
        f(&mut vertex.meta);
        let mut state = Self::from_vertex(Arc::new(vertex), out.index, self.platform.clone());
        state.config = self.config.clone();
        state
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.output {
            None => f.write_str("State(scratch)"),
            Some(out) => {
                let mut d = f.debug_struct("State");
                d.field("op", &out.vertex.kind_name())
                    .field("output", &out.index);
                if let OpKind::Source(src) = &out.vertex.op {
                    d.field("identifier", &src.identifier);
                }
                if let OpKind::Exec(exec) = &out.vertex.op {
                    d.field("args", &exec.args);
                }
                d.finish()
            }
        }
    }
}
