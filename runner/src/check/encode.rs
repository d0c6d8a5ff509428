//! Validating a [`Check`] and encoding it as the probe's spec arguments (version `v1`).
//!
//! The grammar is the probe's (see the [module docs](super#the-probe-spec-v1)); the probe parses
//! exactly what [`Check::probe_args`] writes, which the `check_probe` integration test holds
//! by running the embedded probe on encoded checks.

use super::errors::CheckError;
use super::model::{Check, Cmd, File, FileAssertion, Stream, TextAssertion};

/// The spec version written as the probe's first argument.
pub const SPEC_VERSION: &str = "v1";

impl Check {
    /// Validates the check without encoding it: arguments, paths, modes, environment names,
    /// NUL bytes and every regex (compiled with the probe's regex engine, `regex-lite`).
    /// A metadata check is validated as [`Metadata::validate`](super::Metadata::validate) does.
    pub fn validate(&self) -> Result<(), CheckError> {
        match self {
            Check::Metadata(m) => m.validate(&self.label()),
            _ => self.probe_args().map(drop),
        }
    }

    /// The probe's arguments for this check (everything after the probe's path), e.g.
    /// `["v1", "cmd", "--exit-code", "0", "--stdout-contains", "ok", "--", "app", "--check"]`.
    /// Validates the check first. A metadata check has none ([`CheckError::NotAnExec`]).
    pub fn probe_args(&self) -> Result<Vec<String>, CheckError> {
        let label = self.label();
        let mut out = Encoder {
            label: &label,
            args: vec![SPEC_VERSION.to_owned()],
        };
        match self {
            Check::Cmd(c) => out.cmd(c)?,
            Check::File(f) => out.file(f)?,
            Check::Metadata(m) => {
                m.validate(&label)?;
                return Err(CheckError::NotAnExec { label });
            }
        }
        Ok(out.args)
    }
}

struct Encoder<'a> {
    label: &'a str,
    args: Vec<String>,
}

