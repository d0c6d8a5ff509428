//! [`Client`]: a connection to one builder and BuildKit's Control API (`Info`, `ListWorkers`,
//! `Prune`, and [`Client::solve`] in [`super::solve`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};
use tonic::transport::Channel;

use super::addr::BuilderSpec;
use super::caps::Caps;
use super::errors::{AttemptError, BuilderError, ClientError, ConnectError, transport_message};
use super::resolve::Resolved;
use super::transport::{self, MAX_MESSAGE_SIZE};
use crate::proto::control::control_client::ControlClient;
use crate::proto::control::{InfoRequest, ListWorkersRequest, PruneRequest};
use crate::proto::types::{BuildkitVersion, WorkerRecord};

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Per candidate: opening the stream, HTTP/2 set-up and the `ListWorkers` check (default 5 s).
    pub connect_timeout: Duration,
    /// At most this many solves run at once over the connection; more wait (default 16).
    ///
    /// Measured on a 2-core machine, 200 solves: 8–16 in flight are as fast as 64 (about 12 s vs
    /// 15 s on Docker 20.10), and 64 make BuildKit v0.8.3 fail about a quarter of them with its
    /// transient `flightcontrol: exceeded retry timeout` (retried, see [`super::SolveOptions`]).
    /// The connection itself carries 200 at once (400 HTTP/2 streams) fine.
    pub max_concurrent_solves: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            max_concurrent_solves: 16,
        }
    }
}

/// A connection to a BuildKit builder. Cheap to clone; clones share the connection, the solve bound
/// and the capability probe result.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) channel: Channel,
    /// The transport, for a Docker engine's HTTP API (see `client::docker`).
    pub(crate) connection: transport::Connection,
    pub(crate) builder: BuilderSpec,
    pub(crate) solves: Arc<Semaphore>,
    pub(crate) caps: OnceCell<Caps>,
    workers: Vec<WorkerRecord>,
}

/// What `Prune` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneSummary {
    /// Cache records removed.
    pub records: usize,
    /// Bytes freed (as reported).
    pub bytes: i64,
}

impl Client {
    /// Connect to the first candidate of `resolved` that answers, with default options.
    pub async fn connect(resolved: &Resolved) -> Result<Client, ConnectError> {
        Self::connect_with(resolved, &ConnectOptions::default()).await
    }

    /// Connect to the first candidate of `resolved` that answers as a BuildKit Control API
    /// (`ListWorkers` succeeds). The error lists every attempt.
    pub async fn connect_with(
        resolved: &Resolved,
        options: &ConnectOptions,
    ) -> Result<Client, ConnectError> {
        let mut attempts = Vec::new();
        for spec in &resolved.candidates {
            match connect_one(spec, options).await {
                Ok(client) => return Ok(client),
                Err(err) => attempts.push((spec.clone(), err)),
            }
        }
        Err(ConnectError { attempts })
    }

    /// The builder this client is connected to, and why it was chosen.
    pub fn builder(&self) -> &BuilderSpec {
        &self.inner.builder
    }

    /// The underlying channel (HTTP/2 to the builder).
    pub fn channel(&self) -> Channel {
        self.inner.channel.clone()
    }

    /// A generated Control client on this connection, with 16 MiB message limits.
    pub fn control(&self) -> ControlClient<Channel> {
        control_client(self.inner.channel.clone())
    }

    /// The workers `ListWorkers` returned when connecting.
    pub fn workers(&self) -> &[WorkerRecord] {
        &self.inner.workers
    }

    /// `Control.Info`: the builder's BuildKit version. `Ok(None)` when the builder does not implement
    /// it (BuildKit < v0.11, e.g. Docker 20.10's embedded v0.8.3 answers `Unimplemented`).
    pub async fn info(&self) -> Result<Option<BuildkitVersion>, ClientError> {
        match self.control().info(InfoRequest {}).await {
            Ok(resp) => Ok(resp.into_inner().buildkit_version),
            Err(status) if status.code() == tonic::Code::Unimplemented => Ok(None),
            Err(status) => Err(BuilderError::from_status("Control.Info", &status).into()),
        }
    }

    /// `Control.ListWorkers`.
    pub async fn list_workers(&self) -> Result<Vec<WorkerRecord>, ClientError> {
        list_workers(&mut self.control())
            .await
            .map_err(|s| BuilderError::from_status("Control.ListWorkers", &s).into())
    }

    /// `Control.Prune`: drop the builder's unused build cache (`all`: also internal and frontend
    /// records). Used by tests and benchmarks to start cold.
    pub async fn prune(&self, all: bool) -> Result<PruneSummary, ClientError> {
        self.prune_matching(Vec::new(), all).await
    }

    /// `Control.Prune` limited by BuildKit's prune filters (containerd filter syntax over cache
    /// record fields, e.g. `description~=some-text` matches records whose description, which for an
    /// exec includes its command line, contains the text).
    pub async fn prune_matching(
        &self,
        filters: Vec<String>,
        all: bool,
    ) -> Result<PruneSummary, ClientError> {
        let rpc =
            |s: tonic::Status| ClientError::from(BuilderError::from_status("Control.Prune", &s));
        let request = PruneRequest {
            filter: filters,
            all,
            ..PruneRequest::default()
        };
        let mut stream = self
            .control()
            .prune(request)
            .await
            .map_err(rpc)?
            .into_inner();
        let mut summary = PruneSummary::default();
        while let Some(record) = stream.message().await.map_err(rpc)? {
            summary.records += 1;
            summary.bytes += record.size;
        }
        Ok(summary)
    }
}

pub(crate) fn control_client(channel: Channel) -> ControlClient<Channel> {
    ControlClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

async fn list_workers(
    control: &mut ControlClient<Channel>,
) -> Result<Vec<WorkerRecord>, tonic::Status> {
    Ok(control
        .list_workers(ListWorkersRequest::default())
        .await?
        .into_inner()
        .record)
}

async fn connect_one(spec: &BuilderSpec, options: &ConnectOptions) -> Result<Client, AttemptError> {
    let timeout = options.connect_timeout;
    let connection = transport::connect(&spec.transport, timeout).await?;
    let channel = connection.channel.clone();
    let mut control = control_client(channel.clone());
    let workers = match tokio::time::timeout(timeout, list_workers(&mut control)).await {
        Err(_) => return Err(AttemptError::Timeout(timeout)),
        Ok(Err(status)) => {
            let failure = format!("{}: {}", status.code(), transport_message(&status));
            return Err(connection.explain(failure).await);
        }
        Ok(Ok(workers)) => workers,
    };
    Ok(Client {
        inner: Arc::new(Inner {
            channel,
            connection,
            builder: spec.clone(),
            solves: Arc::new(Semaphore::new(options.max_concurrent_solves.max(1))),
            caps: OnceCell::new(),
            workers,
        }),
    })
}
