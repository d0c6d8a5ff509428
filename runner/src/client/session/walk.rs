//! Walking a local directory as fsutil's receiver expects it (pure: no daemon involved).
//!
//! - **Order**: pre-order depth first; a directory's entries sorted by the bytes of their names, so
//!   `a`, `a/x`, `a-b`, `a.txt` (a plain sort of full paths would put `a-b` before `a/x`, and the
//!   receiver fails with "changes out of order").
//! - **Stat**: `mode` holds Go `io/fs.FileMode` bits (not `st_mode`), `modTime` nanoseconds, numeric
//!   uid/gid, symlink targets in `linkname` (never followed), the second and later names of a
//!   hardlinked file as `linkname` = the first name with size 0, empty directories included.
//! - **Filters**: include and exclude patterns as fsutil's `filterFS` applies them: an entry is sent
//!   when it (or a parent) matches an include pattern and does not match the exclude patterns; the
//!   parent directories of a sent entry are sent first even when they were filtered out themselves;
//!   a directory no pattern can match inside is not descended into.
//! - **Errors** name the host path: a missing directory, an unreadable entry, a socket, fifo or device,
//!   a symlink whose relative target leaves the directory, a name that is not UTF-8.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::pattern::{PatternError, PatternMatcher, clean_path};
use crate::proto::fsutil::types::Stat;

/// Go `io/fs.ModeDir`.
pub const MODE_DIR: u32 = 1 << 31;
/// Go `io/fs.ModeSymlink`.
pub const MODE_SYMLINK: u32 = 1 << 27;
/// Go `io/fs.ModeSetuid`.
pub const MODE_SETUID: u32 = 1 << 23;
/// Go `io/fs.ModeSetgid`.
pub const MODE_SETGID: u32 = 1 << 22;
/// Go `io/fs.ModeSticky`.
pub const MODE_STICKY: u32 = 1 << 20;

/// Why a directory cannot be sent.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalkError {
    /// The directory does not exist.
    #[error("send local directory {}: it does not exist", .0.display())]
    MissingDir(PathBuf),
    /// The path exists but is not a directory.
    #[error("send local directory {}: it is not a directory", .0.display())]
    NotADir(PathBuf),
    /// An entry could not be read (listed, stat'ed, opened or read).
    #[error("read {}: {message}", path.display())]
    Unreadable {
        /// The host path.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// A socket, fifo or device inside the directory.
    #[error("send {}: it is a {kind}; exclude it with exclude_patterns", path.display())]
    Special {
        /// The host path.
        path: PathBuf,
        /// `socket`, `fifo`, `block device` or `character device`.
        kind: &'static str,
    },
    /// A symlink whose relative target leaves the directory.
    #[error(
        "send symlink {}: its target `{target}` points outside the directory",
        path.display()
    )]
    EscapingSymlink {
        /// The host path of the link.
        path: PathBuf,
        /// Its target.
        target: String,
    },
    /// A file name (or symlink target) that is not UTF-8, which the protocol cannot carry.
    #[error("send {}: the name is not valid UTF-8", path.display())]
    NonUtf8 {
        /// The host path (lossily decoded).
        path: PathBuf,
    },
    /// An include or exclude pattern is malformed.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

fn unreadable(path: &Path, e: &std::io::Error) -> WalkError {
    WalkError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Which entries to send.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
}

impl Filter {
    /// From the daemon's `include-patterns`, `exclude-patterns` and the already-resolved follow
    /// paths (see [`follow_paths`]), which count as include patterns. Empty lists filter nothing.
    pub fn new(
        include: &[String],
        exclude: &[String],
        follow: &[String],
    ) -> Result<Self, WalkError> {
        let mut includes: Vec<String> = include.to_vec();
        for f in follow {
            if !includes.contains(f) {
                includes.push(f.clone());
            }
        }
        let include = PatternMatcher::new(&includes)?;
        let exclude = PatternMatcher::new(exclude)?;
        Ok(Self {
            include: (!include.is_empty()).then_some(include),
            exclude: (!exclude.is_empty()).then_some(exclude),
        })
    }
}

/// One entry in walk order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What is sent.
    pub stat: Stat,
    /// For a regular file the receiver may request: its host path.
    pub file: Option<PathBuf>,
}

/// Resolve `followpaths` against `root`: each path, plus the targets of symlinks on the way (within
/// the directory), as fsutil's `FollowLinks` does.
pub fn follow_paths(root: &Path, paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        let mut current = clean_rel(p);
        for _ in 0..40 {
            push_unique(&mut out, &current);
            match resolve_once(root, &current) {
                Some(next) if next != current => current = next,
                _ => break,
            }
        }
    }
    out
}

