//! Structure of marshalled LLB for what the golden vectors do not cover:
//! decode the Definition and check ops, inputs, actions, metadata and caps,
//! and that every invalid graph fails with its typed error.

use buildtest::llb::{
    CacheSharing, DecodedOp, Definition, FileAction, ImageOptions, LlbError, LocalOptions, NetMode,
    Platform, ResolveMode, State, diff, merge,
};
use buildtest::proto::pb;

fn marshal(state: &State) -> Definition {
    state.marshal(&Platform::linux_amd64()).expect("marshal")
}

fn ops(state: &State) -> Vec<DecodedOp> {
    Definition::decode(&marshal(state).to_bytes()).expect("decode")
}

fn err(state: &State) -> LlbError {
    state
        .marshal(&Platform::linux_amd64())
        .expect_err("marshal should fail")
}

fn kinds(ops: &[DecodedOp]) -> Vec<&'static str> {
    ops.iter().map(DecodedOp::kind).collect()
}

fn op<'a>(ops: &'a [DecodedOp], kind: &str) -> &'a DecodedOp {
    ops.iter()
        .find(|o| o.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} op in {:?}", kinds(ops)))
}

fn exec_of(op: &DecodedOp) -> &pb::ExecOp {
    match &op.op.op {
        Some(pb::op::Op::Exec(exec)) => exec,
        other => panic!("not an exec: {other:?}"),
    }
}

fn file_of(op: &DecodedOp) -> &pb::FileOp {
    match &op.op.op {
        Some(pb::op::Op::File(file)) => file,
        other => panic!("not a file op: {other:?}"),
    }
}

fn terminal(ops: &[DecodedOp]) -> &DecodedOp {
    ops.last().expect("terminal op")
}

fn alpine() -> State {
    State::image("alpine:3.20")
}

fn by_id(id: u32) -> Option<pb::UserOpt> {
    Some(pb::UserOpt {
        user: Some(pb::user_opt::User::ById(id)),
    })
}

// ---------------------------------------------------------------- file ops

#[test]
fn file_actions_chain_like_go() {
    let other = State::image("busybox");
    let action = FileAction::mkdir("/a", 0o755)
        .make_parents(true)
        .owner(1, 2)
        .mkfile("a/f", 0o4755, "hi")
        .copy(&other, "src/../bin", "/dst/")
        .create_dest_path(true)
        .rm("/x")
        .allow_not_found(true)
        .symlink("/a/f", "/l")
        .owner(0, 0);
    let ops = ops(&alpine().file(action));
    assert_eq!(kinds(&ops), ["source", "source", "file", "terminal"]);
    let file_op = op(&ops, "file");
    assert_eq!(file_op.caps(), ["file.base"]);
    assert_eq!(
        file_op.op.platform, None,
        "file ops are not platform specific"
    );
    assert_eq!(
        file_op.op.constraints,
        Some(pb::WorkerConstraints::default())
    );
    assert_eq!(file_op.op.inputs.len(), 2);
    assert_eq!(file_op.op.inputs[0].digest, ops[0].digest);
    assert_eq!(file_op.op.inputs[1].digest, ops[1].digest);

    use pb::file_action::Action as A;
    let actions = &file_of(file_op).actions;
    let wiring: Vec<(i64, i64, i64)> = actions
        .iter()
        .map(|a| (a.input, a.secondary_input, a.output))
        .collect();
    // First action reads input 0; later ones read "inputs + previous action";
    // only the last has an output.
    assert_eq!(
        wiring,
        [
            (0, -1, -1),
            (2, -1, -1),
            (3, 1, -1),
            (4, -1, -1),
            (5, -1, 0)
        ]
    );

    let chown = |uid, gid| {
        Some(pb::ChownOpt {
            user: by_id(uid),
            group: by_id(gid),
        })
    };
    assert_eq!(
        actions[0].action,
        Some(A::Mkdir(pb::FileActionMkDir {
            path: "/a".into(),
            mode: 0o755,
            make_parents: true,
            owner: chown(1, 2),
            timestamp: -1,
        }))
    );
    assert_eq!(
        actions[1].action,
        Some(A::Mkfile(pb::FileActionMkFile {
            path: "/a/f".into(),
            mode: 0o755,
            data: b"hi".to_vec(),
            owner: None,
            timestamp: -1,
        }))
    );
    let Some(A::Copy(copy)) = &actions[2].action else {
        panic!("copy expected: {:?}", actions[2])
    };
    assert_eq!((copy.src.as_str(), copy.dest.as_str()), ("/bin", "/dst/"));
    assert_eq!(
        (copy.mode, copy.timestamp, copy.create_dest_path),
        (-1, -1, true)
    );
    assert_eq!(
        actions[3].action,
        Some(A::Rm(pb::FileActionRm {
            path: "/x".into(),
            allow_not_found: true,
            allow_wildcard: false
        }))
    );
    assert_eq!(
        actions[4].action,
        Some(A::Symlink(pb::FileActionSymlink {
            oldpath: "/a/f".into(),
            newpath: "/l".into(),
            owner: chown(0, 0),
            timestamp: -1,
        }))
    );
}

