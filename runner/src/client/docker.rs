//! A Docker engine's own HTTP API, next to its embedded BuildKit: only what loading an image
//! needs (`GET /images/{name}/json`, `POST /images/load`), and image inspection. Used to load the
//! check probe once as an image instead of sending it inline with every Solve, and as the
//! fallback for image configs (`client::gateway`); `GET /info` tells which image store the engine
//! uses (whether it can export cache, `client::cache`).

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;

use super::control::Client;
use super::errors::ClientError;
use super::transport;

/// Engine API version the requests use; Docker 20.10 (API 1.41) and later answer it.
const API: &str = "/v1.41";

impl Client {
    /// Whether this builder is a Docker engine's embedded BuildKit, reached through the engine's
    /// API socket (so it has an image store and [`Client::docker_load_image`] works).
    pub fn is_docker_engine(&self) -> bool {
        matches!(
            self.builder().transport,
            super::TransportSpec::DockerEngine { .. }
        )
    }

    async fn docker_request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let engine = self.builder().to_string();
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{API}{path}"))
            .header(header::HOST, "docker");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-tar");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::DockerApi(format!("build {method} {path}: {e}")))?;
        match transport::docker_api(&self.inner.connection, request).await {
            None => Err(ClientError::DockerApi(format!(
                "call the Docker engine API: {engine} is not a Docker engine"
            ))),
            Some(Err(e)) => Err(ClientError::DockerApi(format!(
                "{method} {path} on the Docker engine {engine}: {e}"
            ))),
            Some(Ok(answer)) => Ok(answer),
        }
    }

    /// The engine's `GET /info` JSON (its image store, storage driver, …).
    pub async fn docker_info(&self) -> Result<serde_json::Value, ClientError> {
        let (status, body) = self.docker_request(Method::GET, "/info", None).await?;
        if status != StatusCode::OK {
            return Err(ClientError::DockerApi(format!(
                "read the Docker engine's /info from {}: HTTP {status}: {}",
                self.builder(),
                short(&body)
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            ClientError::DockerApi(format!(
                "read the Docker engine's /info from {}: {e}",
                self.builder()
            ))
        })
    }

    /// Whether the Docker engine has the image `reference` in its store.
    pub async fn docker_image_exists(&self, reference: &str) -> Result<bool, ClientError> {
        let path = format!("/images/{reference}/json");
        let (status, body) = self.docker_request(Method::GET, &path, None).await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            other => Err(ClientError::DockerApi(format!(
                "look up the image {reference} on the Docker engine {}: HTTP {other}: {}",
                self.builder(),
                short(&body)
            ))),
        }
    }

    /// The engine's image-inspect JSON for `reference` (`GET /images/{name}/json`); `None` when
    /// the engine has no such image.
    pub async fn docker_image_inspect(
        &self,
        reference: &str,
    ) -> Result<Option<Bytes>, ClientError> {
        let path = format!("/images/{reference}/json");
        let (status, body) = self.docker_request(Method::GET, &path, None).await?;
        match status {
            StatusCode::OK => Ok(Some(body)),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(ClientError::DockerApi(format!(
                "inspect the image {reference} on the Docker engine {}: HTTP {other}: {}",
                self.builder(),
                short(&body)
            ))),
        }
    }

    /// Loads a `docker save`-layout tar archive into the Docker engine's image store
    /// (`POST /images/load`). The engine reports failures inside a 200 answer's JSON stream;
    /// those are errors here too.
    pub async fn docker_load_image(&self, archive: Vec<u8>) -> Result<(), ClientError> {
        let path = "/images/load?quiet=1";
        let (status, body) = self
            .docker_request(Method::POST, path, Some(archive))
            .await?;
        let failed = |why: String| {
            ClientError::DockerApi(format!(
                "load an image into the Docker engine {}: {why}",
                self.builder()
            ))
        };
        if status != StatusCode::OK {
            return Err(failed(format!("HTTP {status}: {}", short(&body))));
        }
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let message: serde_json::Value = serde_json::from_slice(line)
                .map_err(|e| failed(format!("unreadable answer {:?}: {e}", short(line))))?;
            if let Some(error) = message.get("error") {
                return Err(failed(error.as_str().unwrap_or_default().to_owned()));
            }
        }
        Ok(())
    }
}

/// The start of an answer's body, for error messages.
fn short(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(300)
        .collect()
}
