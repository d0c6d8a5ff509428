//! [`GatewayBuild`]: one gateway build on the client's connection.
//!
//! `Control.Solve` with no definition and no frontend makes the daemon register a bridge
//! forwarder under the solve's ref and block until `LLBBridge.Return`. Every LLBBridge call
//! names the build in the gRPC metadata `buildkit-controlapi-buildid`; the daemon waits up to 3 s
//! for the build to register, so the first call (`Ping`) needs no retry in practice; it still
//! retries "no such job" for a while in case the `Solve` request arrives later than that. A
//! `Solve` that fails before registering (e.g. "job ID … exists") ends the wait at once, with its
//! reason. `Control.Status` for the same ref reports every vertex the build's solves run.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::errors::GatewayError;
use crate::client::control::{Client, control_client};
use crate::client::errors::BuilderError;
use crate::client::events::{Tracker, VertexReport};
use crate::client::solve::new_ref;
use crate::client::transport::MAX_MESSAGE_SIZE;
use crate::proto::control::{SolveRequest as ControlSolveRequest, StatusRequest};
use crate::proto::frontend::llb_bridge_client::LlbBridgeClient;
use crate::proto::frontend::{PingRequest, ReturnRequest};
use crate::proto::{frontend, google};

/// The gRPC metadata key naming the build of an LLBBridge call.
pub const BUILD_ID_METADATA: &str = "buildkit-controlapi-buildid";

/// How long the first call retries while the daemon answers that the build is not registered.
/// The daemon itself waits 3 s for the registration, so this only matters when the `Solve`
/// request is slower than that to arrive.
const START_RETRY: Duration = Duration::from_secs(10);

/// How long [`GatewayBuild::finish`] waits for `Control.Solve` to return after `Return`.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of [`Client::gateway_build`].
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// The client session to link to the build (`SolveRequest.Session`), for local sources and
    /// registry credentials.
    pub session: Option<String>,
    /// Use this build ref instead of a fresh one.
    pub build_ref: Option<String>,
    /// An exporter for the build's result (what `LLBBridge.Return` hands back), sent with its
    /// `Control.Solve`; see [`GatewayBuild::finish_with`].
    pub exporter: Option<crate::client::ExporterSpec>,
    /// Cache exports (and imports) of the build's `Control.Solve`: BuildKit exports the cache
    /// of the result the build returns ([`GatewayBuild::finish_with`]).
    pub cache: Option<crate::proto::control::CacheOptions>,
}

/// The builder's gateway capabilities (`PongResponse.FrontendAPICaps`, enabled ones only) and
/// LLB capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayCaps {
    /// Enabled LLBBridge capabilities (`return`, `frontend.inputs`, `resolveimage`, …).
    pub frontend: BTreeSet<String>,
    /// Disabled LLBBridge capabilities with the daemon's reason.
    pub disabled: Vec<(String, String)>,
    /// Enabled LLB capabilities (`exec.meta.base`, `mergeop`, …).
    pub llb: BTreeSet<String>,
}

impl GatewayCaps {
    fn from_pong(pong: &frontend::PongResponse) -> Self {
        let mut caps = GatewayCaps::default();
        for cap in &pong.frontend_api_caps {
            if cap.enabled {
                caps.frontend.insert(cap.id.clone());
            } else {
                let reason = [
                    cap.disabled_reason_msg.as_str(),
                    cap.disabled_reason.as_str(),
                ]
                .into_iter()
                .find(|r| !r.is_empty())
                .unwrap_or("disabled")
                .to_owned();
                caps.disabled.push((cap.id.clone(), reason));
            }
        }
        caps.llb = pong
            .llb_caps
            .iter()
            .filter(|c| c.enabled)
            .map(|c| c.id.clone())
            .collect();
        caps
    }

    /// Whether the gateway offers `cap`.
    pub fn has(&self, cap: &str) -> bool {
        self.frontend.contains(cap)
    }
}

/// State shared with the task that runs `Control.Solve` and `Control.Status`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tracker: Mutex<Tracker>,
    /// The exporter's answer, when the build's `Control.Solve` had an exporter and returned OK.
    pub(crate) exporter_response: Mutex<std::collections::BTreeMap<String, String>>,
    /// Bumped after every Status message is applied to `tracker` (and once when the stream
    /// ends): what waiting for a vertex subscribes to instead of polling.
    pub(crate) updates: watch::Sender<u64>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            tracker: Mutex::default(),
            exporter_response: Mutex::default(),
            updates: watch::Sender::new(0),
        }
    }
}

