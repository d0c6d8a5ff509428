//! The session's content store: containerd's `Content` service
//! (`/containerd.services.content.v1.Content/*`), which a BuildKit daemon calls on the client's
//! session to write a `type=local` cache export and to read a `type=local` cache import.
//!
//! Each call names its store in the `buildkit-attachable-store-id` metadata value: BuildKit uses
//! `local:` + the entry's `dest` (export) or `src` (import) attribute. [`ContentStores`] maps those
//! ids to directories, each an OCI layout: committed blobs in `blobs/<alg>/<hex>`, writes in
//! progress in `ingest/<hash of the write's ref>/data` until they are committed (the digest is
//! checked, then the file is renamed into `blobs/`). `index.json` is the client's to write after
//! the solve ([`crate::client::cache::layout::put`]).
//!
//! What the daemon's side does (containerd's content proxy, as BuildKit v0.8–v0.32 use it):
//! `Info` to learn a blob's size (`NotFound` when absent); `Read` with an offset and a size (0: to
//! the end) answered as a stream of chunks; `Write` as a stream where **every request gets one
//! response**: `STAT` (the ref, the expected digest and total; `AlreadyExists` when the blob is
//! there, which the daemon counts as done), `WRITE` (data at an offset; the answer's `offset` is
//! the new size) and `COMMIT` (the answer carries the digest, which must equal the expected one).
//! Nothing else is served (`Unimplemented`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::content::content_server::Content;
use crate::proto::content::{
    AbortRequest, DeleteContentRequest, Info, InfoRequest, InfoResponse, ListContentRequest,
    ListContentResponse, ListStatusesRequest, ListStatusesResponse, ReadContentRequest,
    ReadContentResponse, StatusRequest, StatusResponse, UpdateRequest, UpdateResponse, WriteAction,
    WriteContentRequest, WriteContentResponse,
};

/// The metadata key naming the store a call is for.
pub const STORE_ID_HEADER: &str = "buildkit-attachable-store-id";

/// How much of a blob one `Read` answer carries.
const READ_CHUNK: usize = 1 << 20;

/// Store ids → OCI layout directories, shared by every clone (add stores before the solve that
/// uses them), with counters of what was read and written.
#[derive(Debug, Clone, Default)]
pub struct ContentStores {
    map: Arc<RwLock<BTreeMap<String, PathBuf>>>,
    counters: Arc<ContentCounters>,
}

#[derive(Debug, Default)]
struct ContentCounters {
    written: AtomicU64,
    blobs_written: AtomicU64,
    read: AtomicU64,
}

/// What the daemon moved through the content stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentStats {
    /// Bytes written (cache exports).
    pub bytes_written: u64,
    /// Blobs committed.
    pub blobs_written: u64,
    /// Bytes read (cache imports).
    pub bytes_read: u64,
}

impl ContentStores {
    /// No stores.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `dir` for the store a `type=local` cache entry with `dest=`/`src=` `attr` names
    /// (BuildKit's id `local:<attr>`).
    pub fn insert_local(&self, attr: &str, dir: impl Into<PathBuf>) {
        self.insert(format!("local:{attr}"), dir);
    }

    /// Serves `dir` under the store id `id`.
    pub fn insert(&self, id: impl Into<String>, dir: impl Into<PathBuf>) {
        if let Ok(mut map) = self.map.write() {
            map.insert(id.into(), dir.into());
        }
    }

    /// The directory of store `id`.
    pub fn get(&self, id: &str) -> Option<PathBuf> {
        self.map.read().ok()?.get(id).cloned()
    }

    /// Whether any store is served.
    pub fn is_empty(&self) -> bool {
        self.map.read().map(|m| m.is_empty()).unwrap_or(true)
    }

    /// What was read and written so far.
    pub fn stats(&self) -> ContentStats {
        ContentStats {
            bytes_written: self.counters.written.load(Ordering::Relaxed),
            blobs_written: self.counters.blobs_written.load(Ordering::Relaxed),
            bytes_read: self.counters.read.load(Ordering::Relaxed),
        }
    }
}

/// The service.
#[derive(Debug, Clone)]
pub(crate) struct ContentService {
    stores: ContentStores,
}

impl ContentService {
    pub(crate) fn new(stores: ContentStores) -> Self {
        Self { stores }
    }

