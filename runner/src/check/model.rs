//! The check model: [`Cmd`] and [`File`] builders, and [`Check`], what `Test::check` takes.

use std::fmt;

/// An assertion on some bytes: a command's stdout or stderr, or a file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextAssertion {
    /// Exactly this text.
    Equals(String),
    /// This text occurs somewhere.
    Contains(String),
    /// This regex matches somewhere (syntax: see the [module docs](super#regex-syntax)).
    Matches(String),
    /// Starts with this text.
    StartsWith(String),
    /// Ends with this text.
    EndsWith(String),
    /// Nothing at all.
    Empty,
}

impl TextAssertion {
    /// The name used in reports after `stdout.`, `stderr.` or `content.` (e.g. `starts_with`).
    pub fn name(&self) -> &'static str {
        match self {
            TextAssertion::Equals(_) => "equals",
            TextAssertion::Contains(_) => "contains",
            TextAssertion::Matches(_) => "matches",
            TextAssertion::StartsWith(_) => "starts_with",
            TextAssertion::EndsWith(_) => "ends_with",
            TextAssertion::Empty => "empty",
        }
    }

    /// The value the assertion carries (the pattern for `Matches`), if any.
    pub fn value(&self) -> Option<&str> {
        match self {
            TextAssertion::Equals(s)
            | TextAssertion::Contains(s)
            | TextAssertion::Matches(s)
            | TextAssertion::StartsWith(s)
            | TextAssertion::EndsWith(s) => Some(s),
            TextAssertion::Empty => None,
        }
    }
}

/// A command's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A command check: runs argv directly in the image (never through a shell) and checks its
/// exit code (0 unless [`exit_code`](Cmd::exit_code) says otherwise) and output.
///
/// Built with [`cmd`]. Several assertions are one exec; every failing one is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a check does nothing unless passed to Test::check"]
pub struct Cmd {
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) stdin: Option<String>,
    pub(crate) exit_code: i32,
    pub(crate) assertions: Vec<(Stream, TextAssertion)>,
}

/// A command check running `args` (program, then arguments), e.g.
/// `cmd(["curl", "--version"]).stdout_starts_with("curl ")`.
pub fn cmd(args: impl IntoIterator<Item = impl Into<String>>) -> Cmd {
    Cmd {
        args: args.into_iter().map(Into::into).collect(),
        env: Vec::new(),
        cwd: None,
        user: None,
        stdin: None,
        exit_code: 0,
        assertions: Vec::new(),
    }
}

macro_rules! stream_methods {
    ($stream:expr, $equals:ident, $contains:ident, $matches:ident, $starts:ident, $ends:ident, $empty:ident, $name:literal) => {
        #[doc = concat!("Asserts that ", $name, " is exactly `text`.")]
        pub fn $equals(self, text: impl Into<String>) -> Cmd {
            self.assert($stream, TextAssertion::Equals(text.into()))
        }
        #[doc = concat!("Asserts that ", $name, " contains `text`.")]
        pub fn $contains(self, text: impl Into<String>) -> Cmd {
            self.assert($stream, TextAssertion::Contains(text.into()))
        }
        #[doc = concat!("Asserts that the regex `re` matches somewhere in ", $name, " (see the [module docs](super#regex-syntax)).")]
        pub fn $matches(self, re: impl Into<String>) -> Cmd {
            self.assert($stream, TextAssertion::Matches(re.into()))
        }
        #[doc = concat!("Asserts that ", $name, " starts with `text`.")]
        pub fn $starts(self, text: impl Into<String>) -> Cmd {
            self.assert($stream, TextAssertion::StartsWith(text.into()))
        }
        #[doc = concat!("Asserts that ", $name, " ends with `text` (mind the trailing newline).")]
        pub fn $ends(self, text: impl Into<String>) -> Cmd {
            self.assert($stream, TextAssertion::EndsWith(text.into()))
        }
        #[doc = concat!("Asserts that ", $name, " is empty.")]
        pub fn $empty(self) -> Cmd {
            self.assert($stream, TextAssertion::Empty)
        }
    };
}

impl Cmd {
    /// Sets environment variable `key` for the command (on top of the exec's environment;
    /// a later call for the same key wins).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the command in `dir` (absolute; default `/`).
    pub fn cwd(mut self, dir: impl Into<String>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }

    /// Runs the command as `user`: `uid`, `uid:gid`, `name` or `name:group` (names from the
    /// image's `/etc/passwd` and `/etc/group`; default root).
    pub fn user(mut self, user: impl Into<String>) -> Cmd {
        self.user = Some(user.into());
        self
    }

