//! `buildtest-probe`: the static check probe that cargo buildtest runs inside the image under test.
//!
//! It is mounted read-only into each check's exec (BuildKit runs it directly: the image needs no
//! shell and no libc), receives the whole check in its arguments (so the exec's cache key is the
//! check), evaluates every assertion in Rust, and reports on stderr. The runner side
//! (`buildtest::check`) writes these arguments and parses the report; both follow this page.
//!
//! # Spec (version `v1`)
//!
//! ```text
//! buildtest-probe v1 cmd [OPTION...] -- PROGRAM [ARG...]
//! buildtest-probe v1 file PATH [ASSERTION...]
//! ```
//!
//! Each value is exactly one argument, verbatim (it may be empty or start with `-`). Assertions
//! are evaluated in the order given and may repeat.
//!
//! Command options: `--env KEY=VALUE` (added to the inherited environment), `--cwd DIR`,
//! `--user USER[:GROUP]` (numeric ids or names from the image's `/etc/passwd` and `/etc/group`;
//! see [`user`]), `--stdin TEXT` (else stdin is `/dev/null`), `--exit-code N` (default 0), and
//! for `S` in `stdout`/`stderr`: `--S-equals TEXT`, `--S-contains TEXT`, `--S-matches REGEX`,
//! `--S-starts-with TEXT`, `--S-ends-with TEXT`, `--S-empty`. `PROGRAM` is run directly (never by
//! a shell); without a `/` it is searched in `PATH` (the command's, if `--env PATH=` is given).
//!
//! File assertions: `--exists`, `--absent`, `--is-dir`, `--mode OCTAL` (permission bits incl.
//! setuid/setgid/sticky, `mode & 0o7777`), `--owner UID:GID`, `--link-target TARGET`, and on the
//! content: `--equals`, `--contains`, `--matches`, `--starts-with`, `--ends-with` (each + value),
//! `--empty`. `exists`, `absent` and `link-target` look at the path itself (`lstat`); the others
//! follow symlinks. A file check without assertions checks `--exists`.
//!
//! # Regex syntax
//!
//! `matches` uses the `regex-lite` crate: Rust `regex` syntax (unanchored search; flags such as
//! `(?m)`, `(?s)`, `(?i)`; classes, repetitions, groups, alternation) without Unicode-aware
//! classes: `\w`, `\d`, `\s`, `\b` are ASCII-only and `\p{..}` is not supported. Output that is
//! not UTF-8 is matched after a lossy conversion (invalid bytes become U+FFFD).
//!
//! # Output
//!
//! For a command check, the command's captured stdout and stderr are echoed to the probe's
//! stdout and stderr (at most the first and last 32 KiB of each, so that BuildKit's log limit
//! never swallows the report; assertions always see everything). Then the report block follows on
//! stderr, every line starting with `##buildtest-probe ` (format in [`report`]).
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every assertion held |
//! | 1 | at least one assertion did not hold |
//! | 2 | malformed spec, or the probe itself failed |
//! | 3 | the command could not be started (not found, not executable, missing interpreter or loader, bad `--cwd` or `--user`) |

mod assert;
mod cmd;
mod file;
mod report;
mod spec;
mod text;
mod user;

use std::io::Write;
use std::path::Path;

use report::{EXIT_NOT_STARTED, EXIT_SPEC, Verdict};
use spec::Spec;

/// Runs the probe on `args` (without the program name), writing to `out` and `err`; returns
/// the exit code. `root` is where `/etc/passwd` and `/etc/group` are read (`/` in the image).
fn run(
    args: Vec<std::ffi::OsString>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    root: &Path,
) -> i32 {
    let args: Result<Vec<String>, _> = args.into_iter().map(|a| a.into_string()).collect();
    let parsed = match args {
        Ok(args) => spec::parse(&args),
        Err(a) => Err(format!("argument {:?} is not UTF-8", a.to_string_lossy())),
    };
    let (subject, verdict) = match parsed {
        Err(message) => (
            "invalid".to_owned(),
            Verdict::Error {
                code: EXIT_SPEC,
                message: format!("malformed check spec: {message}"),
            },
        ),
        Ok(Spec::File(f)) => (
            report::file_subject(&f.path),
            Verdict::Evaluated(file::evaluate(&f)),
        ),
        Ok(Spec::Cmd(c)) => {
            let subject = report::cmd_subject(&c.argv);
            match cmd::run(&c, root) {
                Err(why) => (
                    subject,
                    Verdict::Error {
                        code: EXIT_NOT_STARTED,
                        message: format!("command could not be started: {why}"),
                    },
                ),
                Ok(captured) => {
                    let echoed = cmd::echo(out, "stdout", &captured.stdout)
                        .and_then(|()| cmd::echo(err, "stderr", &captured.stderr));
                    if let Err(e) = echoed {
                        // Still try to report; the exit code says the probe failed.
                        let message = format!("probe failed to echo the command's output: {e}");
                        let (text, code) = report::render(
                            &subject,
                            &Verdict::Error {
                                code: EXIT_SPEC,
                                message,
                            },
                        );
                        let _ = err.write_all(text.as_bytes());
                        return code;
                    }
                    (subject, Verdict::Evaluated(cmd::evaluate(&c, &captured)))
                }
            }
        }
    };
    let (text, code) = report::render(&subject, &verdict);
    match err.write_all(text.as_bytes()).and_then(|()| err.flush()) {
        Ok(()) => code,
        Err(_) => EXIT_SPEC,
    }
}

