//! `moby.filesync.v1.FileSend/DiffCopy`, receive side: where an exporter that writes to the
//! client (`tar`, `oci`, `docker`) sends its output.
//!
//! For these exporters the stream carries plain `BytesMessage{data}` chunks (at most 3 MiB each);
//! the daemon half-closes when done and waits for the client to end the call, and an OK end means
//! the file was written (the session-and-gateway reference §6). The chunks are appended to the
//! session's [`FileSendTarget`] file, created fresh (an existing file there is an error: the
//! caller gives a temporary path and renames it into place only when the solve succeeded).
//!
//! The `local` exporter's fsutil packet stream over the same method is not received here: a
//! directory export uses the `tar` exporter and unpacks on the client (see
//! [`crate::client::export`]).

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::AsyncWriteExt as _;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::filesync::BytesMessage;
use crate::proto::filesync::file_send_server::FileSend;

/// Where a session writes the exporter output it receives, and what it received.
#[derive(Debug, Clone)]
pub struct FileSendTarget {
    inner: Arc<TargetInner>,
}

#[derive(Debug)]
struct TargetInner {
    path: PathBuf,
    bytes: AtomicU64,
    complete: AtomicBool,
    busy: AtomicBool,
}

impl FileSendTarget {
    /// A target writing to `path` (which must not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> FileSendTarget {
        FileSendTarget {
            inner: Arc::new(TargetInner {
                path: path.into(),
                bytes: AtomicU64::new(0),
                complete: AtomicBool::new(false),
                busy: AtomicBool::new(false),
            }),
        }
    }

    /// The file written.
    pub fn path(&self) -> &std::path::Path {
        &self.inner.path
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// Whether the daemon ended its stream and every byte was written.
    pub fn complete(&self) -> bool {
        self.inner.complete.load(Ordering::Acquire)
    }
}

/// The FileSend service of a session: writes into its target, if it has one.
#[derive(Debug, Clone)]
pub(crate) struct FileSendService {
    pub(crate) target: Option<FileSendTarget>,
}

type Empty = Pin<Box<dyn tokio_stream::Stream<Item = Result<BytesMessage, Status>> + Send>>;

#[tonic::async_trait]
impl FileSend for FileSendService {
    type DiffCopyStream = Empty;

    async fn diff_copy(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let Some(target) = &self.target else {
            return Err(Status::failed_precondition(
                "this session receives no exporter output",
            ));
        };
        if target.inner.busy.swap(true, Ordering::AcqRel) {
            return Err(Status::already_exists(format!(
                "{} is already being written",
                target.path().display()
            )));
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target.path())
            .await
            .map_err(|e| {
                let code = if e.kind() == std::io::ErrorKind::AlreadyExists {
                    tonic::Code::AlreadyExists
                } else {
                    tonic::Code::Internal
                };
                Status::new(code, format!("create {}: {e}", target.path().display()))
            })?;
        let mut stream = request.into_inner();
        while let Some(message) = stream.message().await? {
            file.write_all(&message.data)
                .await
                .map_err(|e| Status::internal(format!("write {}: {e}", target.path().display())))?;
            target
                .inner
                .bytes
                .fetch_add(message.data.len() as u64, Ordering::Relaxed);
        }
        file.sync_all()
            .await
            .map_err(|e| Status::internal(format!("write {}: {e}", target.path().display())))?;
        target.inner.complete.store(true, Ordering::Release);
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }
}
