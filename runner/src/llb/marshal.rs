//! Marshalling: the graph walk, per-op metadata and caps, and [`Definition`].
//!
//! The walk is the Go client's: depth-first, post-order over each vertex's
//! inputs in input order, each vertex once; an op whose bytes (so digest) were
//! already emitted is not emitted again, and metadata of ops sharing a digest
//! is merged. Then the terminal op `Op{inputs: [head]}` is appended with caps
//! `constraints` and `platform` (plus `meta.ignorecache` / `meta.description`
//! when any op uses them).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use sha2::{Digest as _, Sha256};

use super::encode::{BodyTag, encode_definition, encode_op};
use super::error::LlbError;
use super::state::{EncodedOp, OpKind, Output, Platform, State, Vertex};
use crate::proto::pb;

/// What an op contributes to its `pb.Op`, computed during the walk.
pub(crate) struct Body {
    pub(crate) inputs: Vec<pb::Input>,
    /// `Some` for platform-specific ops (image sources and execs).
    pub(crate) platform: Option<pb::Platform>,
    pub(crate) tag: BodyTag,
    pub(crate) bytes: Vec<u8>,
    pub(crate) caps: Vec<&'static str>,
}

/// What an op can ask while it is marshalled.
pub(crate) struct OpCx<'a> {
    platform: &'a Platform,
    digests: &'a HashMap<usize, String>,
}

impl OpCx<'_> {
    /// The `pb.Input` pointing at `output` (its vertex is already marshalled).
    pub(crate) fn input(&self, output: &Output) -> pb::Input {
        let digest = self
            .digests
            .get(&output.vertex_key())
            .cloned()
            .unwrap_or_default();
        pb::Input {
            digest,
            index: output.index,
        }
    }

    /// The op's platform: its own if it has one, else the one given to `marshal`.
    pub(crate) fn platform(&self, own: Option<&Platform>) -> pb::Platform {
        own.unwrap_or(self.platform).to_proto()
    }
}

/// `sha256:` + hex of the SHA-256 of `bytes`: the digest of an op.
pub(crate) fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn merge_metadata(into: &mut pb::OpMetadata, from: pb::OpMetadata) {
    into.ignore_cache |= from.ignore_cache;
    into.description.extend(from.description);
    into.caps.extend(from.caps);
    if from.export_cache.is_some() {
        into.export_cache = from.export_cache;
    }
    if from.progress_group.is_some() {
        into.progress_group = from.progress_group;
    }
}

impl State {
    /// Marshals the graph ending at this state into a [`Definition`] for
    /// `platform` (the platform of every platform-specific op that has none
    /// of its own).
    ///
    /// Scratch marshals to an empty definition. Errors carried by the graph
    /// (invalid references, empty ids, bad mounts, …) are returned here.
    pub fn marshal(&self, platform: &Platform) -> Result<Definition, LlbError> {
        let Some(head) = &self.output else {
            return Ok(Definition::default());
        };
        let mut digests: HashMap<usize, String> = HashMap::new();
        let mut emitted: HashSet<String> = HashSet::new();
        let mut ops: Vec<(String, Bytes)> = Vec::new();
        let mut metadata: BTreeMap<String, pb::OpMetadata> = BTreeMap::new();

        // Iterative post-order: (vertex, children already pushed).
        let mut stack: Vec<(&Arc<Vertex>, bool)> = vec![(&head.vertex, false)];
        while let Some((vertex, expanded)) = stack.pop() {
            let key = Arc::as_ptr(vertex) as usize;
            if digests.contains_key(&key) {
                continue;
            }
            if !expanded {
                stack.push((vertex, true));
                for input in vertex.inputs().into_iter().rev() {
                    if !digests.contains_key(&input.vertex_key()) {
                        stack.push((&input.vertex, false));
                    }
                }
                continue;
            }
            if let OpKind::Raw(raw) = &vertex.op {
                // Taken verbatim from a foreign definition: its bytes, digest and metadata.
                let mut md = raw.metadata.clone();
                merge_metadata(
                    &mut md,
                    pb::OpMetadata {
                        ignore_cache: vertex.meta.ignore_cache,
                        description: vertex.meta.description.clone(),
                        ..Default::default()
                    },
                );
                merge_metadata(metadata.entry(raw.digest.clone()).or_default(), md);
                if emitted.insert(raw.digest.clone()) {
                    ops.push((raw.digest.clone(), raw.bytes.clone()));
                }
                digests.insert(key, raw.digest.clone());
                continue;
            }
            let encoded = match vertex.encoded.get(platform) {
                Some(hit) => hit,
                None => {
                    let body = vertex.marshal_body(&OpCx {
                        platform,
                        digests: &digests,
                    })?;
                    let bytes = Bytes::from(encode_op(
                        &body.inputs,
                        body.platform.as_ref(),
                        true,
                        Some((body.tag, &body.bytes)),
                    ));
                    let encoded = EncodedOp {
                        digest: digest_of(&bytes),
                        bytes,
                        caps: body.caps,
                    };
                    vertex.encoded.put(platform, &encoded);
                    encoded
                }
            };
            let EncodedOp {
                digest,
                bytes,
                caps,
            } = encoded;
            let md = pb::OpMetadata {
                ignore_cache: vertex.meta.ignore_cache,
                description: vertex.meta.description.clone(),
                caps: caps.iter().map(|c| ((*c).to_owned(), true)).collect(),
                ..Default::default()
            };
            merge_metadata(metadata.entry(digest.clone()).or_default(), md);
            if emitted.insert(digest.clone()) {
                ops.push((digest.clone(), bytes));
            }
            digests.insert(key, digest);
        }

        let locations: BTreeSet<String> = emitted.into_iter().collect();
        let head_input = OpCx {
            platform,
            digests: &digests,
        }
        .input(head);
        let terminal = encode_op(std::slice::from_ref(&head_input), None, false, None);
        let terminal_digest = digest_of(&terminal);
        let mut caps: BTreeMap<String, bool> = [("constraints", true), ("platform", true)]
            .map(|(k, v)| (k.to_owned(), v))
            .into();
        for md in metadata.values() {
            if md.ignore_cache {
                caps.insert("meta.ignorecache".to_owned(), true);
            }
            if !md.description.is_empty() {
                caps.insert("meta.description".to_owned(), true);
            }
            if md.export_cache.is_some() {
                caps.insert("meta.exportcache".to_owned(), true);
            }
        }
        merge_metadata(
            metadata.entry(terminal_digest.clone()).or_default(),
            pb::OpMetadata {
                caps,
                ..Default::default()
            },
        );
        ops.push((terminal_digest, Bytes::from(terminal)));
        Ok(Definition {
            ops,
            metadata,
            locations: Some(locations),
        })
    }
}

