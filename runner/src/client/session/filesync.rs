//! `moby.filesync.v1.FileSync/DiffCopy`, the send side (fsutil's sender): the daemon asks for a
//! local directory by name and the client streams it.
//!
//! The exchange, all on one bidirectional stream of fsutil `Packet`s:
//! 1. the client sends one `STAT` per entry in walk order ([`super::walk`]); the entries are numbered
//!    implicitly from 0; then one `STAT` without a stat marks the end;
//! 2. meanwhile (even before the end marker) the daemon sends `REQ{id}` for each regular file whose
//!    contents it lacks; the client answers with `DATA{id}` chunks of 32 KiB and an empty `DATA{id}`
//!    (up to 4 files in flight); only requested files are ever opened;
//! 3. the daemon sends `FIN` when it has everything; the client answers `FIN` and the call ends.
//!
//! Any failure on the client's side (see [`WalkError`]) is sent as `ERR` with a message naming the path
//! (the daemon reports it as "error from sender: …" in the solve's error), recorded in the session
//! under the directory's name, and ends the call. The walk runs on a blocking thread and file reads on
//! others, so the session's HTTP/2 server (and its health replies) never waits for disk I/O.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use super::walk::{Entry, Filter, WalkError, follow_paths, walk};
use super::{Counters, Shared};
use crate::proto::filesync::file_sync_server::FileSync;
use crate::proto::fsutil::types::Packet;
use crate::proto::fsutil::types::packet::PacketType;

/// DATA chunk size, as Go's sender uses.
const CHUNK: usize = 32 * 1024;
/// Files read at once per transfer, as Go's sender does.
const FILES_IN_FLIGHT: usize = 4;

/// The FileSync service of one session.
#[derive(Debug, Clone)]
pub(crate) struct FileSyncService {
    pub(crate) shared: Arc<Shared>,
}

/// Every value of `key`, decoded when the daemon marked them query-escaped (`<key>-encoded: 1`,
/// BuildKit v0.12+, for non-ASCII values).
pub(crate) fn metadata_values(md: &MetadataMap, key: &str) -> Vec<String> {
    let encoded = md
        .get(format!("{key}-encoded").as_str())
        .and_then(|v| v.to_str().ok())
        == Some("1");
    md.get_all(key)
        .iter()
        .map(|v| {
            let raw = String::from_utf8_lossy(v.as_bytes()).into_owned();
            if encoded { query_unescape(&raw) } else { raw }
        })
        .collect()
}

/// Go's `url.QueryUnescape` (`+` is a space); invalid escapes are kept as they are.
pub(crate) fn query_unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a transfer ended badly.
enum Failure {
    /// The client's side failed: sent as ERR and recorded.
    Sender(WalkError),
    /// The daemon broke the protocol.
    Protocol(String),
    /// The daemon sent ERR or went away: nothing to send back.
    Receiver,
}

fn packet(kind: PacketType) -> Packet {
    Packet {
        r#type: kind as i32,
        ..Packet::default()
    }
}

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = ReceiverStream<Result<Packet, Status>>;
    type TarStreamStream = ReceiverStream<Result<Packet, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let md = request.metadata();
        let Some(name) = metadata_values(md, "dir-name").into_iter().next() else {
            return Err(Status::invalid_argument("no dir-name in the request"));
        };
        let Some(root) = self.shared.dirs.get(&name) else {
            let message = format!("no access allowed to dir {name:?}");
            self.shared.record_error(&name, message.clone());
            return Err(Status::not_found(message));
        };
        let include = metadata_values(md, "include-patterns");
        let exclude = metadata_values(md, "exclude-patterns");
        let follow = metadata_values(md, "followpaths");
        let inbound = request.into_inner();
        let (out, rx) = mpsc::channel(64);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let dir = shared.dir_counters(&name);
            let result =
                transfer(&shared, &dir, root, include, exclude, follow, inbound, &out).await;
            match result {
                Ok(()) => {
                    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    for c in [shared.stats.as_ref(), dir.as_ref()] {
                        c.transfers.fetch_add(1, Ordering::Relaxed);
                        c.transfer_nanos.fetch_add(nanos, Ordering::Relaxed);
                    }
                    shared.clear_error(&name);
                }
                Err(Failure::Sender(err)) => {
                    let message = err.to_string();
                    shared.record_error(&name, message.clone());
                    let mut err_packet = packet(PacketType::PacketErr);
                    err_packet.data = Bytes::from(message.clone());
                    let _ = out.send(Ok(err_packet)).await;
                    let _ = out.send(Err(Status::unknown(message))).await;
                }
                Err(Failure::Protocol(message)) => {
                    let message = format!("local directory {name:?}: {message}");
                    shared.record_error(&name, message.clone());
                    let mut err_packet = packet(PacketType::PacketErr);
                    err_packet.data = Bytes::from(message.clone());
                    let _ = out.send(Ok(err_packet)).await;
                    let _ = out.send(Err(Status::invalid_argument(message))).await;
                }
                Err(Failure::Receiver) => {}
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn tar_stream(
        &self,
        _request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented(
            "TarStream is not served; BuildKit uses DiffCopy",
        ))
    }
}

