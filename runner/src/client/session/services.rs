//! The gRPC services the client serves inside the session, and the path router in front of them.
//!
//! - `grpc.health.v1.Health/Check` answers `SERVING` at once (the daemon polls it: BuildKit v0.8.3
//!   drops the session after one reply slower than 10 s, so it never waits for anything);
//! - `moby.filesync.v1.Auth` is anonymous: `Credentials` returns an empty username and secret,
//!   `GetTokenAuthority` and `VerifyTokenAuthority` answer `Unimplemented` (the daemon then fetches
//!   anonymous tokens itself), and `FetchToken` (called only after a token authority) `Unimplemented`;
//! - `moby.filesync.v1.FileSync/DiffCopy`: [`super::filesync`];
//! - `moby.filesync.v1.FileSend/DiffCopy` (advertised only by a session with a
//!   [`super::FileSendTarget`]): [`super::filesend`].
//! - `containerd.services.content.v1.Content`: [`super::content`] (cache export and import);
//! - `moby.buildkit.secrets.v1.Secrets/GetSecret`: [`super::secrets`].
//!
//! Anything else answers `Unimplemented`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::{Request, Response, Status};

use super::content::{ContentService, ContentStores};
use super::filesend::FileSendService;
use super::filesync::FileSyncService;
use super::secrets::{Secrets, SecretsService};
use crate::proto::content::content_server::ContentServer;
use crate::proto::filesync::auth_server::{Auth, AuthServer};
use crate::proto::filesync::file_send_server::FileSendServer;
use crate::proto::filesync::file_sync_server::FileSyncServer;
use crate::proto::filesync::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use crate::proto::grpc::health::v1::health_check_response::ServingStatus;
use crate::proto::grpc::health::v1::health_server::{Health, HealthServer};
use crate::proto::grpc::health::v1::{HealthCheckRequest, HealthCheckResponse};
use crate::proto::secrets::secrets_server::SecretsServer;

/// The methods the session advertises (one `x-docker-expose-session-grpc-method` value each).
pub const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/moby.filesync.v1.FileSync/DiffCopy",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
    "/containerd.services.content.v1.Content/Info",
    "/containerd.services.content.v1.Content/Read",
    "/containerd.services.content.v1.Content/Write",
    "/containerd.services.content.v1.Content/Abort",
    "/containerd.services.content.v1.Content/ListStatuses",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
];

/// The method a session with a [`super::FileSendTarget`] advertises as well.
pub const FILE_SEND_METHOD: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// The largest exporter chunk accepted (the daemon sends at most 3 MiB per message).
const FILE_SEND_MAX_MESSAGE: usize = 16 << 20;

/// Health: always serving.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HealthService;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }
}

/// Auth: anonymous.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnonymousAuth;

#[tonic::async_trait]
impl Auth for AnonymousAuth {
    async fn credentials(
        &self,
        _request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        Ok(Response::new(CredentialsResponse::default()))
    }

    async fn fetch_token(
        &self,
        _request: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented(
            "the session holds no registry tokens",
        ))
    }

    async fn get_token_authority(
        &self,
        _request: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("the session has no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _request: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("the session has no token authority"))
    }
}

type BoxFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

/// Routes each request by path to the service that serves it.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    health: HealthServer<HealthService>,
    auth: AuthServer<AnonymousAuth>,
    filesync: FileSyncServer<FileSyncService>,
    filesend: FileSendServer<FileSendService>,
    content: ContentServer<ContentService>,
    secrets: SecretsServer<SecretsService>,
}

impl Router {
    pub(crate) fn new(filesync: FileSyncService, filesend: FileSendService) -> Self {
        Self {
            health: HealthServer::new(HealthService),
            auth: AuthServer::new(AnonymousAuth),
            filesync: FileSyncServer::new(filesync),
            filesend: FileSendServer::new(filesend)
                .max_decoding_message_size(FILE_SEND_MAX_MESSAGE),
            content: content_server(ContentStores::new()),
            secrets: SecretsServer::new(SecretsService {
                secrets: Secrets::new(),
            }),
        }
    }

    /// The same router serving `secrets`.
    pub(crate) fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = SecretsServer::new(SecretsService { secrets });
        self
    }

    /// The same router serving `stores` as the content store.
    pub(crate) fn with_content(mut self, stores: ContentStores) -> Self {
        self.content = content_server(stores);
        self
    }
}

/// Blobs are written in chunks of up to 1 MiB; allow what the daemon's side may send (16 MiB).
fn content_server(stores: ContentStores) -> ContentServer<ContentService> {
    ContentServer::new(ContentService::new(stores))
        .max_decoding_message_size(16 << 20)
        .max_encoding_message_size(16 << 20)
}

impl<B> tower::Service<http::Request<B>> for Router
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        if path.starts_with("/grpc.health.v1.Health/") {
            let mut service = self.health.clone();
            Box::pin(async move { service.call(request).await })
        } else if path.starts_with("/moby.filesync.v1.FileSync/") {
            let mut service = self.filesync.clone();
            Box::pin(async move { service.call(request).await })
        } else if path.starts_with("/moby.filesync.v1.FileSend/") {
            let mut service = self.filesend.clone();
            Box::pin(async move { service.call(request).await })
        } else if path.starts_with("/containerd.services.content.v1.Content/") {
            let mut service = self.content.clone();
            Box::pin(async move { service.call(request).await })
        } else if path.starts_with("/moby.buildkit.secrets.v1.Secrets/") {
            let mut service = self.secrets.clone();
            Box::pin(async move { service.call(request).await })
        } else if path.starts_with("/moby.filesync.v1.Auth/") {
            let mut service = self.auth.clone();
            Box::pin(async move { service.call(request).await })
        } else {
            let response =
                Status::unimplemented(format!("{path} is not served by this session")).into_http();
            Box::pin(async move { Ok(response) })
        }
    }
}
