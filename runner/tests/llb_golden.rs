//! The LLB layer against BuildKit's Go client, byte for byte.
//!
//! Each graph of `shared/golden-llb/README.md` is built with the public API.
//! The sha256 of the marshalled bytes must equal the figure from that README
//! (embedded here, so a fresh clone without `shared/` still checks them); when
//! `../shared/golden-llb/` is present next to the repository, the bytes and the
//! op digests are also compared with the vectors, with a readable report of
//! the first difference.
//!
//! `State::from_definition` is checked on every vector: the Go bytes (our
//! marshalling of the graph, proven identical by the sha256, and the `.pb`
//! files themselves when present) come back byte for byte, and ops built on
//! top point at the vector's head op.

use std::fmt::Write as _;
use std::path::PathBuf;

use buildtest::llb::{Definition, Platform, State, diff, merge};
use sha2::{Digest, Sha256};

/// sha256 of each vector's `NAME.pb`, from `shared/golden-llb/README.md`.
const GOLDEN: [(&str, &str, usize); 6] = [
    (
        "image_only",
        "341d777f2a9683bdc2eab4003d336ddb1feb6fa96872c411bd5b4548a67dcbfa",
        427,
    ),
    (
        "exec_check",
        "375fdcd5c405e2e3b8ab5aaf76400f61a1780eaa6d6a4a5a02a64e2dc13bb0b2",
        771,
    ),
    (
        "requires_one",
        "611a5f2e0fcc731be302a60d937d1f77f007680f4ff42f364c074eb9e146c6a2",
        1113,
    ),
    (
        "requires_two",
        "e66bd4e8d73cc852d303380c86a0e0e4ce0b271c72759f7346776c5c5a2aa7f3",
        1521,
    ),
    (
        "legacy_discard",
        "db6509d0e6129e005e9084e707d7d0cf69594228e0289dd866abd5f16c5046ef",
        1182,
    ),
    (
        "legacy_mergediff",
        "011d7691756d2e1dd7aa9354c2b0a268efe1173ef77c8a31bfe34cb1da122e3e",
        1430,
    ),
];

fn image() -> State {
    State::image("docker.io/library/alpine:3.20")
}

fn check(script: &str) -> State {
    image().run(["/bin/sh", "-c", script]).root()
}

fn exec_check() -> State {
    check("test -f /etc/os-release")
}

/// The graphs of the README's table, in our API.
fn graph(name: &str) -> State {
    match name {
        "image_only" => image(),
        "exec_check" => exec_check(),
        "requires_one" => image().requires("check-0", [exec_check()]),
        "requires_two" => image().requires(
            "suite",
            [check("test -f /etc/os-release"), check("test -x /bin/sh")],
        ),
        "legacy_discard" => image()
            .run(["true"])
            .mount_readonly("/check", exec_check())
            .root(),
        "legacy_mergediff" => merge([image(), diff(&exec_check(), &exec_check())]),
        other => panic!("no graph named {other}"),
    }
}

fn marshal(state: &State) -> Definition {
    state
        .marshal(&Platform::linux_amd64())
        .expect("golden graphs marshal")
}

fn golden_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden-llb");
    dir.is_dir().then_some(dir)
}

fn hex_window(bytes: &[u8], at: usize) -> String {
    let start = at.saturating_sub(16);
    let end = (at + 16).min(bytes.len());
    let mut out = format!("@{start}:");
    for (i, b) in bytes[start..end].iter().enumerate() {
        if start + i == at {
            let _ = write!(out, " [{b:02x}]");
        } else {
            let _ = write!(out, " {b:02x}");
        }
    }
    if at >= bytes.len() {
        out.push_str(" [end]");
    }
    out
}

/// `None` when equal, else a report of the first differing byte.
fn first_difference(ours: &[u8], want: &[u8]) -> Option<String> {
    if ours == want {
        return None;
    }
    let at = ours
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(want.len()));
    Some(format!(
        "bytes differ at offset {at} (ours {} bytes, Go {} bytes)\n  ours: {}\n  Go:   {}",
        ours.len(),
        want.len(),
        hex_window(ours, at),
        hex_window(want, at)
    ))
}

