//! Transports: every [`TransportSpec`] ends in one tonic [`Channel`].
//!
//! - buildkitd on a unix socket or tcp (optionally TLS with ALPN `h2`): HTTP/2 gRPC on the stream;
//! - a Docker engine: `POST /grpc` with `Connection: Upgrade`, `Upgrade: h2c` on its API socket (unix,
//!   tcp or tcp+TLS), then HTTP/2 gRPC with prior knowledge on the upgraded stream — as buildx's
//!   `docker` driver does;
//! - a command (`docker exec -i NAME buildctl dial-stdio`): HTTP/2 gRPC over its stdin/stdout.
//!
//! The channel's connector opens a **fresh** stream on every call (a hijacked Docker stream or a
//! command's stdio can carry only one HTTP/2 connection), so tonic's reconnects work for all of them.
//! The direct buildkitd transports are exercised against an in-process gRPC server in the tests (no
//! buildkitd package exists on the CI machines); the Docker transport against real engines.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tonic::transport::{Channel, Endpoint};

use super::addr::{CommandSpec, Socket, TransportSpec};
use super::errors::AttemptError;
use super::tls::TlsOptions;

/// A byte stream a connection runs on.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed byte stream, in the form tonic's connector wants.
pub type BoxedIo = TokioIo<Box<dyn Io>>;

/// gRPC message size limit in both directions, as buildkitd sets it.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// The opening of a stream failed (carried through tonic's error chain).
#[derive(Debug, Clone)]
struct OpenError(AttemptError);

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for OpenError {}

/// Something that opens a fresh stream to the builder.
#[derive(Debug)]
struct Opener {
    spec: TransportSpec,
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// stderr of the last spawned command, for error messages.
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Opener {
    fn new(spec: &TransportSpec) -> Result<Self, AttemptError> {
        let tls = match spec {
            TransportSpec::Buildkitd {
                socket: Socket::Tcp { host, .. },
                tls: Some(tls),
            } => Some(tls_config(tls, host, &[b"h2"])?),
            TransportSpec::DockerEngine {
                socket: Socket::Tcp { host, .. },
                tls: Some(tls),
            } => Some(tls_config(tls, host, &[b"http/1.1"])?),
            _ => None,
        };
        Ok(Self {
            spec: spec.clone(),
            tls,
            stderr: Arc::default(),
        })
    }

    async fn open(&self) -> Result<BoxedIo, OpenError> {
        match &self.spec {
            TransportSpec::Buildkitd { socket, .. } => self.open_socket(socket).await,
            TransportSpec::DockerEngine { socket, .. } => {
                let base = self.open_socket(socket).await?;
                upgrade_h2c(base).await.map_err(OpenError)
            }
            TransportSpec::Command(cmd) => spawn(cmd, &self.stderr).map_err(OpenError),
        }
    }

    async fn open_socket(&self, socket: &Socket) -> Result<BoxedIo, OpenError> {
        let failed = |e: std::io::Error| {
            OpenError(AttemptError::Connect {
                target: socket.to_string(),
                message: e.to_string(),
            })
        };
        match socket {
            Socket::Unix(path) => {
                let stream = UnixStream::connect(path).await.map_err(failed)?;
                Ok(TokioIo::new(Box::new(stream)))
            }
            Socket::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(failed)?;
                let _ = stream.set_nodelay(true);
                match &self.tls {
                    None => Ok(TokioIo::new(Box::new(stream))),
                    Some((config, name)) => {
                        let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                        let tls = connector.connect(name.clone(), stream).await.map_err(|e| {
                            OpenError(AttemptError::Tls(format!(
                                "tls handshake with {socket}: {e}"
                            )))
                        })?;
                        Ok(TokioIo::new(Box::new(tls)))
                    }
                }
            }
        }
    }
}

fn tls_config(
    tls: &TlsOptions,
    host: &str,
    alpn: &[&[u8]],
) -> Result<
    (
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    ),
    AttemptError,
> {
    tls.client_config(host, alpn)
        .map_err(|e| AttemptError::Tls(super::errors::one_line_chain(&e)))
}

/// One HTTP/1.1 request on a fresh Docker API stream (the connection allows an upgrade).
async fn http1_send(
    io: BoxedIo,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, AttemptError> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(http1_error)?;
    tokio::spawn(async move {
        // Ends when an upgrade completes or the stream closes; errors surface on `send_request`.
        let _ = conn.with_upgrades().await;
    });
    sender.send_request(request).await.map_err(http1_error)
}