type Out = mpsc::Sender<Result<Packet, Status>>;

#[allow(clippy::too_many_arguments)]
async fn transfer(
    shared: &Arc<Shared>,
    dir: &Arc<Counters>,
    root: PathBuf,
    include: Vec<String>,
    exclude: Vec<String>,
    follow: Vec<String>,
    mut inbound: Streaming<Packet>,
    out: &Out,
) -> Result<(), Failure> {
    let gone = |_| Failure::Receiver;
    let (walk_tx, mut walk_rx) = mpsc::channel::<Result<Entry, WalkError>>(256);
    {
        let root = root.clone();
        tokio::task::spawn_blocking(move || {
            let follow = follow_paths(&root, &follow);
            let result = Filter::new(&include, &exclude, &follow).and_then(|filter| {
                walk(&root, &filter, &mut |e| {
                    walk_tx.blocking_send(Ok(e)).is_ok()
                })
            });
            if let Err(e) = result {
                let _ = walk_tx.blocking_send(Err(e));
            }
        });
    }
    let mut files: HashMap<u32, PathBuf> = HashMap::new();
    let mut next_id: u32 = 0;
    let mut walking = true;
    let permits = Arc::new(Semaphore::new(FILES_IN_FLIGHT));
    let mut jobs: JoinSet<Result<(), WalkError>> = JoinSet::new();
    loop {
        tokio::select! {
            item = walk_rx.recv(), if walking => match item {
                Some(Ok(entry)) => {
                    if let Some(file) = entry.file {
                        files.insert(next_id, file);
                    }
                    next_id = next_id.wrapping_add(1);
                    let mut p = packet(PacketType::PacketStat);
                    p.stat = Some(entry.stat);
                    out.send(Ok(p)).await.map_err(gone)?;
                }
                Some(Err(e)) => return Err(Failure::Sender(e)),
                None => {
                    walking = false;
                    out.send(Ok(packet(PacketType::PacketStat))).await.map_err(gone)?;
                }
            },
            message = inbound.message() => match message {
                Ok(Some(p)) => match PacketType::try_from(p.r#type) {
                    Ok(PacketType::PacketReq) => {
                        let Some(path) = files.remove(&p.id) else {
                            return Err(Failure::Protocol(format!("invalid file id {}", p.id)));
                        };
                        let permits = Arc::clone(&permits);
                        let out = out.clone();
                        let counters = [Arc::clone(&shared.stats), Arc::clone(dir)];
                        let id = p.id;
                        jobs.spawn(async move {
                            let Ok(_permit) = permits.acquire_owned().await else {
                                return Ok(());
                            };
                            tokio::task::spawn_blocking(move || send_file(&counters, id, &path, &out))
                                .await
                                .unwrap_or(Ok(()))
                        });
                    }
                    Ok(PacketType::PacketFin) => {
                        while let Some(job) = jobs.join_next().await {
                            if let Ok(Err(e)) = job {
                                return Err(Failure::Sender(e));
                            }
                        }
                        out.send(Ok(packet(PacketType::PacketFin))).await.map_err(gone)?;
                        return Ok(());
                    }
                    Ok(PacketType::PacketErr) => {
                        return Err(Failure::Receiver);
                    }
                    _ => {
                        return Err(Failure::Protocol(format!(
                            "unexpected packet type {} from the daemon",
                            p.r#type
                        )));
                    }
                },
                Ok(None) | Err(_) => return Err(Failure::Receiver),
            },
            Some(job) = jobs.join_next(), if !jobs.is_empty() => {
                if let Ok(Err(e)) = job {
                    return Err(Failure::Sender(e));
                }
            }
        }
    }
}

