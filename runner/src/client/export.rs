//! Exporters: what a solve writes besides its cache, and what each builder can write.
//!
//! An [`ExporterSpec`] goes in [`super::SolveOptions::exporter`] and travels in `SolveRequest`'s
//! `Exporter`/`ExporterAttrs` fields (3/4), which every BuildKit reads — v0.8.3 knows only those,
//! and v0.13+ still converts them into its exporter list. The solve's answer (`containerimage.digest`,
//! `image.name`, …) comes back in [`super::SolveReport::exporter_response`].
//!
//! What each builder can export ([`ExportTargets::of`]; the session-and-gateway reference §6):
//!
//! | target | Docker engine (graphdriver store) | buildkitd |
//! |---|---|---|
//! | image | `moby` exporter into the engine's image store (no push) | `image` exporter, `push=true` |
//! | docker tar | `moby`, then the engine's image-save API (`GET /images/{id}/get`) | `docker` exporter through the session's FileSend |
//! | OCI tar | `moby`, then image save, on engines whose save writes an OCI layout (API 1.44+, Docker 25+) | `oci` exporter through FileSend |
//! | local dir | `tar` exporter through FileSend, unpacked on the client | the same |
//!
//! (The buildkitd column is implemented but not exercised here: no buildkitd runs on these
//! machines. The Docker engine column is tested against Docker 20.10 and 26.1.)
//!
//! Writing files is never partial: everything goes to a temporary sibling of the destination
//! (`.NAME.buildtest-tmp-PID`) that is renamed over it only when complete, and removed otherwise.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use tokio::io::AsyncWriteExt as _;

use super::control::Client;
use super::errors::ClientError;
use super::transport;

/// One exporter of a solve: BuildKit's exporter type and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterSpec {
    /// `moby`, `image`, `tar`, `oci`, `docker` or `local`.
    pub kind: String,
    /// The exporter's attributes (`name`, `push`, …).
    pub attrs: BTreeMap<String, String>,
}

impl ExporterSpec {
    /// A Docker engine's `moby` exporter, storing the result in the engine's image store under
    /// `name` (none: an untagged image, found by its id).
    pub fn moby(name: Option<&str>) -> ExporterSpec {
        let mut attrs = BTreeMap::new();
        if let Some(name) = name {
            attrs.insert("name".to_owned(), name.to_owned());
        }
        ExporterSpec {
            kind: "moby".to_owned(),
            attrs,
        }
    }

    /// buildkitd's `image` exporter pushing to the registry in `name`.
    pub fn image_push(name: &str) -> ExporterSpec {
        let attrs = [("name", name), ("push", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        ExporterSpec {
            kind: "image".to_owned(),
            attrs,
        }
    }

    /// An exporter writing a file through the session (`tar`, `oci`, `docker`).
    pub fn file(kind: &str) -> ExporterSpec {
        ExporterSpec {
            kind: kind.to_owned(),
            attrs: BTreeMap::new(),
        }
    }
}

/// What an export writes (the harness's `Export` reduced to what the client needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExportTarget {
    /// An image in the engine's store or a registry.
    Image,
    /// A `docker save`-layout tar archive.
    DockerTar,
    /// An OCI image-layout tar archive.
    OciTar,
    /// The input's filesystem as a directory.
    LocalDir,
}

impl ExportTarget {
    /// Every target, in documentation order.
    pub const ALL: [ExportTarget; 4] = [
        ExportTarget::Image,
        ExportTarget::DockerTar,
        ExportTarget::OciTar,
        ExportTarget::LocalDir,
    ];

    /// The name used in labels and messages (`image`, `docker-tar`, `oci-tar`, `local-dir`).
    pub fn name(self) -> &'static str {
        match self {
            ExportTarget::Image => "image",
            ExportTarget::DockerTar => "docker-tar",
            ExportTarget::OciTar => "oci-tar",
            ExportTarget::LocalDir => "local-dir",
        }
    }
}

impl fmt::Display for ExportTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a builder performs each kind of export it supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTargets {
    /// The builder, for messages.
    pub builder: String,
    /// Whether the builder is a Docker engine (exports go through its image store).
    pub docker_engine: bool,
    /// The engine's API version (`1.41`, `1.45`), for Docker engines.
    pub engine_api: Option<String>,
    /// The kinds it supports, in documentation order.
    pub supported: Vec<ExportTarget>,
}