fn push_unique(out: &mut Vec<String>, p: &str) {
    if !p.is_empty() && p != "." && !out.iter().any(|o| o == p) {
        out.push(p.to_owned());
    }
}

fn clean_rel(p: &str) -> String {
    clean_path(p).trim_start_matches('/').to_owned()
}

/// The first symlink among the components of `rel`, replaced by its target (cleaned, inside root).
fn resolve_once(root: &Path, rel: &str) -> Option<String> {
    let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    for i in 0..parts.len() {
        let prefix = parts[..=i].join("/");
        let md = std::fs::symlink_metadata(root.join(&prefix)).ok()?;
        if md.file_type().is_symlink() {
            let target = std::fs::read_link(root.join(&prefix)).ok()?;
            let target = target.to_str()?;
            let parent = parts[..i].join("/");
            let base = if target.starts_with('/') {
                target.to_owned()
            } else {
                format!("{parent}/{target}")
            };
            let rest = parts[i + 1..].join("/");
            let joined = if rest.is_empty() {
                base
            } else {
                format!("{base}/{rest}")
            };
            let cleaned = clean_path(&format!("/{joined}"));
            return Some(cleaned.trim_start_matches('/').to_owned());
        }
        if !md.is_dir() {
            return None;
        }
    }
    None
}

/// Go `io/fs.FileMode` bits for `md`.
pub fn go_mode(md: &Metadata) -> u32 {
    let raw = md.mode();
    let mut mode = raw & 0o777;
    if raw & 0o4000 != 0 {
        mode |= MODE_SETUID;
    }
    if raw & 0o2000 != 0 {
        mode |= MODE_SETGID;
    }
    if raw & 0o1000 != 0 {
        mode |= MODE_STICKY;
    }
    let ft = md.file_type();
    if ft.is_dir() {
        mode |= MODE_DIR;
    } else if ft.is_symlink() {
        mode |= MODE_SYMLINK;
    }
    mode
}

fn base_stat(rel: &str, md: &Metadata) -> Stat {
    let mtime = md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec();
    Stat {
        path: rel.to_owned(),
        mode: go_mode(md),
        uid: md.uid(),
        gid: md.gid(),
        size: if md.is_dir() {
            0
        } else {
            i64::try_from(md.len()).unwrap_or(i64::MAX)
        },
        mod_time: mtime,
        ..Stat::default()
    }
}

/// A directory on the way down, sent only once something below it is.
struct Pending {
    rel: String,
    host: PathBuf,
    md: Metadata,
    utf8: bool,
    sent: bool,
}

struct Walker<'a> {
    filter: &'a Filter,
    emit: &'a mut dyn FnMut(Entry) -> bool,
    parents: Vec<Pending>,
    /// (dev, ino) of multiply-linked regular files already sent → their path.
    links: HashMap<(u64, u64), String>,
}

/// Walk `root` in the order the receiver enforces and pass every entry to `emit`; `emit` returns
/// false to stop early. The root itself is not sent.
pub fn walk(
    root: &Path,
    filter: &Filter,
    emit: &mut dyn FnMut(Entry) -> bool,
) -> Result<(), WalkError> {
    match std::fs::metadata(root) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => return Err(WalkError::NotADir(root.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(WalkError::MissingDir(root.to_path_buf()));
        }
        Err(e) => return Err(unreadable(root, &e)),
    }
    let mut walker = Walker {
        filter,
        emit,
        parents: Vec::new(),
        links: HashMap::new(),
    };
    walker.dir("", root).map(|_| ())
}