impl Shared {
    /// Wakes every waiter of [`Shared::updates`].
    fn updated(&self) {
        self.updates.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// How the build's `Control.Solve` ended: `None` while it runs.
type Ended = Option<Result<(), String>>;

/// One open gateway build. Make calls ([`GatewayBuild::resolve_image_config`],
/// [`GatewayBuild::frontend_solve`], [`GatewayBuild::read_file`]), then [`GatewayBuild::finish`].
///
/// **Dropping it without `finish` cancels the build**: the `Control.Solve` call is dropped, so the
/// daemon sees its request context cancelled, stops waiting for `Return` and unregisters the
/// build. Observed on v0.8.3 and v0.13.2: a later call with its id fails with "no such job" after
/// the daemon's 3 s registration wait, and the id itself is released about 10 s later. Nothing is
/// left waiting on the daemon.
#[derive(Debug)]
pub struct GatewayBuild {
    pub(crate) client: Client,
    pub(crate) build_ref: String,
    pub(crate) bridge: LlbBridgeClient<Channel>,
    pub(crate) caps: GatewayCaps,
    pub(crate) shared: Arc<Shared>,
    ended: watch::Receiver<Ended>,
    task: Option<JoinHandle<()>>,
}

impl Drop for GatewayBuild {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Client {
    /// Open a gateway build with default options (no session, fresh ref).
    pub async fn gateway_build(&self) -> Result<GatewayBuild, GatewayError> {
        self.gateway_build_with(GatewayOptions::default()).await
    }

    /// Open a gateway build: start `Control.Solve` (no definition, no frontend) and
    /// `Control.Status` for a fresh ref, then `LLBBridge.Ping` it for its capabilities. Fails with
    /// [`GatewayError::Unsupported`] when the gateway cannot `return` a result.
    pub async fn gateway_build_with(
        &self,
        options: GatewayOptions,
    ) -> Result<GatewayBuild, GatewayError> {
        let build_ref = options.build_ref.clone().unwrap_or_else(new_ref);
        let shared = Arc::new(Shared::default());
        let (ended_tx, ended) = watch::channel(None);
        let task = tokio::spawn(run_solve(
            self.clone(),
            build_ref.clone(),
            options.session.clone(),
            options.exporter.clone(),
            options.cache.clone(),
            Arc::clone(&shared),
            ended_tx,
        ));
        let bridge = LlbBridgeClient::new(self.inner.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let mut build = GatewayBuild {
            client: self.clone(),
            build_ref,
            bridge,
            caps: GatewayCaps::default(),
            shared,
            ended,
            task: Some(task),
        };
        let pong = build.ping_at_start().await?;
        build.caps = GatewayCaps::from_pong(&pong);
        build.require("run a gateway build", "return")?;
        Ok(build)
    }
}

async fn run_solve(
    client: Client,
    build_ref: String,
    session: Option<String>,
    exporter: Option<crate::client::ExporterSpec>,
    cache: Option<crate::proto::control::CacheOptions>,
    shared: Arc<Shared>,
    ended: watch::Sender<Ended>,
) {
    let mut solve_control = control_client(client.inner.channel.clone());
    let mut status_control = solve_control.clone();
    let request = ControlSolveRequest {
        r#ref: build_ref.clone(),
        session: session.unwrap_or_default(),
        // Not a build the user asked for: no build-history record (BuildKit >= v0.11).
        internal: true,
        exporter: exporter
            .as_ref()
            .map(|e| e.kind.clone())
            .unwrap_or_default(),
        exporter_attrs: exporter.map(|e| e.attrs).unwrap_or_default(),
        cache,
        ..ControlSolveRequest::default()
    };
    let status_ref = build_ref.clone();
    let status_shared = Arc::clone(&shared);
    let mut status = AbortOnDrop(tokio::spawn(async move {
        let request = StatusRequest { r#ref: status_ref };
        let Ok(response) = status_control.status(request).await else {
            return;
        };
        let mut stream = response.into_inner();
        while let Ok(Some(message)) = stream.message().await {
            {
                let mut tracker = status_shared
                    .tracker
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                tracker.apply(message);
            }
            status_shared.updated();
        }
        status_shared.updated();
    }));
    let result = solve_control.solve(request).await;
    let outcome = match result {
        Ok(answer) => {
            *shared
                .exporter_response
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                answer.into_inner().exporter_response;
            Ok(())
        }
        Err(status) => Err(BuilderError::from_status("Control.Solve", &status).to_string()),
    };
    let _ = ended.send(Some(outcome));
    // The daemon closes Status right after Solve; give the last messages a moment.
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut status.0).await;
}

/// Aborts the task when dropped (so cancelling a build also stops reading its Status).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl GatewayBuild {
    /// The build's ref (`SolveRequest.Ref`, and the `buildkit-controlapi-buildid` of every call).
    pub fn build_ref(&self) -> &str {
        &self.build_ref
    }

    /// The gateway's capabilities, from `Ping`.
    pub fn caps(&self) -> &GatewayCaps {
        &self.caps
    }

    /// The client this build runs on.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every vertex the build's `Status` stream reported so far (all its solves), in first-seen
    /// order, with cache hits, errors and logs.
    pub fn vertices(&self) -> Vec<VertexReport> {
        let tracker = self
            .shared
            .tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tracker.snapshot()
    }

    /// A request carrying this build's id.
    pub(crate) fn request<T>(&self, message: T) -> Result<tonic::Request<T>, GatewayError> {
        let mut request = tonic::Request::new(message);
        let value = self
            .build_ref
            .parse()
            .map_err(|_| GatewayError::BuildEnded {
                build_ref: self.build_ref.clone(),
                reason: "its ref is not valid gRPC metadata".to_owned(),
            })?;
        request.metadata_mut().insert(BUILD_ID_METADATA, value);
        Ok(request)
    }

    /// `Err(Unsupported)` unless the gateway has `cap`.
    pub(crate) fn require(&self, what: &'static str, cap: &str) -> Result<(), GatewayError> {
        if self.caps.has(cap) {
            return Ok(());
        }
        let reason = self
            .caps
            .disabled
            .iter()
            .find(|(id, _)| id == cap)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        Err(GatewayError::Unsupported {
            what,
            builder: self.client.builder().to_string(),
            cap: cap.to_owned(),
            reason,
        })
    }

    /// How the build's `Control.Solve` ended, if it has.
    pub(crate) fn ended(&self) -> Option<String> {
        match &*self.ended.borrow() {
            None => None,
            Some(Ok(())) => Some("its Control.Solve returned".to_owned()),
            Some(Err(e)) => Some(format!("its Control.Solve failed: {e}")),
        }
    }

    /// The error for a failed call: the build's end when it has ended, else the call's status.
    pub(crate) fn call_error(&self, rpc: &'static str, status: &tonic::Status) -> GatewayError {
        match self.ended() {
            Some(reason) => GatewayError::BuildEnded {
                build_ref: self.build_ref.clone(),
                reason,
            },
            None => GatewayError::from_status(rpc, status),
        }
    }

    async fn ping_at_start(&mut self) -> Result<frontend::PongResponse, GatewayError> {
        let deadline = tokio::time::Instant::now() + START_RETRY;
        loop {
            let request = self.request(PingRequest {})?;
            let mut ended = self.ended.clone();
            let answer = tokio::select! {
                answer = self.bridge.ping(request) => answer,
                // The solve failed before the build registered: say why, do not wait 3 s.
                _ = ended.wait_for(Option::is_some) => {
                    let reason = self.ended().unwrap_or_default();
                    return Err(GatewayError::BuildEnded { build_ref: self.build_ref.clone(), reason });
                }
            };
            match answer {
                Ok(pong) => return Ok(pong.into_inner()),
                Err(status)
                    if not_registered(&status) && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => return Err(self.call_error("Ping", &status)),
            }
        }
    }

    /// `LLBBridge.Ping` again.
    pub async fn ping(&self) -> Result<GatewayCaps, GatewayError> {
        let request = self.request(PingRequest {})?;
        match self.bridge.clone().ping(request).await {
            Ok(pong) => Ok(GatewayCaps::from_pong(pong.get_ref())),
            Err(status) => Err(self.call_error("Ping", &status)),
        }
    }

    /// End the build: `LLBBridge.Return` with an empty result, then wait for its `Control.Solve`
    /// to return (nothing is exported).
    pub async fn finish(mut self) -> Result<(), GatewayError> {
        let request = self.request(ReturnRequest {
            result: Some(frontend::Result::default()),
            error: None,
        })?;
        self.bridge
            .clone()
            .r#return(request)
            .await
            .map_err(|status| self.call_error("Return", &status))?;
        self.wait_end().await
    }

    /// End the build with an error (`LLBBridge.Return` with `error`), e.g. when the caller gave
    /// up; waits for `Control.Solve` to return, which then fails with `message`.
    pub async fn fail(mut self, message: &str) -> Result<(), GatewayError> {
        let request = self.request(ReturnRequest {
            result: None,
            error: Some(google::rpc::Status {
                code: tonic::Code::Cancelled as i32,
                message: message.to_owned(),
                details: Vec::new(),
            }),
        })?;
        self.bridge
            .clone()
            .r#return(request)
            .await
            .map_err(|status| self.call_error("Return", &status))?;
        match self.wait_end().await {
            Ok(()) | Err(GatewayError::BuildEnded { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn wait_end(&mut self) -> Result<(), GatewayError> {
        let ended = &mut self.ended;
        let waited = tokio::time::timeout(FINISH_TIMEOUT, async move {
            ended.wait_for(Option::is_some).await.map(drop)
        })
        .await;
        if waited.is_err() {
            return Err(BuilderError::Timeout(FINISH_TIMEOUT).into());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let outcome = self.ended.borrow().clone();
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(reason)) => Err(GatewayError::BuildEnded {
                build_ref: self.build_ref.clone(),
                reason: format!("its Control.Solve failed: {reason}"),
            }),
            None => Err(GatewayError::BuildEnded {
                build_ref: self.build_ref.clone(),
                reason: "its Control.Solve task stopped".to_owned(),
            }),
        }
    }
}

/// The daemon has no build of this id (yet): `no such job` (BuildKit's registrar) as NotFound or
/// Unknown.
fn not_registered(status: &tonic::Status) -> bool {
    matches!(status.code(), tonic::Code::NotFound | tonic::Code::Unknown)
        && status.message().contains("no such job")
}
