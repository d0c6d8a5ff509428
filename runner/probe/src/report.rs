//! The report block the probe writes to stderr, and the exit codes.
//!
//! Format (v1): every line starts with [`MARKER`] followed by a keyword:
//!
//! ```text
//! ##buildtest-probe begin v1 cmd "curl" "--version"
//! ##buildtest-probe pass exit_code 0
//! ##buildtest-probe fail stdout.starts_with
//! ##buildtest-probe expected "curl 7"
//! ##buildtest-probe actual "curl 8.5.0 (x86_64-pc-linux-gnu)"… (812 bytes)
//! ##buildtest-probe summary 1 of 2 assertions failed: stdout.starts_with: expected "curl 7", got "curl 8.5.0 (x86_64-pc-linux-gnu) libcurl/8.5.0 OpenSSL/3.0"… (812 bytes)
//! ##buildtest-probe end fail 1/2
//! ```
//!
//! - `begin v1 <kind> <subject>`: `kind` is `cmd` (subject: the quoted argv) or `file` (the quoted path).
//! - `pass <assertion> <expected>`: an assertion that held.
//! - `fail <assertion>`, then `expected <value>` and `actual <value>`: an assertion that did not hold.
//!   Optional `note <text>` lines may follow (e.g. where two values first differ).
//! - `error <message>`: the check could not be evaluated (spec error, command not started).
//! - `summary <text>`: one line, usable as a JUnit failure message.
//! - `end <pass|fail|error> <failed>/<total>`: the verdict; always the block's last line.
//!
//! Values are shown escaped on one line (see [`crate::text`]), so no line of the block ever
//! contains a raw newline from user data.

use crate::text::{self, SUMMARY_LIMIT};

/// Prefix of every report line.
pub(crate) const MARKER: &str = "##buildtest-probe ";

/// Exit code: every assertion held.
pub(crate) const EXIT_PASS: i32 = 0;
/// Exit code: at least one assertion did not hold.
pub(crate) const EXIT_FAIL: i32 = 1;
/// Exit code: the spec is malformed (or the probe itself failed).
pub(crate) const EXIT_SPEC: i32 = 2;
/// Exit code: the command could not be started (not found, not executable, bad cwd or user).
pub(crate) const EXIT_NOT_STARTED: i32 = 3;

/// The result of one assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Stable name, e.g. `exit_code`, `stdout.contains`, `mode`, `content.equals`.
    pub(crate) name: String,
    /// What was expected, shown for people (`0`, `"text"`, `0755`, `exists`).
    pub(crate) expected: String,
    /// `None` if the assertion held; otherwise what was found, shown the same way.
    pub(crate) actual: Option<String>,
    /// `actual` shortened for the summary line.
    pub(crate) actual_short: Option<String>,
    /// Extra lines about a failure.
    pub(crate) notes: Vec<String>,
}

impl Outcome {
    /// An assertion that held.
    pub(crate) fn pass(name: impl Into<String>, expected: impl Into<String>) -> Outcome {
        Outcome {
            name: name.into(),
            expected: expected.into(),
            actual: None,
            actual_short: None,
            notes: Vec::new(),
        }
    }

    /// An assertion that failed with a short, already displayable `actual`.
    pub(crate) fn fail(
        name: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Outcome {
        let actual = actual.into();
        Outcome {
            name: name.into(),
            expected: expected.into(),
            actual_short: Some(actual.clone()),
            actual: Some(actual),
            notes: Vec::new(),
        }
    }

    /// Whether the assertion held.
    pub(crate) fn held(&self) -> bool {
        self.actual.is_none()
    }
}

/// The verdict of a probe run.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Assertions were evaluated (pass or fail follows from them).
    Evaluated(Vec<Outcome>),
    /// The check could not be evaluated; the exit code and message say why.
    Error { code: i32, message: String },
}

