//! In-process stand-ins for faults a real daemon cannot produce on demand, and for the direct
//! buildkitd transports (no buildkitd package exists here): a fake Control server (generated server
//! code, feature `test-server`), byte proxies that can be killed mid-stream, and throwaway TLS PKI.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use buildtest::proto::control::control_server::{Control, ControlServer};
use buildtest::proto::control::{
    BytesMessage, InfoRequest, InfoResponse, ListWorkersRequest, ListWorkersResponse, PruneRequest,
    SolveRequest, SolveResponse, StatusRequest, StatusResponse, UsageRecord, Vertex,
};
use buildtest::proto::types::{BuildkitVersion, WorkerRecord};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// What the fake's `Solve` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SolveBehaviour {
    /// Answer at once with success.
    Succeed,
    /// Never answer (until the connection goes away).
    Hang,
}

/// A fake BuildKit Control service.
#[derive(Debug, Clone)]
pub(crate) struct FakeControl {
    /// `Solve`'s behaviour.
    pub(crate) solve: SolveBehaviour,
    /// The solve requests received.
    pub(crate) solves: Arc<Mutex<Vec<SolveRequest>>>,
    /// The metadata of every `Session` call received (the fake then ends the stream at once).
    pub(crate) sessions: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Control for FakeControl {
    type PruneStream = BoxStream<UsageRecord>;
    type StatusStream = BoxStream<StatusResponse>;
    type SessionStream = BoxStream<BytesMessage>;

    async fn session(
        &self,
        request: Request<tonic::Streaming<BytesMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        self.sessions
            .lock()
            .unwrap()
            .push(request.metadata().clone());
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    async fn prune(&self, _: Request<PruneRequest>) -> Result<Response<Self::PruneStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    async fn solve(
        &self,
        request: Request<SolveRequest>,
    ) -> Result<Response<SolveResponse>, Status> {
        self.solves.lock().unwrap().push(request.into_inner());
        match self.solve {
            SolveBehaviour::Succeed => Ok(Response::new(SolveResponse::default())),
            SolveBehaviour::Hang => std::future::pending().await,
        }
    }

    async fn status(
        &self,
        _: Request<StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        let started = Some(prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        });
        let vertex = Vertex {
            digest: "sha256:fake".into(),
            name: "fake vertex".into(),
            started,
            ..Vertex::default()
        };
        let first = StatusResponse {
            vertexes: vec![vertex],
            ..StatusResponse::default()
        };
        let stream = tokio_stream::iter([Ok(first)]);
        match self.solve {
            SolveBehaviour::Succeed => Ok(Response::new(Box::pin(stream))),
            SolveBehaviour::Hang => {
                let pending = tokio_stream::pending::<Result<StatusResponse, Status>>();
                Ok(Response::new(Box::pin(tokio_stream::StreamExt::chain(
                    stream, pending,
                ))))
            }
        }
    }

    async fn list_workers(
        &self,
        _: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        let record = WorkerRecord {
            id: "fake-worker".into(),
            ..WorkerRecord::default()
        };
        Ok(Response::new(ListWorkersResponse {
            record: vec![record],
        }))
    }

    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let version = BuildkitVersion {
            package: "fake".into(),
            version: "v0.0.0-fake".into(),
            revision: String::new(),
        };
        Ok(Response::new(InfoResponse {
            buildkit_version: Some(version),
        }))
    }
}

/// A running in-process server or proxy; [`Server::kill`] closes the listener and every connection.
#[derive(Debug)]
pub(crate) struct Server {
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
    /// The fake's record of solve requests (fake servers only).
    pub(crate) solves: Arc<Mutex<Vec<SolveRequest>>>,
    /// The fake's record of session metadata (fake servers only).
    pub(crate) sessions: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
}