    /// Feeds `input` to the command's stdin (default: empty, `/dev/null`).
    pub fn stdin(mut self, input: impl Into<String>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    /// Expects the command to exit with `code` (default 0).
    pub fn exit_code(mut self, code: i32) -> Cmd {
        self.exit_code = code;
        self
    }

    fn assert(mut self, stream: Stream, assertion: TextAssertion) -> Cmd {
        self.assertions.push((stream, assertion));
        self
    }

    stream_methods!(
        Stream::Stdout,
        stdout_equals,
        stdout_contains,
        stdout_matches,
        stdout_starts_with,
        stdout_ends_with,
        stdout_empty,
        "stdout"
    );
    stream_methods!(
        Stream::Stderr,
        stderr_equals,
        stderr_contains,
        stderr_matches,
        stderr_starts_with,
        stderr_ends_with,
        stderr_empty,
        "stderr"
    );

    /// The command line (program, then arguments).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The expected exit code.
    pub fn expected_exit_code(&self) -> i32 {
        self.exit_code
    }

    /// The output assertions, in the order they were added.
    pub fn assertions(&self) -> &[(Stream, TextAssertion)] {
        &self.assertions
    }
}

/// One assertion of a [`File`] check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileAssertion {
    /// Something is at the path (any type; a dangling symlink counts).
    Exists,
    /// Nothing is at the path.
    Absent,
    /// The path is a directory (symlinks followed).
    IsDir,
    /// The permission bits (`mode & 0o7777`, symlinks followed).
    Mode(u32),
    /// The owner (symlinks followed).
    Owner {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
    /// The path is a symlink whose target is exactly this.
    LinkTarget(String),
    /// An assertion on the file's content (symlinks followed).
    Content(TextAssertion),
}

/// A file check on one absolute path. Built with [`file`]; with no assertion it checks
/// [`exists`](File::exists).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a check does nothing unless passed to Test::check"]
pub struct File {
    pub(crate) path: String,
    pub(crate) assertions: Vec<FileAssertion>,
}

/// A file check on `path` (absolute), e.g. `file("/usr/bin/curl").exists().mode(0o755)`.
pub fn file(path: impl Into<String>) -> File {
    File {
        path: path.into(),
        assertions: Vec::new(),
    }
}

impl File {
    fn assert(mut self, assertion: FileAssertion) -> File {
        self.assertions.push(assertion);
        self
    }

    /// Asserts that something is at the path (a dangling symlink counts).
    pub fn exists(self) -> File {
        self.assert(FileAssertion::Exists)
    }

    /// Asserts that nothing is at the path.
    pub fn absent(self) -> File {
        self.assert(FileAssertion::Absent)
    }

    /// Asserts that the path is a directory (or a symlink to one).
    pub fn is_dir(self) -> File {
        self.assert(FileAssertion::IsDir)
    }

    /// Asserts the permission bits, e.g. `0o755` or `0o4755` (setuid/setgid/sticky included).
    pub fn mode(self, mode: u32) -> File {
        self.assert(FileAssertion::Mode(mode))
    }

    /// Asserts the numeric owner.
    pub fn owner(self, uid: u32, gid: u32) -> File {
        self.assert(FileAssertion::Owner { uid, gid })
    }

    /// Asserts that the path is a symlink pointing at exactly `target`.
    pub fn link_target(self, target: impl Into<String>) -> File {
        self.assert(FileAssertion::LinkTarget(target.into()))
    }

    /// Asserts that the content is exactly `text`.
    pub fn equals(self, text: impl Into<String>) -> File {
        self.assert(FileAssertion::Content(TextAssertion::Equals(text.into())))
    }

    /// Asserts that the content contains `text`.
    pub fn contains(self, text: impl Into<String>) -> File {
        self.assert(FileAssertion::Content(TextAssertion::Contains(text.into())))
    }

    /// Asserts that the regex `re` matches somewhere in the content.
    pub fn matches(self, re: impl Into<String>) -> File {
        self.assert(FileAssertion::Content(TextAssertion::Matches(re.into())))
    }

    /// Asserts that the content starts with `text`.
    pub fn starts_with(self, text: impl Into<String>) -> File {
        self.assert(FileAssertion::Content(TextAssertion::StartsWith(
            text.into(),
        )))
    }

    /// Asserts that the content ends with `text`.
    pub fn ends_with(self, text: impl Into<String>) -> File {
        self.assert(FileAssertion::Content(TextAssertion::EndsWith(text.into())))
    }

    /// Asserts that the file is empty.
    pub fn empty(self) -> File {
        self.assert(FileAssertion::Content(TextAssertion::Empty))
    }