    fn store<T>(&self, request: &Request<T>) -> Result<PathBuf, Status> {
        let id = request
            .metadata()
            .get(STORE_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Status::invalid_argument(format!("request lacks {STORE_ID_HEADER}")))?;
        self.stores
            .get(id)
            .ok_or_else(|| Status::not_found(format!("unknown content store {id}")))
    }
}

/// `blobs/<alg>/<hex>` of a digest, refusing anything that is not `alg:hex`.
fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf, Status> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| Status::invalid_argument(format!("invalid digest {digest:?}")))?;
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok(alg) || !ok(hex) {
        return Err(Status::invalid_argument(format!(
            "invalid digest {digest:?}"
        )));
    }
    Ok(dir.join("blobs").join(alg).join(hex))
}

fn ingest_dir(dir: &Path, write_ref: &str) -> PathBuf {
    let key = hex::encode(&Sha256::digest(write_ref.as_bytes())[..16]);
    dir.join("ingest").join(key)
}

fn io_status(what: &str, path: &Path, e: &std::io::Error) -> Status {
    if e.kind() == std::io::ErrorKind::NotFound {
        Status::not_found(format!("{what} {}: not found", path.display()))
    } else {
        Status::internal(format!("{what} {}: {e}", path.display()))
    }
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Content for ContentService {
    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let dir = self.store(&request)?;
        let digest = request.into_inner().digest;
        let path = blob_path(&dir, &digest)?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| io_status("stat", &path, &e))?;
        let at = meta.modified().map(timestamp).ok();
        Ok(Response::new(InfoResponse {
            info: Some(Info {
                digest,
                size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
                created_at: at,
                updated_at: at,
                labels: BTreeMap::new(),
            }),
        }))
    }

    async fn update(
        &self,
        _request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        Err(Status::unimplemented(
            "the session's content store keeps no labels",
        ))
    }

    type ListStream = BoxStream<ListContentResponse>;

    async fn list(
        &self,
        _request: Request<ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        Err(Status::unimplemented(
            "the session's content store is not listed",
        ))
    }

    async fn delete(
        &self,
        _request: Request<DeleteContentRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented(
            "the session's content store deletes nothing",
        ))
    }

    type ReadStream = ReceiverStream<Result<ReadContentResponse, Status>>;

    async fn read(
        &self,
        request: Request<ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let dir = self.store(&request)?;
        let req = request.into_inner();
        let path = blob_path(&dir, &req.digest)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_status("open", &path, &e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| io_status("stat", &path, &e))?
            .len();
        let start = u64::try_from(req.offset.max(0)).unwrap_or(0).min(len);
        let end = match u64::try_from(req.size) {
            Ok(0) | Err(_) => len,
            Ok(size) => start.saturating_add(size).min(len),
        };
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| io_status("seek in", &path, &e))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let counters = Arc::clone(&self.stores.counters);
        tokio::spawn(async move {
            let mut offset = start;
            let mut buf = vec![0u8; READ_CHUNK];
            while offset < end {
                let want = usize::try_from(end - offset)
                    .unwrap_or(READ_CHUNK)
                    .min(READ_CHUNK);
                let n = match file.read(&mut buf[..want]).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(io_status("read", &path, &e))).await;
                        return;
                    }
                };
                counters.read.fetch_add(n as u64, Ordering::Relaxed);
                let msg = ReadContentResponse {
                    offset: i64::try_from(offset).unwrap_or(i64::MAX),
                    data: bytes::Bytes::copy_from_slice(&buf[..n]),
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
                offset += n as u64;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Err(Status::unimplemented(
            "the session's content store reports status on Write",
        ))
    }

    async fn list_statuses(
        &self,
        _request: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        Ok(Response::new(ListStatusesResponse::default()))
    }

    type WriteStream = ReceiverStream<Result<WriteContentResponse, Status>>;

    async fn write(
        &self,
        request: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        let dir = self.store(&request)?;
        let inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let counters = Arc::clone(&self.stores.counters);
        tokio::spawn(async move {
            if let Err(status) = serve_write(&dir, inbound, &tx, &counters).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let dir = self.store(&request)?;
        let ingest = ingest_dir(&dir, &request.into_inner().r#ref);
        match tokio::fs::remove_dir_all(&ingest).await {
            Ok(()) => Ok(Response::new(())),
            Err(e) => Err(io_status("remove", &ingest, &e)),
        }
    }
}

/// One `Write` stream: one answer per request, until `COMMIT` or the end of the stream.
async fn serve_write(
    dir: &Path,
    mut inbound: Streaming<WriteContentRequest>,
    tx: &tokio::sync::mpsc::Sender<Result<WriteContentResponse, Status>>,
    counters: &ContentCounters,
) -> Result<(), Status> {
    let started = SystemTime::now();
    let mut write_ref = String::new();
    let mut expected = String::new();
    let mut total = 0i64;
    let mut file: Option<(tokio::fs::File, PathBuf)> = None;
    let mut size: u64 = 0;
    while let Some(req) = inbound.message().await? {
        if write_ref.is_empty() {
            if req.r#ref.is_empty() {
                return Err(Status::invalid_argument("the first write names no ref"));
            }
            write_ref.clone_from(&req.r#ref);
        }
        if !req.expected.is_empty() {
            expected.clone_from(&req.expected);
        }
        if req.total > 0 {
            total = req.total;
        }
        if !expected.is_empty()
            && tokio::fs::try_exists(blob_path(dir, &expected)?)
                .await
                .unwrap_or(false)
        {
            return Err(Status::already_exists(format!(
                "content {expected} already exists"
            )));
        }
        if file.is_none() {
            let ingest = ingest_dir(dir, &write_ref);
            tokio::fs::create_dir_all(&ingest)
                .await
                .map_err(|e| io_status("create", &ingest, &e))?;
            let path = ingest.join("data");
            let f = tokio::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .await
                .map_err(|e| io_status("open", &path, &e))?;
            size = f
                .metadata()
                .await
                .map_err(|e| io_status("stat", &path, &e))?
                .len();
            file = Some((f, path));
        }
        let Some((f, path)) = file.as_mut() else {
            return Err(Status::internal("the write has no file"));
        };
        let action = WriteAction::try_from(req.action).unwrap_or(WriteAction::Stat);
        if matches!(action, WriteAction::Write | WriteAction::Commit) && !req.data.is_empty() {
            let offset = u64::try_from(req.offset.max(0)).unwrap_or(0);
            if offset > size {
                return Err(Status::out_of_range(format!(
                    "write at offset {offset} beyond the {size} bytes written"
                )));
            }
            if offset < size {
                f.set_len(offset)
                    .await
                    .map_err(|e| io_status("truncate", path, &e))?;
            }
            f.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| io_status("seek in", path, &e))?;
            f.write_all(&req.data)
                .await
                .map_err(|e| io_status("write", path, &e))?;
            size = offset + req.data.len() as u64;
            counters
                .written
                .fetch_add(req.data.len() as u64, Ordering::Relaxed);
        }
        let mut answer = WriteContentResponse {
            action: action as i32,
            started_at: Some(timestamp(started)),
            updated_at: Some(timestamp(SystemTime::now())),
            offset: i64::try_from(size).unwrap_or(i64::MAX),
            total,
            digest: String::new(),
        };
        if action == WriteAction::Commit {
            f.flush().await.map_err(|e| io_status("flush", path, &e))?;
            if total > 0 && i64::try_from(size).ok() != Some(total) {
                return Err(Status::failed_precondition(format!(
                    "commit of {size} bytes, expected {total}"
                )));
            }
            let digest = sha256_of(path).await?;
            if !expected.is_empty() && digest != expected {
                return Err(Status::failed_precondition(format!(
                    "unexpected commit digest {digest}, expected {expected}"
                )));
            }
            let blob = blob_path(dir, &digest)?;
            if let Some(parent) = blob.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| io_status("create", parent, &e))?;
            }
            tokio::fs::rename(&*path, &blob)
                .await
                .map_err(|e| io_status("commit", &blob, &e))?;
            if let Some(ingest) = path.parent() {
                let _ = tokio::fs::remove_dir_all(ingest).await;
            }
            counters.blobs_written.fetch_add(1, Ordering::Relaxed);
            answer.digest = digest;
            let _ = tx.send(Ok(answer)).await;
            return Ok(());
        }
        if tx.send(Ok(answer)).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

async fn sha256_of(path: &Path) -> Result<String, Status> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_status("open", path, &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| io_status("read", path, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}
