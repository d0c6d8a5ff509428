//! File ops, merge and diff.

use super::*;

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