#[test]
fn file_ops_on_scratch_and_copies_from_scratch_use_minus_one() {
    let action = FileAction::mkfile("/f", 0o644, vec![1, 2, 3])
        .owner_names("app", "staff")
        .copy(&State::scratch(), "/", "/empty")
        .copy_mode(0o600)
        .timestamp(1_700_000_000_000_000_000);
    let ops = ops(&State::scratch().file(action));
    assert_eq!(kinds(&ops), ["file", "terminal"]);
    let file_op = op(&ops, "file");
    assert!(file_op.op.inputs.is_empty());
    let actions = &file_of(file_op).actions;
    assert_eq!(
        (
            actions[0].input,
            actions[0].secondary_input,
            actions[0].output
        ),
        (-1, -1, -1)
    );
    assert_eq!(
        (
            actions[1].input,
            actions[1].secondary_input,
            actions[1].output
        ),
        (0, -1, 0)
    );
    let Some(pb::file_action::Action::Mkfile(mkfile)) = &actions[0].action else {
        panic!()
    };
    let named = |name: &str| {
        Some(pb::UserOpt {
            user: Some(pb::user_opt::User::ByName(pb::NamedUserOpt {
                name: name.into(),
                input: -1,
            })),
        })
    };
    assert_eq!(
        mkfile.owner,
        Some(pb::ChownOpt {
            user: named("app"),
            group: named("staff")
        })
    );
    let Some(pb::file_action::Action::Copy(copy)) = &actions[1].action else {
        panic!()
    };
    assert_eq!(
        (copy.mode, copy.timestamp),
        (0o600, 1_700_000_000_000_000_000)
    );
}

#[test]
fn chained_file_ops_keep_their_inputs_deduplicated() {
    let src = State::image("busybox");
    let action = FileAction::copy(&src, "/a", "/a")
        .copy(&src, "/b", "/b")
        .copy(&alpine(), "/c", "/c");
    let ops = ops(&alpine().file(action));
    let file_op = op(&ops, "file");
    // base (alpine) and busybox, each once; alpine as copy source reuses index 0.
    assert_eq!(file_op.op.inputs.len(), 2);
    let actions = &file_of(file_op).actions;
    let secondaries: Vec<i64> = actions.iter().map(|a| a.secondary_input).collect();
    assert_eq!(secondaries, [1, 1, 0]);
    // Go walks the base first, then copy sources from the last action back.
    assert_eq!(kinds(&ops), ["source", "source", "file", "terminal"]);
    assert_eq!(ops[0].digest, file_op.op.inputs[0].digest);
}

// ------------------------------------------------------------ merge / diff

#[test]
fn merge_drops_scratch_inputs() {
    let a = alpine();
    let b = State::image("busybox");
    assert!(merge([]).is_scratch());
    assert!(merge([State::scratch(), State::scratch()]).is_scratch());
    assert!(marshal(&merge([State::scratch()])).to_bytes().is_empty());
    assert_eq!(
        marshal(&merge([State::scratch(), a.clone()])).to_bytes(),
        marshal(&a).to_bytes()
    );

    let ops = ops(&merge([
        State::scratch(),
        a.clone(),
        State::scratch(),
        b.clone(),
    ]));
    let merge_op = op(&ops, "merge");
    assert_eq!(merge_op.op.inputs.len(), 2);
    assert_eq!(merge_op.caps(), ["mergeop"]);
    assert_eq!(merge_op.op.platform, None);
    let Some(pb::op::Op::Merge(m)) = &merge_op.op.op else {
        panic!()
    };
    assert_eq!(
        m.inputs,
        [pb::MergeInput { input: 0 }, pb::MergeInput { input: 1 }]
    );
}

