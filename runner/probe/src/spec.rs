//! Parsing the check spec (version `v1`) from the probe's arguments.
//!
//! The grammar is in the crate docs. Every value is one argument, taken verbatim (it may be
//! empty or start with `-`); nothing is ever split or interpreted by a shell.

use regex_lite::Regex;

/// The spec version this probe understands (the first argument).
pub(crate) const VERSION: &str = "v1";

/// A parsed check.
#[derive(Debug)]
pub(crate) enum Spec {
    /// Run a command and check its exit status and output.
    Cmd(CmdSpec),
    /// Inspect a path.
    File(FileSpec),
}

/// What a text assertion expects of some bytes (stdout, stderr, file content).
#[derive(Debug)]
pub(crate) enum TextAssertion {
    /// The bytes are exactly this text.
    Equals(String),
    /// The text occurs in the bytes.
    Contains(String),
    /// The regex matches somewhere in the bytes (read as UTF-8, lossily).
    Matches(Regex),
    /// The bytes start with this text.
    StartsWith(String),
    /// The bytes end with this text.
    EndsWith(String),
    /// There are no bytes.
    Empty,
}

impl TextAssertion {
    /// The assertion's name after `stdout.`, `stderr.` or `content.`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            TextAssertion::Equals(_) => "equals",
            TextAssertion::Contains(_) => "contains",
            TextAssertion::Matches(_) => "matches",
            TextAssertion::StartsWith(_) => "starts_with",
            TextAssertion::EndsWith(_) => "ends_with",
            TextAssertion::Empty => "empty",
        }
    }
}

/// Which output stream a command assertion looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// The command's standard output.
    Stdout,
    /// The command's standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A command check.
#[derive(Debug, Default)]
pub(crate) struct CmdSpec {
    /// Variables added to (or replacing in) the inherited environment, in order.
    pub(crate) env: Vec<(String, String)>,
    /// Working directory of the command.
    pub(crate) cwd: Option<String>,
    /// `uid[:gid]` or `name[:group]` to run as.
    pub(crate) user: Option<String>,
    /// Bytes fed to the command's standard input (otherwise it reads `/dev/null`).
    pub(crate) stdin: Option<String>,
    /// The expected exit code (default 0).
    pub(crate) exit_code: i32,
    /// Output assertions, in the order given.
    pub(crate) assertions: Vec<(Stream, TextAssertion)>,
    /// The command line: program and arguments.
    pub(crate) argv: Vec<String>,
}

/// One assertion of a file check.
#[derive(Debug)]
pub(crate) enum FileAssertion {
    /// Something (of any type, even a dangling symlink) is at the path.
    Exists,
    /// Nothing is at the path.
    Absent,
    /// The path is (or links to) a directory.
    IsDir,
    /// Permission bits (`mode & 0o7777`) of the path (links followed).
    Mode(u32),
    /// Owner uid and gid of the path (links followed).
    Owner(u32, u32),
    /// The path is a symlink with this target.
    LinkTarget(String),
    /// The content of the file (links followed).
    Content(TextAssertion),
}

/// A file check.
#[derive(Debug)]
pub(crate) struct FileSpec {
    /// The path inspected.
    pub(crate) path: String,
    /// Assertions, in the order given.
    pub(crate) assertions: Vec<FileAssertion>,
}

/// Parses the probe's arguments (without the program name).
pub(crate) fn parse(args: &[String]) -> Result<Spec, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "unsupported spec version {v:?} (this probe reads {VERSION})"
            ));
        }
        None => return Err(format!("no spec given (expected `{VERSION} cmd|file ...`)")),
    }
    let rest: Vec<&String> = it.collect();
    match rest.first().map(|s| s.as_str()) {
        Some("cmd") => parse_cmd(&rest[1..]).map(Spec::Cmd),
        Some("file") => parse_file(&rest[1..]).map(Spec::File),
        Some(k) => Err(format!("unknown check kind {k:?} (expected cmd or file)")),
        None => Err("no check kind given (expected cmd or file)".to_owned()),
    }
}

/// A cursor over option arguments.
struct Args<'a> {
    args: &'a [&'a String],
    pos: usize,
}

impl<'a> Args<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let a = self.args.get(self.pos)?;
        self.pos += 1;
        Some(a.as_str())
    }

    fn value(&mut self, option: &str) -> Result<&'a str, String> {
        self.next()
            .ok_or_else(|| format!("option {option} needs a value"))
    }

    fn rest(&self) -> Vec<String> {
        self.args[self.pos..].iter().map(|s| (*s).clone()).collect()
    }
}

fn regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("invalid regex {pattern:?}: {e}"))
}

