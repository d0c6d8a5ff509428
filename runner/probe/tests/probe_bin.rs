//! End to end: the built `buildtest-probe` binary run on the host against temp files and real
//! commands, asserting exit codes, echoed output and the report block.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn probe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buildtest-probe"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The report lines (without the marker) of `o`'s stderr.
fn report(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter_map(|l| l.strip_prefix("##buildtest-probe "))
        .map(str::to_owned)
        .collect()
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    uid_line.split_whitespace().nth(1) == Some("0")
}

#[test]
fn argv_is_passed_verbatim_without_a_shell() {
    let o = probe(&[
        "v1",
        "cmd",
        "--stdout-equals",
        "a;b\n$(id)\n\"q\" 'r'\n`x`\n",
        "--",
        "printf",
        "%s\\n",
        "a;b",
        "$(id)",
        "\"q\" 'r'",
        "`x`",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, b"a;b\n$(id)\n\"q\" 'r'\n`x`\n");
    assert_eq!(report(&o).last().unwrap(), "end pass 0/2");
}

#[test]
fn stdin_env_cwd_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = probe(&[
        "v1",
        "cmd",
        "--stdin",
        "line1\nline2",
        "--stdout-equals",
        "line1\nline2",
        "--",
        "cat",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = probe(&[
        "v1",
        "cmd",
        "--env",
        "FOO=bar=baz",
        "--stdout-contains",
        "\nFOO=bar=baz\n",
        "--",
        "env",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = probe(&[
        "v1",
        "cmd",
        "--cwd",
        d,
        "--stdout-equals",
        &format!("{d}\n"),
        "--",
        "pwd",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Without --stdin the command reads /dev/null.
    let o = probe(&["v1", "cmd", "--stdout-empty", "--", "cat"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A PATH given with --env is the one searched.
    let o = probe(&["v1", "cmd", "--env", "PATH=/nonexistent", "--", "env"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("\"env\" not found in PATH (/nonexistent)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn user_by_name_and_number() {
    let o = probe(&[
        "v1",
        "cmd",
        "--user",
        "nobody",
        "--stdout-equals",
        "65534:65534 /nonexistent\n",
        "--",
        "sh",
        "-c",
        "echo $(id -u):$(id -g) $HOME",
    ]);
    let o2 = probe(&[
        "v1",
        "cmd",
        "--user",
        "1:nogroup",
        "--stdout-equals",
        "1:65534\n",
        "--",
        "sh",
        "-c",
        "echo $(id -u):$(id -g)",
    ]);
    if is_root() {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(o2.status.code(), Some(0), "{}", stderr(&o2));
    } else {
        // Unprivileged: setuid fails, and the probe says the command could not start.
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert_eq!(o2.status.code(), Some(3), "{}", stderr(&o2));
    }
    let o = probe(&["v1", "cmd", "--user", "no-such-user-xyz", "--", "true"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(report(&o).contains(&"error command could not be started: user \"no-such-user-xyz\" not found in /etc/passwd".to_owned()), "{}", stderr(&o));
}

#[test]
fn failures_exit_1_and_list_every_failed_assertion() {
    let o = probe(&[
        "v1",
        "cmd",
        "--exit-code",
        "2",
        "--stdout-matches",
        r"^v\d+$",
        "--stderr-ends-with",
        "x",
        "--stdout-equals",
        "x",
        "--",
        "sh",
        "-c",
        "printf 'v12\\377'; kill -9 $$",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(
        r[0],
        "begin v1 cmd \"sh\" \"-c\" \"printf 'v12\\\\377'; kill -9 $$\""
    );
    for want in [
        "fail exit_code",
        "actual killed by signal 9",
        "fail stdout.matches",
        "expected regex \"^v\\\\d+$\"",
        "actual \"v12\\xff\"",
        "note not valid UTF-8: matched against a lossy conversion",
        "fail stderr.ends_with",
        "fail stdout.equals",
        "note first difference at byte 0 (expected 1 bytes, got 4)",
        "end fail 4/4",
    ] {
        assert!(r.iter().any(|l| l == want), "{want:?} not in {r:#?}");
    }
    let summary = r.iter().find(|l| l.starts_with("summary ")).unwrap();
    assert!(summary.starts_with("summary 4 of 4 assertions failed: exit_code: expected 2, got killed by signal 9; stdout.matches:"), "{summary}");
}

#[test]
fn commands_that_cannot_start_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = probe(&["v1", "cmd", "--", script.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains(
            "exists but could not be executed: its interpreter or dynamic loader is missing"
        ),
        "{}",
        stderr(&o)
    );

    let plain = dir.path().join("plain");
    std::fs::write(&plain, "data").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = probe(&["v1", "cmd", "--", plain.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("is not executable"), "{}", stderr(&o));

    let o = probe(&[
        "v1",
        "cmd",
        "--",
        dir.path().join("missing").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
}

#[test]
fn file_checks_on_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "key = value\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("f", &link).unwrap();
    let (f, link) = (f.to_str().unwrap(), link.to_str().unwrap());

    let o = probe(&[
        "v1",
        "file",
        link,
        "--exists",
        "--link-target",
        "f",
        "--mode",
        "640",
        "--matches",
        r"(?m)^key\s*=",
        "--starts-with",
        "key",
        "--ends-with",
        "value\n",
        "--contains",
        "= v",
        "--equals",
        "key = value\n",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(report(&o).last().unwrap(), "end pass 0/8");

    let o = probe(&[
        "v1",
        "file",
        f,
        "--is-dir",
        "--mode",
        "0644",
        "--empty",
        "--absent",
        "--link-target",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let r = report(&o);
    for want in [
        "actual regular file",
        "expected 0644",
        "actual 0640",
        "actual \"key = value\\n\"",
        "actual exists (regular file)",
        "actual not a symlink (regular file)",
        "end fail 5/5",
    ] {
        assert!(r.iter().any(|l| l == want), "{want:?} not in {r:#?}");
    }
    let o = probe(&["v1", "file", "/nonexistent/x", "--absent"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn malformed_specs_exit_2() {
    for args in [
        &["v9", "file", "/"][..],
        &["v1", "file", "/", "--mode", "x"],
        &["v1", "cmd", "--stdout-matches", "(", "--", "true"],
    ] {
        let o = probe(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            report(&o)
                .iter()
                .any(|l| l.starts_with("error malformed check spec: ")),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn a_command_gets_a_default_path_when_the_exec_has_none() {
    let o = Command::new(env!("CARGO_BIN_EXE_buildtest-probe"))
        .env_clear()
        .args([
            "v1",
            "cmd",
            "--stdout-equals",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
            "--",
            "printenv",
            "PATH",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn relative_programs_resolve_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let broken = dir.path().join("broken.sh");
    std::fs::write(&broken, "#!/nonexistent/sh\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().to_str().unwrap();
    let o = probe(&[
        "v1",
        "cmd",
        "--cwd",
        d,
        "--stdout-equals",
        "ran\n",
        "--",
        "./run.sh",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = probe(&["v1", "cmd", "--cwd", d, "--", "./broken.sh"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("./broken.sh exists but could not be executed"),
        "{}",
        stderr(&o)
    );
}