/// Renders the report block for `subject` (e.g. `cmd "ls" "/"`); returns it with the exit code.
pub(crate) fn render(subject: &str, verdict: &Verdict) -> (String, i32) {
    let mut lines = vec![format!("begin {} {subject}", crate::spec::VERSION)];
    let code = match verdict {
        Verdict::Error { code, message } => {
            lines.push(format!("error {message}"));
            lines.push(format!("summary {message}"));
            lines.push("end error 0/0".to_owned());
            *code
        }
        Verdict::Evaluated(outcomes) => {
            let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.held()).collect();
            for o in outcomes {
                match &o.actual {
                    None => lines.push(format!("pass {} {}", o.name, o.expected)),
                    Some(actual) => {
                        lines.push(format!("fail {}", o.name));
                        lines.push(format!("expected {}", o.expected));
                        lines.push(format!("actual {actual}"));
                        lines.extend(o.notes.iter().map(|n| format!("note {n}")));
                    }
                }
            }
            lines.push(format!("summary {}", summary(outcomes.len(), &failed)));
            let verdict = if failed.is_empty() { "pass" } else { "fail" };
            lines.push(format!("end {verdict} {}/{}", failed.len(), outcomes.len()));
            if failed.is_empty() {
                EXIT_PASS
            } else {
                EXIT_FAIL
            }
        }
    };
    let mut out = String::new();
    for line in lines {
        out.push_str(MARKER);
        out.push_str(&line);
        out.push('\n');
    }
    (out, code)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn summary(total: usize, failed: &[&Outcome]) -> String {
    if failed.is_empty() {
        return format!("all {total} assertion{} held", plural(total));
    }
    let details: Vec<String> = failed
        .iter()
        .map(|o| {
            let actual = o
                .actual_short
                .as_deref()
                .or(o.actual.as_deref())
                .unwrap_or("");
            format!(
                "{}: expected {}, got {actual}",
                o.name,
                shorten(&o.expected)
            )
        })
        .collect();
    format!(
        "{} of {total} assertion{} failed: {}",
        failed.len(),
        plural(total),
        details.join("; ")
    )
}

/// Shortens an already shown value for the summary (expected values can be long too).
fn shorten(shown: &str) -> String {
    if shown.len() <= SUMMARY_LIMIT + 2 {
        return shown.to_owned();
    }
    let mut cut = SUMMARY_LIMIT;
    while !shown.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… ({} characters shown of {})",
        &shown[..cut],
        cut,
        shown.len()
    )
}

/// The subject of a command check: its argv, each argument quoted.
pub(crate) fn cmd_subject(argv: &[String]) -> String {
    let quoted: Vec<String> = argv.iter().map(|a| text::quote(a.as_bytes())).collect();
    format!("cmd {}", quoted.join(" "))
}

/// The subject of a file check: its quoted path.
pub(crate) fn file_subject(path: &str) -> String {
    format!("file {}", text::quote(path.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_pass_and_fail_lines() {
        let outcomes = vec![
            Outcome::pass("exit_code", "0"),
            Outcome {
                notes: vec!["first difference at byte 2".to_owned()],
                ..Outcome::fail("stdout.equals", "\"abc\"", "\"abX\"")
            },
        ];
        let (out, code) = render(
            &cmd_subject(&["echo".to_owned(), "a b".to_owned()]),
            &Verdict::Evaluated(outcomes),
        );
        assert_eq!(code, EXIT_FAIL);
        assert_eq!(
            out,
            "##buildtest-probe begin v1 cmd \"echo\" \"a b\"\n\
             ##buildtest-probe pass exit_code 0\n\
             ##buildtest-probe fail stdout.equals\n\
             ##buildtest-probe expected \"abc\"\n\
             ##buildtest-probe actual \"abX\"\n\
             ##buildtest-probe note first difference at byte 2\n\
             ##buildtest-probe summary 1 of 2 assertions failed: stdout.equals: expected \"abc\", got \"abX\"\n\
             ##buildtest-probe end fail 1/2\n"
        );
    }

    #[test]
    fn renders_all_passing() {
        let (out, code) = render(
            &file_subject("/x"),
            &Verdict::Evaluated(vec![Outcome::pass("exists", "exists")]),
        );
        assert_eq!(code, EXIT_PASS);
        assert!(out.contains("summary all 1 assertion held\n"), "{out}");
        assert!(out.ends_with("##buildtest-probe end pass 0/1\n"), "{out}");
    }

    #[test]
    fn renders_errors() {
        let verdict = Verdict::Error {
            code: EXIT_NOT_STARTED,
            message: "could not start \"x\": not found".to_owned(),
        };
        let (out, code) = render("cmd \"x\"", &verdict);
        assert_eq!(code, EXIT_NOT_STARTED);
        assert!(
            out.contains("##buildtest-probe error could not start \"x\": not found\n"),
            "{out}"
        );
        assert!(out.ends_with("##buildtest-probe end error 0/0\n"), "{out}");
    }

    #[test]
    fn summary_shortens_long_expected_values() {
        let long = format!("\"{}\"", "x".repeat(300));
        let (out, _) = render(
            "file \"/x\"",
            &Verdict::Evaluated(vec![Outcome::fail("content.equals", long, "\"y\"")]),
        );
        let summary = out.lines().find(|l| l.contains(" summary ")).unwrap();
        assert!(summary.len() < 200, "{summary}");
        assert!(
            summary.contains("(60 characters shown of 302)"),
            "{summary}"
        );
    }
}
