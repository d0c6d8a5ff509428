//! Host directories as inputs: [`State::local_dir`], the `cargo_bin!` support
//! function, and [`LocalSource`], the list of local sources a runner serves.
//!
//! # Names
//!
//! A local source is `local://NAME` plus attrs; the client's session serves
//! the directory under NAME. [`State::local_dir`] derives NAME from the
//! directory's path alone, so a runner maps every local source of a
//! marshalled definition back to its host directory without any side table:
//!
//! - NAME is `dir=` followed by the path, lexically normalized as Go's
//!   `filepath.Clean` does (`./a//b/` → `a/b`, `a/../b` → `b`, `` → `.`) and
//!   percent-encoded byte by byte: ASCII letters, digits and `-._~/` stay,
//!   every other byte becomes `%XX` (upper-case hex). So NAME is printable
//!   ASCII (it travels in a gRPC header), never holds a `:` (BuildKit builds
//!   keys by joining with `:` and splits session ids on it), and two
//!   different normalized paths never share a NAME. A relative path is made
//!   absolute against the current directory when the state is built (cargo
//!   sets it to the package root for tests), so the op digest is the same in
//!   every run and process of one checkout, and two directories never share
//!   one (BuildKit merges equal vertices of concurrent solves, whichever
//!   session then serves the transfer).
//! - A path that is not UTF-8 is encoded from its bytes on Unix; elsewhere it
//!   is an error at marshal time ([`LlbError::NonUtf8LocalPath`]).
//! - `local.sharedkeyhint` is `buildtest`, or `buildtest-` and 16 hex digits
//!   of the SHA-256 of the include, exclude and follow lists when any is set:
//!   the daemon keeps one incremental-transfer snapshot per NAME and hint, so
//!   two filters of one directory (two `cargo_bin!` of one target directory)
//!   each keep their own warm snapshot instead of replacing each other's.
//! - No `local.session` and no `local.unique` are written: the daemon then
//!   uses the solve's session, and equal local sources share one op digest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::error::LlbError;
use super::marshal::Definition;
use super::source::{LocalOptions, SourceOp};
use super::state::{OpKind, State};
use crate::proto::pb;

/// Prefix of the names [`State::local_dir`] gives its sources.
const DIR_NAME_PREFIX: &str = "dir=";

/// Identifier scheme of local sources.
const LOCAL_SCHEME: &str = "local://";

/// One local source of a graph: the name the session serves it under, the
/// host directory it stands for, and the filters the daemon will ask for.
///
/// Listed by [`State::local_sources`], [`Definition::local_sources`](super::Definition::local_sources)
/// and [`local_sources`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalSource {
    /// The source's name: `local://NAME` and the `dir-name` the daemon asks
    /// the session for.
    pub name: String,
    /// The host directory, as given to [`State::local_dir`] (normalized; a
    /// relative path is relative to the current directory). `None` for a
    /// source whose name was not made by `local_dir` (`State::local("ctx")`,
    /// or a foreign definition's): the runner has no directory for it.
    pub path: Option<PathBuf>,
    /// `local.includepattern`: only paths matching these are sent.
    pub include_patterns: Vec<String>,
    /// `local.excludepatterns`: paths matching these are not sent.
    pub exclude_patterns: Vec<String>,
    /// `local.followpaths`: paths (and symlink targets) to send.
    pub follow_paths: Vec<String>,
    /// `local.sharedkeyhint`, when set.
    pub shared_key_hint: Option<String>,
    /// `local.session`, when set (otherwise the solve's session serves it).
    pub session_id: Option<String>,
}

impl LocalSource {
    /// Reads a `pb.SourceOp`'s identifier and attrs; `Ok(None)` when it is not
    /// a local source.
    pub(crate) fn from_source(
        identifier: &str,
        attrs: &BTreeMap<String, String>,
    ) -> Result<Option<Self>, LlbError> {
        let Some(name) = identifier.strip_prefix(LOCAL_SCHEME) else {
            return Ok(None);
        };
        let list = |key: &str| -> Result<Vec<String>, LlbError> {
            match attrs.get(key) {
                None => Ok(Vec::new()),
                Some(json) => serde_json::from_str(json).map_err(|_| LlbError::InvalidLocalAttr {
                    name: name.to_owned(),
                    key: key.to_owned(),
                }),
            }
        };
        Ok(Some(Self {
            name: name.to_owned(),
            path: dir_name_path(name),
            include_patterns: list("local.includepattern")?,
            exclude_patterns: list("local.excludepatterns")?,
            follow_paths: list("local.followpaths")?,
            shared_key_hint: attrs.get("local.sharedkeyhint").cloned(),
            session_id: attrs.get("local.session").cloned(),
        }))
    }
}

