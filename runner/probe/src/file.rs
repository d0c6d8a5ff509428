//! File checks: `lstat`/`stat`/`readlink`/`read` on one path.
//!
//! `exists`, `absent` and `link_target` look at the path itself (`lstat`: a dangling symlink
//! exists); `is_dir`, `mode`, `owner` and content assertions follow symlinks (`stat`, `read`).

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::assert;
use crate::report::Outcome;
use crate::spec::{FileAssertion, FileSpec};
use crate::text::{self, DETAIL_LIMIT};

/// What kind of file `m` describes, for people.
fn kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "regular file"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "character device"
    } else {
        "unknown file type"
    }
}

/// Why a path could not be looked at, for people.
fn missing(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "does not exist".to_owned(),
        _ => format!("cannot be inspected ({e})"),
    }
}

/// The path's facts, read once.
struct Facts {
    lstat: io::Result<Metadata>,
    stat: io::Result<Metadata>,
}

impl Facts {
    /// Describes a failing `stat` when `lstat` may still have seen something (a dangling link).
    fn stat_error(&self, e: &io::Error) -> String {
        match (&self.lstat, e.kind()) {
            (Ok(l), io::ErrorKind::NotFound) if l.file_type().is_symlink() => {
                "a dangling symlink".to_owned()
            }
            _ => missing(e),
        }
    }
}