fn main() {
    let args = std::env::args_os().skip(1).collect();
    let code = run(
        args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
        Path::new("/"),
    );
    std::process::exit(code);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn probe(args: &[&str]) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = args.iter().map(|a| a.into()).collect();
        let code = run(args, &mut out, &mut err, Path::new("/"));
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn command_output_is_echoed_then_reported() {
        let (code, out, err) = probe(&[
            "v1",
            "cmd",
            "--stdout-equals",
            "hi\n",
            "--stderr-contains",
            "oops",
            "--",
            "sh",
            "-c",
            "echo hi; printf oops >&2",
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "hi\n");
        assert!(
            err.starts_with("oops\n##buildtest-probe begin v1 cmd \"sh\" \"-c\""),
            "{err}"
        );
        assert!(err.ends_with("##buildtest-probe end pass 0/3\n"), "{err}");
    }

    #[test]
    fn every_failed_assertion_is_reported() {
        let (code, _, err) = probe(&[
            "v1",
            "cmd",
            "--exit-code",
            "0",
            "--stdout-starts-with",
            "curl 7",
            "--stdout-contains",
            "ok",
            "--stderr-empty",
            "--",
            "sh",
            "-c",
            "echo curl 8 ok; echo warn >&2; exit 4",
        ]);
        assert_eq!(code, 1, "{err}");
        for want in [
            "fail exit_code\n##buildtest-probe expected 0\n##buildtest-probe actual 4\n",
            "fail stdout.starts_with\n##buildtest-probe expected \"curl 7\"\n##buildtest-probe actual \"curl 8 ok\\n\"\n",
            "fail stderr.empty\n##buildtest-probe expected empty\n##buildtest-probe actual \"warn\\n\"\n",
            "pass stdout.contains \"ok\"\n",
            "summary 3 of 4 assertions failed: exit_code: expected 0, got 4; stdout.starts_with",
            "end fail 3/4\n",
        ] {
            assert!(err.contains(want), "{want:?} not in:\n{err}");
        }
    }

    #[test]
    fn spec_errors_exit_2_with_a_report() {
        let (code, out, err) = probe(&["v1", "cmd", "--bogus", "--", "true"]);
        assert_eq!(code, EXIT_SPEC);
        assert_eq!(out, "");
        assert!(
            err.contains(
                "##buildtest-probe error malformed check spec: unknown cmd option \"--bogus\"\n"
            ),
            "{err}"
        );
        let (code, _, err) = probe(&[]);
        assert_eq!(code, EXIT_SPEC);
        assert!(err.contains("no spec given"), "{err}");
    }

    #[test]
    fn commands_that_cannot_start_exit_3() {
        let (code, _, err) = probe(&["v1", "cmd", "--", "definitely-not-a-command-xyz"]);
        assert_eq!(code, EXIT_NOT_STARTED);
        assert!(
            err.contains("error command could not be started: \"definitely-not-a-command-xyz\" not found in PATH ("),
            "{err}"
        );
        let (code, _, err) = probe(&["v1", "cmd", "--cwd", "/nonexistent-dir", "--", "true"]);
        assert_eq!(code, EXIT_NOT_STARTED);
        assert!(
            err.contains("working directory \"/nonexistent-dir\""),
            "{err}"
        );
    }

    #[test]
    fn huge_output_is_echoed_in_part_but_evaluated_in_full() {
        let (code, out, err) = probe(&[
            "v1",
            "cmd",
            "--stdout-ends-with",
            "END\n",
            "--",
            "sh",
            "-c",
            "head -c 200000 /dev/zero | tr '\\0' a; echo END",
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.len() < 2 * cmd::ECHO_HALF + 200, "{}", out.len());
        assert!(
            out.contains(
                "[buildtest-probe: 134468 bytes of stdout omitted (200004 captured, all evaluated)]"
            ),
            "{}",
            &out[cmd::ECHO_HALF..cmd::ECHO_HALF + 100]
        );
        assert!(out.ends_with("aEND\n"));
    }
}