/// Lexically cleans a `/`-separated path as Go's `path.Clean` does: no empty
/// or `.` components, `..` cancels the component before it (and is dropped at
/// the root), no trailing slash, `.` for nothing.
fn clean(path: &[u8]) -> Vec<u8> {
    let rooted = path.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|last| *last != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(part);
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    if rooted {
        out.push(b'/');
    }
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

fn keeps(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/')
}

/// `dir=` + the percent-encoded bytes of a cleaned path.
fn encode_dir_name(clean_path: &[u8]) -> String {
    let mut name = String::from(DIR_NAME_PREFIX);
    for &byte in clean_path {
        if keeps(byte) {
            name.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            name.push('%');
            name.push(char::from(HEX[usize::from(byte >> 4)]));
            name.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    name
}

/// The path a `dir=` name stands for, when the name is exactly what
/// [`encode_dir_name`] makes for a cleaned path (so the mapping is one-to-one).
fn dir_name_path(name: &str) -> Option<PathBuf> {
    let encoded = name.strip_prefix(DIR_NAME_PREFIX)?.as_bytes();
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        let byte = encoded[i];
        if byte == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            if !hex
                .iter()
                .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h))
            {
                return None;
            }
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            if keeps(value) {
                return None;
            }
            bytes.push(value);
            i += 3;
        } else if keeps(byte) {
            bytes.push(byte);
            i += 1;
        } else {
            return None;
        }
    }
    if clean(&bytes) != bytes {
        return None;
    }
    path_from_bytes(bytes)
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt as _;
    Some(path.as_os_str().as_bytes().to_vec())
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Option<Vec<u8>> {
    path.to_str().map(|s| s.replace('\\', "/").into_bytes())
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt as _;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    String::from_utf8(bytes).ok().map(PathBuf::from)
}

/// The stable `local.sharedkeyhint` for a source with these filters.
fn shared_key_hint(options: &LocalOptions) -> String {
    let (include, exclude, follow) = options.filters();
    if include.is_empty() && exclude.is_empty() && follow.is_empty() {
        return "buildtest".to_owned();
    }
    let mut hasher = Sha256::new();
    for (tag, list) in [
        ("include", include),
        ("exclude", exclude),
        ("follow", follow),
    ] {
        hasher.update(tag.as_bytes());
        hasher.update([0]);
        for item in list {
            hasher.update((item.len() as u64).to_le_bytes());
            hasher.update(item.as_bytes());
        }
    }
    let digest = hex::encode(hasher.finalize());
    format!("buildtest-{}", &digest[..16])
}

impl State {
    /// The contents of a host directory, sent to the builder by the runner's
    /// session when a check needs it (`local://dir=PATH`).
    ///
    /// The directory is not read (nor checked to exist) until the run. A
    /// relative `path` is made absolute here, against the current directory
    /// (cargo sets it to the package root for tests): the source's name holds
    /// the absolute path, so two packages' `tests/data` are two sources with
    /// two digests (BuildKit lets concurrent solves share a vertex of the
    /// same digest, whichever session serves it). The path is normalized
    /// lexically, so `./tests/data/` and `tests/data` are one source with one
    /// digest. The source's name is `dir=` and the path, percent-encoded (see
    /// [Local inputs](crate::llb#local-inputs-local_dir-cargo_bin-local_sources)).
    ///
    /// ```
    /// use buildtest::llb::{FileAction, Platform, State};
    ///
    /// let data = State::local_dir("/srv/tests/data");
    /// let input = State::image("alpine:3.20")
    ///     .file(FileAction::copy(&data, "/", "/srv/data"));
    /// let sources = input.local_sources()?;
    /// assert_eq!(sources[0].name, "dir=/srv/tests/data");
    /// assert_eq!(sources[0].path.as_deref(), Some("/srv/tests/data".as_ref()));
    ///
    /// let relative = State::local_dir("tests/data").local_sources()?;
    /// let cwd = std::env::current_dir().expect("a current directory");
    /// assert_eq!(relative[0].path, Some(cwd.join("tests/data")));
    /// # Ok::<(), buildtest::llb::LlbError>(())
    /// ```
    pub fn local_dir(path: impl AsRef<Path>) -> State {
        Self::local_dir_with(path, LocalOptions::default())
    }

