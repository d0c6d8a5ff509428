//! Definitions made elsewhere as inputs: [`State::from_definition`].
//!
//! Each op of the foreign `pb.Definition` becomes a vertex that keeps the
//! op's bytes **verbatim**: its digest is the SHA-256 of those bytes, and
//! re-encoding (prost writes fields in tag order and may order map entries
//! differently from the producer) would change it. Its metadata is kept as
//! well. Ops built on top reference the terminal op's input (digest and
//! output index), and marshalling walks these vertices like any other, so a
//! state made from a Go-made definition marshals back to the same op bytes,
//! in the same order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use super::error::LlbError;
use super::local::LocalSource;
use super::marshal::digest_of;
use super::state::{OpKind, Output, Platform, State, Vertex};
use crate::proto::pb;

/// An op taken verbatim from a foreign definition.
#[derive(Debug, Clone)]
pub(crate) struct RawOp {
    pub(crate) digest: String,
    pub(crate) bytes: Bytes,
    pub(crate) inputs: Vec<Output>,
    /// The definition's metadata for this op (caps included).
    pub(crate) metadata: pb::OpMetadata,
    pub(crate) kind: &'static str,
    /// The op's platform, if it has one.
    platform: Option<Platform>,
    /// Set when the op is a `local://` source.
    local: Option<LocalSource>,
}

impl RawOp {
    pub(crate) fn local_source(&self) -> Result<Option<LocalSource>, LlbError> {
        Ok(self.local.clone())
    }
}

fn invalid(reason: impl Into<String>) -> LlbError {
    LlbError::InvalidDefinition {
        reason: reason.into(),
    }
}