/// Evaluates every assertion of `spec` (no assertion at all means `exists`).
pub(crate) fn evaluate(spec: &FileSpec) -> Vec<Outcome> {
    let path = spec.path.as_str();
    let facts = Facts {
        lstat: fs::symlink_metadata(path),
        stat: fs::metadata(path),
    };
    let mut content: Option<io::Result<Vec<u8>>> = None;
    let default = [FileAssertion::Exists];
    let assertions = if spec.assertions.is_empty() {
        &default[..]
    } else {
        &spec.assertions[..]
    };
    assertions
        .iter()
        .map(|a| match a {
            FileAssertion::Exists => match &facts.lstat {
                Ok(_) => Outcome::pass("exists", "exists"),
                Err(e) => Outcome::fail("exists", "exists", missing(e)),
            },
            FileAssertion::Absent => match &facts.lstat {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::pass("absent", "absent"),
                Ok(m) => Outcome::fail("absent", "absent", format!("exists ({})", kind(m))),
                Err(e) => Outcome::fail("absent", "absent", missing(e)),
            },
            FileAssertion::IsDir => match &facts.stat {
                Ok(m) if m.is_dir() => Outcome::pass("is_dir", "directory"),
                Ok(m) => Outcome::fail("is_dir", "directory", kind(m)),
                Err(e) => Outcome::fail("is_dir", "directory", facts.stat_error(e)),
            },
            FileAssertion::Mode(want) => {
                let expected = format!("{want:04o}");
                match &facts.stat {
                    Ok(m) if m.mode() & 0o7777 == *want => Outcome::pass("mode", expected),
                    Ok(m) => Outcome::fail("mode", expected, format!("{:04o}", m.mode() & 0o7777)),
                    Err(e) => Outcome::fail("mode", expected, facts.stat_error(e)),
                }
            }
            FileAssertion::Owner(uid, gid) => {
                let expected = format!("{uid}:{gid}");
                match &facts.stat {
                    Ok(m) if m.uid() == *uid && m.gid() == *gid => Outcome::pass("owner", expected),
                    Ok(m) => Outcome::fail("owner", expected, format!("{}:{}", m.uid(), m.gid())),
                    Err(e) => Outcome::fail("owner", expected, facts.stat_error(e)),
                }
            }
            FileAssertion::LinkTarget(want) => {
                let expected = text::show_head(want.as_bytes(), DETAIL_LIMIT);
                match &facts.lstat {
                    Ok(m) if m.file_type().is_symlink() => match fs::read_link(path) {
                        Ok(t) if t.as_os_str().as_bytes() == want.as_bytes() => {
                            Outcome::pass("link_target", expected)
                        }
                        Ok(t) => Outcome::fail(
                            "link_target",
                            expected,
                            text::show_head(t.as_os_str().as_bytes(), DETAIL_LIMIT),
                        ),
                        Err(e) => {
                            Outcome::fail("link_target", expected, format!("cannot be read ({e})"))
                        }
                    },
                    Ok(m) => Outcome::fail(
                        "link_target",
                        expected,
                        format!("not a symlink ({})", kind(m)),
                    ),
                    Err(e) => Outcome::fail("link_target", expected, missing(e)),
                }
            }
            FileAssertion::Content(t) => {
                let read = content.get_or_insert_with(|| fs::read(path));
                match (read, &facts.stat) {
                    (Ok(data), _) => assert::text("content", t, data),
                    (Err(_), Ok(m)) if m.is_dir() => {
                        let o = assert::text("content", t, b"");
                        Outcome::fail(o.name, o.expected, "a directory (no content)")
                    }
                    (Err(e), Err(se)) if e.kind() == io::ErrorKind::NotFound => {
                        let o = assert::text("content", t, b"");
                        Outcome::fail(o.name, o.expected, facts.stat_error(se))
                    }
                    (Err(e), _) => {
                        let o = assert::text("content", t, b"");
                        Outcome::fail(o.name, o.expected, format!("cannot be read ({e})"))
                    }
                }
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::spec::TextAssertion;

    fn check(
        path: &std::path::Path,
        assertions: Vec<FileAssertion>,
    ) -> Vec<(String, Option<String>)> {
        let spec = FileSpec {
            path: path.to_str().unwrap().to_owned(),
            assertions,
        };
        evaluate(&spec)
            .into_iter()
            .map(|o| (o.name, o.actual))
            .collect()
    }

    fn held(results: &[(String, Option<String>)]) -> Vec<bool> {
        results.iter().map(|(_, a)| a.is_none()).collect()
    }

    #[test]
    fn regular_file_facts() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, "hello\nworld\n").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o4750)).unwrap();
        let m = fs::metadata(&f).unwrap();
        let r = check(
            &f,
            vec![
                FileAssertion::Exists,
                FileAssertion::Mode(0o4750),
                FileAssertion::Owner(m.uid(), m.gid()),
                FileAssertion::Content(TextAssertion::StartsWith("hello".into())),
                FileAssertion::Content(TextAssertion::EndsWith("world\n".into())),
                FileAssertion::Absent,
                FileAssertion::IsDir,
                FileAssertion::Mode(0o755),
                FileAssertion::Owner(m.uid() + 1, m.gid()),
                FileAssertion::LinkTarget("x".into()),
                FileAssertion::Content(TextAssertion::Empty),
            ],
        );
        assert_eq!(
            held(&r),
            [
                true, true, true, true, true, false, false, false, false, false, false
            ]
        );
        assert_eq!(r[5].1.as_deref(), Some("exists (regular file)"));
        assert_eq!(r[6].1.as_deref(), Some("regular file"));
        assert_eq!(r[7].1.as_deref(), Some("4750"));
        assert_eq!(r[8].1, Some(format!("{}:{}", m.uid(), m.gid())));
        assert_eq!(r[9].1.as_deref(), Some("not a symlink (regular file)"));
        assert_eq!(r[10].1.as_deref(), Some("\"hello\\nworld\\n\""));
    }

    #[test]
    fn missing_paths_fail_every_assertion_but_absent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope");
        let r = check(
            &p,
            vec![
                FileAssertion::Absent,
                FileAssertion::Exists,
                FileAssertion::IsDir,
                FileAssertion::Mode(0o644),
                FileAssertion::Content(TextAssertion::Contains("x".into())),
                FileAssertion::LinkTarget("x".into()),
            ],
        );
        assert_eq!(held(&r), [true, false, false, false, false, false]);
        assert!(
            r[1..]
                .iter()
                .all(|(_, a)| a.as_deref() == Some("does not exist")),
            "{r:?}"
        );
        // No assertion at all means "exists".
        assert_eq!(
            check(&p, vec![]),
            [("exists".to_owned(), Some("does not exist".to_owned()))]
        );
    }

    #[test]
    fn symlinks_directories_and_dangling_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        fs::create_dir(&d).unwrap();
        let to_dir = dir.path().join("to_dir");
        symlink("d", &to_dir).unwrap();
        let dangling = dir.path().join("dangling");
        symlink("/nonexistent/target", &dangling).unwrap();

        let r = check(
            &to_dir,
            vec![FileAssertion::IsDir, FileAssertion::LinkTarget("d".into())],
        );
        assert_eq!(held(&r), [true, true]);
        let r = check(&to_dir, vec![FileAssertion::LinkTarget("e".into())]);
        assert_eq!(r[0].1.as_deref(), Some("\"d\""));

        let r = check(
            &dangling,
            vec![
                FileAssertion::Exists,
                FileAssertion::LinkTarget("/nonexistent/target".into()),
                FileAssertion::Absent,
                FileAssertion::Mode(0o777),
                FileAssertion::Content(TextAssertion::Empty),
            ],
        );
        assert_eq!(held(&r), [true, true, false, false, false]);
        assert_eq!(r[2].1.as_deref(), Some("exists (symlink)"));
        assert_eq!(r[3].1.as_deref(), Some("a dangling symlink"));
        assert_eq!(r[4].1.as_deref(), Some("a dangling symlink"));

        let r = check(
            &d,
            vec![
                FileAssertion::Content(TextAssertion::Empty),
                FileAssertion::Absent,
            ],
        );
        assert_eq!(r[0].1.as_deref(), Some("a directory (no content)"));
        assert_eq!(r[1].1.as_deref(), Some("exists (directory)"));
    }
}