fn http1_error(e: hyper::Error) -> AttemptError {
    AttemptError::Handshake(format!("http/1.1 to the docker engine: {e}"))
}

/// `POST /grpc` + `Upgrade: h2c` on a Docker API stream; returns the upgraded stream.
async fn upgrade_h2c(base: BoxedIo) -> Result<BoxedIo, AttemptError> {
    upgrade(base, "/grpc", &[]).await
}

/// `POST path` + `Upgrade: h2c` on a Docker API stream, with `headers` each as its own header line
/// (repeated names are repeated lines); returns the upgraded stream. Bytes the engine sent right
/// after the `101` are kept (hyper's upgraded stream replays its read buffer first).
async fn upgrade(
    base: BoxedIo,
    path: &str,
    headers: &[(String, String)],
) -> Result<BoxedIo, AttemptError> {
    let mut request = Request::post(path)
        .header(header::HOST, "docker")
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "h2c")
        .body(Full::new(Bytes::new()))
        .map_err(|e| AttemptError::Handshake(e.to_string()))?;
    for (name, value) in headers {
        let name = header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| AttemptError::Handshake(format!("header {name}: {e}")))?;
        let value = header::HeaderValue::from_str(value)
            .map_err(|e| AttemptError::Handshake(format!("header {name}: {e}")))?;
        request.headers_mut().append(name, value);
    }
    let response = http1_send(base, request).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status().as_u16();
        let body = tokio::time::timeout(Duration::from_secs(2), response.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| {
                String::from_utf8_lossy(&b.to_bytes())
                    .trim()
                    .chars()
                    .take(300)
                    .collect()
            })
            .unwrap_or_default();
        return Err(AttemptError::Upgrade { status, body });
    }
    let upgraded = hyper::upgrade::on(response).await.map_err(http1_error)?;
    Ok(TokioIo::new(Box::new(TokioIo::new(upgraded))))
}

/// A child process's stdout (read side) and stdin (write side) as one stream; killed on drop.
#[derive(Debug)]
struct ChildStream {
    _child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl AsyncRead for ChildStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for ChildStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

fn spawn(cmd: &CommandSpec, stderr_buf: &Arc<Mutex<Vec<u8>>>) -> Result<BoxedIo, AttemptError> {
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| AttemptError::Command {
            command: cmd.to_string(),
            message: format!("spawn: {e}"),
        })?;
    let missing = || AttemptError::Command {
        command: cmd.to_string(),
        message: "no stdio pipes".to_owned(),
    };
    let stdin = child.stdin.take().ok_or_else(missing)?;
    let stdout = child.stdout.take().ok_or_else(missing)?;
    if let Some(mut stderr) = child.stderr.take() {
        let buf = Arc::clone(stderr_buf);
        if let Ok(mut b) = buf.lock() {
            b.clear();
        }
        tokio::spawn(async move {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk).await {
                if let Ok(mut b) = buf.lock()
                    && b.len() < 64 * 1024
                {
                    b.extend_from_slice(&chunk[..n]);
                }
            }
        });
    }
    Ok(TokioIo::new(Box::new(ChildStream {
        _child: child,
        stdin,
        stdout,
    })))
}

/// A channel to a builder, plus what explains a failure of its first RPC.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The channel (reconnects through the same transport).
    pub channel: Channel,
    opener: Arc<Opener>,
}

impl Connection {
    /// The failure of the first RPC on this connection as an [`AttemptError`]; for a dial-stdio
    /// command, with the command's stderr (e.g. `Error: No such container: …`).
    pub async fn explain(&self, rpc_failure: String) -> AttemptError {
        match &self.opener.spec {
            TransportSpec::Command(cmd) => command_error(cmd, &self.opener, rpc_failure).await,
            _ => AttemptError::NotBuildkit(rpc_failure),
        }
    }
}

/// One HTTP/1.1 request to a Docker engine's API on a fresh stream; the status and whole body.
///
/// Only for [`TransportSpec::DockerEngine`]; `None` for other builders (they have no engine API).
pub(crate) async fn docker_api(
    connection: &Connection,
    request: Request<Full<Bytes>>,
) -> Option<Result<(StatusCode, Bytes), AttemptError>> {
    let TransportSpec::DockerEngine { socket, .. } = &connection.opener.spec else {
        return None;
    };
    Some(
        async {
            let io = connection
                .opener
                .open_socket(socket)
                .await
                .map_err(|e| e.0)?;
            let response = http1_send(io, request).await?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(http1_error)?;
            Ok((status, body.to_bytes()))
        }
        .await,
    )
}