fn text_assertion(
    suffix: &str,
    args: &mut Args<'_>,
    option: &str,
) -> Result<Option<TextAssertion>, String> {
    Ok(Some(match suffix {
        "equals" => TextAssertion::Equals(args.value(option)?.to_owned()),
        "contains" => TextAssertion::Contains(args.value(option)?.to_owned()),
        "matches" => TextAssertion::Matches(regex(args.value(option)?)?),
        "starts-with" => TextAssertion::StartsWith(args.value(option)?.to_owned()),
        "ends-with" => TextAssertion::EndsWith(args.value(option)?.to_owned()),
        "empty" => TextAssertion::Empty,
        _ => return Ok(None),
    }))
}

fn parse_cmd(args: &[&String]) -> Result<CmdSpec, String> {
    let mut spec = CmdSpec::default();
    let mut a = Args { args, pos: 0 };
    loop {
        let Some(option) = a.next() else {
            return Err("missing `--` before the command".to_owned());
        };
        match option {
            "--" => break,
            "--env" => {
                let kv = a.value(option)?;
                match kv.split_once('=') {
                    Some((k, v)) if !k.is_empty() => spec.env.push((k.to_owned(), v.to_owned())),
                    _ => return Err(format!("--env value {kv:?} is not KEY=VALUE")),
                }
            }
            "--cwd" => spec.cwd = Some(a.value(option)?.to_owned()),
            "--user" => spec.user = Some(a.value(option)?.to_owned()),
            "--stdin" => spec.stdin = Some(a.value(option)?.to_owned()),
            "--exit-code" => {
                let v = a.value(option)?;
                spec.exit_code = v
                    .parse()
                    .map_err(|_| format!("--exit-code value {v:?} is not an integer"))?;
            }
            _ => {
                let parsed = if let Some(s) = option.strip_prefix("--stdout-") {
                    text_assertion(s, &mut a, option)?.map(|t| (Stream::Stdout, t))
                } else if let Some(s) = option.strip_prefix("--stderr-") {
                    text_assertion(s, &mut a, option)?.map(|t| (Stream::Stderr, t))
                } else {
                    None
                };
                match parsed {
                    Some(assertion) => spec.assertions.push(assertion),
                    None => return Err(format!("unknown cmd option {option:?}")),
                }
            }
        }
    }
    spec.argv = a.rest();
    if spec.argv.is_empty() {
        return Err("no command given after `--`".to_owned());
    }
    Ok(spec)
}

fn parse_mode(v: &str) -> Result<u32, String> {
    match u32::from_str_radix(v, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!(
            "--mode value {v:?} is not an octal mode up to 7777"
        )),
    }
}

fn parse_owner(v: &str) -> Result<(u32, u32), String> {
    let parsed = v
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)));
    parsed.ok_or_else(|| format!("--owner value {v:?} is not UID:GID"))
}