impl ExportTargets {
    /// Asks the builder what it can export (a Docker engine: its API version, `GET /version`).
    pub async fn of(client: &Client) -> Result<ExportTargets, ClientError> {
        let builder = client.builder().to_string();
        if !client.is_docker_engine() {
            return Ok(ExportTargets {
                builder,
                docker_engine: false,
                engine_api: None,
                supported: ExportTarget::ALL.to_vec(),
            });
        }
        let api = client.docker_api_version().await?;
        let mut supported = vec![
            ExportTarget::Image,
            ExportTarget::DockerTar,
            ExportTarget::LocalDir,
        ];
        if api_at_least(&api, 1, 44) {
            supported.push(ExportTarget::OciTar);
        }
        supported.sort();
        Ok(ExportTargets {
            builder,
            docker_engine: true,
            engine_api: Some(api),
            supported,
        })
    }

    /// Whether `target` is supported.
    pub fn supports(&self, target: ExportTarget) -> bool {
        self.supported.contains(&target)
    }

    /// Why `target` cannot be exported here, naming the builder and what it supports; `None` when
    /// it can.
    pub fn refusal(&self, target: ExportTarget) -> Option<String> {
        if self.supports(target) {
            return None;
        }
        let kinds: Vec<&str> = self.supported.iter().map(|t| t.name()).collect();
        let why = match (target, &self.engine_api) {
            (ExportTarget::OciTar, Some(api)) => format!(
                ": a Docker engine on the graph-driver store has no `oci` exporter, and this engine's \
                 image-save API (API {api}) writes no OCI layout (that needs API 1.44, Docker 25+)"
            ),
            _ => String::new(),
        };
        Some(format!(
            "export an {target} on {}{why}; this builder supports: {}",
            self.builder,
            kinds.join(", ")
        ))
    }
}

/// Whether Docker API version `api` (`1.45`) is at least `major.minor`.
fn api_at_least(api: &str, major: u32, minor: u32) -> bool {
    let mut parts = api.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    have >= (major, minor)
}

/// A temporary sibling of `dest` (`.NAME.buildtest-tmp-PID-N` in the same directory), so the
/// final rename stays on one filesystem.
pub fn temp_sibling(dest: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_owned());
    let tmp = format!(
        ".{name}.buildtest-tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    dest.with_file_name(tmp)
}

/// Removes a temporary file or directory, ignoring a missing one, and forgets it.
pub fn remove_temp(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_dir_all(path);
    forget_temp(path);
}

/// Temporary siblings being written right now, removed by [`remove_all_temps`] (the harness calls
/// it on Ctrl-C before exiting, so an interrupted export leaves nothing behind).
static IN_FLIGHT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Registers a temporary sibling being written, for [`remove_all_temps`].
pub fn track_temp(path: &Path) {
    if let Ok(mut paths) = IN_FLIGHT.lock() {
        paths.push(path.to_owned());
    }
}

/// Unregisters a temporary sibling (renamed into place or removed).
pub fn forget_temp(path: &Path) {
    if let Ok(mut paths) = IN_FLIGHT.lock() {
        paths.retain(|p| p != path);
    }
}

/// Removes every temporary sibling an export is writing (for Ctrl-C: nothing partial stays).
pub fn remove_all_temps() {
    let paths = IN_FLIGHT
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    for path in paths {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir_all(&path);
    }
}

impl Client {
    /// The Docker engine's API version (`GET /version`, `ApiVersion`).
    pub async fn docker_api_version(&self) -> Result<String, ClientError> {
        self.docker_version_field("ApiVersion").await
    }

    /// The Docker engine's own version (`GET /version`, `Version`).
    pub async fn docker_engine_version(&self) -> Result<String, ClientError> {
        self.docker_version_field("Version").await
    }

