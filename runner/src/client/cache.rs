//! BuildKit's cache export and import, as `--cache-to` / `--cache-from` entries in buildx's syntax,
//! and what a builder can do with them.
//!
//! | entry | direction | how |
//! |---|---|---|
//! | `type=local,dest=DIR` | export | the daemon writes an OCI layout into `DIR` through the client's session content store ([`super::session::ContentStores`]); the client then records the cache manifest in `DIR/index.json` under a tag |
//! | `type=local,src=DIR` | import | the daemon reads `DIR` through the same content store; every manifest in `DIR/index.json` (or only `tag=`'s) becomes one import |
//! | `type=registry,ref=NAME` | both | the daemon pushes / pulls `NAME` itself (`registry.insecure=true` for a plain-http registry) |
//! | `type=inline` | export | the cache travels inside an exported image's config (only with an image export) |
//!
//! Exports default to `mode=max` here (buildx's default is `min`): a check's exec is an intermediate
//! step of the graph that is exported, and only `max` keeps intermediate results.
//!
//! **Several suites**: every suite binary of a run exports on its own, so a `type=local` export is
//! tagged with the suite's name ([`CacheEntry::for_suite`]) instead of `latest`, and a `type=local`
//! import reads every tag of the layout: one directory holds the cache of every suite. In a
//! registry `ref`, `{suite}` stands for the suite's name (e.g. `ref=127.0.0.1:5000/ci/cache:{suite}`):
//! every suite then has its own ref; without it, the suites of one run overwrite each other's.
//!
//! **Which builders export**: a Docker engine with its default graph-driver image store exports no
//! cache at all (only imports); with the containerd image store it exports every kind. buildkitd
//! exports every kind. [`Client::cache_support`] asks the engine (`GET /info`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::control::Client;
use super::errors::ClientError;
use crate::proto::control::{CacheOptions, CacheOptionsEntry};

/// The kinds of cache entries this client understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CacheKind {
    /// `type=local`: an OCI layout directory on the client's machine.
    Local,
    /// `type=registry`: an image reference the daemon pushes to / pulls from.
    Registry,
    /// `type=inline`: the cache inside an exported image (export only).
    Inline,
}

impl CacheKind {
    /// The `type=` spelling.
    pub fn name(self) -> &'static str {
        match self {
            CacheKind::Local => "local",
            CacheKind::Registry => "registry",
            CacheKind::Inline => "inline",
        }
    }
}