#[test]
fn diff_simplifies_scratch_like_go() {
    let a = alpine();
    assert!(diff(&State::scratch(), &State::scratch()).is_scratch());
    assert_eq!(
        marshal(&diff(&State::scratch(), &a)).to_bytes(),
        marshal(&a).to_bytes()
    );
    let ops = ops(&diff(&a, &State::scratch()));
    let diff_op = op(&ops, "diff");
    assert_eq!(diff_op.op.inputs.len(), 1);
    assert_eq!(diff_op.caps(), ["diffop"]);
    let Some(pb::op::Op::Diff(d)) = &diff_op.op.op else {
        panic!()
    };
    assert_eq!(d.lower, Some(pb::LowerDiffInput { input: 0 }));
    assert_eq!(d.upper, Some(pb::UpperDiffInput { input: -1 }));
}

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

// -------------------------------------------------------------------- exec

#[test]
fn exec_meta_env_cwd_user_and_network_none() {
    let ops = ops(&alpine()
        .run(["/bin/sh", "-c", "env"])
        .env("A", "1")
        .env("B", "2")
        .env("A", "3")
        .cwd("/work")
        .user("1000:1000")
        .network(NetMode::None)
        .root());
    let exec = op(&ops, "exec");
    let e = exec_of(exec);
    let meta = e.meta.as_ref().expect("meta");
    assert_eq!(meta.env, ["A=3", "B=2"]);
    assert_eq!(
        (meta.cwd.as_str(), meta.user.as_str()),
        ("/work", "1000:1000")
    );
    assert!(meta.remove_mount_stubs_recursive);
    assert_eq!(e.network(), pb::NetMode::None);
    assert_eq!(
        exec.caps(),
        ["exec.meta.base", "exec.meta.network", "exec.mount.bind"]
    );
    assert_eq!(
        exec.op.platform,
        Some(Platform::linux_amd64()).map(|p| pb::Platform {
            architecture: p.architecture,
            os: p.os,
            ..Default::default()
        })
    );
}

#[test]
fn tmpfs_and_cache_mounts() {
    let ops = ops(&alpine()
        .run(["true"])
        .tmpfs("/tmp")
        .tmpfs_sized("/run", 1 << 20)
        .cache("/var/cache", "apt", CacheSharing::Locked)
        .root());
    let exec = op(&ops, "exec");
    assert_eq!(
        exec.caps(),
        [
            "exec.meta.base",
            "exec.mount.bind",
            "exec.mount.cache",
            "exec.mount.cache.sharing",
            "exec.mount.tmpfs",
            "exec.mount.tmpfs.size"
        ]
    );
    let mounts = &exec_of(exec).mounts;
    let dests: Vec<&str> = mounts.iter().map(|m| m.dest.as_str()).collect();
    assert_eq!(
        dests,
        ["/", "/run", "/tmp", "/var/cache"],
        "mounts sorted by destination"
    );
    assert_eq!((mounts[1].input, mounts[1].output), (-1, -1));
    assert_eq!(mounts[1].mount_type(), pb::MountType::Tmpfs);
    assert_eq!(mounts[1].tmpfs_opt, Some(pb::TmpfsOpt { size: 1 << 20 }));
    assert_eq!(mounts[2].tmpfs_opt, Some(pb::TmpfsOpt { size: 0 }));
    assert_eq!(mounts[3].mount_type(), pb::MountType::Cache);
    assert_eq!((mounts[3].input, mounts[3].output), (-1, -1));
    let cache = mounts[3].cache_opt.as_ref().expect("cache opt");
    assert_eq!(
        (cache.id.as_str(), cache.sharing()),
        ("apt", pb::CacheSharingOpt::Locked)
    );
}

