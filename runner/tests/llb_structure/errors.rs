//! Invalid graphs and their typed errors.

use super::*;

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
        State::from_definition(b"\xff")
            .expect_err("not a definition")
            .to_string(),
        err(&buildtest::__private::cargo_bin("x", "/")).to_string(),
        LlbError::NonUtf8LocalPath { path: "p".into() }.to_string(),
        LlbError::InvalidLocalAttr {
            name: "n".into(),
            key: "local.includepattern".into(),
        }
        .to_string(),
    ];
    for message in messages {
        let first = message.chars().next().expect("non-empty");
        assert!(first.is_lowercase(), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
}