/// Read one requested file and send it as DATA chunks plus the empty end chunk (blocking).
fn send_file(
    counters: &[Arc<Counters>; 2],
    id: u32,
    path: &std::path::Path,
    out: &Out,
) -> Result<(), WalkError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| WalkError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = loop {
            match file.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(unreadable(e)),
            }
        };
        if n == 0 {
            break;
        }
        buf.truncate(n);
        let mut p = packet(PacketType::PacketData);
        p.id = id;
        p.data = Bytes::from(buf);
        if out.blocking_send(Ok(p)).is_err() {
            return Ok(());
        }
        for c in counters {
            c.file_bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    let mut end = packet(PacketType::PacketData);
    end.id = id;
    if out.blocking_send(Ok(end)).is_ok() {
        for c in counters {
            c.files_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::session::LocalDirs;
    use crate::client::session::services::{METHODS, Router};
    use crate::proto::filesync::auth_client::AuthClient;
    use crate::proto::filesync::file_sync_client::FileSyncClient;
    use crate::proto::filesync::{CredentialsRequest, GetTokenAuthorityRequest};
    use crate::proto::grpc::health::v1::HealthCheckRequest;
    use crate::proto::grpc::health::v1::health_client::HealthClient;
    use std::sync::Mutex;
    use tonic::transport::{Channel, Endpoint};

    /// The session's services on one end of an in-memory pipe, a client channel on the other.
    async fn serve_in_memory(dirs: LocalDirs) -> (Channel, Arc<Shared>) {
        serve_in_memory_with(dirs, None).await
    }

    /// [`serve_in_memory`] with a FileSend target.
    async fn serve_in_memory_with(
        dirs: LocalDirs,
        file_send: Option<super::super::FileSendTarget>,
    ) -> (Channel, Arc<Shared>) {
        let shared = Arc::new(Shared {
            dirs,
            stats: Arc::default(),
            per_dir: Mutex::default(),
            errors: Mutex::default(),
        });
        let router = Router::new(
            FileSyncService {
                shared: Arc::clone(&shared),
            },
            super::super::filesend::FileSendService { target: file_send },
        );
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(
                    hyper_util::rt::TokioIo::new(server_io),
                    hyper_util::service::TowerToHyperService::new(router),
                )
                .await;
        });
        let io = Arc::new(Mutex::new(Some(client_io)));
        let channel = Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                let io = io.lock().unwrap().take();
                async move {
                    io.map(hyper_util::rt::TokioIo::new)
                        .ok_or_else(|| std::io::Error::other("one connection only"))
                }
            }))
            .await
            .unwrap();
        (channel, shared)
    }

    fn req(kind: PacketType, id: u32) -> Packet {
        let mut p = packet(kind);
        p.id = id;
        p
    }

    /// FileSend writes an exporter's chunks to a fresh file and ends OK; an existing file is
    /// AlreadyExists (never overwritten); a session without a target refuses.
    #[tokio::test]
    async fn file_send_writes_the_exporters_chunks_to_a_fresh_file() {
        use crate::client::session::FileSendTarget;
        use crate::proto::filesync::BytesMessage;
        use crate::proto::filesync::file_send_client::FileSendClient;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.tar");
        let target = FileSendTarget::new(&path);
        let (channel, _) = serve_in_memory_with(LocalDirs::new(), Some(target.clone())).await;
        let mut client = FileSendClient::new(channel);
        let chunks = vec![
            BytesMessage {
                data: bytes::Bytes::from_static(b"hello "),
            },
            BytesMessage {
                data: bytes::Bytes::from_static(b"world"),
            },
        ];
        let mut answer = client
            .diff_copy(tokio_stream::iter(chunks))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.message().await.unwrap().is_none());
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert!(target.complete());
        assert_eq!(target.bytes(), 11);

        let other = FileSendTarget::new(&path);
        let (channel, _) = serve_in_memory_with(LocalDirs::new(), Some(other.clone())).await;
        let err = FileSendClient::new(channel)
            .diff_copy(tokio_stream::iter(Vec::<BytesMessage>::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err:?}");
        assert!(!other.complete());
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world", "untouched");

        let (channel, _) = serve_in_memory(LocalDirs::new()).await;
        let err = FileSendClient::new(channel)
            .diff_copy(tokio_stream::iter(Vec::<BytesMessage>::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    }

    #[tokio::test]
    async fn health_and_anonymous_auth() {
        let (channel, _) = serve_in_memory(LocalDirs::new()).await;
        let health = HealthClient::new(channel.clone())
            .check(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(health.status, 1, "SERVING");
        let mut auth = AuthClient::new(channel.clone());
        let creds = auth
            .credentials(CredentialsRequest {
                host: "registry.invalid".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(creds.username.is_empty() && creds.secret.is_empty());
        let err = auth
            .get_token_authority(GetTokenAuthorityRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
        assert!(
            METHODS
                .iter()
                .all(|m| m.starts_with('/') && !m.contains(','))
        );
    }

    #[tokio::test]
    async fn diff_copy_protocol() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("d/big"), &big).unwrap();
        std::fs::write(dir.path().join("small"), b"small").unwrap();
        std::fs::write(dir.path().join("unasked"), b"never read").unwrap();
        let dirs = LocalDirs::new();
        dirs.insert("ctx", dir.path());
        let (channel, shared) = serve_in_memory(dirs).await;
        let mut client = FileSyncClient::new(channel);

        // Unknown name.
        let (_tx, rx) = mpsc::channel::<Packet>(8);
        let mut request = Request::new(ReceiverStream::new(rx));
        request
            .metadata_mut()
            .insert("dir-name", "nope".parse().unwrap());
        let err = client.diff_copy(request).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert_eq!(err.message(), "no access allowed to dir \"nope\"");

        let (tx, rx) = mpsc::channel::<Packet>(8);
        let mut request = Request::new(ReceiverStream::new(rx));
        request
            .metadata_mut()
            .insert("dir-name", "ctx".parse().unwrap());
        let mut stream = client.diff_copy(request).await.unwrap().into_inner();
        let mut stats = Vec::new();
        loop {
            let p = stream.message().await.unwrap().unwrap();
            assert_eq!(p.r#type, PacketType::PacketStat as i32);
            match p.stat {
                Some(stat) => stats.push(stat),
                None => break,
            }
        }
        let paths: Vec<&str> = stats.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["d", "d/big", "small", "unasked"]);
        // Request "d/big" (id 1) and "small" (id 2), not "unasked".
        tx.send(req(PacketType::PacketReq, 2)).await.unwrap();
        tx.send(req(PacketType::PacketReq, 1)).await.unwrap();
        let mut files: HashMap<u32, Vec<u8>> = HashMap::new();
        let mut done = 0;
        while done < 2 {
            let p = stream.message().await.unwrap().unwrap();
            assert_eq!(p.r#type, PacketType::PacketData as i32);
            assert!(p.data.len() <= CHUNK);
            if p.data.is_empty() {
                done += 1;
            } else {
                files.entry(p.id).or_default().extend_from_slice(&p.data);
            }
        }
        assert_eq!(files[&1], big);
        assert_eq!(files[&2], b"small");
        tx.send(req(PacketType::PacketFin, 0)).await.unwrap();
        let fin = stream.message().await.unwrap().unwrap();
        assert_eq!(fin.r#type, PacketType::PacketFin as i32);
        drop(tx);
        assert!(stream.message().await.unwrap().is_none());
        let c = &shared.stats;
        assert_eq!(c.file_bytes_sent.load(Ordering::Relaxed), 100_005);
        assert_eq!(c.files_sent.load(Ordering::Relaxed), 2);
        assert_eq!(c.transfers.load(Ordering::Relaxed), 1);

        // Requesting a directory's id is a protocol error, sent as ERR and recorded.
        let (tx, rx) = mpsc::channel::<Packet>(8);
        let mut request = Request::new(ReceiverStream::new(rx));
        request
            .metadata_mut()
            .insert("dir-name", "ctx".parse().unwrap());
        request
            .metadata_mut()
            .append("include-patterns", "d".parse().unwrap());
        let mut stream = client.diff_copy(request).await.unwrap().into_inner();
        let mut seen = Vec::new();
        while let Some(stat) = stream.message().await.unwrap().unwrap().stat {
            seen.push(stat.path);
        }
        assert_eq!(seen, ["d", "d/big"]);
        tx.send(req(PacketType::PacketReq, 0)).await.unwrap();
        let err = stream.message().await.unwrap().unwrap();
        assert_eq!(err.r#type, PacketType::PacketErr as i32);
        let message = String::from_utf8_lossy(&err.data).into_owned();
        assert_eq!(message, "local directory \"ctx\": invalid file id 0");
        assert_eq!(shared.errors.lock().unwrap().get("ctx"), Some(&message));
        assert!(stream.message().await.is_err());
    }

    #[test]
    fn query_unescape_matches_go() {
        assert_eq!(query_unescape("a+b%2Fc%C3%A9"), "a b/cé");
        assert_eq!(query_unescape("100%"), "100%");
        assert_eq!(query_unescape("%zz"), "%zz");
    }
}
