//! The runner's check encoding and report parser against the probe that is really embedded
//! (the static release-probe build from the build script), run on the host on temp files and
//! real commands; and the LLB a check becomes (structure and Definition size).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use buildtest::check::{
    Check, CheckReport, PROBE_FILE, PROBE_MOUNT, PROBE_PATH, ProbeExit, Verdict, cmd, file,
    probe_bytes, probe_state,
};
use buildtest::llb::{DecodedOp, Definition, Platform, State};
use buildtest::proto::pb;

/// The embedded probe, written once to a temp file.
fn probe_path() -> &'static Path {
    static PATH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = PATH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buildtest-probe");
        std::fs::write(&path, probe_bytes().unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, path)
    });
    path
}

struct Ran {
    exit: ProbeExit,
    stdout: Vec<u8>,
    report: CheckReport,
    stderr: String,
}

fn run(check: impl Into<Check>) -> Ran {
    let check = check.into();
    let out = Command::new(probe_path())
        .args(check.probe_args().unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report =
        CheckReport::parse(&out.stderr).unwrap_or_else(|| panic!("no report in:\n{stderr}"));
    Ran {
        exit: ProbeExit::from_code(out.status.code().unwrap()),
        stdout: out.stdout,
        report,
        stderr,
    }
}

#[test]
fn the_embedded_probe_is_a_static_x86_64_executable() {
    let bytes = probe_bytes().unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    assert_eq!(bytes[4], 2, "64-bit");
    assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), 62, "EM_X86_64");
    // No PT_INTERP program header: no dynamic loader needed (static or static-pie).
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (
        u16::from_le_bytes([bytes[54], bytes[55]]) as usize,
        u16::from_le_bytes([bytes[56], bytes[57]]) as usize,
    );
    for i in 0..phnum {
        let p_type = u32::from_le_bytes(bytes[phoff + i * phentsize..][..4].try_into().unwrap());
        assert_ne!(
            p_type, 3,
            "the probe has a PT_INTERP header: it is dynamically linked"
        );
    }
    assert!(
        bytes.len() < 2_000_000,
        "the probe grew to {} bytes",
        bytes.len()
    );
    eprintln!("embedded probe: {} bytes", bytes.len());
}

#[test]
fn passing_cmd_checks_with_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let r = run(cmd([
        "sh",
        "-c",
        "pwd; echo \"$GREETING\"; cat; echo err >&2; exit 7",
    ])
    .env("GREETING", "hi; $(there)")
    .cwd(d)
    .stdin("from stdin\n")
    .exit_code(7)
    .stdout_equals(format!("{d}\nhi; $(there)\nfrom stdin\n"))
    .stdout_contains("hi; $(there)")
    .stdout_matches(r"(?m)^from \w+$")
    .stdout_starts_with(d)
    .stdout_ends_with("stdin\n")
    .stderr_equals("err\n")
    .stderr_contains("rr")
    .stderr_matches("^err")
    .stderr_starts_with("e")
    .stderr_ends_with("r\n"));
    assert_eq!(r.exit, ProbeExit::Pass, "{}", r.stderr);
    assert_eq!(r.report.verdict, Verdict::Pass);
    assert_eq!((r.report.failed, r.report.total), (0, 11));
    assert_eq!(r.report.summary, "all 11 assertions held");
    // The command's output is echoed for BuildKit's logs; the report is not part of it.
    assert_eq!(
        r.stdout,
        format!("{d}\nhi; $(there)\nfrom stdin\n").as_bytes()
    );
    assert_eq!(CheckReport::strip(r.stderr.as_bytes()), b"err\n");
}

#[test]
fn argv_reaches_the_command_verbatim() {
    let args = [
        "printf",
        "%s|",
        "a;b",
        "$(id)",
        "\"q\" 'r'",
        "`x`",
        "",
        "--",
        "-x",
    ];
    let r = run(cmd(args).stdout_equals("a;b|$(id)|\"q\" 'r'|`x`||--|-x|"));
    assert_eq!(r.exit, ProbeExit::Pass, "{}", r.stderr);
    assert_eq!(
        r.report.subject,
        r#"cmd "printf" "%s|" "a;b" "$(id)" "\"q\" 'r'" "`x`" "" "--" "-x""#
    );
}

