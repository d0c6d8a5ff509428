//! The graph as a whole: passthrough `requires`, op metadata, the empty definition, the wire
//! form and the per-vertex encoding cache.

use super::*;

// ------------------------------------------------------------- passthrough

#[test]
fn requires_without_deps_is_the_state_itself() {
    let a = alpine().run(["true"]).root();
    let same = a.requires("nothing", []);
    assert_eq!(marshal(&same).digests(), marshal(&a).digests());
    assert_eq!(marshal(&same).to_bytes(), marshal(&a).to_bytes());
}

#[test]
fn requires_forwards_self_and_drops_scratch_deps() {
    let a = alpine();
    let check = a.run(["true"]).root();
    let ops = ops(&a.requires("id", [State::scratch(), check.clone()]));
    let pt = op(&ops, "passthrough");
    assert_eq!(pt.op.inputs.len(), 2);
    assert_eq!(pt.caps(), ["passthroughop"]);
    assert_eq!(pt.op.platform, None);
    let Some(pb::op::Op::Passthrough(p)) = &pt.op.op else {
        panic!()
    };
    assert_eq!((p.id.as_str(), p.outputs.as_slice()), ("id", &[0_i64][..]));
    assert_eq!(pt.op.inputs[0].digest, op(&ops, "source").digest);
    assert_eq!(pt.op.inputs[1].digest, op(&ops, "exec").digest);
    assert_eq!(terminal(&ops).op.inputs[0].digest, pt.digest);
}

#[test]
fn thousand_checks_share_one_input() {
    let input = alpine();
    let checks: Vec<State> = (0..1000)
        .map(|i| input.run(["test", "-e", &format!("/f{i}")]).root())
        .collect();
    let def = marshal(&input.requires("suite", checks));
    // source + 1000 execs + passthrough + terminal, the input once.
    assert_eq!(def.len(), 1003);
    let ops = def.ops().expect("decode");
    assert_eq!(ops.iter().filter(|o| o.kind() == "source").count(), 1);
    assert_eq!(op(&ops, "passthrough").op.inputs.len(), 1001);
}

// --------------------------------------------------------------- metadata

#[test]
fn ignore_cache_sets_op_metadata_and_terminal_cap() {
    let ops = ops(&alpine().run(["date"]).ignore_cache().root());
    assert!(op(&ops, "exec").metadata.ignore_cache);
    assert!(!op(&ops, "source").metadata.ignore_cache);
    assert_eq!(
        terminal(&ops).caps(),
        ["constraints", "meta.ignorecache", "platform"]
    );

    let ops = self::ops(&alpine().ignore_cache());
    assert!(op(&ops, "source").metadata.ignore_cache);
    let ops = self::ops(&alpine().file(FileAction::mkdir("/x", 0o755)).ignore_cache());
    assert!(op(&ops, "file").metadata.ignore_cache);
}

#[test]
fn custom_names_set_llb_customname_without_changing_digests() {
    let plain = alpine().run(["true"]).root();
    let named = alpine().run(["true"]).custom_name("check: true").root();
    let ops = ops(&named);
    let exec = op(&ops, "exec");
    assert_eq!(
        exec.metadata
            .description
            .get("llb.customname")
            .map(String::as_str),
        Some("check: true")
    );
    assert_eq!(
        terminal(&ops).caps(),
        ["constraints", "meta.description", "platform"]
    );
    assert_eq!(
        marshal(&named).digests(),
        marshal(&plain).digests(),
        "names are metadata, not op bytes"
    );

    let ops = self::ops(&alpine().custom_name("base image"));
    assert_eq!(
        op(&ops, "source")
            .metadata
            .description
            .get("llb.customname")
            .map(String::as_str),
        Some("base image")
    );
    let file = alpine()
        .file(FileAction::mkdir("/x", 0o755))
        .custom_name("mkdir");
    assert_eq!(op(&self::ops(&file), "file").metadata.description.len(), 1);
}

#[test]
fn scratch_marshals_to_an_empty_definition() {
    let def = marshal(&State::scratch());
    assert!(def.is_empty());
    assert!(def.to_bytes().is_empty());
    assert_eq!(def.head(), None);
}

#[test]
fn into_proto_keeps_op_bytes() {
    let state = alpine().requires("c", [alpine().run(["true"]).root()]);
    let def = marshal(&state);
    let head = def.head().map(str::to_owned);
    let ops: Vec<Vec<u8>> = def.op_bytes().map(<[u8]>::to_vec).collect();
    let proto = def.into_proto();
    assert_eq!(
        proto.def.iter().map(|b| b.to_vec()).collect::<Vec<_>>(),
        ops
    );
    assert_eq!(proto.metadata.len(), 4);
    // The source map stays out of the wire form: BuildKit crashes on the empty
    // `Locations` values prost would send (see `Definition::into_proto`).
    assert!(proto.source.is_none());
    assert_eq!(
        head.as_deref(),
        Some(op(&self::ops(&state), "passthrough").digest.as_str())
    );
}

#[test]
fn a_shared_vertex_is_encoded_once_and_its_bytes_shared() {
    let big = State::scratch().file(FileAction::mkfile("/big", 0o755, vec![7u8; 256 * 1024]));
    let a = alpine()
        .run(["true"])
        .mount_readonly("/p", big.clone())
        .root();
    let b = alpine()
        .run(["false"])
        .mount_readonly("/p", big.clone())
        .root();
    let find = |def: &Definition| {
        def.op_bytes()
            .find(|bytes| bytes.len() > 256 * 1024)
            .expect("the big file op")
            .as_ptr()
    };
    let (da, db) = (marshal(&a), marshal(&b));
    assert_eq!(find(&da), find(&db), "both definitions share one buffer");
    // The cached encoding is the same as a fresh one, digest included.
    let fresh = State::scratch().file(FileAction::mkfile("/big", 0o755, vec![7u8; 256 * 1024]));
    let c = alpine().run(["true"]).mount_readonly("/p", fresh).root();
    assert_eq!(marshal(&c).to_bytes(), da.to_bytes());
    assert_eq!(marshal(&a).to_bytes(), da.to_bytes());
}

#[test]
fn the_encoding_cache_is_per_platform() {
    let state = alpine().run(["true"]).root();
    let amd = state.marshal(&Platform::linux_amd64()).expect("amd64");
    let arm = state.marshal(&Platform::linux_arm64()).expect("arm64");
    assert_ne!(amd.head(), arm.head());
    let arm_ops = Definition::decode(&arm.to_bytes()).expect("decode");
    assert_eq!(
        op(&arm_ops, "exec")
            .op
            .platform
            .as_ref()
            .map(|p| p.architecture.as_str()),
        Some("arm64")
    );
    // Asking again for amd64 after arm64 gives the amd64 encoding back.
    assert_eq!(
        state
            .marshal(&Platform::linux_amd64())
            .expect("amd64")
            .to_bytes(),
        amd.to_bytes()
    );
}