#[test]
fn mounts_are_sorted_inputs_deduplicated_and_outputs_numbered() {
    let tools = State::image("busybox");
    let exec = alpine()
        .run(["true"])
        .mount_readonly("/z", tools.clone())
        .mount("/out", State::scratch())
        .mount_readonly_path("/a", tools.clone(), "/bin");
    let out = exec.get_mount("/out");
    assert_eq!(
        marshal(&exec.get_mount("/z")).to_bytes(),
        marshal(&tools).to_bytes()
    );

    let ops = ops(&merge([exec.root(), out]));
    let exec_op = op(&ops, "exec");
    assert_eq!(
        exec_op.op.inputs.len(),
        2,
        "busybox mounted twice is one input"
    );
    let mounts = &exec_of(exec_op).mounts;
    let summary: Vec<(&str, i64, i64, bool)> = mounts
        .iter()
        .map(|m| (m.dest.as_str(), m.input, m.output, m.readonly))
        .collect();
    assert_eq!(
        summary,
        [
            ("/", 0, 0, false),
            ("/a", 1, -1, true),
            ("/out", -1, 1, false),
            ("/z", 1, -1, true)
        ]
    );
    assert_eq!(mounts[1].selector, "/bin");
    assert_eq!(
        exec_op.caps(),
        ["exec.meta.base", "exec.mount.bind", "exec.mount.selector"]
    );
    let Some(pb::op::Op::Merge(_)) = &op(&ops, "merge").op.op else {
        panic!()
    };
    let indices: Vec<i64> = op(&ops, "merge")
        .op
        .inputs
        .iter()
        .map(|i| i.index)
        .collect();
    assert_eq!(indices, [0, 1], "root is output 0, /out output 1");
}

#[test]
fn exec_on_scratch_has_no_bind_input() {
    let ops = ops(&State::scratch()
        .run(["/probe"])
        .mount_readonly("/probe", alpine())
        .root());
    let exec = op(&ops, "exec");
    let mounts = &exec_of(exec).mounts;
    assert_eq!(
        (mounts[0].dest.as_str(), mounts[0].input, mounts[0].output),
        ("/", -1, 0)
    );
    assert_eq!((mounts[1].input, mounts[1].readonly), (0, true));
}

// ----------------------------------------------------------------- sources

#[test]
fn image_options_resolve_mode_and_platform() {
    let arm = Platform::linux_arm64();
    let image = State::image_with(
        "alpine",
        ImageOptions::new()
            .resolve_mode(ResolveMode::ForcePull)
            .platform(arm.clone()),
    );
    let ops = ops(&image.run(["uname", "-m"]).root());
    let source = op(&ops, "source");
    let Some(pb::op::Op::Source(s)) = &source.op.op else {
        panic!()
    };
    assert_eq!(
        s.identifier,
        "docker-image://docker.io/library/alpine:latest"
    );
    assert_eq!(
        s.attrs.get("image.resolvemode").map(String::as_str),
        Some("pull")
    );
    assert_eq!(source.caps(), ["source.image", "source.image.resolvemode"]);
    let want = Some(pb::Platform {
        architecture: "arm64".into(),
        os: "linux".into(),
        ..Default::default()
    });
    assert_eq!(source.op.platform, want);
    assert_eq!(
        op(&ops, "exec").op.platform,
        want,
        "execs inherit the image's platform"
    );

    let local = State::image_with(
        "alpine",
        ImageOptions::new().resolve_mode(ResolveMode::PreferLocal),
    );
    let ops = self::ops(&local);
    let Some(pb::op::Op::Source(s)) = &op(&ops, "source").op.op else {
        panic!()
    };
    assert_eq!(
        s.attrs.get("image.resolvemode").map(String::as_str),
        Some("local")
    );
    assert_eq!(op(&ops, "source").caps(), ["source.image"]);
}