fn kind_of(op: &pb::Op) -> &'static str {
    use pb::op::Op as K;
    match &op.op {
        None => "terminal",
        Some(K::Exec(_)) => "exec",
        Some(K::Source(_)) => "source",
        Some(K::File(_)) => "file",
        Some(K::Build(_)) => "build",
        Some(K::Merge(_)) => "merge",
        Some(K::Diff(_)) => "diff",
        Some(K::Passthrough(_)) => "passthrough",
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

struct Parsed {
    bytes: Bytes,
    op: pb::Op,
}

impl State {
    /// The output of an LLB definition made elsewhere (BuildKit's Go client,
    /// the `buildkit-llb` crate, a frontend): `bytes` is an encoded
    /// `pb.Definition`, and the op its terminal op points at becomes this
    /// state. Build on it like on any state; checks reference that op.
    ///
    /// Every op keeps its bytes (so its digest) and its metadata; marshalling
    /// the state as it is gives the same ops in the same walk order. Ops not
    /// reachable from the terminal op and `Definition.source` (source
    /// locations) are dropped. Execs built on top run for the platform of the
    /// head op (or of the nearest op with a platform along first inputs), if
    /// the definition has one. An empty definition (Go's marshalling of
    /// scratch) is scratch.
    ///
    /// Errors: bytes that are not a `pb.Definition`, an op that is not a
    /// `pb.Op`, a last op that is not a terminal op (no body, one input), a
    /// body-less op elsewhere, an input naming no op of the definition, and
    /// metadata for a digest that is no op's (the sign of ops re-encoded after
    /// marshalling).
    ///
    /// ```
    /// use buildtest::llb::{Platform, State};
    ///
    /// let platform = Platform::linux_amd64();
    /// let made_elsewhere = State::image("alpine:3.20").marshal(&platform)?.to_bytes();
    /// let input = State::from_definition(&made_elsewhere)?;
    /// assert_eq!(input.marshal(&platform)?.to_bytes(), made_elsewhere);
    /// let check = input.run(["test", "-f", "/etc/os-release"]).root();
    /// assert_eq!(check.marshal(&platform)?.len(), 3);
    /// # Ok::<(), buildtest::llb::LlbError>(())
    /// ```
    pub fn from_definition(bytes: &[u8]) -> Result<State, LlbError> {
        let def = pb::Definition::decode(bytes)
            .map_err(|e| invalid(format!("the bytes are not a pb.Definition: {e}")))?;
        Self::from_pb_definition(&def)
    }

    /// [`State::from_definition`] from a decoded `pb.Definition` (for example
    /// one a frontend returned).
    pub fn from_pb_definition(def: &pb::Definition) -> Result<State, LlbError> {
        let Some(last) = def.def.last() else {
            return Ok(State::scratch());
        };
        let mut ops: HashMap<String, Parsed> = HashMap::with_capacity(def.def.len());
        for (i, bytes) in def.def.iter().enumerate() {
            let digest = digest_of(bytes);
            let op = pb::Op::decode(bytes.as_ref())
                .map_err(|e| invalid(format!("op {i} ({}) is not a pb.Op: {e}", short(&digest))))?;
            if op.op.is_none() && i + 1 != def.def.len() {
                return Err(invalid(format!(
                    "op {i} ({}) has no body, but only the last op (the terminal op) may have none",
                    short(&digest)
                )));
            }
            ops.insert(
                digest,
                Parsed {
                    bytes: bytes.clone(),
                    op,
                },
            );
        }
        let terminal_digest = digest_of(last);
        let terminal = &ops
            .get(&terminal_digest)
            .ok_or_else(|| invalid("the terminal op could not be read"))?
            .op;
        if terminal.op.is_some() {
            return Err(invalid(format!(
                "the last op is not a terminal op (no body, one input): it is a `{}` op",
                kind_of(terminal)
            )));
        }
        let [head] = terminal.inputs.as_slice() else {
            return Err(invalid(format!(
                "the terminal op has {} inputs, not one",
                terminal.inputs.len()
            )));
        };
        for key in def.metadata.keys() {
            if !ops.contains_key(key) {
                return Err(invalid(format!(
                    "metadata names op {key}, which is not in the definition (were ops re-encoded \
                     after marshalling? digests are the sha256 of each op's exact bytes)"
                )));
            }
        }
        let mut built: HashMap<String, Arc<Vertex>> = HashMap::new();
        let head_vertex = build(
            &head.digest,
            &terminal_digest,
            &ops,
            &def.metadata,
            &mut built,
        )?;
        let platform = head_platform(&head_vertex);
        Ok(State::from_vertex(head_vertex, head.index, platform))
    }
}

/// Builds the vertex of `digest` and everything it depends on, iteratively
/// (inputs first).
fn build(
    digest: &str,
    terminal: &str,
    ops: &HashMap<String, Parsed>,
    metadata: &BTreeMap<String, pb::OpMetadata>,
    built: &mut HashMap<String, Arc<Vertex>>,
) -> Result<Arc<Vertex>, LlbError> {
    let lookup = |digest: &str, from: Option<&str>| -> Result<&Parsed, LlbError> {
        match ops.get(digest) {
            Some(parsed) if digest != terminal => Ok(parsed),
            _ => Err(invalid(match from {
                Some(from) => format!(
                    "op {} has input {digest}, which is not an op of the definition",
                    short(from)
                ),
                None => {
                    format!("the terminal op's input {digest} is not an op of the definition")
                }
            })),
        }
    };
    lookup(digest, None)?;
    let mut in_progress: Vec<String> = Vec::new();
    let mut stack: Vec<(String, bool)> = vec![(digest.to_owned(), false)];
    while let Some((current, expanded)) = stack.pop() {
        if built.contains_key(&current) {
            continue;
        }
        let parsed = lookup(&current, None)?;
        if !expanded {
            if in_progress.contains(&current) {
                return Err(invalid(format!("op {} depends on itself", short(&current))));
            }
            in_progress.push(current.clone());
            stack.push((current.clone(), true));
            for input in parsed.op.inputs.iter().rev() {
                lookup(&input.digest, Some(&current))?;
                if !built.contains_key(&input.digest) {
                    stack.push((input.digest.clone(), false));
                }
            }
            continue;
        }
        in_progress.retain(|d| d != &current);
        let inputs = parsed
            .op
            .inputs
            .iter()
            .map(|input| {
                built
                    .get(&input.digest)
                    .map(|vertex| Output::new(vertex.clone(), input.index))
                    .ok_or_else(|| invalid(format!("op {} depends on itself", short(&current))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let local = match &parsed.op.op {
            Some(pb::op::Op::Source(source)) => {
                let attrs: BTreeMap<String, String> = source
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                LocalSource::from_source(&source.identifier, &attrs)?
            }
            _ => None,
        };
        let raw = RawOp {
            digest: current.clone(),
            bytes: parsed.bytes.clone(),
            inputs,
            metadata: metadata.get(&current).cloned().unwrap_or_default(),
            kind: kind_of(&parsed.op),
            platform: parsed.op.platform.as_ref().map(|p| Platform {
                os: p.os.clone(),
                architecture: p.architecture.clone(),
                variant: p.variant.clone(),
            }),
            local,
        };
        built.insert(current, Vertex::new(OpKind::Raw(Box::new(raw))));
    }
    built
        .get(digest)
        .cloned()
        .ok_or_else(|| invalid(format!("op {} could not be read", short(digest))))
}

/// The platform of the head op, or of the nearest op with one along first inputs.
fn head_platform(head: &Arc<Vertex>) -> Option<Platform> {
    let mut vertex = head.clone();
    loop {
        let OpKind::Raw(raw) = &vertex.op else {
            return None;
        };
        if let Some(platform) = &raw.platform {
            return Some(platform.clone());
        }
        let next = raw.inputs.first()?.vertex.clone();
        vertex = next;
    }
}
