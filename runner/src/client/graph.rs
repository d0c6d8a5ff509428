//! A read-only index of a `pb.Definition`: op digests, what each op is, and the root.
//!
//! Used to name failing vertices (an exec's argv, an image reference) and to tell the vertex under
//! test from its inputs when classifying errors.

use std::collections::BTreeMap;

use prost::Message;
use sha2::{Digest, Sha256};

use crate::proto::pb;

/// What one op is, as far as error reports care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// An exec with this argv.
    Exec {
        /// argv.
        args: Vec<String>,
    },
    /// A source (`docker-image://…`, `local://…`, …).
    Source {
        /// The source identifier.
        identifier: String,
    },
    /// A file op.
    File,
    /// A merge op.
    Merge,
    /// A diff op.
    Diff,
    /// A passthrough op.
    Passthrough {
        /// Its id.
        id: String,
    },
    /// A build op or anything newer.
    Other,
    /// The terminal op (no body).
    Terminal,
}

/// One op of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpInfo {
    /// `sha256:…` of the op's bytes.
    pub digest: String,
    /// What it is.
    pub kind: OpKind,
    /// Input digests.
    pub inputs: Vec<String>,
    /// `llb.customname`, if set.
    pub custom_name: Option<String>,
}

impl OpInfo {
    /// A short human name: the custom name, else `exec sh -c …`, `image docker.io/…`, `file`, ….
    pub(crate) fn display_name(&self) -> String {
        if let Some(name) = &self.custom_name {
            return name.clone();
        }
        match &self.kind {
            OpKind::Exec { args } => format!("exec {}", shell_words(args)),
            OpKind::Source { identifier } => match identifier.strip_prefix("docker-image://") {
                Some(image) => format!("image {image}"),
                None => format!("source {identifier}"),
            },
            OpKind::File => "file".to_owned(),
            OpKind::Merge => "merge".to_owned(),
            OpKind::Diff => "diff".to_owned(),
            OpKind::Passthrough { id } => format!("passthrough {id}"),
            OpKind::Other => "op".to_owned(),
            OpKind::Terminal => "terminal".to_owned(),
        }
    }
}

/// argv joined for display, quoting words with spaces or quotes.
pub fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty()
                || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
            {
                format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ops of a Definition by digest.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    ops: BTreeMap<String, OpInfo>,
    root: Option<String>,
}

impl Graph {
    /// Index a Definition. Ops that do not decode are skipped (they are the daemon's problem).
    pub(crate) fn new(def: &pb::Definition) -> Self {
        let mut graph = Graph::default();
        for bytes in &def.def {
            let digest = op_digest(bytes);
            let Ok(op) = pb::Op::decode(bytes.as_ref()) else {
                continue;
            };
            let inputs: Vec<String> = op.inputs.iter().map(|i| i.digest.clone()).collect();
            let kind = match &op.op {
                Some(pb::op::Op::Exec(exec)) => OpKind::Exec {
                    args: exec
                        .meta
                        .as_ref()
                        .map(|m| m.args.clone())
                        .unwrap_or_default(),
                },
                Some(pb::op::Op::Source(src)) => OpKind::Source {
                    identifier: src.identifier.clone(),
                },
                Some(pb::op::Op::File(_)) => OpKind::File,
                Some(pb::op::Op::Merge(_)) => OpKind::Merge,
                Some(pb::op::Op::Diff(_)) => OpKind::Diff,
                Some(pb::op::Op::Passthrough(p)) => OpKind::Passthrough { id: p.id.clone() },
                Some(pb::op::Op::Build(_)) => OpKind::Other,
                None => OpKind::Terminal,
            };
            if kind == OpKind::Terminal {
                graph.root = inputs.first().cloned();
            }
            let custom_name = def
                .metadata
                .get(&digest)
                .and_then(|m| m.description.get("llb.customname"))
                .cloned();
            graph.ops.insert(
                digest.clone(),
                OpInfo {
                    digest,
                    kind,
                    inputs,
                    custom_name,
                },
            );
        }
        graph
    }

    /// The op with this digest.
    pub(crate) fn op(&self, digest: &str) -> Option<&OpInfo> {
        self.ops.get(digest)
    }

    /// The digests of the graph's ops.
    pub(crate) fn digests(&self) -> impl Iterator<Item = &str> {
        self.ops.keys().map(String::as_str)
    }