impl fmt::Display for CacheKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether an entry is a `--cache-to` or a `--cache-from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheDirection {
    /// `--cache-to` / `BUILDTEST_CACHE_TO`.
    Export,
    /// `--cache-from` / `BUILDTEST_CACHE_FROM`.
    Import,
}

impl CacheDirection {
    fn flag(self) -> &'static str {
        match self {
            CacheDirection::Export => "--cache-to",
            CacheDirection::Import => "--cache-from",
        }
    }
}

/// One `--cache-to` / `--cache-from` entry: its kind and its attributes (`dest`, `src`, `ref`,
/// `mode`, `tag`, …, as buildx and BuildKit spell them; `type` is not among them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheEntry {
    /// `type=`.
    pub kind: CacheKind,
    /// The other attributes.
    pub attrs: BTreeMap<String, String>,
}

/// An entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CacheSpecError {
    /// Not `key=value[,key=value…]`.
    #[error("read the cache entry `{0}`: expected `key=value` pairs separated by commas")]
    Syntax(String),
    /// A `type=` this client does not support.
    #[error(
        "use the cache type `{kind}` in `{entry}`: supported are `local`, `registry` and `inline` (export only)"
    )]
    Kind {
        /// The type asked for.
        kind: String,
        /// The whole entry.
        entry: String,
    },
    /// A required attribute is missing.
    #[error("use the cache entry `{entry}`: {flag} type={kind} needs `{attr}=`")]
    Missing {
        /// The flag (direction).
        flag: &'static str,
        /// The kind.
        kind: CacheKind,
        /// The missing attribute.
        attr: &'static str,
        /// The whole entry.
        entry: String,
    },
    /// `type=inline` as an import.
    #[error(
        "use `{0}` as --cache-from: an inline cache is imported from the image that carries it, with type=registry,ref=IMAGE"
    )]
    InlineImport(String),
    /// `mode=` other than `min`/`max`.
    #[error("use the cache entry `{0}`: mode must be `min` or `max`")]
    Mode(String),
}

impl CacheEntry {
    /// Parses one entry in buildx's syntax: `type=local,dest=DIR`, `type=local,src=DIR`,
    /// `type=registry,ref=NAME[,mode=max]`, `type=inline`; a bare `NAME` (no `=`) is
    /// `type=registry,ref=NAME`, and an entry with `ref=` but no `type=` is a registry entry, as in
    /// buildx. Values cannot contain commas.
    pub fn parse(text: &str, direction: CacheDirection) -> Result<CacheEntry, CacheSpecError> {
        let text = text.trim();
        let entry = || text.to_owned();
        if text.is_empty() {
            return Err(CacheSpecError::Syntax(entry()));
        }
        let mut attrs = BTreeMap::new();
        if !text.contains('=') {
            attrs.insert("ref".to_owned(), text.to_owned());
            return Self::checked(CacheKind::Registry, attrs, text, direction);
        }
        let mut kind = None;
        for part in text.split(',') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(CacheSpecError::Syntax(entry()));
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim().to_owned();
            if key.is_empty() {
                return Err(CacheSpecError::Syntax(entry()));
            }
            if key == "type" {
                kind = Some(match value.as_str() {
                    "local" => CacheKind::Local,
                    "registry" => CacheKind::Registry,
                    "inline" => CacheKind::Inline,
                    _ => {
                        return Err(CacheSpecError::Kind {
                            kind: value,
                            entry: entry(),
                        });
                    }
                });
            } else {
                attrs.insert(key, value);
            }
        }
        let kind = match kind {
            Some(kind) => kind,
            None if attrs.contains_key("ref") => CacheKind::Registry,
            None => {
                return Err(CacheSpecError::Kind {
                    kind: String::new(),
                    entry: entry(),
                });
            }
        };
        Self::checked(kind, attrs, text, direction)
    }

    fn checked(
        kind: CacheKind,
        attrs: BTreeMap<String, String>,
        text: &str,
        direction: CacheDirection,
    ) -> Result<CacheEntry, CacheSpecError> {
        let need = |attr: &'static str| {
            if attrs.get(attr).is_some_and(|v| !v.is_empty()) {
                Ok(())
            } else {
                Err(CacheSpecError::Missing {
                    flag: direction.flag(),
                    kind,
                    attr,
                    entry: text.to_owned(),
                })
            }
        };
        match (kind, direction) {
            (CacheKind::Local, CacheDirection::Export) => need("dest")?,
            (CacheKind::Local, CacheDirection::Import) => need("src")?,
            (CacheKind::Registry, _) => need("ref")?,
            (CacheKind::Inline, CacheDirection::Import) => {
                return Err(CacheSpecError::InlineImport(text.to_owned()));
            }
            (CacheKind::Inline, CacheDirection::Export) => {}
        }
        if let Some(mode) = attrs.get("mode")
            && mode != "min"
            && mode != "max"
        {
            return Err(CacheSpecError::Mode(text.to_owned()));
        }
        Ok(CacheEntry { kind, attrs })
    }

    /// Several entries separated by `;` or newlines (how one variable carries a repeated flag).
    pub fn parse_list(
        text: &str,
        direction: CacheDirection,
    ) -> Result<Vec<CacheEntry>, CacheSpecError> {
        text.split([';', '\n'])
            .filter(|part| !part.trim().is_empty())
            .map(|part| CacheEntry::parse(part, direction))
            .collect()
    }

    /// The entries as [`CacheEntry::parse_list`] reads them back.
    pub fn format_list(entries: &[CacheEntry]) -> String {
        entries
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The local directory of a `type=local` entry (`dest` or `src`).
    pub fn local_dir(&self) -> Option<PathBuf> {
        if self.kind != CacheKind::Local {
            return None;
        }
        self.attrs
            .get("dest")
            .or_else(|| self.attrs.get("src"))
            .map(PathBuf::from)
    }

    /// The entry with a relative `dest`/`src` made absolute against `base`.
    pub fn absolute(mut self, base: &Path) -> CacheEntry {
        for key in ["dest", "src"] {
            if let Some(path) = self.attrs.get_mut(key)
                && Path::new(path.as_str()).is_relative()
            {
                *path = base.join(path.as_str()).display().to_string();
            }
        }
        self
    }

    /// The entry as one suite of a run uses it: a `type=local` export without `tag=` is tagged
    /// with the suite's name (`[A-Za-z0-9_.-]`, others become `-`), so the suites of one run can
    /// share a directory; `{suite}` in a registry `ref` becomes that name too (one ref per suite).
    pub fn for_suite(&self, suite: &str) -> CacheEntry {
        let mut entry = self.clone();
        if let Some(reference) = entry.attrs.get_mut("ref") {
            *reference = reference.replace("{suite}", &suite_tag(suite));
        }
        if entry.kind == CacheKind::Local && entry.attrs.contains_key("dest") {
            entry
                .attrs
                .entry("tag".to_owned())
                .or_insert_with(|| suite_tag(suite));
        }
        entry
    }
}

impl fmt::Display for CacheEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "type={}", self.kind)?;
        for (k, v) in &self.attrs {
            write!(f, ",{k}={v}")?;
        }
        Ok(())
    }
}

/// A tag for an OCI layout's `index.json` from a suite name.
pub fn suite_tag(suite: &str) -> String {
    let tag: String = suite
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if tag.is_empty() {
        "latest".to_owned()
    } else {
        tag
    }
}

/// What a builder can do with cache entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSupport {
    /// It can export cache (every kind).
    pub export: bool,
    /// Why not, for the error message (the image store, …).
    pub note: String,
}

/// A cache entry the builder cannot use: found before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("export cache `{entry}` with the builder {builder}: {note}")]
pub struct CacheUnsupported {
    /// The builder.
    pub builder: String,
    /// The entry.
    pub entry: String,
    /// Why.
    pub note: String,
}

impl CacheSupport {
    /// The first export in `exports` this builder cannot do, as an error. `type=inline` is
    /// refused on every builder: the inline cache travels inside an exported image, and a check
    /// run exports none.
    pub fn check(&self, builder: &str, exports: &[CacheEntry]) -> Result<(), CacheUnsupported> {
        let refuse = |entry: &CacheEntry, note: String| {
            Err(CacheUnsupported {
                builder: builder.to_owned(),
                entry: entry.to_string(),
                note,
            })
        };
        if let Some(inline) = exports.iter().find(|e| e.kind == CacheKind::Inline) {
            return refuse(
                inline,
                "an inline cache travels inside an exported image, and checks export none; use \
                 type=local,dest=DIR or type=registry,ref=NAME"
                    .to_owned(),
            );
        }
        match exports.first() {
            Some(entry) if !self.export => refuse(
                entry,
                format!(
                    "{}; it can only import cache (--cache-from). Export from a Docker engine with the \
                     containerd image store (daemon.json {{\"features\":{{\"containerd-snapshotter\":true}}}}, \
                     e.g. scripts/builders.sh's docker26c) or from a buildkitd",
                    self.note
                ),
            ),
            _ => Ok(()),
        }
    }
}

impl Client {
    /// What this builder can do with cache: a buildkitd exports every kind; a Docker engine only
    /// with the containerd image store (`GET /info`: `DriverStatus` `driver-type` =
    /// `io.containerd.snapshotter.v1`).
    pub async fn cache_support(&self) -> Result<CacheSupport, ClientError> {
        if !self.is_docker_engine() {
            return Ok(CacheSupport {
                export: true,
                note: "a buildkitd".to_owned(),
            });
        }
        let info = self.docker_info().await?;
        let driver = info
            .get("Driver")
            .and_then(|d| d.as_str())
            .unwrap_or("unknown")
            .to_owned();
        let containerd = info
            .get("DriverStatus")
            .and_then(|s| s.as_array())
            .is_some_and(|rows| {
                rows.iter().any(|row| {
                    row.get(1)
                        .and_then(|v| v.as_str())
                        .is_some_and(|v| v.starts_with("io.containerd.snapshotter"))
                })
            });
        Ok(if containerd {
            CacheSupport {
                export: true,
                note: format!("the containerd image store (snapshotter {driver})"),
            }
        } else {
            CacheSupport {
                export: false,
                note: format!(
                    "the Docker engine uses the graph-driver image store ({driver}), which cannot export cache"
                ),
            }
        })
    }
}

/// The cache options of a solve, as the daemon takes them.
pub fn cache_options(imports: &[CacheEntry], exports: &[CacheEntry]) -> CacheOptions {
    let wire = |e: &CacheEntry| CacheOptionsEntry {
        r#type: e.kind.name().to_owned(),
        attrs: e.attrs.clone(),
    };
    CacheOptions {
        exports: exports
            .iter()
            .map(|e| {
                let mut w = wire(e);
                if e.kind != CacheKind::Inline {
                    w.attrs
                        .entry("mode".to_owned())
                        .or_insert_with(|| "max".to_owned());
                }
                // The tag is the client's business (index.json), not the daemon's.
                if e.kind == CacheKind::Local {
                    w.attrs.remove("tag");
                }
                w
            })
            .collect(),
        imports: imports.iter().map(wire).collect(),
    }
}

/// An OCI layout's `index.json` as far as caches need it: manifest descriptors with their
/// `org.opencontainers.image.ref.name` tag.
pub mod layout {
    use std::path::Path;

    use serde_json::{Value, json};

    /// The annotation naming a manifest's tag.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

    /// A layout could not be read or written.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum LayoutError {
        /// I/O.
        #[error("{what} {path}")]
        Io {
            /// What was done.
            what: &'static str,
            /// The file.
            path: String,
            /// The cause.
            #[source]
            source: std::io::Error,
        },
        /// Not JSON, or not an index.
        #[error("read {path}: not an OCI image index ({why})")]
        Format {
            /// The file.
            path: String,
            /// Why.
            why: String,
        },
    }

    fn io<'a>(
        what: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> LayoutError + 'a {
        move |source| LayoutError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }

    /// The manifests of `dir/index.json` as `(tag, digest)` (tag empty when unnamed); an empty
    /// list when the file does not exist.
    pub fn manifests(dir: &Path) -> Result<Vec<(String, String)>, LayoutError> {
        let path = dir.join("index.json");
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let format = |why: String| LayoutError::Format {
            path: path.display().to_string(),
            why,
        };
        let index: Value = serde_json::from_slice(&text).map_err(|e| format(e.to_string()))?;
        let list = index
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| format("no `manifests` list".to_owned()))?;
        Ok(list
            .iter()
            .filter_map(|m| {
                let digest = m.get("digest")?.as_str()?.to_owned();
                let tag = m
                    .get("annotations")
                    .and_then(|a| a.get(REF_NAME))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                Some((tag, digest))
            })
            .collect())
    }

    /// Records `descriptor` (the daemon's `cache.manifest` JSON) under `tag` in `dir/index.json`,
    /// replacing the tag's earlier manifest and keeping the others; writes `dir/oci-layout` too.
    /// The file is replaced atomically (written beside, then renamed).
    pub fn put(dir: &Path, tag: &str, descriptor: &str) -> Result<(), LayoutError> {
        let path = dir.join("index.json");
        let mut desc: Value =
            serde_json::from_str(descriptor).map_err(|e| LayoutError::Format {
                path: "the daemon's cache.manifest".to_owned(),
                why: e.to_string(),
            })?;
        if let Some(obj) = desc.as_object_mut() {
            let annotations = obj.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = annotations.as_object_mut() {
                a.insert(REF_NAME.to_owned(), json!(tag));
            }
        }
        let mut index = match std::fs::read(&path) {
            Ok(text) => serde_json::from_slice::<Value>(&text).unwrap_or(Value::Null),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Null,
            Err(e) => return Err(io("read", &path)(e)),
        };
        if !index.is_object() {
            index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []});
        }
        let mut manifests: Vec<Value> = index
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        manifests.retain(|m| {
            m.get("annotations")
                .and_then(|a| a.get(REF_NAME))
                .and_then(Value::as_str)
                != Some(tag)
        });
        manifests.push(desc);
        index["manifests"] = Value::Array(manifests);
        let tmp = dir.join(format!(".index.json.{}", std::process::id()));
        let bytes = serde_json::to_vec(&index).map_err(|e| LayoutError::Format {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("replace", &path))?;
        // Committed blobs leave their (then empty) ingest directory behind.
        let _ = std::fs::remove_dir(dir.join("ingest"));
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(io("write", &marker))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn buildx_forms_parse() {
        let e = CacheEntry::parse("type=local,dest=/tmp/c", CacheDirection::Export).unwrap();
        assert_eq!(e.kind, CacheKind::Local);
        assert_eq!(e.attrs["dest"], "/tmp/c");
        let e = CacheEntry::parse(
            "type=registry,ref=127.0.0.1:5000/c:t,mode=max",
            CacheDirection::Export,
        )
        .unwrap();
        assert_eq!(e.kind, CacheKind::Registry);
        assert_eq!(
            e.to_string(),
            "type=registry,mode=max,ref=127.0.0.1:5000/c:t"
        );
        let e = CacheEntry::parse("127.0.0.1:5000/c:t", CacheDirection::Import).unwrap();
        assert_eq!(e.kind, CacheKind::Registry);
        assert!(CacheEntry::parse("type=inline", CacheDirection::Export).is_ok());
        let list = CacheEntry::parse_list(
            "type=local,src=/a; type=registry,ref=r\n",
            CacheDirection::Import,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            CacheEntry::parse_list(&CacheEntry::format_list(&list), CacheDirection::Import)
                .unwrap(),
            list
        );
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let err = CacheEntry::parse("type=local,src=/a", CacheDirection::Export).unwrap_err();
        assert_eq!(
            err.to_string(),
            "use the cache entry `type=local,src=/a`: --cache-to type=local needs `dest=`"
        );
        let err = CacheEntry::parse("type=gha", CacheDirection::Export).unwrap_err();
        assert!(err.to_string().contains("`gha`"), "{err}");
        assert!(matches!(
            CacheEntry::parse("type=inline", CacheDirection::Import),
            Err(CacheSpecError::InlineImport(_))
        ));
        assert!(matches!(
            CacheEntry::parse("type=registry,ref=r,mode=all", CacheDirection::Export),
            Err(CacheSpecError::Mode(_))
        ));
        assert!(matches!(
            CacheEntry::parse("type=local,dest", CacheDirection::Export),
            Err(CacheSpecError::Syntax(_))
        ));
    }

    #[test]
    fn exports_default_to_max_and_local_tags_stay_on_the_client() {
        let e = CacheEntry::parse("type=local,dest=/d", CacheDirection::Export)
            .unwrap()
            .for_suite("pkg::suite one");
        assert_eq!(e.attrs["tag"], "pkg--suite-one");
        let r = CacheEntry::parse("type=registry,ref=h:5000/c:{suite}", CacheDirection::Import)
            .unwrap()
            .for_suite("p::s");
        assert_eq!(r.attrs["ref"], "h:5000/c:p--s");
        let o = cache_options(&[], &[e]);
        assert_eq!(
            o.exports[0].attrs.get("mode").map(String::as_str),
            Some("max")
        );
        assert!(!o.exports[0].attrs.contains_key("tag"));
    }

    #[test]
    fn graph_driver_engines_refuse_exports_before_anything_runs() {
        let support = CacheSupport {
            export: false,
            note: "the graph-driver store".into(),
        };
        let e = CacheEntry::parse("type=local,dest=/d", CacheDirection::Export).unwrap();
        let err = support.check("docker+unix:///x", &[e]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("docker+unix:///x"), "{text}");
        assert!(text.contains("type=local"), "{text}");
        assert!(text.contains("containerd-snapshotter"), "{text}");
        assert!(support.check("b", &[]).is_ok());
        let inline = CacheEntry::parse("type=inline", CacheDirection::Export).unwrap();
        let able = CacheSupport {
            export: true,
            note: "a buildkitd".into(),
        };
        let err = able.check("b", &[inline]).unwrap_err().to_string();
        assert!(err.contains("inside an exported image"), "{err}");
    }

    #[test]
    fn the_index_keeps_one_manifest_per_tag() {
        let dir = tempfile::tempdir().unwrap();
        let d1 = r#"{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:aa","size":1}"#;
        let d2 = r#"{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:bb","size":1}"#;
        layout::put(dir.path(), "a", d1).unwrap();
        layout::put(dir.path(), "b", d1).unwrap();
        layout::put(dir.path(), "a", d2).unwrap();
        let mut m = layout::manifests(dir.path()).unwrap();
        m.sort();
        assert_eq!(
            m,
            vec![
                ("a".to_owned(), "sha256:bb".to_owned()),
                ("b".to_owned(), "sha256:aa".to_owned())
            ]
        );
        assert!(dir.path().join("oci-layout").exists());
        assert!(
            layout::manifests(&dir.path().join("none"))
                .unwrap()
                .is_empty()
        );
    }
}
