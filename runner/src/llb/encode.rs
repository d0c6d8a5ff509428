//! Wire encoding that must match BuildKit's Go encoder byte for byte.
//!
//! prost writes a message's fields in tag order and leaves out map entry
//! fields that hold default values. Go's encoder differs in two ways that
//! change digests, so the messages affected are written here by hand:
//!
//! - a `oneof` member is written after all regular fields, so `Op` is
//!   `inputs (1)…, platform (10), constraints (11)`, then the body (2–8);
//! - a map entry always carries both its key (1) and its value (2), even when
//!   the value is empty (`Definition.source.locations` values are empty
//!   `Locations` messages: `12 00`).
//!
//! Messages without oneofs or maps (`ExecOp`, `FileOp`, `MergeOp`, …) encode
//! identically with prost and are delegated to it. Map entries are written in
//! key order, as Go's deterministic marshalling does.

use std::collections::BTreeMap;

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use crate::proto::pb;

fn put_bytes(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

fn put_bool_entry_value(tag: u32, value: bool, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::Varint, buf);
    encode_varint(u64::from(value), buf);
}

fn put_message<M: Message>(tag: u32, msg: &M, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(msg.encoded_len() as u64, buf);
    msg.encode_raw(buf);
}

/// Writes a `map<string, string>` field: one entry per key, value always present.
fn put_string_map(tag: u32, map: &BTreeMap<String, String>, buf: &mut Vec<u8>) {
    let mut entry = Vec::new();
    for (key, value) in map {
        entry.clear();
        put_bytes(1, key.as_bytes(), &mut entry);
        put_bytes(2, value.as_bytes(), &mut entry);
        put_bytes(tag, &entry, buf);
    }
}

/// Tag numbers of the `Op.op` oneof members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyTag {
    Exec = 2,
    Source = 3,
    File = 4,
    Merge = 6,
    Diff = 7,
    Passthrough = 8,
}

/// Encodes one `pb.Op` in Go's field order.
///
/// `constraints` writes an empty `WorkerConstraints` (`5a 00`), as every
/// non-terminal op has; `body` is the already encoded oneof member.
pub(crate) fn encode_op(
    inputs: &[pb::Input],
    platform: Option<&pb::Platform>,
    constraints: bool,
    body: Option<(BodyTag, &[u8])>,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + inputs.len() * 75 + body.map_or(0, |(_, b)| b.len()));
    for input in inputs {
        put_message(1, input, &mut buf);
    }
    if let Some(platform) = platform {
        put_message(10, platform, &mut buf);
    }
    if constraints {
        put_message(11, &pb::WorkerConstraints::default(), &mut buf);
    }
    if let Some((tag, bytes)) = body {
        put_bytes(tag as u32, bytes, &mut buf);
    }
    buf
}

/// Encodes a `pb.SourceOp` body: `identifier (1)`, then `attrs (2)` entries.
pub(crate) fn encode_source_op(identifier: &str, attrs: &BTreeMap<String, String>) -> Vec<u8> {
    let mut buf = Vec::new();
    if !identifier.is_empty() {
        put_bytes(1, identifier.as_bytes(), &mut buf);
    }
    put_string_map(2, attrs, &mut buf);
    buf
}

/// Encodes a `pb.OpMetadata` with Go's map-entry rules.
pub(crate) fn encode_op_metadata(md: &pb::OpMetadata, buf: &mut Vec<u8>) {
    if md.ignore_cache {
        put_bool_entry_value(1, true, buf);
    }
    put_string_map(2, &md.description, buf);
    if let Some(export_cache) = &md.export_cache {
        put_message(4, export_cache, buf);
    }
    let mut entry = Vec::new();
    for (key, value) in &md.caps {
        entry.clear();
        put_bytes(1, key.as_bytes(), &mut entry);
        put_bool_entry_value(2, *value, &mut entry);
        put_bytes(5, &entry, buf);
    }
    if let Some(group) = &md.progress_group {
        put_message(6, group, buf);
    }
}

/// Encodes a `pb.Definition`: `def (1)…`, `metadata (2)…` by key, then
/// `source (3)` with one empty `Locations` per key when `locations` is given.
pub(crate) fn encode_definition<'a>(
    def: impl IntoIterator<Item = &'a [u8]>,
    metadata: &BTreeMap<String, pb::OpMetadata>,
    locations: Option<&std::collections::BTreeSet<String>>,
) -> Vec<u8> {
    let mut buf = Vec::new();
    for op in def {
        put_bytes(1, op, &mut buf);
    }
    let mut entry = Vec::new();
    let mut value = Vec::new();
    for (digest, md) in metadata {
        entry.clear();
        value.clear();
        put_bytes(1, digest.as_bytes(), &mut entry);
        encode_op_metadata(md, &mut value);
        put_bytes(2, &value, &mut entry);
        put_bytes(2, &entry, &mut buf);
    }
    if let Some(locations) = locations {
        let mut source = Vec::new();
        for digest in locations {
            entry.clear();
            put_bytes(1, digest.as_bytes(), &mut entry);
            put_bytes(2, &[], &mut entry);
            put_bytes(1, &entry, &mut source);
        }
        put_bytes(3, &source, &mut buf);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_body_comes_after_platform_and_constraints() {
        let platform = pb::Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        let bytes = encode_op(
            &[],
            Some(&platform),
            true,
            Some((BodyTag::Source, b"\x0a\x01x")),
        );
        assert_eq!(
            bytes,
            b"\x52\x0e\x0a\x05amd64\x12\x05linux\x5a\x00\x1a\x03\x0a\x01x".to_vec()
        );
    }

    #[test]
    fn empty_map_values_are_written() {
        let mut attrs = BTreeMap::new();
        attrs.insert("k".to_owned(), String::new());
        assert_eq!(
            encode_source_op("", &attrs),
            b"\x12\x05\x0a\x01k\x12\x00".to_vec()
        );
        let locations = ["d".to_owned()].into_iter().collect();
        assert_eq!(
            encode_definition([], &BTreeMap::new(), Some(&locations)),
            b"\x1a\x07\x0a\x05\x0a\x01d\x12\x00".to_vec()
        );
    }
}