#[test]
fn local_sources_are_not_platform_specific() {
    let ops = ops(&State::local_with(
        "context",
        LocalOptions::new()
            .session_id("s1")
            .exclude_patterns(["target"]),
    ));
    let source = op(&ops, "source");
    let Some(pb::op::Op::Source(s)) = &source.op.op else {
        panic!()
    };
    assert_eq!(s.identifier, "local://context");
    assert_eq!(s.attrs.get("local.session").map(String::as_str), Some("s1"));
    assert_eq!(
        s.attrs.get("local.excludepatterns").map(String::as_str),
        Some(r#"["target"]"#)
    );
    assert_eq!(source.op.platform, None);
    assert_eq!(
        source.caps(),
        [
            "source.local",
            "source.local.excludepatterns",
            "source.local.sessionid"
        ]
    );
}

#[test]
fn image_references_normalize() {
    let id = |r: &str| {
        let ops = ops(&State::image(r));
        match &op(&ops, "source").op.op {
            Some(pb::op::Op::Source(s)) => s.identifier.clone(),
            other => panic!("{other:?}"),
        }
    };
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(
        id("alpine"),
        "docker-image://docker.io/library/alpine:latest"
    );
    assert_eq!(id("user/repo"), "docker-image://docker.io/user/repo:latest");
    assert_eq!(
        id("localhost:5000/x"),
        "docker-image://localhost:5000/x:latest"
    );
    assert_eq!(
        id(&format!("alpine@{digest}")),
        format!("docker-image://docker.io/library/alpine@{digest}")
    );
    assert!(State::try_image("alpine:3.20").is_ok());
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

// ------------------------------------------------------------------ errors

#[test]
fn invalid_graphs_give_typed_errors() {
    assert!(matches!(
        err(&alpine().requires("", [alpine().run(["true"]).root()])),
        LlbError::EmptyPassthroughId
    ));
    assert!(matches!(
        err(&State::scratch().requires("id", [alpine()])),
        LlbError::PassthroughWithoutOutput { id } if id == "id"
    ));
    assert!(matches!(
        err(&State::image("Alpine")),
        LlbError::InvalidImageReference { reference, .. } if reference == "Alpine"
    ));
    assert!(matches!(
        State::try_image("a//b"),
        Err(LlbError::InvalidImageReference { .. })
    ));
    assert!(matches!(
        err(&alpine().run(Vec::<String>::new()).root()),
        LlbError::EmptyExecArgs
    ));
    assert!(
        matches!(err(&alpine().run(["true"]).cwd("work").root()), LlbError::RelativeCwd { cwd, .. } if cwd == "work")
    );
    assert!(matches!(
        err(&alpine().run(["true"]).mount_readonly("check", alpine()).root()),
        LlbError::RelativeMountDest { dest, .. } if dest == "check"
    ));
    assert!(matches!(
        err(&alpine().run(["true"]).mount("/", alpine()).root()),
        LlbError::DuplicateMountDest { dest, .. } if dest == "/"
    ));
    assert!(matches!(
        err(&alpine()
            .run(["true"])
            .cache("/c", "", CacheSharing::Shared)
            .root()),
        LlbError::EmptyCacheId { .. }
    ));
    assert!(
        matches!(err(&alpine().run(["true"]).get_mount("/nope")), LlbError::NoSuchMount { dest } if dest == "/nope")
    );
    assert!(matches!(
        err(&alpine().run(["true"]).tmpfs("/tmp").get_mount("/tmp")),
        LlbError::MountWithoutOutput { kind: "tmpfs", .. }
    ));
    assert!(matches!(
        err(&alpine()
            .run(["true"])
            .cache("/c", "id", CacheSharing::Private)
            .get_mount("/c")),
        LlbError::MountWithoutOutput { kind: "cache", .. }
    ));
    assert!(matches!(err(&State::local("")), LlbError::EmptyLocalName));
    assert!(matches!(
        err(&alpine().file(FileAction::mkfile("/f", 0o644, "").make_parents(true))),
        LlbError::FileOptionNotApplicable {
            option: "make_parents",
            action: "mkfile"
        }
    ));
    assert!(matches!(
        err(&alpine().file(FileAction::rm("/f").owner(0, 0))),
        LlbError::FileOptionNotApplicable {
            option: "owner",
            action: "rm"
        }
    ));
    assert!(matches!(
        err(&alpine().file(FileAction::default().owner(0, 0))),
        LlbError::FileOptionWithoutAction { option: "owner" }
    ));
    assert!(matches!(
        err(&alpine().file(FileAction::mkdir("", 0o755))),
        LlbError::EmptyFilePath { action: "mkdir" }
    ));
    assert!(matches!(
        Definition::decode(b"\x0a\x05ab"),
        Err(LlbError::Decode { .. })
    ));
}

#[test]
fn errors_propagate_through_dependent_states() {
    let bad = alpine().run(Vec::<String>::new()).root();
    assert!(matches!(
        err(&alpine().requires("c", [bad.clone()])),
        LlbError::EmptyExecArgs
    ));
    assert!(matches!(
        err(&merge([alpine(), bad.clone()])),
        LlbError::EmptyExecArgs
    ));
    assert!(matches!(
        err(&alpine().file(FileAction::copy(&bad, "/", "/x"))),
        LlbError::EmptyExecArgs
    ));
    assert!(matches!(
        err(&alpine().run(["true"]).mount_readonly("/b", bad).root()),
        LlbError::EmptyExecArgs
    ));
}

#[test]
fn error_messages_read_after_failed_to() {
    let messages = [
        LlbError::EmptyPassthroughId.to_string(),
        err(&State::image("Alpine")).to_string(),
        LlbError::EmptyExecArgs.to_string(),
    ];
    for message in messages {
        let first = message.chars().next().expect("non-empty");
        assert!(first.is_lowercase(), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
}