    /// [`State::local_dir`] with include / exclude patterns (`.dockerignore`
    /// syntax) or follow paths. A `shared_key_hint` given in `options` is
    /// kept; otherwise a stable one is derived from the filters.
    pub fn local_dir_with(path: impl AsRef<Path>, options: LocalOptions) -> State {
        let path = path.as_ref();
        let absolute;
        let path = match std::env::current_dir() {
            Ok(cwd) if path.is_relative() => {
                absolute = cwd.join(path);
                absolute.as_path()
            }
            _ => path,
        };
        let Some(bytes) = path_bytes(path) else {
            return State::invalid(LlbError::NonUtf8LocalPath {
                path: path.to_string_lossy().into_owned(),
            });
        };
        let name = encode_dir_name(&clean(&bytes));
        let options = if options.has_shared_key_hint() {
            options
        } else {
            let hint = shared_key_hint(&options);
            options.shared_key_hint(hint)
        };
        State::local_with(&name, options)
    }

    /// The local sources this state's graph reads, each once, in the order
    /// `marshal` emits them (ops made by [`State::from_definition`] included).
    /// Sources that carry an error are skipped: `marshal` reports them.
    pub fn local_sources(&self) -> Result<Vec<LocalSource>, LlbError> {
        self.collect_local_sources()
    }

    /// Whether this state *is* a local source (its head op is `local://…`), rather than a graph
    /// that reads one.
    pub fn is_local_source(&self) -> bool {
        self.output
            .as_ref()
            .is_some_and(|head| match &head.vertex.op {
                OpKind::Source(op) => matches!(op.local_source(), Ok(Some(_))),
                _ => false,
            })
    }

    fn collect_local_sources(&self) -> Result<Vec<LocalSource>, LlbError> {
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<LocalSource> = Vec::new();
        let mut stack = Vec::new();
        if let Some(head) = &self.output {
            stack.push((head.vertex.clone(), false));
        }
        while let Some((vertex, expanded)) = stack.pop() {
            let key = std::sync::Arc::as_ptr(&vertex) as usize;
            if seen.contains(&key) {
                continue;
            }
            if !expanded {
                stack.push((vertex.clone(), true));
                for input in vertex.inputs().into_iter().rev() {
                    stack.push((input.vertex.clone(), false));
                }
                continue;
            }
            seen.insert(key);
            let found = match &vertex.op {
                OpKind::Source(op) => op.local_source()?,
                OpKind::Raw(op) => op.local_source()?,
                _ => None,
            };
            if let Some(source) = found
                && !out.contains(&source)
            {
                out.push(source);
            }
        }
        Ok(out)
    }
}

impl SourceOp {
    pub(crate) fn local_source(&self) -> Result<Option<LocalSource>, LlbError> {
        LocalSource::from_source(&self.identifier, &self.attrs)
    }
}

impl Definition {
    /// The local sources of this definition, each once, in `def` order (see
    /// [`local_sources`]).
    pub fn local_sources(&self) -> Result<Vec<LocalSource>, LlbError> {
        local_sources_of(self.op_bytes())
    }
}

/// The local sources of a `pb.Definition` (for example the one a solve
/// sends), each once, in `def` order: what the runner must serve for it. Each
/// one's [`LocalSource::path`] is the host directory, or `None` when the
/// name was not made by [`State::local_dir`].
///
/// ```
/// use buildtest::llb::{LocalOptions, Platform, State, local_sources};
///
/// let src = State::local_dir_with("/work/./src/", LocalOptions::new().exclude_patterns(["*.tmp"]));
/// let def = src.marshal(&Platform::linux_amd64())?.into_proto();
/// let sources = local_sources(&def)?;
/// assert_eq!(sources.len(), 1);
/// assert_eq!(sources[0].name, "dir=/work/src");
/// assert_eq!(sources[0].path.as_deref(), Some("/work/src".as_ref()));
/// assert_eq!(sources[0].exclude_patterns, ["*.tmp"]);
/// # Ok::<(), buildtest::llb::LlbError>(())
/// ```
pub fn local_sources(definition: &pb::Definition) -> Result<Vec<LocalSource>, LlbError> {
    local_sources_of(definition.def.iter().map(|b| b.as_ref()))
}