fn parse_file(args: &[&String]) -> Result<FileSpec, String> {
    let Some((path, args)) = args.split_first() else {
        return Err("no path given to the file check".to_owned());
    };
    if path.is_empty() {
        return Err("the file check's path is empty".to_owned());
    }
    let mut spec = FileSpec {
        path: (*path).clone(),
        assertions: Vec::new(),
    };
    let mut a = Args { args, pos: 0 };
    while let Some(option) = a.next() {
        let assertion = match option {
            "--exists" => FileAssertion::Exists,
            "--absent" => FileAssertion::Absent,
            "--is-dir" => FileAssertion::IsDir,
            "--mode" => FileAssertion::Mode(parse_mode(a.value(option)?)?),
            "--owner" => {
                let (u, g) = parse_owner(a.value(option)?)?;
                FileAssertion::Owner(u, g)
            }
            "--link-target" => FileAssertion::LinkTarget(a.value(option)?.to_owned()),
            _ => {
                let suffix = option.strip_prefix("--").unwrap_or("");
                match text_assertion(suffix, &mut a, option)? {
                    Some(t) => FileAssertion::Content(t),
                    None => return Err(format!("unknown file option {option:?}")),
                }
            }
        };
        spec.assertions.push(assertion);
    }
    Ok(spec)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_a_full_cmd_spec() {
        let spec = parse(&args(&[
            "v1",
            "cmd",
            "--env",
            "A=b=c",
            "--cwd",
            "/tmp",
            "--user",
            "1000:1000",
            "--stdin",
            "",
            "--exit-code",
            "-3",
            "--stdout-contains",
            "--",
            "--stderr-matches",
            "^x$",
            "--stdout-empty",
            "--",
            "sh",
            "-c",
            "echo $(id); exit 3",
        ]))
        .unwrap();
        let Spec::Cmd(c) = spec else {
            panic!("not a cmd")
        };
        assert_eq!(c.env, vec![("A".to_owned(), "b=c".to_owned())]);
        assert_eq!(c.cwd.as_deref(), Some("/tmp"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.stdin.as_deref(), Some(""));
        assert_eq!(c.exit_code, -3);
        assert_eq!(c.assertions.len(), 3);
        assert!(
            matches!(&c.assertions[0], (Stream::Stdout, TextAssertion::Contains(s)) if s == "--")
        );
        assert!(
            matches!(&c.assertions[1], (Stream::Stderr, TextAssertion::Matches(r)) if r.as_str() == "^x$")
        );
        assert!(matches!(
            &c.assertions[2],
            (Stream::Stdout, TextAssertion::Empty)
        ));
        assert_eq!(c.argv, args(&["sh", "-c", "echo $(id); exit 3"]));
    }

    #[test]
    fn cmd_defaults_to_exit_code_zero() {
        let Spec::Cmd(c) = parse(&args(&["v1", "cmd", "--", "true"])).unwrap() else {
            panic!("not a cmd")
        };
        assert_eq!(c.exit_code, 0);
        assert!(c.assertions.is_empty() && c.env.is_empty() && c.stdin.is_none());
    }

    #[test]
    fn parses_a_full_file_spec() {
        let spec = parse(&args(&[
            "v1",
            "file",
            "--weird path",
            "--exists",
            "--is-dir",
            "--mode",
            "4755",
            "--owner",
            "0:42",
            "--link-target",
            "../x",
            "--equals",
            "a",
            "--contains",
            "b",
            "--matches",
            "c+",
            "--starts-with",
            "d",
            "--ends-with",
            "e",
            "--empty",
            "--absent",
        ]))
        .unwrap();
        let Spec::File(f) = spec else {
            panic!("not a file")
        };
        assert_eq!(f.path, "--weird path");
        let names: Vec<String> = f
            .assertions
            .iter()
            .map(|a| match a {
                FileAssertion::Exists => "exists".to_owned(),
                FileAssertion::Absent => "absent".to_owned(),
                FileAssertion::IsDir => "is_dir".to_owned(),
                FileAssertion::Mode(m) => format!("mode {m:o}"),
                FileAssertion::Owner(u, g) => format!("owner {u}:{g}"),
                FileAssertion::LinkTarget(t) => format!("link {t}"),
                FileAssertion::Content(t) => t.name().to_owned(),
            })
            .collect();
        assert_eq!(
            names,
            [
                "exists",
                "is_dir",
                "mode 4755",
                "owner 0:42",
                "link ../x",
                "equals",
                "contains",
                "matches",
                "starts_with",
                "ends_with",
                "empty",
                "absent"
            ]
        );
    }

    #[test]
    fn rejects_malformed_specs() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "no spec given"),
            (&["v2", "cmd", "--", "x"], "unsupported spec version \"v2\""),
            (&["v1"], "no check kind"),
            (&["v1", "exec"], "unknown check kind \"exec\""),
            (&["v1", "cmd", "true"], "unknown cmd option \"true\""),
            (&["v1", "cmd", "--stdout-contains"], "needs a value"),
            (
                &["v1", "cmd", "--exit-code", "x", "--", "a"],
                "not an integer",
            ),
            (&["v1", "cmd", "--env", "=x", "--", "a"], "not KEY=VALUE"),
            (&["v1", "cmd", "--env", "x", "--", "a"], "not KEY=VALUE"),
            (&["v1", "cmd"], "missing `--`"),
            (&["v1", "cmd", "--"], "no command given"),
            (
                &["v1", "cmd", "--stdout-matches", "(", "--", "a"],
                "invalid regex \"(\"",
            ),
            (&["v1", "file"], "no path given"),
            (&["v1", "file", ""], "path is empty"),
            (&["v1", "file", "/x", "--mode", "9"], "not an octal mode"),
            (
                &["v1", "file", "/x", "--mode", "17777"],
                "not an octal mode",
            ),
            (&["v1", "file", "/x", "--owner", "0"], "not UID:GID"),
            (&["v1", "file", "/x", "--owner", "a:0"], "not UID:GID"),
            (
                &["v1", "file", "/x", "--bogus"],
                "unknown file option \"--bogus\"",
            ),
            (
                &["v1", "file", "/x", "--stdout-empty"],
                "unknown file option",
            ),
        ];
        for (argv, want) in cases {
            let err = parse(&args(argv)).expect_err(&format!("{argv:?} should be rejected"));
            assert!(err.contains(want), "{argv:?}: {err:?} lacks {want:?}");
        }
    }
}
