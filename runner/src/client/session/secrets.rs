//! `moby.buildkit.secrets.v1.Secrets/GetSecret`: the secrets an exec's secret mounts read.
//!
//! [`Secrets`] is a shared, changeable map from secret id to bytes: what it holds when the daemon
//! asks is what the exec sees; an id it does not hold answers `NotFound` (an exec with a required
//! secret mount then fails). A secret's bytes are never part of a cache key, which is what makes
//! them useful as a permission that only some solves carry (see the runner's cache verdicts).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tonic::{Request, Response, Status};

use crate::proto::secrets::secrets_server::Secrets as SecretsApi;
use crate::proto::secrets::{GetSecretRequest, GetSecretResponse};

/// The secrets a session serves, by id (cheap to clone: every clone is the same map).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    inner: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Secrets {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `data` as secret `id` from now on.
    pub fn insert(&self, id: impl Into<String>, data: impl Into<Vec<u8>>) {
        if let Ok(mut map) = self.inner.lock() {
            map.insert(id.into(), data.into());
        }
    }

    /// Stops serving secret `id`.
    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(id);
        }
    }

    fn get(&self, id: &str) -> Option<Vec<u8>> {
        self.inner.lock().ok().and_then(|m| m.get(id).cloned())
    }
}

/// The service over a [`Secrets`].
#[derive(Debug, Clone)]
pub(crate) struct SecretsService {
    pub(crate) secrets: Secrets,
}

#[tonic::async_trait]
impl SecretsApi for SecretsService {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        match self.secrets.get(&id) {
            Some(data) => Ok(Response::new(GetSecretResponse { data })),
            None => Err(Status::not_found(format!(
                "secret {id} is not served by this session"
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_what_it_holds_when_asked() {
        let secrets = Secrets::new();
        let service = SecretsService {
            secrets: secrets.clone(),
        };
        let ask = |id: &str| {
            Request::new(GetSecretRequest {
                id: id.to_owned(),
                ..GetSecretRequest::default()
            })
        };
        let missing = service.get_secret(ask("a")).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        secrets.insert("a", b"yes".to_vec());
        let got = service.get_secret(ask("a")).await.unwrap().into_inner();
        assert_eq!(got.data, b"yes");
        secrets.remove("a");
        assert!(service.get_secret(ask("a")).await.is_err());
    }
}