    /// The path checked.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The assertions, in the order they were added.
    pub fn assertions(&self) -> &[FileAssertion] {
        &self.assertions
    }
}

/// One check: one exec, one edge, one JUnit testcase. Made from a [`Cmd`] or a [`File`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// A command check.
    Cmd(Cmd),
    /// A file check.
    File(File),
    /// A check on the input's image config, evaluated without an exec (see
    /// [`metadata`](super::metadata())).
    Metadata(super::metadata::Metadata),
}

impl From<super::metadata::Metadata> for Check {
    fn from(m: super::metadata::Metadata) -> Check {
        Check::Metadata(m)
    }
}

impl From<Cmd> for Check {
    fn from(c: Cmd) -> Check {
        Check::Cmd(c)
    }
}

impl From<File> for Check {
    fn from(f: File) -> Check {
        Check::File(f)
    }
}

/// Longest label, in characters; longer ones end with `…`.
const LABEL_MAX: usize = 160;

/// Quotes `arg` like a POSIX shell would need, only when needed (for display only).
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

impl Check {
    /// Whether the runner evaluates this check itself, from the input's image config, rather than
    /// as an exec ([`Check::Metadata`]).
    pub fn is_metadata(&self) -> bool {
        matches!(self, Check::Metadata(_))
    }

    /// A short human label: `cmd: curl --version`, `file: /usr/bin/curl` or
    /// `metadata: env PATH, user` (arguments quoted
    /// shell-style where needed, for reading only; long labels are cut with `…`).
    pub fn label(&self) -> String {
        let full = match self {
            Check::Cmd(c) => {
                let words: Vec<String> = c.args.iter().map(|a| shell_word(a)).collect();
                format!("cmd: {}", words.join(" "))
            }
            Check::File(f) => format!("file: {}", f.path),
            Check::Metadata(m) if m.assertions.is_empty() => {
                super::metadata::METADATA_LABEL.to_owned()
            }
            Check::Metadata(m) => {
                format!("{}: {}", super::metadata::METADATA_LABEL, m.label_body())
            }
        };
        if full.chars().count() <= LABEL_MAX {
            return full;
        }
        let mut cut: String = full.chars().take(LABEL_MAX - 1).collect();
        cut.push('…');
        cut
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(
            Check::from(cmd(["curl", "--version"])).label(),
            "cmd: curl --version"
        );
        assert_eq!(
            Check::from(cmd(["sh", "-c", "echo 'hi' $(id); x"])).label(),
            r"cmd: sh -c 'echo '\''hi'\'' $(id); x'"
        );
        assert_eq!(Check::from(cmd(["printf", ""])).label(), "cmd: printf ''");
        assert_eq!(
            Check::from(file("/usr/bin/curl")).to_string(),
            "file: /usr/bin/curl"
        );
        let long = Check::from(cmd(["echo".to_owned(), "x".repeat(500)])).label();
        assert_eq!(long.chars().count(), LABEL_MAX);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn builders_keep_every_assertion_in_order() {
        let c = cmd(["id"])
            .env("A", "1")
            .cwd("/tmp")
            .user("nobody")
            .stdin("x")
            .exit_code(3)
            .stdout_equals("a")
            .stderr_contains("b")
            .stdout_matches("c")
            .stderr_starts_with("d")
            .stdout_ends_with("e")
            .stderr_empty()
            .stdout_empty()
            .stderr_equals("f")
            .stdout_contains("g")
            .stderr_matches("h")
            .stdout_starts_with("i")
            .stderr_ends_with("j");
        assert_eq!(c.expected_exit_code(), 3);
        let names: Vec<String> = c
            .assertions()
            .iter()
            .map(|(s, a)| format!("{}.{}", s.name(), a.name()))
            .collect();
        assert_eq!(
            names,
            [
                "stdout.equals",
                "stderr.contains",
                "stdout.matches",
                "stderr.starts_with",
                "stdout.ends_with",
                "stderr.empty",
                "stdout.empty",
                "stderr.equals",
                "stdout.contains",
                "stderr.matches",
                "stdout.starts_with",
                "stderr.ends_with"
            ]
        );
        let f = file("/x")
            .exists()
            .absent()
            .is_dir()
            .mode(0o755)
            .owner(1, 2)
            .link_target("y")
            .equals("a")
            .contains("b")
            .matches("c")
            .starts_with("d")
            .ends_with("e")
            .empty();
        assert_eq!(f.assertions().len(), 12);
        assert_eq!(f.assertions()[4], FileAssertion::Owner { uid: 1, gid: 2 });
        assert_eq!(
            f.assertions()[11],
            FileAssertion::Content(TextAssertion::Empty)
        );
    }
}