    /// One string field of the Docker engine's `GET /version` answer.
    async fn docker_version_field(&self, field: &str) -> Result<String, ClientError> {
        let (status, body) = self.docker_get("/version").await?;
        let what = format!("read the version of the Docker engine {}", self.builder());
        if status != StatusCode::OK {
            return Err(ClientError::DockerApi(format!("{what}: HTTP {status}")));
        }
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ClientError::DockerApi(format!("{what}: {e}")))?;
        value[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::DockerApi(format!("{what}: the answer has no {field}")))
    }

    async fn docker_get(&self, path: &str) -> Result<(StatusCode, Bytes), ClientError> {
        let response = self.docker_stream(Method::GET, path).await?;
        let status = response.status();
        let body =
            response.into_body().collect().await.map_err(|e| {
                ClientError::DockerApi(format!("read the answer to GET {path}: {e}"))
            })?;
        Ok((status, body.to_bytes()))
    }

    async fn docker_stream(
        &self,
        method: Method,
        path: &str,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        let engine = self.builder().to_string();
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, "docker")
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::DockerApi(format!("build {method} {path}: {e}")))?;
        match transport::docker_api_streaming(&self.inner.connection, request).await {
            None => Err(ClientError::DockerApi(format!(
                "call the Docker engine API: {engine} is not a Docker engine"
            ))),
            Some(Err(e)) => Err(ClientError::DockerApi(format!(
                "{method} {path} on the Docker engine {engine}: {e}"
            ))),
            Some(Ok(response)) => Ok(response),
        }
    }

    /// Writes the engine's image-save archive of `image` (a name or id; `GET /images/{name}/get`)
    /// to `dest`: streamed into a temporary sibling, renamed over `dest` when complete, removed
    /// on any failure. Returns the size in bytes.
    pub async fn docker_save_image(&self, image: &str, dest: &Path) -> Result<u64, ClientError> {
        let tmp = temp_sibling(dest);
        track_temp(&tmp);
        let result = self.docker_save_into(image, &tmp).await;
        match result {
            Ok(size) => match tokio::fs::rename(&tmp, dest).await {
                Ok(()) => {
                    forget_temp(&tmp);
                    Ok(size)
                }
                Err(e) => {
                    remove_temp(&tmp);
                    Err(ClientError::DockerApi(format!(
                        "move the image archive into place at {}: {e}",
                        dest.display()
                    )))
                }
            },
            Err(e) => {
                remove_temp(&tmp);
                Err(e)
            }
        }
    }

    async fn docker_save_into(&self, image: &str, tmp: &Path) -> Result<u64, ClientError> {
        let path = format!("/images/{image}/get");
        let failed = |why: String| {
            ClientError::DockerApi(format!(
                "save the image {image} from the Docker engine {}: {why}",
                self.builder()
            ))
        };
        let response = self.docker_stream(Method::GET, &path).await?;
        let status = response.status();
        let mut body = response.into_body();
        if status != StatusCode::OK {
            let text = body
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
                .unwrap_or_default();
            return Err(failed(format!("HTTP {status}: {text}")));
        }
        let mut file = tokio::fs::File::create(tmp)
            .await
            .map_err(|e| failed(format!("create {}: {e}", tmp.display())))?;
        let mut size = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| failed(format!("read the archive: {e}")))?;
            if let Ok(data) = frame.into_data() {
                size += data.len() as u64;
                file.write_all(&data)
                    .await
                    .map_err(|e| failed(format!("write {}: {e}", tmp.display())))?;
            }
        }
        file.sync_all()
            .await
            .map_err(|e| failed(format!("write {}: {e}", tmp.display())))?;
        Ok(size)
    }

    /// Removes image `reference` from the Docker engine's store (`DELETE /images/{name}`);
    /// `false` when there was no such image.
    pub async fn docker_remove_image(&self, reference: &str) -> Result<bool, ClientError> {
        let path = format!("/images/{reference}");
        let response = self.docker_stream(Method::DELETE, &path).await?;
        let status = response.status();
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            other => Err(ClientError::DockerApi(format!(
                "remove the image {reference} from the Docker engine {}: HTTP {other}",
                self.builder()
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_numerically() {
        assert!(api_at_least("1.45", 1, 44));
        assert!(api_at_least("1.44", 1, 44));
        assert!(!api_at_least("1.41", 1, 44));
        assert!(api_at_least("2.0", 1, 44));
        assert!(!api_at_least("junk", 1, 44));
    }

    #[test]
    fn refusals_name_the_builder_and_the_supported_kinds() {
        let targets = ExportTargets {
            builder: "docker engine at unix:///var/run/docker.sock".to_owned(),
            docker_engine: true,
            engine_api: Some("1.41".to_owned()),
            supported: vec![
                ExportTarget::Image,
                ExportTarget::DockerTar,
                ExportTarget::LocalDir,
            ],
        };
        assert_eq!(targets.refusal(ExportTarget::Image), None);
        let why = targets.refusal(ExportTarget::OciTar).unwrap();
        assert!(
            why.starts_with("export an oci-tar on docker engine at unix:///var/run/docker.sock"),
            "{why}"
        );
        assert!(
            why.ends_with("supports: image, docker-tar, local-dir"),
            "{why}"
        );
        assert!(why.contains("API 1.41"), "{why}");
    }

    #[test]
    fn temp_siblings_stay_in_the_destination_directory() {
        let tmp = temp_sibling(Path::new("/out/dir/app.tar"));
        assert_eq!(tmp.parent(), Some(Path::new("/out/dir")));
        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".app.tar.buildtest-tmp-"), "{name}");
        assert_ne!(temp_sibling(Path::new("/out/dir/app.tar")), tmp);
    }
}