    /// The digest of the solved (root) op: the terminal op's input.
    pub(crate) fn root(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// Image references of the graph's `docker-image://` sources.
    pub(crate) fn images(&self) -> Vec<(&str, &str)> {
        self.ops
            .values()
            .filter_map(|op| match &op.kind {
                OpKind::Source { identifier } => identifier
                    .strip_prefix("docker-image://")
                    .map(|image| (op.digest.as_str(), image)),
                _ => None,
            })
            .collect()
    }
}

/// Ops at least this large have their digest remembered by [`op_digest`].
const LARGE_OP: usize = 64 * 1024;
/// How many large buffers [`op_digest`] remembers.
const LARGE_OP_MEMO: usize = 8;

/// `sha256:` + hex of an op's bytes.
///
/// Every check's Definition carries the same 1.4 MB probe op, and `llb` marshalling hands out
/// one shared buffer for it; hashing it again for each solve cost 45 ms per check in a debug
/// build. So the digests of the few most recent large buffers are remembered by buffer identity.
/// The memo holds a clone of each buffer, so an address cannot be freed and reused while its
/// entry exists.
fn op_digest(bytes: &bytes::Bytes) -> String {
    use std::sync::{Mutex, PoisonError};
    static MEMO: Mutex<Vec<(bytes::Bytes, String)>> = Mutex::new(Vec::new());
    let hash = |b: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(b)));
    if bytes.len() < LARGE_OP {
        return hash(bytes);
    }
    let same = |b: &bytes::Bytes| b.as_ptr() == bytes.as_ptr() && b.len() == bytes.len();
    if let Some((_, digest)) = MEMO
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|(b, _)| same(b))
    {
        return digest.clone();
    }
    let digest = hash(bytes);
    let mut memo = MEMO.lock().unwrap_or_else(PoisonError::into_inner);
    if !memo.iter().any(|(b, _)| same(b)) {
        if memo.len() == LARGE_OP_MEMO {
            memo.remove(0);
        }
        memo.push((bytes.clone(), digest.clone()));
    }
    digest
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn op_bytes(op: &pb::Op) -> bytes::Bytes {
        op.encode_to_vec().into()
    }

    #[test]
    fn large_op_digests_are_right_whether_remembered_or_not() {
        let hash = |b: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(b)));
        let buffers: Vec<bytes::Bytes> = (0..LARGE_OP_MEMO as u8 + 3)
            .map(|i| bytes::Bytes::from(vec![i; LARGE_OP + 1]))
            .collect();
        for _ in 0..2 {
            for b in &buffers {
                assert_eq!(op_digest(b), hash(b));
                assert_eq!(op_digest(&b.clone()), hash(b));
            }
        }
        // A different buffer with other contents never gets a remembered digest.
        let other = bytes::Bytes::from(vec![0xee; LARGE_OP + 1]);
        assert_eq!(op_digest(&other), hash(&other));
        let small = bytes::Bytes::from_static(b"small op");
        assert_eq!(op_digest(&small), hash(&small));
    }

    #[test]
    fn indexes_ops_and_root() {
        let src = pb::Op {
            op: Some(pb::op::Op::Source(pb::SourceOp {
                identifier: "docker-image://docker.io/library/busybox:latest".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let src_bytes = op_bytes(&src);
        let src_digest = format!("sha256:{}", hex::encode(Sha256::digest(&src_bytes)));
        let exec = pb::Op {
            inputs: vec![pb::Input {
                digest: src_digest.clone(),
                index: 0,
            }],
            op: Some(pb::op::Op::Exec(pb::ExecOp {
                meta: Some(pb::Meta {
                    args: vec!["sh".into(), "-c".into(), "exit 3".into()],
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        let exec_bytes = op_bytes(&exec);
        let exec_digest = format!("sha256:{}", hex::encode(Sha256::digest(&exec_bytes)));
        let term = pb::Op {
            inputs: vec![pb::Input {
                digest: exec_digest.clone(),
                index: 0,
            }],
            ..Default::default()
        };
        let def = pb::Definition {
            def: vec![src_bytes, exec_bytes, op_bytes(&term)],
            ..Default::default()
        };
        let graph = Graph::new(&def);
        assert_eq!(graph.root(), Some(exec_digest.as_str()));
        assert_eq!(
            graph.op(&exec_digest).unwrap().display_name(),
            "exec sh -c \"exit 3\""
        );
        assert_eq!(
            graph.images(),
            vec![(src_digest.as_str(), "docker.io/library/busybox:latest")]
        );
    }
}
