//! [`Export`]: what a test ships when every one of its checks passes — gated exports.
//!
//! A test declares exports with [`Test::export`](crate::Test::export); they are performed only by
//! `cargo buildtest --export` (or `BUILDTEST_EXPORT=1` for `cargo test`): a plain run, `cargo test`
//! and IDE runs only check. With a filter, only the selected tests export.
//!
//! **The gate.** A test's exports run after its checks, and only when every check passed: each
//! export is one more solve of the test's input (fully cached, since the checks just built it),
//! with the exporter attached.
//! - On a builder with `passthroughop` the exported graph is `input.requires("<test>/export",
//!   [every check])`: BuildKit itself cannot produce the artifact unless every check passes (the
//!   checks are cache hits from the check solves), and the output is the input, byte for byte.
//! - On older builders (the Docker engines here: BuildKit v0.8.3 and v0.13.2) the gate is the
//!   runner's (*legacy gate*, said in the run's output): the `discard` technique would export the
//!   no-op exec's layer instead of the input's bytes, and `mergediff` needs merge/diff ops that a
//!   graph-driver Docker engine refuses; so the runner exports the very input definition whose
//!   checks it has just seen pass (the same digests, answered from the cache).
//!
//! **Image config.** An input carrying an image config ([`State::with_image_config`]) is exported
//! with it: the export is then a gateway build returning the input with `containerimage.config`
//! in the result's metadata (the `moby` exporter ignores it as an exporter attribute).
//!
//! [`State::with_image_config`]: crate::llb::State::with_image_config
//!
//! **Nothing leaks.** A failing or erroring check means no export (no image tag, no file); the
//! export's record names the checks that blocked it. Files are written to a temporary sibling
//! and renamed into place when complete.
//!
//! Relative paths are relative to the workspace root ([`workspace_root`]: found from
//! `CARGO_MANIFEST_DIR` upwards, which cargo and `cargo buildtest` both set for a suite binary).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::client::ExportTarget;

/// One gated export of a test's input.
///
/// ```no_run
/// use buildtest::prelude::*;
///
/// #[buildtest::test]
/// fn app_image() -> Test {
///     Test::on(State::image("buildtest/busybox:latest"))
///         .check(file("/bin/sh").exists())
///         .export(Export::image("myapp:tested"))
///         .export(Export::docker_tar("target/myapp.tar"))
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    kind: ExportKind,
}

/// What an [`Export`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportKind {
    /// An image: into a Docker engine's image store under this name, or pushed by a buildkitd
    /// to the registry the name points at.
    Image(String),
    /// An OCI image-layout tar archive at this path.
    OciTar(PathBuf),
    /// A `docker save`-layout tar archive at this path (loadable with `docker load`).
    DockerTar(PathBuf),
    /// The input's filesystem, as a directory at this path.
    LocalDir(PathBuf),
}

impl Export {
    /// The input as image `name` (`myapp:tested`, `127.0.0.1:5000/myapp:1`).
    pub fn image(name: impl Into<String>) -> Export {
        Export {
            kind: ExportKind::Image(name.into()),
        }
    }

    /// The input as an OCI image-layout tar archive at `path`.
    pub fn oci_tar(path: impl Into<PathBuf>) -> Export {
        Export {
            kind: ExportKind::OciTar(path.into()),
        }
    }

    /// The input as a `docker save`-layout tar archive at `path`.
    pub fn docker_tar(path: impl Into<PathBuf>) -> Export {
        Export {
            kind: ExportKind::DockerTar(path.into()),
        }
    }

    /// The input's filesystem as a directory at `path`.
    pub fn local_dir(path: impl Into<PathBuf>) -> Export {
        Export {
            kind: ExportKind::LocalDir(path.into()),
        }
    }

    /// What it writes.
    pub fn kind(&self) -> &ExportKind {
        &self.kind
    }

    /// The client-level target.
    pub fn target(&self) -> ExportTarget {
        match self.kind {
            ExportKind::Image(_) => ExportTarget::Image,
            ExportKind::OciTar(_) => ExportTarget::OciTar,
            ExportKind::DockerTar(_) => ExportTarget::DockerTar,
            ExportKind::LocalDir(_) => ExportTarget::LocalDir,
        }
    }

    /// The path it writes, if it writes one.
    pub fn path(&self) -> Option<&Path> {
        match &self.kind {
            ExportKind::Image(_) => None,
            ExportKind::OciTar(p) | ExportKind::DockerTar(p) | ExportKind::LocalDir(p) => Some(p),
        }
    }

    /// The path resolved against `root` (absolute paths stay).
    pub fn resolved_path(&self, root: &Path) -> Option<PathBuf> {
        self.path().map(|p| root.join(p))
    }

    /// The label of its record and JUnit testcase: `export: image myapp:tested`,
    /// `export: docker-tar target/app.tar`.
    pub fn label(&self) -> String {
        format!("export: {self}")
    }
}

impl fmt::Display for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExportKind::Image(name) => write!(f, "image {name}"),
            other => {
                let path = match other {
                    ExportKind::OciTar(p) | ExportKind::DockerTar(p) | ExportKind::LocalDir(p) => p,
                    ExportKind::Image(_) => return Ok(()),
                };
                write!(f, "{} {}", self.target().name(), path.display())
            }
        }
    }
}

/// The workspace root relative export paths are resolved against: the nearest ancestor of
/// `CARGO_MANIFEST_DIR` (which cargo and `cargo buildtest` set for a suite binary; else the
/// current directory) whose `Cargo.toml` has a `[workspace]` table, else that directory itself.
pub fn workspace_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest)
            && text.lines().any(|l| l.trim() == "[workspace]")
        {
            return dir.to_owned();
        }
    }
    start
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_kind_and_the_target() {
        assert_eq!(
            Export::image("myapp:tested").label(),
            "export: image myapp:tested"
        );
        assert_eq!(
            Export::docker_tar("target/a.tar").label(),
            "export: docker-tar target/a.tar"
        );
        assert_eq!(
            Export::oci_tar("/abs/o.tar").label(),
            "export: oci-tar /abs/o.tar"
        );
        assert_eq!(Export::local_dir("out").label(), "export: local-dir out");
    }

    #[test]
    fn relative_paths_resolve_against_the_root() {
        let root = Path::new("/ws");
        assert_eq!(
            Export::docker_tar("target/a.tar").resolved_path(root),
            Some(PathBuf::from("/ws/target/a.tar"))
        );
        assert_eq!(
            Export::oci_tar("/abs/o.tar").resolved_path(root),
            Some(PathBuf::from("/abs/o.tar"))
        );
        assert_eq!(Export::image("x").resolved_path(root), None);
    }
}
