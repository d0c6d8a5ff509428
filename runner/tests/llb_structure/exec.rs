//! Exec ops: meta, network, mounts.

use super::*;

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

#[test]
fn a_read_only_root_with_unmounted_inputs_and_a_read_only_output() {
    let mark = State::scratch().file(FileAction::mkfile("/m", 0o644, "x"));
    let first = alpine().run(["/bin/true"]).root();
    let second = State::image("busybox").run(["/bin/true"]).root();
    let exec = mark
        .run(["/p/probe"])
        .readonly_root()
        .mount_readonly("/p", alpine())
        .depend_on(&first)
        .depend_on(&second)
        .depend_on(&first)
        .mount_readonly_output("/out", mark.clone());
    let out = exec.get_mount("/out");
    assert_ne!(
        marshal(&out).to_bytes(),
        marshal(&mark).to_bytes(),
        "the kept read-only mount is the exec's output, not the mounted state"
    );
    let ops = ops(&out);
    let execs: Vec<_> = ops.iter().filter(|o| o.kind() == "exec").collect();
    let verdict = execs
        .iter()
        .find(|o| {
            exec_of(o)
                .meta
                .as_ref()
                .is_some_and(|m| m.args == ["/p/probe"])
        })
        .expect("the verdict exec");
    let e = exec_of(verdict);
    let summary: Vec<(&str, i64, i64, bool)> = e
        .mounts
        .iter()
        .map(|m| (m.dest.as_str(), m.input, m.output, m.readonly))
        .collect();
    assert_eq!(
        summary,
        [
            ("/", 0, -1, true),
            ("/out", 0, 0, true),
            ("/p", 1, -1, true)
        ],
        "root read-only without output; /out read-only and output 0"
    );
    assert_eq!(
        verdict.op.inputs.len(),
        4,
        "mark, alpine, and the two dependencies once each (unmounted inputs come last)"
    );
    assert!(
        exec.root().marshal(&Platform::linux_amd64()).is_err(),
        "a read-only root has no output"
    );
}

#[test]
fn a_secret_mount_and_a_discarded_writable_mount() {
    let exec = alpine()
        .run(["/bin/true"])
        .secret("/run/s", "token")
        .mount_discarded("/scratchpad", State::image("busybox"));
    let ops = ops(&exec.root());
    let exec_op = op(&ops, "exec");
    let e = exec_of(exec_op);
    let summary: Vec<(&str, i64, i64, bool, i32)> = e
        .mounts
        .iter()
        .map(|m| (m.dest.as_str(), m.input, m.output, m.readonly, m.mount_type))
        .collect();
    assert_eq!(
        summary,
        [
            ("/", 0, 0, false, pb::MountType::Bind as i32),
            ("/run/s", -1, -1, false, pb::MountType::Secret as i32),
            ("/scratchpad", 1, -1, false, pb::MountType::Bind as i32),
        ],
        "the secret has no input nor output; the discarded mount is writable with no output"
    );
    assert_eq!(
        e.mounts[1]
            .secret_opt
            .as_ref()
            .map(|s| (s.id.as_str(), s.mode, s.optional)),
        Some(("token", 0o400, false))
    );
    assert!(exec_op.caps().contains(&"exec.mount.secret"));
    assert!(
        exec.get_mount("/scratchpad")
            .marshal(&Platform::linux_amd64())
            .is_err()
    );
    assert!(
        exec.get_mount("/run/s")
            .marshal(&Platform::linux_amd64())
            .is_err()
    );
}

#[test]
fn a_read_only_output_of_scratch_has_nothing_to_give() {
    let exec = alpine()
        .run(["/bin/true"])
        .mount_readonly_output("/out", State::scratch());
    assert!(
        exec.get_mount("/out")
            .marshal(&Platform::linux_amd64())
            .is_err(),
        "BuildKit would hand back nothing: refused rather than silently scratch"
    );
}