impl Walker<'_> {
    /// Returns false when `emit` asked to stop.
    fn dir(&mut self, rel_dir: &str, host_dir: &Path) -> Result<bool, WalkError> {
        let reader = std::fs::read_dir(host_dir).map_err(|e| unreadable(host_dir, &e))?;
        let mut names: Vec<OsString> = Vec::new();
        for entry in reader {
            names.push(entry.map_err(|e| unreadable(host_dir, &e))?.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let host = host_dir.join(&name);
            let utf8 = name.to_str().is_some();
            let name = name.to_string_lossy();
            let rel = if rel_dir.is_empty() {
                name.into_owned()
            } else {
                format!("{rel_dir}/{name}")
            };
            let md = std::fs::symlink_metadata(&host).map_err(|e| unreadable(&host, &e))?;
            let is_dir = md.is_dir();
            let Some(skip) = self.decide(&rel, is_dir) else {
                continue;
            };
            if skip {
                if is_dir {
                    self.parents.push(Pending {
                        rel: rel.clone(),
                        host: host.clone(),
                        md,
                        utf8,
                        sent: false,
                    });
                    let go_on = self.dir(&rel, &host)?;
                    self.parents.pop();
                    if !go_on {
                        return Ok(false);
                    }
                }
                continue;
            }
            if !utf8 {
                return Err(WalkError::NonUtf8 { path: host });
            }
            let entry = self.entry(&rel, &host, &md)?;
            if !self.send_parents()? || !(self.emit)(entry) {
                return Ok(false);
            }
            if is_dir {
                self.parents.push(Pending {
                    rel: rel.clone(),
                    host: host.clone(),
                    md,
                    utf8,
                    sent: true,
                });
                let go_on = self.dir(&rel, &host)?;
                self.parents.pop();
                if !go_on {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// `None`: leave the entry (and its subtree) out. `Some(true)`: do not send it but look inside
    /// (a directory). `Some(false)`: send it.
    fn decide(&self, rel: &str, is_dir: bool) -> Option<bool> {
        let mut skip = false;
        let dir_slash = format!("{rel}/");
        if let Some(include) = &self.filter.include
            && !include.matches(rel)
        {
            if is_dir && include.only_prefixes(false) {
                let could_match = include
                    .prefixes(false)
                    .any(|p| format!("{p}/").starts_with(&dir_slash));
                if !could_match {
                    return None;
                }
            }
            skip = true;
        }
        if let Some(exclude) = &self.filter.exclude
            && exclude.matches(rel)
        {
            if is_dir && exclude.only_prefixes(true) {
                if !exclude.has_exclusions() {
                    return None;
                }
                let could_match = exclude
                    .prefixes(true)
                    .any(|p| format!("{p}/").starts_with(&dir_slash));
                if !could_match {
                    return None;
                }
            }
            skip = true;
        }
        if skip && !is_dir {
            return None;
        }
        Some(skip)
    }

    /// Send the parent directories not sent yet (outermost first).
    fn send_parents(&mut self) -> Result<bool, WalkError> {
        for i in 0..self.parents.len() {
            if self.parents[i].sent {
                continue;
            }
            let p = &self.parents[i];
            if !p.utf8 {
                return Err(WalkError::NonUtf8 {
                    path: p.host.clone(),
                });
            }
            let entry = Entry {
                stat: base_stat(&p.rel, &p.md),
                file: None,
            };
            self.parents[i].sent = true;
            if !(self.emit)(entry) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn entry(&mut self, rel: &str, host: &Path, md: &Metadata) -> Result<Entry, WalkError> {
        let ft = md.file_type();
        let mut stat = base_stat(rel, md);
        let special = |kind| WalkError::Special {
            path: host.to_path_buf(),
            kind,
        };
        if ft.is_socket() {
            return Err(special("socket"));
        }
        if ft.is_fifo() {
            return Err(special("fifo"));
        }
        if ft.is_block_device() {
            return Err(special("block device"));
        }
        if ft.is_char_device() {
            return Err(special("character device"));
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(host).map_err(|e| unreadable(host, &e))?;
            let Some(target) = target.to_str() else {
                return Err(WalkError::NonUtf8 {
                    path: host.to_path_buf(),
                });
            };
            if !target.starts_with('/') {
                let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
                let resolved = clean_path(&format!("{parent}/{target}"));
                let resolved = resolved.trim_start_matches('/');
                if resolved == ".." || resolved.starts_with("../") {
                    return Err(WalkError::EscapingSymlink {
                        path: host.to_path_buf(),
                        target: target.to_owned(),
                    });
                }
            }
            stat.linkname = target.to_owned();
            return Ok(Entry { stat, file: None });
        }
        if ft.is_file() {
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.links.get(&key) {
                    stat.linkname = first.clone();
                    stat.size = 0;
                    return Ok(Entry { stat, file: None });
                }
                self.links.insert(key, rel.to_owned());
            }
            return Ok(Entry {
                stat,
                file: Some(host.to_path_buf()),
            });
        }
        // A directory.
        Ok(Entry { stat, file: None })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn paths(root: &Path, filter: &Filter) -> Vec<String> {
        let mut out = Vec::new();
        walk(root, filter, &mut |e| {
            out.push(e.stat.path);
            true
        })
        .unwrap();
        out
    }

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rel).unwrap();
    }

    #[test]
    fn order_is_preorder_by_name_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.txt", "a-b", "a/x", "a/y/z", "b", "A", "a b"] {
            touch(dir.path(), f);
        }
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        assert_eq!(
            paths(dir.path(), &Filter::default()),
            [
                "A", "a", "a/x", "a/y", "a/y/z", "a b", "a-b", "a.txt", "b", "empty"
            ]
        );
    }

    #[test]
    fn stat_uses_go_file_mode_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "exe");
        std::fs::set_permissions(root.join("exe"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::set_permissions(root.join("d"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        symlink("exe", root.join("link")).unwrap();
        std::fs::hard_link(root.join("exe"), root.join("z-hard")).unwrap();
        let mut entries = Vec::new();
        walk(root, &Filter::default(), &mut |e| {
            entries.push(e);
            true
        })
        .unwrap();
        let by = |p: &str| entries.iter().find(|e| e.stat.path == p).unwrap().clone();
        assert_eq!(by("d").stat.mode, MODE_DIR | MODE_STICKY | 0o777);
        assert_eq!(by("d").stat.size, 0);
        let exe = by("exe");
        assert_eq!(exe.stat.mode, MODE_SETUID | 0o755);
        assert_eq!(exe.stat.size, 3);
        assert!(exe.file.is_some());
        assert!(exe.stat.mod_time > 1_000_000_000_000_000_000);
        let link = by("link");
        assert_eq!(link.stat.mode & MODE_SYMLINK, MODE_SYMLINK);
        assert_eq!(link.stat.linkname, "exe");
        assert!(link.file.is_none());
        let hard = by("z-hard");
        assert_eq!(hard.stat.linkname, "exe");
        assert_eq!(hard.stat.size, 0);
        assert!(hard.file.is_none());
    }

    #[test]
    fn include_sends_parents_and_skips_dirs_that_cannot_match() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "src/main.rs",
            "src/x/y.txt",
            "target/big",
            "README.md",
            "a.txt",
        ] {
            touch(dir.path(), f);
        }
        let f = Filter::new(&["src/x".into(), "*.md".into()], &[], &[]).unwrap();
        assert_eq!(
            paths(dir.path(), &f),
            ["README.md", "src", "src/x", "src/x/y.txt"]
        );
        let f = Filter::new(&["**/*.rs".into()], &[], &[]).unwrap();
        assert_eq!(paths(dir.path(), &f), ["src", "src/main.rs"]);
    }

    #[test]
    fn exclude_with_exceptions() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["target/keep/k", "target/drop", "src/a.rs", "src/b.o"] {
            touch(dir.path(), f);
        }
        let f = Filter::new(&[], &["target".into(), "*/*.o".into()], &[]).unwrap();
        assert_eq!(paths(dir.path(), &f), ["src", "src/a.rs"]);
        let f = Filter::new(&[], &["target".into(), "!target/keep".into()], &[]).unwrap();
        assert_eq!(
            paths(dir.path(), &f),
            [
                "src",
                "src/a.rs",
                "src/b.o",
                "target",
                "target/keep",
                "target/keep/k"
            ]
        );
    }

    #[test]
    fn follow_paths_add_link_targets() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "real/Dockerfile");
        touch(dir.path(), "other");
        symlink("real/Dockerfile", dir.path().join("Dockerfile")).unwrap();
        let follow = follow_paths(dir.path(), &["Dockerfile".into()]);
        assert_eq!(follow, ["Dockerfile", "real/Dockerfile"]);
        let f = Filter::new(&[], &[], &follow).unwrap();
        assert_eq!(
            paths(dir.path(), &f),
            ["Dockerfile", "real", "real/Dockerfile"]
        );
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let missing = root.join("nope");
        assert_eq!(
            walk(&missing, &Filter::default(), &mut |_| true),
            Err(WalkError::MissingDir(missing.clone()))
        );
        std::fs::create_dir(root.join("d")).unwrap();
        symlink("../../etc/passwd", root.join("d/out")).unwrap();
        let err = walk(root, &Filter::default(), &mut |_| true).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "send symlink {}: its target `../../etc/passwd` points outside the directory",
                root.join("d/out").display()
            )
        );
        // Excluded, it is fine; an absolute target is fine too.
        let f = Filter::new(&[], &["d/out".into()], &[]).unwrap();
        assert_eq!(paths(root, &f), ["d"]);
        std::fs::remove_file(root.join("d/out")).unwrap();
        symlink("/etc/passwd", root.join("d/abs")).unwrap();
        symlink("../d", root.join("d/inside")).unwrap();
        assert_eq!(paths(root, &Filter::default()), ["d", "d/abs", "d/inside"]);
        let bad = root.join(std::ffi::OsStr::from_bytes(b"bad\xff"));
        std::fs::write(&bad, "x").unwrap();
        assert_eq!(
            walk(root, &Filter::default(), &mut |_| true),
            Err(WalkError::NonUtf8 { path: bad.clone() })
        );
        std::fs::remove_file(&bad).unwrap();
        let sock = root.join("d/sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(
            walk(root, &Filter::default(), &mut |_| true)
                .unwrap_err()
                .to_string(),
            format!(
                "send {}: it is a socket; exclude it with exclude_patterns",
                sock.display()
            )
        );
    }
}