fn local_sources_of<'a>(ops: impl Iterator<Item = &'a [u8]>) -> Result<Vec<LocalSource>, LlbError> {
    use prost::Message as _;
    let mut out: Vec<LocalSource> = Vec::new();
    for bytes in ops {
        let op = pb::Op::decode(bytes).map_err(|e| LlbError::Decode {
            reason: e.to_string(),
        })?;
        if let Some(pb::op::Op::Source(source)) = &op.op {
            let attrs: BTreeMap<String, String> = source
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if let Some(found) = LocalSource::from_source(&source.identifier, &attrs)?
                && !out.contains(&found)
            {
                out.push(found);
            }
        }
    }
    Ok(out)
}

/// What `buildtest::cargo_bin!(name)` expands to, with `exe` the value of
/// `CARGO_BIN_EXE_<name>`: the binary's directory with an include pattern
/// that matches exactly the binary's file name, so the state holds
/// `/<file name>` and nothing else (not `<name>.d`, `deps/`, or other
/// binaries).
#[doc(hidden)]
pub fn cargo_bin(name: &str, exe: &str) -> State {
    let exe = Path::new(exe);
    let (Some(dir), Some(file)) = (exe.parent(), exe.file_name()) else {
        return State::invalid(LlbError::InvalidCargoBin {
            name: name.to_owned(),
            path: exe.display().to_string(),
        });
    };
    let Some(file) = file.to_str() else {
        return State::invalid(LlbError::InvalidCargoBin {
            name: name.to_owned(),
            path: exe.display().to_string(),
        });
    };
    State::local_dir_with(
        dir,
        LocalOptions::new().include_patterns([literal_pattern(file)]),
    )
    .custom_name(format!("cargo binary {name}"))
}

/// A `.dockerignore` pattern matching exactly `name` (one path component):
/// the pattern metacharacters `* ? [ ] \` are escaped with `\`, and so is a
/// leading `!` (which would make it an exclusion).
pub(crate) fn literal_pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    for (i, c) in name.chars().enumerate() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') || (i == 0 && c == '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("a", "a"),
            ("./a//b/", "a/b"),
            ("a/./b/.", "a/b"),
            ("a/../b", "b"),
            ("a/..", "."),
            ("../a", "../a"),
            ("../../a/..", "../.."),
            ("/", "/"),
            ("/..", "/"),
            ("/a/../../b", "/b"),
            ("//a///b", "/a/b"),
        ] {
            assert_eq!(
                String::from_utf8(clean(input.as_bytes())).expect("utf-8"),
                want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn names_round_trip_and_are_header_safe() {
        for path in [
            "tests/data",
            "/work/target/debug",
            ".",
            "a b:c%d=e",
            "é/ü",
            "x\u{1}y",
        ] {
            let name = encode_dir_name(&clean(path.as_bytes()));
            assert!(!name.contains(':'), "{name}");
            assert!(name.bytes().all(|b| (0x21..0x7f).contains(&b)), "{name}");
            assert_eq!(
                dir_name_path(&name),
                Some(PathBuf::from(
                    String::from_utf8(clean(path.as_bytes())).expect("utf-8")
                )),
                "{name}"
            );
        }
        assert_eq!(encode_dir_name(b"a b:c"), "dir=a%20b%3Ac");
    }

    #[test]
    fn only_canonical_names_map_to_paths() {
        for name in [
            "context",
            "dir=a%3a",
            "dir=a%41",
            "dir=a%4",
            "dir=a b",
            "dir=a/./b",
            "dir=a/",
            "dir=",
        ] {
            assert_eq!(dir_name_path(name), None, "{name}");
        }
        assert_eq!(dir_name_path("dir=."), Some(PathBuf::from(".")));
    }

    #[test]
    fn literal_patterns_escape_metacharacters() {
        assert_eq!(literal_pattern("greet"), "greet");
        assert_eq!(literal_pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(literal_pattern("!x!"), "\\!x!");
    }
}