/// A marshalled LLB graph (`pb.Definition`): op bytes in walk order with the
/// terminal op last, per-digest metadata, and source-location entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Definition {
    ops: Vec<(String, Bytes)>,
    metadata: BTreeMap<String, pb::OpMetadata>,
    locations: Option<BTreeSet<String>>,
}

/// One op of a decoded definition: its digest, the op and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedOp {
    /// `sha256:` + hex of the op's bytes.
    pub digest: String,
    /// The decoded `pb.Op`.
    pub op: pb::Op,
    /// Its `OpMetadata` (default when the definition has none for it).
    pub metadata: pb::OpMetadata,
}

impl DecodedOp {
    /// The op's kind: `exec`, `source`, `file`, `build`, `merge`, `diff`,
    /// `passthrough`, or `terminal` for the op without a body.
    pub fn kind(&self) -> &'static str {
        use pb::op::Op as K;
        match &self.op.op {
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

    /// The op's metadata caps, sorted.
    pub fn caps(&self) -> Vec<&str> {
        self.metadata.caps.keys().map(String::as_str).collect()
    }
}

impl Definition {
    /// The deterministic `pb.Definition` encoding, byte-identical to BuildKit's
    /// Go client for the same graph. Empty for scratch.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_definition(
            self.ops.iter().map(|(_, b)| b.as_ref()),
            &self.metadata,
            self.locations.as_ref(),
        )
    }

    /// Op digests in `def` order; the last one is the terminal op's.
    pub fn digests(&self) -> Vec<&str> {
        self.ops.iter().map(|(d, _)| d.as_str()).collect()
    }

    /// Digest of the op the graph ends in (the terminal op's input), if any.
    pub fn head(&self) -> Option<&str> {
        let len = self.ops.len();
        (len >= 2).then(|| self.ops[len - 2].0.as_str())
    }

    /// The raw bytes of each op, in `def` order.
    pub fn op_bytes(&self) -> impl Iterator<Item = &[u8]> {
        self.ops.iter().map(|(_, b)| b.as_ref())
    }

    /// Number of ops including the terminal op; 0 for scratch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether this is the empty definition of scratch.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Metadata of the op with this digest.
    pub fn metadata(&self, digest: &str) -> Option<&pb::OpMetadata> {
        self.metadata.get(digest)
    }

    /// This definition's ops decoded (see [`Definition::decode`]).
    pub fn ops(&self) -> Result<Vec<DecodedOp>, LlbError> {
        self.ops
            .iter()
            .map(|(digest, bytes)| {
                let op = pb::Op::decode(bytes.as_ref()).map_err(|e| LlbError::Decode {
                    reason: e.to_string(),
                })?;
                let metadata = self.metadata.get(digest).cloned().unwrap_or_default();
                Ok(DecodedOp {
                    digest: digest.clone(),
                    op,
                    metadata,
                })
            })
            .collect()
    }

    /// Decodes `pb.Definition` bytes into its ops in `def` order, each with
    /// its digest and metadata: for structural tests and debugging.
    pub fn decode(bytes: &[u8]) -> Result<Vec<DecodedOp>, LlbError> {
        let def = pb::Definition::decode(bytes).map_err(|e| LlbError::Decode {
            reason: e.to_string(),
        })?;
        def.def
            .iter()
            .map(|op_bytes| {
                let digest = digest_of(op_bytes);
                let op = pb::Op::decode(op_bytes.as_ref()).map_err(|e| LlbError::Decode {
                    reason: e.to_string(),
                })?;
                let metadata = def.metadata.get(&digest).cloned().unwrap_or_default();
                Ok(DecodedOp {
                    digest,
                    op,
                    metadata,
                })
            })
            .collect()
    }

    /// The prost message to send as `SolveRequest.definition`: the op bytes
    /// (so the digests) and metadata as they are, without `source` (see below).
    pub fn into_proto(self) -> pb::Definition {
        // `source` is left out on purpose. Go sends one `locations` entry per op
        // with an empty value; prost drops empty map values when it encodes, and
        // BuildKit (v0.8 to v0.13 at least) then dereferences a nil `Locations`
        // and crashes the daemon as soon as a vertex fails. Without `source`
        // BuildKit has no source map to consult, and the op bytes and digests
        // are unchanged.
        pb::Definition {
            def: self.ops.into_iter().map(|(_, b)| b).collect(),
            metadata: self.metadata.into_iter().collect(),
            source: None,
        }
    }
}