impl Encoder<'_> {
    fn push(&mut self, arg: &str) {
        self.args.push(arg.to_owned());
    }

    /// Pushes a user value, refusing NUL bytes (argv strings cannot hold them).
    fn value(&mut self, what: impl FnOnce() -> String, value: &str) -> Result<(), CheckError> {
        if value.contains('\0') {
            return Err(CheckError::NulByte {
                label: self.label.to_owned(),
                what: what(),
            });
        }
        self.push(value);
        Ok(())
    }

    fn absolute(&self, what: &'static str, path: &str) -> Result<(), CheckError> {
        if path.starts_with('/') {
            Ok(())
        } else {
            Err(CheckError::RelativePath {
                label: self.label.to_owned(),
                what,
                path: path.to_owned(),
            })
        }
    }

    /// `--<prefix><name> [value]` for a text assertion.
    fn text(&mut self, prefix: &str, assertion: &TextAssertion) -> Result<(), CheckError> {
        let option = format!("--{prefix}{}", assertion.name().replace('_', "-"));
        self.push(&option);
        if let TextAssertion::Matches(pattern) = assertion {
            regex_lite::Regex::new(pattern).map_err(|e| CheckError::InvalidRegex {
                label: self.label.to_owned(),
                pattern: pattern.clone(),
                reason: e.to_string(),
            })?;
        }
        match assertion.value() {
            Some(v) => self.value(|| format!("the {option} value"), v),
            None => Ok(()),
        }
    }

    fn cmd(&mut self, c: &Cmd) -> Result<(), CheckError> {
        if c.args.is_empty() {
            return Err(CheckError::EmptyCommand {
                label: self.label.to_owned(),
            });
        }
        self.push("cmd");
        for (key, value) in &c.env {
            if key.is_empty() || key.contains('=') {
                return Err(CheckError::InvalidEnvKey {
                    label: self.label.to_owned(),
                    key: key.clone(),
                });
            }
            self.push("--env");
            self.value(
                || format!("environment variable {key}"),
                &format!("{key}={value}"),
            )?;
        }
        if let Some(dir) = &c.cwd {
            self.absolute("working directory", dir)?;
            self.push("--cwd");
            self.value(|| "the working directory".to_owned(), dir)?;
        }
        if let Some(user) = &c.user {
            self.push("--user");
            self.value(|| "the user".to_owned(), user)?;
        }
        if let Some(stdin) = &c.stdin {
            self.push("--stdin");
            self.value(|| "stdin".to_owned(), stdin)?;
        }
        self.push("--exit-code");
        self.push(&c.exit_code.to_string());
        for (stream, assertion) in &c.assertions {
            let prefix = match stream {
                Stream::Stdout => "stdout-",
                Stream::Stderr => "stderr-",
            };
            self.text(prefix, assertion)?;
        }
        self.push("--");
        for (i, arg) in c.args.iter().enumerate() {
            self.value(|| format!("argument {i}"), arg)?;
        }
        Ok(())
    }

    fn file(&mut self, f: &File) -> Result<(), CheckError> {
        self.absolute("path", &f.path)?;
        self.push("file");
        self.value(|| "the path".to_owned(), &f.path)?;
        if f.assertions.is_empty() {
            self.push("--exists");
        }
        for assertion in &f.assertions {
            match assertion {
                FileAssertion::Exists => self.push("--exists"),
                FileAssertion::Absent => self.push("--absent"),
                FileAssertion::IsDir => self.push("--is-dir"),
                FileAssertion::Mode(mode) => {
                    if *mode > 0o7777 {
                        return Err(CheckError::InvalidMode {
                            label: self.label.to_owned(),
                            mode: *mode,
                        });
                    }
                    self.push("--mode");
                    self.push(&format!("{mode:04o}"));
                }
                FileAssertion::Owner { uid, gid } => {
                    self.push("--owner");
                    self.push(&format!("{uid}:{gid}"));
                }
                FileAssertion::LinkTarget(target) => {
                    self.push("--link-target");
                    self.value(|| "the link target".to_owned(), target)?;
                }
                FileAssertion::Content(t) => self.text("", t)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::check::{cmd, file};

    fn args(check: impl Into<Check>) -> Vec<String> {
        check.into().probe_args().unwrap()
    }

    #[test]
    fn encodes_a_cmd_check() {
        let c = cmd(["sh", "-c", "echo $(id); exit 3"])
            .env("A", "b=c")
            .cwd("/tmp")
            .user("app:staff")
            .stdin("")
            .exit_code(3)
            .stdout_contains("--")
            .stderr_matches(r"^\d+$")
            .stdout_empty()
            .stderr_starts_with("x")
            .stdout_ends_with("y")
            .stderr_equals("z");
        assert_eq!(
            args(c),
            [
                "v1",
                "cmd",
                "--env",
                "A=b=c",
                "--cwd",
                "/tmp",
                "--user",
                "app:staff",
                "--stdin",
                "",
                "--exit-code",
                "3",
                "--stdout-contains",
                "--",
                "--stderr-matches",
                r"^\d+$",
                "--stdout-empty",
                "--stderr-starts-with",
                "x",
                "--stdout-ends-with",
                "y",
                "--stderr-equals",
                "z",
                "--",
                "sh",
                "-c",
                "echo $(id); exit 3"
            ]
        );
        assert_eq!(
            args(cmd(["true"])),
            ["v1", "cmd", "--exit-code", "0", "--", "true"]
        );
    }

    #[test]
    fn encodes_a_file_check() {
        let f = file("/usr/bin/x")
            .exists()
            .absent()
            .is_dir()
            .mode(0o4755)
            .mode(0o7)
            .owner(0, 42)
            .link_target("../y")
            .equals("a")
            .contains("b")
            .matches("c+")
            .starts_with("d")
            .ends_with("e")
            .empty();
        assert_eq!(
            args(f),
            [
                "v1",
                "file",
                "/usr/bin/x",
                "--exists",
                "--absent",
                "--is-dir",
                "--mode",
                "4755",
                "--mode",
                "0007",
                "--owner",
                "0:42",
                "--link-target",
                "../y",
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
                "--empty"
            ]
        );
        assert_eq!(args(file("/x")), ["v1", "file", "/x", "--exists"]);
    }

    #[test]
    fn rejects_invalid_checks_with_typed_errors() {
        let err = |c: Check| c.validate().unwrap_err();
        assert!(matches!(
            err(cmd(Vec::<String>::new()).into()),
            CheckError::EmptyCommand { .. }
        ));
        match err(cmd(["grep"]).stdout_matches("a(b").into()) {
            CheckError::InvalidRegex {
                label,
                pattern,
                reason,
            } => {
                assert_eq!((label.as_str(), pattern.as_str()), ("cmd: grep", "a(b"));
                assert!(!reason.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let e = err(file("/etc/x").matches("[").into());
        assert!(
            e.to_string()
                .starts_with("compile regex \"[\" of check `file: /etc/x`: "),
            "{e}"
        );
        assert!(matches!(
            err(file("/x").mode(0o10000).into()),
            CheckError::InvalidMode { mode: 0o10000, .. }
        ));
        assert!(matches!(
            err(file("etc/x").into()),
            CheckError::RelativePath { what: "path", .. }
        ));
        assert!(matches!(
            err(cmd(["x"]).cwd("tmp").into()),
            CheckError::RelativePath {
                what: "working directory",
                ..
            }
        ));
        assert!(matches!(
            err(cmd(["x"]).env("A=B", "c").into()),
            CheckError::InvalidEnvKey { .. }
        ));
        assert!(matches!(
            err(cmd(["x"]).env("", "c").into()),
            CheckError::InvalidEnvKey { .. }
        ));
        match err(cmd(["printf", "a\0b"]).into()) {
            CheckError::NulByte { what, .. } => assert_eq!(what, "argument 1"),
            other => panic!("{other:?}"),
        }
        match err(cmd(["cat"]).stdout_equals("\0").into()) {
            CheckError::NulByte { what, .. } => assert_eq!(what, "the --stdout-equals value"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rust_regex_syntax_that_regex_lite_lacks_is_rejected_up_front() {
        // Unicode classes are not in regex-lite: the runner says so before any solve.
        assert!(
            Check::from(cmd(["x"]).stdout_matches(r"\p{Greek}"))
                .validate()
                .is_err()
        );
        assert!(
            Check::from(cmd(["x"]).stdout_matches(r"(?m)^\w+\s\d{2,}$"))
                .validate()
                .is_ok()
        );
    }
}
