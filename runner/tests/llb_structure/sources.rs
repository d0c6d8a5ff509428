//! Image and local sources and reference normalization.

use super::*;

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