impl Server {
    /// Stop accepting and drop every open connection (the peer sees the stream close).
    pub(crate) fn kill(&self) {
        self.accept.abort();
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where a fake listens.
pub(crate) enum Listen {
    /// A unix socket (already bound, see [`Listen::unix`]).
    Unix(UnixListener),
    /// A TCP listener (already bound).
    Tcp(TcpListener),
    /// A TCP listener with TLS.
    Tls(TcpListener, Arc<rustls::ServerConfig>),
}

impl Listen {
    /// Bind a unix socket at `path` now, so connecting right after cannot race the server.
    pub(crate) fn unix(path: &Path) -> Self {
        Listen::Unix(UnixListener::bind(path).unwrap())
    }
}

trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

/// Accept connections and hand each to `serve` (spawned, tracked for `kill`).
fn accept_loop<F, Fut>(
    listen: Listen,
    serve: F,
    solves: Arc<Mutex<Vec<SolveRequest>>>,
    sessions: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
) -> Server
where
    F: Fn(Box<dyn Conn>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let tracked = Arc::clone(&tasks);
    let accept = tokio::spawn(async move {
        let serve = Arc::new(serve);
        match listen {
            Listen::Unix(listener) => {
                while let Ok((stream, _)) = listener.accept().await {
                    tracked
                        .lock()
                        .unwrap()
                        .push(tokio::spawn(serve(Box::new(stream))));
                }
            }
            Listen::Tcp(listener) => {
                while let Ok((stream, _)) = listener.accept().await {
                    tracked
                        .lock()
                        .unwrap()
                        .push(tokio::spawn(serve(Box::new(stream))));
                }
            }
            Listen::Tls(listener, config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                while let Ok((stream, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    let serve = Arc::clone(&serve);
                    tracked.lock().unwrap().push(tokio::spawn(async move {
                        // A refused handshake just drops the connection, as a real server does.
                        if let Ok(tls) = acceptor.accept(stream).await {
                            serve(Box::new(tls)).await;
                        }
                    }));
                }
            }
        }
    });
    Server {
        tasks,
        accept,
        solves,
        sessions,
    }
}

/// Serve a fake Control API (HTTP/2 gRPC) on `listen`.
pub(crate) fn fake_control(listen: Listen, solve: SolveBehaviour) -> Server {
    let solves: Arc<Mutex<Vec<SolveRequest>>> = Arc::default();
    let sessions: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>> = Arc::default();
    let fake = FakeControl {
        solve,
        solves: Arc::clone(&solves),
        sessions: Arc::clone(&sessions),
    };
    let serve = move |io: Box<dyn Conn>| {
        let service = TowerToHyperService::new(ControlServer::new(fake.clone()));
        async move {
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .await;
        }
    };
    accept_loop(listen, serve, solves, sessions)
}

/// Forward every connection on `listen` to the unix socket `target` (byte for byte).
pub(crate) fn proxy_to_unix(listen: Listen, target: &Path) -> Server {
    let target = target.to_path_buf();
    let serve = move |mut io: Box<dyn Conn>| {
        let target = target.clone();
        async move {
            if let Ok(mut upstream) = UnixStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut io, &mut upstream).await;
            }
        }
    };
    accept_loop(listen, serve, Arc::default(), Arc::default())
}

/// Throwaway PKI: a CA, a server certificate for 127.0.0.1/localhost, a client certificate.
pub(crate) struct Pki {
    /// Client-side files: `ca.pem`, `cert.pem`, `key.pem` (Docker's layout).
    pub(crate) client_dir: tempfile::TempDir,
    /// Server configuration requiring a client certificate signed by the CA.
    pub(crate) server: Arc<rustls::ServerConfig>,
}

impl Pki {
    /// Generate everything; the server advertises `alpn`.
    pub(crate) fn new(alpn: &[&[u8]]) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "buildtest test ca");
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
        let server_cert = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();

        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

        let client_dir = tempfile::tempdir().unwrap();
        std::fs::write(client_dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(client_dir.path().join("cert.pem"), client_cert.pem()).unwrap();
        std::fs::write(
            client_dir.path().join("key.pem"),
            client_key.serialize_pem(),
        )
        .unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.der().clone()], key)
            .unwrap();
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Self {
            client_dir,
            server: Arc::new(server),
        }
    }

    /// A path in the client directory.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.client_dir.path().join(name)
    }
}