#[test]
fn golden_vectors_hash_to_the_readme_figures() {
    let mut failures = Vec::new();
    for (name, want_sha, want_len) in GOLDEN {
        let bytes = marshal(&graph(name)).to_bytes();
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha != want_sha || bytes.len() != want_len {
            failures.push(format!(
                "{name}: sha256 {sha} ({} bytes), want {want_sha} ({want_len} bytes)",
                bytes.len()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn golden_vectors_match_the_go_bytes_and_digests() {
    let Some(dir) = golden_dir() else {
        eprintln!(
            "../shared/golden-llb not present: byte diff skipped (the sha256 test still checks every vector)"
        );
        return;
    };
    let mut failures = Vec::new();
    for (name, _, _) in GOLDEN {
        let def = marshal(&graph(name));
        let want = std::fs::read(dir.join(format!("{name}.pb"))).expect("read golden .pb");
        if let Some(report) = first_difference(&def.to_bytes(), &want) {
            failures.push(format!("{name}: {report}"));
        }
        let digests = std::fs::read_to_string(dir.join(format!("{name}.digests")))
            .expect("read golden .digests");
        let want_digests: Vec<&str> = digests.lines().filter(|l| !l.is_empty()).collect();
        if def.digests() != want_digests {
            failures.push(format!(
                "{name}: digests {:#?}\nwant {want_digests:#?}",
                def.digests()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn digests_are_the_sha256_of_each_op() {
    for (name, _, _) in GOLDEN {
        let def = marshal(&graph(name));
        for (digest, bytes) in def.digests().into_iter().zip(def.op_bytes()) {
            assert_eq!(
                digest,
                format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
                "{name}"
            );
        }
        let decoded = Definition::decode(&def.to_bytes()).expect("decode");
        let decoded: Vec<&str> = decoded.iter().map(|op| op.digest.as_str()).collect();
        assert_eq!(decoded, def.digests(), "{name}");
    }
}

#[test]
fn familiar_image_names_marshal_like_the_full_reference() {
    let platform = Platform::linux_amd64();
    let short = State::image("alpine:3.20")
        .marshal(&platform)
        .expect("short");
    let full = State::image("docker.io/library/alpine:3.20")
        .marshal(&platform)
        .expect("full");
    assert_eq!(short.to_bytes(), full.to_bytes());
    assert_eq!(hex::encode(Sha256::digest(short.to_bytes())), GOLDEN[0].1);
    let check = |image: &str| {
        State::image(image)
            .requires(
                "check-0",
                [State::image(image)
                    .run(["/bin/sh", "-c", "test -f /etc/os-release"])
                    .root()],
            )
            .marshal(&platform)
            .expect("marshal")
            .to_bytes()
    };
    assert_eq!(
        hex::encode(Sha256::digest(check("alpine:3.20"))),
        GOLDEN[2].1
    );
}

#[test]
fn marshalling_is_deterministic_and_pure() {
    for (name, _, _) in GOLDEN {
        let state = graph(name);
        let first = marshal(&state).to_bytes();
        let again = marshal(&state).to_bytes();
        let rebuilt = marshal(&graph(name)).to_bytes();
        assert_eq!(first, again, "{name}: same state, two marshals");
        assert_eq!(first, rebuilt, "{name}: rebuilt graph");
    }
}

#[test]
fn first_difference_reports_offset_and_context() {
    assert_eq!(first_difference(b"abc", b"abc"), None);
    let report = first_difference(b"\x01\x02\x03", b"\x01\x09\x03").expect("differs");
    assert!(report.contains("offset 1"), "{report}");
    assert!(
        report.contains("[02]") && report.contains("[09]"),
        "{report}"
    );
    let report = first_difference(b"\x01", b"\x01\x02").expect("differs");
    assert!(
        report.contains("offset 1") && report.contains("[end]"),
        "{report}"
    );
}

/// `bytes` (a Go-made vector) through `State::from_definition`: marshalled again it is the same
/// bytes; a check built on top keeps every original op, in order, and points at the head.
fn round_trip_report(name: &str, bytes: &[u8]) -> Vec<String> {
    let mut failures = Vec::new();
    let platform = Platform::linux_amd64();
    let state = match State::from_definition(bytes) {
        Ok(state) => state,
        Err(e) => return vec![format!("{name}: from_definition: {e}")],
    };
    let again = match state.marshal(&platform) {
        Ok(def) => def,
        Err(e) => return vec![format!("{name}: marshal: {e}")],
    };
    if let Some(report) = first_difference(&again.to_bytes(), bytes) {
        failures.push(format!("{name}: round trip: {report}"));
    }
    let original = Definition::decode(bytes).expect("decode vector");
    let head = original[original.len() - 2].digest.clone();
    let on_top = state
        .run(["/bin/sh", "-c", "test -e /"])
        .root()
        .marshal(&platform)
        .expect("marshal on top");
    let ops = Definition::decode(&on_top.to_bytes()).expect("decode on top");
    let kept: Vec<&[u8]> = on_top.op_bytes().take(original.len() - 1).collect();
    let vector =
        <buildtest::proto::pb::Definition as prost::Message>::decode(bytes).expect("decode vector");
    let want: Vec<&[u8]> = vector
        .def
        .iter()
        .take(original.len() - 1)
        .map(|b| b.as_ref())
        .collect();
    if kept != want {
        failures.push(format!(
            "{name}: ops built on top changed or reordered the vector's ops"
        ));
    }
    let check = &ops[ops.len() - 2];
    if check.kind() != "exec" || check.op.inputs.len() != 1 || check.op.inputs[0].digest != head {
        failures.push(format!(
            "{name}: the check's inputs are {:?}, want the head {head}",
            check.op.inputs
        ));
    }
    failures
}

#[test]
fn every_vector_round_trips_through_from_definition() {
    let mut failures = Vec::new();
    for (name, want_sha, _) in GOLDEN {
        let bytes = marshal(&graph(name)).to_bytes();
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            want_sha,
            "{name}: not the Go bytes"
        );
        failures.extend(round_trip_report(name, &bytes));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_definition_reencoded_by_another_encoder_reads_back_to_the_go_bytes() {
    // prost writes Definition metadata in its own way and drops `source`; the op bytes (so the
    // digests) are untouched, and marshalling writes the metadata as Go does again.
    for (name, _, _) in GOLDEN {
        let go = marshal(&graph(name)).to_bytes();
        let reencoded = <buildtest::proto::pb::Definition as prost::Message>::decode(go.as_slice())
            .map(|def| prost::Message::encode_to_vec(&def))
            .expect("decode");
        assert_ne!(reencoded, go, "{name}: prost should encode differently");
        let state = State::from_definition(&reencoded).expect("from_definition");
        assert_eq!(marshal(&state).to_bytes(), go, "{name}");
    }
}

#[test]
fn every_go_file_round_trips_through_from_definition() {
    let Some(dir) = golden_dir() else {
        eprintln!(
            "../shared/golden-llb not present: file round trip skipped (the embedded-sha256 round trip still checks every vector)"
        );
        return;
    };
    let mut failures = Vec::new();
    for (name, _, _) in GOLDEN {
        let bytes = std::fs::read(dir.join(format!("{name}.pb"))).expect("read golden .pb");
        failures.extend(round_trip_report(name, &bytes));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