#[test]
fn failing_cmd_checks_report_every_failed_assertion() {
    let r = run(cmd(["sh", "-c", "echo out; echo oops >&2; exit 1"])
        .stdout_equals("in\n")
        .stdout_empty()
        .stderr_empty()
        .stdout_contains("out"));
    assert_eq!(r.exit, ProbeExit::Fail);
    assert_eq!(r.report.verdict, Verdict::Fail);
    assert_eq!((r.report.failed, r.report.total), (4, 5));
    let failed: Vec<(&str, &str, &str)> = r
        .report
        .failures()
        .map(|a| {
            (
                a.name.as_str(),
                a.expected.as_str(),
                a.actual.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        [
            ("exit_code", "0", "1"),
            ("stdout.equals", "\"in\\n\"", "\"out\\n\""),
            ("stdout.empty", "empty", "\"out\\n\""),
            ("stderr.empty", "empty", "\"oops\\n\""),
        ]
    );
    assert!(
        r.report
            .summary
            .starts_with("4 of 5 assertions failed: exit_code: expected 0, got 1; "),
        "{}",
        r.report.summary
    );
    assert!(!r.report.summary.contains('\n'));
    assert!(r.report.details().contains("stdout.equals: expected \"in\\n\"\n    actual: \"out\\n\"\n    note: first difference at byte 0"));
}

#[test]
fn commands_that_cannot_start_are_errors_not_failures() {
    let r = run(cmd(["no-such-program-xyz", "--version"]));
    assert_eq!(r.exit, ProbeExit::NotStarted);
    assert_eq!(r.report.verdict, Verdict::Error);
    let error = r.report.error.as_deref().unwrap();
    assert!(
        error.starts_with(
            "command could not be started: \"no-such-program-xyz\" not found in PATH ("
        ),
        "{error}"
    );
    let r = run(cmd(["true"]).user("no-such-user-xyz"));
    assert_eq!(r.exit, ProbeExit::NotStarted);
    assert!(
        r.report
            .details()
            .contains("user \"no-such-user-xyz\" not found in /etc/passwd")
    );
}

#[test]
fn file_checks_pass_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("app.conf");
    std::fs::write(&conf, "port = 8080\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("current");
    std::os::unix::fs::symlink("app.conf", &link).unwrap();
    let meta = std::fs::metadata(&conf).unwrap();
    let (uid, gid) = (
        std::os::unix::fs::MetadataExt::uid(&meta),
        std::os::unix::fs::MetadataExt::gid(&meta),
    );
    let (conf, link, d) = (
        conf.to_str().unwrap(),
        link.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    );

    let r = run(file(link)
        .exists()
        .link_target("app.conf")
        .mode(0o640)
        .owner(uid, gid)
        .equals("port = 8080\n")
        .contains("8080")
        .matches(r"^port\s*=\s*\d+")
        .starts_with("port")
        .ends_with("0\n"));
    assert_eq!(r.exit, ProbeExit::Pass, "{}", r.stderr);
    assert_eq!(r.report.subject, format!("file \"{link}\""));
    assert!(r.stdout.is_empty());
    assert_eq!(run(file(d).is_dir()).exit, ProbeExit::Pass);
    assert_eq!(
        run(file(format!("{d}/missing")).absent()).exit,
        ProbeExit::Pass
    );
    assert_eq!(
        run(file(conf)).exit,
        ProbeExit::Pass,
        "no assertion means exists"
    );

    let r = run(file(conf)
        .absent()
        .is_dir()
        .mode(0o755)
        .owner(uid + 1, gid)
        .link_target("x")
        .empty());
    assert_eq!(r.exit, ProbeExit::Fail);
    let actual: Vec<&str> = r
        .report
        .failures()
        .map(|a| a.actual.as_deref().unwrap())
        .collect();
    let owner = format!("{uid}:{gid}");
    assert_eq!(
        actual,
        [
            "exists (regular file)",
            "regular file",
            "0640",
            owner.as_str(),
            "not a symlink (regular file)",
            "\"port = 8080\\n\""
        ]
    );
    let r = run(file(format!("{d}/missing")));
    assert_eq!(
        (
            r.exit,
            r.report.failures().next().unwrap().actual.as_deref()
        ),
        (ProbeExit::Fail, Some("does not exist"))
    );
}

// ------------------------------------------------------------------ LLB

fn exec_of(op: &DecodedOp) -> &pb::ExecOp {
    match &op.op.op {
        Some(pb::op::Op::Exec(exec)) => exec,
        other => panic!("not an exec: {other:?}"),
    }
}

#[test]
fn a_check_is_a_probe_exec_on_a_writable_copy_of_the_input() {
    let input = State::image("docker.io/buildtest/busybox:latest");
    let check = Check::from(cmd(["sh", "-c", "echo hi"]).stdout_equals("hi\n"));
    let exec = check.to_exec(&input, &probe_state()).unwrap();
    let def = input
        .requires("suite::t/1", [exec])
        .marshal(&Platform::linux_amd64())
        .unwrap();
    let ops = Definition::decode(&def.to_bytes()).unwrap();
    let kinds: Vec<&str> = ops.iter().map(DecodedOp::kind).collect();
    assert_eq!(kinds, ["source", "file", "exec", "passthrough", "terminal"]);

    let file_op = match &ops[1].op.op {
        Some(pb::op::Op::File(f)) => f,
        other => panic!("{other:?}"),
    };
    assert!(
        ops[1].op.inputs.is_empty(),
        "the probe file is made on scratch"
    );
    match &file_op.actions[0].action {
        Some(pb::file_action::Action::Mkfile(mk)) => {
            assert_eq!((mk.path.as_str(), mk.mode), (PROBE_FILE, 0o755));
            assert_eq!(mk.data, probe_bytes().unwrap());
        }
        other => panic!("{other:?}"),
    }

    let exec = exec_of(&ops[2]);
    let meta = exec.meta.as_ref().unwrap();
    let mut want = vec![PROBE_PATH.to_owned()];
    want.extend(check.probe_args().unwrap());
    assert_eq!(meta.args, want);
    assert_eq!(exec.network, pb::NetMode::None as i32);
    let mounts: Vec<(&str, bool, i64)> = exec
        .mounts
        .iter()
        .map(|m| (m.dest.as_str(), m.readonly, m.output))
        .collect();
    assert_eq!(mounts, [("/", false, 0), (PROBE_MOUNT, true, -1)]);
    assert_eq!(
        ops[2]
            .metadata
            .description
            .get("llb.customname")
            .map(String::as_str),
        Some("cmd: sh -c 'echo hi'")
    );
    // The writable root is the input image; the probe mount is the file op.
    let inputs: Vec<&str> = ops[2].op.inputs.iter().map(|i| i.digest.as_str()).collect();
    assert_eq!(inputs, [ops[0].digest.as_str(), ops[1].digest.as_str()]);

    // What one check costs on the wire: the probe rides inline in every Solve.
    let size = def.to_bytes().len();
    let probe = probe_bytes().unwrap().len();
    eprintln!(
        "definition of one check: {size} bytes (probe {probe} bytes, overhead {} bytes)",
        size - probe
    );
    assert!(
        size > probe && size < probe + 4096,
        "{size} vs probe {probe}"
    );
}

#[test]
fn checks_differ_only_in_their_exec() {
    let input = State::image("alpine:3.20");
    let probe = probe_state();
    let a = Check::from(file("/etc/os-release"))
        .to_exec(&input, &probe)
        .unwrap();
    let b = Check::from(file("/etc/passwd"))
        .to_exec(&input, &probe)
        .unwrap();
    let da = a.marshal(&Platform::linux_amd64()).unwrap();
    let db = b.marshal(&Platform::linux_amd64()).unwrap();
    let (ga, gb) = (da.digests(), db.digests());
    assert_eq!(ga[..2], gb[..2], "image and probe ops are shared");
    assert_ne!(ga[2], gb[2], "the spec is part of the exec's cache key");
}
