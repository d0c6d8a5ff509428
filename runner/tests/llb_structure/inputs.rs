//! Inputs from the host and from elsewhere: `State::local_dir`, the
//! `cargo_bin!` support function, `local_sources`, `State::from_definition`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use buildtest::llb::{LocalSource, local_sources};
use prost::Message as _;

use super::*;

fn source_of(op: &DecodedOp) -> &pb::SourceOp {
    match &op.op.op {
        Some(pb::op::Op::Source(s)) => s,
        other => panic!("not a source: {other:?}"),
    }
}

fn attrs(op: &DecodedOp) -> BTreeMap<&str, &str> {
    source_of(op)
        .attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn identifier(state: &State) -> String {
    source_of(op(&ops(state), "source")).identifier.clone()
}

fn head_digest(state: &State) -> String {
    marshal(state).head().expect("a head").to_owned()
}

// ------------------------------------------------------------- local_dir

#[test]
fn local_dir_is_a_named_local_source_with_a_stable_hint() {
    let ops = ops(&State::local_dir("/p/tests/data"));
    assert_eq!(kinds(&ops), ["source", "terminal"]);
    let source = op(&ops, "source");
    assert_eq!(source_of(source).identifier, "local://dir=/p/tests/data");
    assert_eq!(
        attrs(source),
        BTreeMap::from([("local.sharedkeyhint", "buildtest")]),
        "no local.session, no local.unique: the solve's session serves it and equal sources share a digest"
    );
    assert_eq!(
        source.caps(),
        ["source.local", "source.local.sharedkeyhint"]
    );
    assert_eq!(source.op.platform, None);
    assert_eq!(source.op.inputs, []);
}

#[test]
fn local_dir_digests_are_stable_across_constructions_and_processes() {
    let a = marshal(&State::local_dir("/p/tests/data"));
    let b = marshal(&State::local_dir(PathBuf::from("/p/tests/data")));
    assert_eq!(a.to_bytes(), b.to_bytes());
    // The op's bytes, written out by hand in Go's field order: constraints (11), then the
    // source body (3) with identifier (1) and the one attr entry (2).
    let id = b"local://dir=/p/tests/data";
    let entry = [
        &[0x0a, 19][..],
        b"local.sharedkeyhint",
        &[0x12, 9],
        b"buildtest",
    ]
    .concat();
    let body = [
        &[0x0a, id.len() as u8][..],
        id,
        &[0x12, entry.len() as u8],
        &entry,
    ]
    .concat();
    let op = [&[0x5a, 0x00, 0x1a, body.len() as u8][..], &body].concat();
    let want = format!("sha256:{}", hex::encode(sha2_digest(&op)));
    assert_eq!(a.head(), Some(want.as_str()));
    // The same figure in every process: nothing random.
    assert_eq!(
        want,
        "sha256:397dbd47c44007eeef0c6930bb465f4ad7eaff60925fda032a3f3a8af86a5a6d"
    );
}

#[test]
fn local_dir_paths_are_normalized_lexically() {
    let want = head_digest(&State::local_dir("/p/tests/data"));
    for same in [
        "/p/./tests/data",
        "/p/tests//data/",
        "/p/tests/./data/.",
        "/p/tests/x/../data",
    ] {
        assert_eq!(head_digest(&State::local_dir(same)), want, "{same}");
    }
    // A relative path is made absolute against the current directory (the package root under
    // cargo), so two packages' `tests/data` are two sources.
    let cwd = std::env::current_dir().expect("a current directory");
    let cwd_name = cwd.to_str().expect("a UTF-8 current directory");
    assert_eq!(
        identifier(&State::local_dir("")),
        format!("local://dir={cwd_name}")
    );
    assert_eq!(
        identifier(&State::local_dir("./")),
        format!("local://dir={cwd_name}")
    );
    assert_eq!(
        head_digest(&State::local_dir("tests/data")),
        head_digest(&State::local_dir(cwd.join("tests/data")))
    );
    assert_eq!(
        identifier(&State::local_dir("/a/../../b/")),
        "local://dir=/b"
    );
}

#[test]
fn different_dirs_never_share_a_name_and_names_hold_no_colon() {
    let paths = [
        "/a", "/b", "/a/b", "/a b", "/a%20b", "/a:b", "/a%3Ab", "/dir=a", "/é", "/a\\b", "/a+b",
    ];
    let mut names = std::collections::BTreeSet::new();
    for path in paths {
        let id = identifier(&State::local_dir(path));
        let name = id.strip_prefix("local://").expect("local://");
        assert!(!name.contains(':'), "{name}");
        assert!(
            name.bytes().all(|b| b.is_ascii_graphic()),
            "{name} is not printable ASCII"
        );
        assert!(names.insert(name.to_owned()), "{path}: {name} repeated");
    }
    assert_eq!(
        identifier(&State::local_dir("/a b:c%é")),
        "local://dir=/a%20b%3Ac%25%C3%A9"
    );
}

#[test]
fn local_dir_with_filters() {
    let state = State::local_dir_with(
        "ctx",
        LocalOptions::new()
            .include_patterns(["bin/*", "lib"])
            .exclude_patterns(["**/*.tmp", "!keep.tmp"])
            .follow_paths(["link"]),
    );
    let ops = ops(&state);
    let source = op(&ops, "source");
    let attrs = attrs(source);
    assert_eq!(attrs["local.includepattern"], r#"["bin/*","lib"]"#);
    assert_eq!(
        attrs["local.excludepatterns"],
        r#"["**/*.tmp","!keep.tmp"]"#
    );
    assert_eq!(attrs["local.followpaths"], r#"["link"]"#);
    let hint = attrs["local.sharedkeyhint"];
    assert!(
        hint.starts_with("buildtest-") && hint.len() == "buildtest-".len() + 16,
        "{hint}"
    );
    assert_eq!(
        source.caps(),
        [
            "source.local",
            "source.local.excludepatterns",
            "source.local.followpaths",
            "source.local.includepatterns",
            "source.local.sharedkeyhint",
        ]
    );

    // The hint depends on the filters only, and is stable.
    let hint_of = |options: LocalOptions| {
        let ops = self::ops(&State::local_dir_with("other", options));
        self::attrs(op(&ops, "source"))["local.sharedkeyhint"].to_owned()
    };
    let same = hint_of(
        LocalOptions::new()
            .include_patterns(["bin/*", "lib"])
            .exclude_patterns(["**/*.tmp", "!keep.tmp"])
            .follow_paths(["link"]),
    );
    assert_eq!(same, hint);
    assert_ne!(hint_of(LocalOptions::new().include_patterns(["a"])), hint);
    assert_ne!(
        hint_of(LocalOptions::new().include_patterns(["a"])),
        hint_of(LocalOptions::new().exclude_patterns(["a"]))
    );
    assert_eq!(
        hint_of(LocalOptions::new().shared_key_hint("mine")),
        "mine",
        "a hint given is kept"
    );
}

// ----------------------------------------------------------- local_sources

#[test]
fn local_sources_map_names_back_to_paths() {
    let data = State::local_dir("/p/./tests/data/");
    let bin = State::local_dir_with("/abs/target", LocalOptions::new().include_patterns(["x"]));
    let input = alpine()
        .file(FileAction::copy(&data, "/", "/data").copy(&bin, "/x", "/usr/bin/x"))
        .file(FileAction::copy(&State::local("context"), "/", "/ctx"))
        .file(FileAction::copy(
            &State::local_dir("/p/tests/data"),
            "/",
            "/again",
        ));
    let from_state = input.local_sources().expect("local sources");
    let def = marshal(&input);
    assert_eq!(def.local_sources().expect("from definition"), from_state);
    assert_eq!(
        local_sources(&def.clone().into_proto()).expect("from pb"),
        from_state
    );

    let summary: Vec<(&str, Option<PathBuf>, &[String])> = from_state
        .iter()
        .map(|s: &LocalSource| {
            (
                s.name.as_str(),
                s.path.clone(),
                s.include_patterns.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "dir=/abs/target",
                Some(PathBuf::from("/abs/target")),
                &["x".to_owned()][..]
            ),
            (
                "dir=/p/tests/data",
                Some(PathBuf::from("/p/tests/data")),
                &[][..]
            ),
            ("context", None, &[][..]),
        ],
        "each source once, in def order (the file op walks its inputs last first, as Go does); \
         a name not made by local_dir has no path"
    );
    assert_eq!(from_state[1].shared_key_hint.as_deref(), Some("buildtest"));
    assert_eq!(from_state[1].session_id, None);
    assert!(alpine().local_sources().expect("none").is_empty());
    assert!(State::scratch().local_sources().expect("none").is_empty());
}

#[test]
fn names_that_are_not_canonical_have_no_path() {
    for name in ["dir=a%3a", "dir=a/./b", "dir=a/", "dir=%41"] {
        let sources = State::local(name).local_sources().expect("sources");
        assert_eq!(sources[0].path, None, "{name}");
    }
    let sources = State::local("dir=a%3Ab").local_sources().expect("sources");
    assert_eq!(sources[0].path, Some(PathBuf::from("a:b")));
}

#[cfg(unix)]
#[test]
fn non_utf8_paths_round_trip_on_unix() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;
    let path = PathBuf::from(OsStr::from_bytes(b"/data/\xff\xfe"));
    let state = State::local_dir(&path);
    assert_eq!(identifier(&state), "local://dir=/data/%FF%FE");
    let sources = marshal(&state).local_sources().expect("sources");
    assert_eq!(sources[0].path, Some(path));
}

// --------------------------------------------------------------- cargo_bin

#[test]
fn cargo_bin_sends_exactly_the_binary() {
    let bin = buildtest::__private::cargo_bin("greet", "/work/target/debug/greet");
    let def = marshal(&bin);
    let ops = Definition::decode(&def.to_bytes()).expect("decode");
    let source = op(&ops, "source");
    assert_eq!(
        source_of(source).identifier,
        "local://dir=/work/target/debug"
    );
    let attrs = attrs(source);
    assert_eq!(attrs["local.includepattern"], r#"["greet"]"#);
    assert!(!attrs.contains_key("local.excludepatterns"));
    assert!(attrs["local.sharedkeyhint"].starts_with("buildtest-"));
    assert_eq!(
        source
            .metadata
            .description
            .get("llb.customname")
            .map(String::as_str),
        Some("cargo binary greet")
    );
    let sources = def.local_sources().expect("sources");
    assert_eq!(sources[0].path, Some(PathBuf::from("/work/target/debug")));

    // Two binaries of one target directory: one name, different ops and hints.
    let other = buildtest::__private::cargo_bin("other", "/work/target/debug/other");
    let other_ops = self::ops(&other);
    let other_source = op(&other_ops, "source");
    assert_eq!(
        source_of(other_source).identifier,
        source_of(source).identifier
    );
    assert_ne!(other_source.digest, source.digest);
    assert_ne!(
        self::attrs(other_source)["local.sharedkeyhint"],
        attrs["local.sharedkeyhint"]
    );

    // Pattern metacharacters in a file name are escaped, so the pattern matches only that name.
    let odd = buildtest::__private::cargo_bin("a", "/t/!a*b?[c]");
    let odd_ops = self::ops(&odd);
    assert_eq!(
        self::attrs(op(&odd_ops, "source"))["local.includepattern"],
        r#"["\\!a\\*b\\?\\[c\\]"]"#
    );
}

#[test]
fn cargo_bin_without_a_file_name_is_an_error() {
    assert!(matches!(
        err(&buildtest::__private::cargo_bin("x", "/")),
        LlbError::InvalidCargoBin { name, path } if name == "x" && path == "/"
    ));
}

// --------------------------------------------------------- from_definition

fn check_on(state: &State) -> State {
    state.run(["/bin/sh", "-c", "true"]).root()
}

fn encode(def: &pb::Definition) -> Vec<u8> {
    def.encode_to_vec()
}

fn proto(state: &State) -> pb::Definition {
    marshal(state).into_proto()
}

#[test]
fn from_definition_keeps_ops_and_builds_on_the_head() {
    let original = alpine()
        .run(["/bin/sh", "-c", "echo hi > /x"])
        .root()
        .custom_name("write x");
    let bytes = marshal(&original).to_bytes();
    let input = State::from_definition(&bytes).expect("from_definition");
    assert_eq!(
        marshal(&input).to_bytes(),
        bytes,
        "marshals back byte for byte"
    );

    let head = marshal(&original).head().expect("head").to_owned();
    let on_top = check_on(&input);
    let ops = ops(&on_top);
    assert_eq!(kinds(&ops), ["source", "exec", "exec", "terminal"]);
    let check = &ops[2];
    assert_eq!(check.op.inputs.len(), 1);
    assert_eq!(check.op.inputs[0].digest, head);
    assert_eq!(check.op.inputs[0].index, 0);
    assert_eq!(
        ops[1]
            .metadata
            .description
            .get("llb.customname")
            .map(String::as_str),
        Some("write x"),
        "the definition's metadata is kept"
    );
    // Same graph built natively: same bytes.
    assert_eq!(
        marshal(&on_top).to_bytes(),
        marshal(&check_on(&original)).to_bytes()
    );

    let gated = input.requires("c", [check_on(&input)]);
    let ops = self::ops(&gated);
    let pass = op(&ops, "passthrough");
    assert_eq!(pass.op.inputs[0].digest, head);

    let copied = alpine().file(FileAction::copy(&input, "/x", "/y"));
    let ops = self::ops(&copied);
    let file = op(&ops, "file");
    assert!(file.op.inputs.iter().any(|i| i.digest == head));
}

#[test]
fn from_definition_keeps_the_heads_output_index_and_platform() {
    let arm = alpine_arm();
    let exec = arm.run(["true"]).mount("/out", State::scratch());
    let out = exec.get_mount("/out");
    let bytes = marshal(&out).to_bytes();
    let input = State::from_definition(&bytes).expect("from_definition");
    assert_eq!(marshal(&input).to_bytes(), bytes);
    let ops = ops(&check_on(&input));
    let check = &ops[ops.len() - 2];
    assert_eq!(check.op.inputs[0].index, 1, "the exec's second output");
    assert_eq!(
        check.op.platform.as_ref().map(|p| p.architecture.as_str()),
        Some("arm64"),
        "execs on top run for the definition's platform"
    );
}

#[test]
fn from_definition_finds_the_platform_along_first_inputs() {
    let out = alpine_arm().file(FileAction::mkdir("/x", 0o755));
    let bytes = marshal(&out).to_bytes();
    let input = State::from_definition(&bytes).expect("from_definition");
    let ops = ops(&check_on(&input));
    assert_eq!(kinds(&ops), ["source", "file", "exec", "terminal"]);
    assert_eq!(
        ops[1].op.platform, None,
        "the head (a file op) has no platform"
    );
    assert_eq!(
        ops[2].op.platform.as_ref().map(|p| p.architecture.as_str()),
        Some("arm64")
    );
}

fn alpine_arm() -> State {
    State::image_with(
        "alpine",
        ImageOptions::new().platform(Platform::linux_arm64()),
    )
}

#[test]
fn from_definition_metadata_merges_and_dedupes_with_native_ops() {
    let bytes = marshal(&alpine()).to_bytes();
    let input = State::from_definition(&bytes).expect("from_definition");
    let both = merge([input.custom_name("named"), alpine().run(["true"]).root()]);
    let ops = ops(&both);
    assert_eq!(
        kinds(&ops),
        ["source", "exec", "merge", "terminal"],
        "one source op"
    );
    assert_eq!(
        ops[0]
            .metadata
            .description
            .get("llb.customname")
            .map(String::as_str),
        Some("named")
    );
    assert_eq!(ops[0].caps(), ["source.image"]);
}

#[test]
fn from_definition_of_scratch_is_scratch() {
    let input = State::from_definition(&[]).expect("empty definition");
    assert!(input.is_scratch());
}

#[test]
fn from_definition_lists_its_local_sources() {
    let bytes = marshal(&State::local_dir("/p/ctx").run_on(alpine())).to_bytes();
    let input = State::from_definition(&bytes).expect("from_definition");
    let sources = input.local_sources().expect("sources");
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].path, Some(PathBuf::from("/p/ctx")));
}

trait RunOn {
    fn run_on(&self, base: State) -> State;
}

impl RunOn for State {
    fn run_on(&self, base: State) -> State {
        base.run(["ls", "/ctx"])
            .mount_readonly("/ctx", self.clone())
            .root()
    }
}

fn definition_error(bytes: &[u8]) -> String {
    match State::from_definition(bytes) {
        Ok(state) => panic!("accepted: {state:?}"),
        Err(e @ LlbError::InvalidDefinition { .. }) => e.to_string(),
        Err(other) => panic!("wrong error: {other:?}"),
    }
}

#[test]
fn from_definition_rejects_what_is_not_a_usable_definition() {
    let good = proto(&check_on(&alpine()));

    let msg = definition_error(b"\xff\xff\xff");
    assert!(
        msg.starts_with("read llb definition: the bytes are not a pb.Definition: "),
        "{msg}"
    );

    let mut no_terminal = good.clone();
    no_terminal.def.pop();
    assert_eq!(
        definition_error(&encode(&no_terminal)),
        "read llb definition: the last op is not a terminal op (no body, one input): it is a `exec` op"
    );

    let mut two_heads = good.clone();
    let terminal = pb::Op {
        inputs: vec![
            pb::Input {
                digest: marshal(&alpine()).head().expect("head").to_owned(),
                index: 0,
            };
            2
        ],
        ..Default::default()
    };
    *two_heads.def.last_mut().expect("terminal") = terminal.encode_to_vec().into();
    two_heads.metadata.clear();
    assert_eq!(
        definition_error(&encode(&two_heads)),
        "read llb definition: the terminal op has 2 inputs, not one"
    );

    let mut dangling = good.clone();
    let source = dangling.def.remove(0);
    let source_digest = format!("sha256:{}", hex::encode(sha2_digest(&source)));
    dangling.metadata.remove(&source_digest);
    let msg = definition_error(&encode(&dangling));
    assert!(
        msg.contains(&format!(
            "has input {source_digest}, which is not an op of the definition"
        )),
        "{msg}"
    );

    // An op re-encoded by prost (tag order) no longer hashes to the digest its
    // metadata and its dependants name.
    let mut reencoded = good.clone();
    let op = pb::Op::decode(reencoded.def[1].as_ref()).expect("op");
    reencoded.def[1] = op.encode_to_vec().into();
    let msg = definition_error(&encode(&reencoded));
    assert!(
        msg.contains("which is not in the definition (were ops re-encoded after marshalling?"),
        "{msg}"
    );

    let mut bodiless = good.clone();
    bodiless
        .def
        .insert(0, pb::Op::default().encode_to_vec().into());
    let msg = definition_error(&encode(&bodiless));
    assert!(
        msg.contains("op 0 (") && msg.contains("has no body"),
        "{msg}"
    );

    let mut not_an_op = good;
    not_an_op.def.insert(0, vec![0xff, 0xff].into());
    let msg = definition_error(&encode(&not_an_op));
    assert!(
        msg.contains("op 0 (") && msg.contains("is not a pb.Op"),
        "{msg}"
    );
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).to_vec()
}