/// Like [`docker_api`], but hands back the response with its body unread, so a large answer (an
/// image archive) can be streamed to disk.
pub(crate) async fn docker_api_streaming(
    connection: &Connection,
    request: Request<Full<Bytes>>,
) -> Option<Result<http::Response<hyper::body::Incoming>, AttemptError>> {
    let TransportSpec::DockerEngine { socket, .. } = &connection.opener.spec else {
        return None;
    };
    Some(
        async {
            let io = connection
                .opener
                .open_socket(socket)
                .await
                .map_err(|e| e.0)?;
            http1_send(io, request).await
        }
        .await,
    )
}

impl Connection {
    /// The transport this connection runs on.
    pub fn spec(&self) -> &TransportSpec {
        &self.opener.spec
    }
}

/// `POST /session` with `Upgrade: h2c` on a fresh Docker API stream, each header of `headers` as its
/// own header line (repeated names are repeated lines); returns the upgraded stream, on which the
/// engine speaks HTTP/2 as the client. Bytes the engine sent right after the `101` are kept (hyper's
/// upgraded stream replays its read buffer first).
///
/// Only for [`TransportSpec::DockerEngine`]; `None` for other builders.
pub(crate) async fn docker_session(
    connection: &Connection,
    headers: &[(String, String)],
) -> Option<Result<BoxedIo, AttemptError>> {
    let TransportSpec::DockerEngine { socket, .. } = &connection.opener.spec else {
        return None;
    };
    Some(
        async {
            let io = connection
                .opener
                .open_socket(socket)
                .await
                .map_err(|e| e.0)?;
            upgrade(io, "/session", headers).await
        }
        .await,
    )
}

/// Connect to `spec` (HTTP/2 set up; no RPC made yet).
pub async fn connect(spec: &TransportSpec, timeout: Duration) -> Result<Connection, AttemptError> {
    let opener = Arc::new(Opener::new(spec)?);
    let authority = match spec {
        TransportSpec::Buildkitd {
            socket: Socket::Tcp { host, port },
            ..
        } => format!("{host}:{port}"),
        _ => "buildkit".to_owned(),
    };
    let uri = format!("http://{authority}");
    let keepalive = match spec {
        // dockerd serves /grpc with Go's http2 server, which answers pings freely.
        TransportSpec::DockerEngine { .. } => Duration::from_secs(30),
        // grpc-go servers (buildkitd) refuse pings more often than every 5 minutes.
        _ => Duration::from_secs(330),
    };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|e| AttemptError::Handshake(e.to_string()))?
        .connect_timeout(timeout)
        .http2_keep_alive_interval(keepalive)
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(false)
        .http2_adaptive_window(true);
    let connector = {
        let opener = Arc::clone(&opener);
        tower::service_fn(move |_: Uri| {
            let opener = Arc::clone(&opener);
            async move { opener.open().await }
        })
    };
    let result = tokio::time::timeout(timeout, endpoint.connect_with_connector(connector)).await;
    match result {
        Ok(Ok(channel)) => Ok(Connection { channel, opener }),
        Ok(Err(err)) => Err(attempt_error(&err, &opener, timeout).await),
        Err(_) => Err(AttemptError::Timeout(timeout)),
    }
}

/// Turn tonic's connect error into the [`AttemptError`] our connector produced, if any.
async fn attempt_error(
    err: &tonic::transport::Error,
    opener: &Opener,
    timeout: Duration,
) -> AttemptError {
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(open) = e.downcast_ref::<OpenError>() {
            return open.0.clone();
        }
        let text = e.to_string();
        if text.contains("timed out") || text == "deadline has elapsed" {
            return AttemptError::Timeout(timeout);
        }
        chain.push(text);
        source = e.source();
    }
    let chain = chain.join(": ");
    match &opener.spec {
        TransportSpec::Command(cmd) => command_error(cmd, opener, chain).await,
        _ => AttemptError::Handshake(chain),
    }
}

/// A dial-stdio command failed: the failure plus the command's stderr.
async fn command_error(cmd: &CommandSpec, opener: &Opener, failure: String) -> AttemptError {
    // Give the child a moment to finish writing why it exited.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stderr = opener
        .stderr
        .lock()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if stderr.is_empty() {
        failure
    } else {
        format!("{failure}; its stderr: {stderr}")
    };
    AttemptError::Command {
        command: cmd.to_string(),
        message,
    }
}
