//! Inputs from the host: the local directories a run's checks read ([`State::local_dir`],
//! `cargo_bin!`), checked before anything is solved and served by one client session per run.
//!
//! The harness lists the local sources of every selected test's input (pure, from the LLB graph),
//! resolves each to a host directory (relative paths against the current directory, which cargo
//! sets to the package root), and reports a missing one as a setup error of exactly the checks
//! that read it. If any directory is left, it opens one [`client::Session`] for the run, serving
//! them all; every solve carries its id, and the session closes when the run ends, printing what
//! it sent (`buildtest: local files sent: …`).
//!
//! [`State::local_dir`]: crate::llb::State::local_dir

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::client::{self, LocalDirs, SessionOptions, TransferStats};
use crate::harness::errors::InputError;
use crate::llb::{FileAction, LocalSource, State};
use crate::protocol::events::LOCAL_FILES_SENT;

/// The local directories of one test's input, resolved against the current directory.
#[derive(Debug, Default)]
pub(crate) struct TestInputs {
    /// Source name → host directory.
    pub(crate) dirs: BTreeMap<String, PathBuf>,
    /// Why the input cannot be served (a missing directory, a source no directory stands for);
    /// every check of the test is then a setup error with this message.
    pub(crate) problem: Option<InputError>,
}

impl TestInputs {
    /// Lists and checks the local sources of `input`.
    pub(crate) fn of(input: &State, cwd: &Path) -> TestInputs {
        let sources = match input.local_sources() {
            Ok(sources) => sources,
            // `marshal` reports the same error, with its context, when the check is prepared.
            Err(_) => return TestInputs::default(),
        };
        let mut inputs = TestInputs::default();
        for source in sources {
            match resolve(&source, cwd) {
                Ok(path) => {
                    inputs.dirs.insert(source.name, path);
                }
                Err(problem) => {
                    inputs.problem = Some(problem);
                    break;
                }
            }
        }
        inputs
    }
}

/// The input checks run on: `input`, or, when `input` is itself a local directory, a copy of it
/// on scratch.
///
/// A check exec's result is a snapshot on top of its rootfs. With the directory's transfer
/// snapshot as the rootfs, that result holds the transfer snapshot forever, so BuildKit cannot
/// reuse it for the next run's transfer and sends every file again (measured on BuildKit v0.8.3
/// and v0.13.2: a rerun re-sent the whole directory; with the copy it sends nothing). The copy
/// keeps every file's mode, owner and times.
pub(crate) fn check_input(input: &State) -> State {
    if input.is_local_source() {
        State::scratch().file(FileAction::copy(input, "/", "/"))
    } else {
        input.clone()
    }
}

/// The host directory of a local source, checked to exist.
fn resolve(source: &LocalSource, cwd: &Path) -> Result<PathBuf, InputError> {
    let Some(path) = &source.path else {
        return Err(InputError::NoDirectory {
            name: source.name.clone(),
        });
    };
    let full = cwd.join(path);
    match std::fs::metadata(&full) {
        Ok(md) if md.is_dir() => Ok(full),
        Ok(_) => Err(InputError::NotADirectory { path: full }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err(InputError::Missing { path: full })
        }
        Err(source) => Err(InputError::Unreadable { path: full, source }),
    }
}

/// The run's session, when some selected test reads local directories.
pub(crate) struct Served {
    session: client::Session,
}

impl Served {
    /// Opens the run's session on `client`, serving `dirs`. The shared key is the current
    /// directory, so the next run of the same package reuses the daemon's copy of each directory
    /// and sends only what changed.
    pub(crate) async fn open(
        client: &client::Client,
        dirs: &BTreeMap<String, PathBuf>,
        cwd: &Path,
        content: client::ContentStores,
        secrets: client::Secrets,
        id: &str,
    ) -> Result<Served, InputError> {
        let served = LocalDirs::new();
        for (name, path) in dirs {
            served.insert(name.clone(), path.clone());
        }
        let options = SessionOptions {
            shared_key: cwd.display().to_string(),
            dirs: served,
            content,
            secrets,
            id: Some(id.to_owned()),
            ..SessionOptions::default()
        };
        let session = client.start_session(options).await?;
        Ok(Served { session })
    }

    /// Serves `dirs` too (the session was opened before the run knew them).
    pub(crate) fn serve(&self, dirs: &BTreeMap<String, PathBuf>) {
        for (name, path) in dirs {
            self.session.dirs().insert(name.clone(), path.clone());
        }
    }

    /// The session id the solves carry.
    pub(crate) fn id(&self) -> String {
        self.session.id().to_owned()
    }

    /// A handle the solves keep, to explain a failed transfer.
    pub(crate) fn status(&self) -> client::SessionStatus {
        self.session.status()
    }

    /// Closes the session (after the last solve) and returns what it sent, what it sent of the
    /// `probe` directories (when there are any), and why closing failed.
    pub(crate) async fn close(
        self,
        probe: &[String],
    ) -> (TransferStats, Option<TransferStats>, Option<String>) {
        let probe_stats = (!probe.is_empty()).then(|| {
            probe.iter().map(|name| self.session.dir_stats(name)).fold(
                TransferStats::default(),
                |a, b| TransferStats {
                    file_bytes_sent: a.file_bytes_sent + b.file_bytes_sent,
                    files_sent: a.files_sent + b.files_sent,
                    transfers: a.transfers + b.transfers,
                    transfer_time: a.transfer_time + b.transfer_time,
                },
            )
        });
        let stats = self.session.stats();
        match self.session.close().await {
            Ok(stats) => (stats, probe_stats, None),
            Err(err) => (stats, probe_stats, Some(format!("failed to {err}"))),
        }
    }
}

/// The line printed after a run that served local directories (with the probe's share when the
/// probe travelled through the session).
pub(crate) fn describe(stats: &TransferStats, probe: Option<&TransferStats>) -> String {
    let files = if stats.files_sent == 1 {
        "file"
    } else {
        "files"
    };
    let transfers = if stats.transfers == 1 {
        "transfer"
    } else {
        "transfers"
    };
    format!(
        "{LOCAL_FILES_SENT}{} bytes in {} {files} ({} {transfers}, {:.3} s)",
        stats.file_bytes_sent,
        stats.files_sent,
        stats.transfers,
        stats.transfer_time.as_secs_f64()
    ) + &probe.map_or_else(String::new, |p| {
        format!("; of which the probe: {} bytes", p.file_bytes_sent)
    })
}

/// The client-side reason a transfer of one of `names` failed, if the session recorded one.
pub(crate) fn transfer_error(status: &client::SessionStatus, names: &[String]) -> Option<String> {
    names.iter().find_map(|name| status.dir_error(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_named() {
        let base = tempfile::tempdir().unwrap();
        let missing = base.path().join("no/such/dir");
        let inputs = TestInputs::of(&State::local_dir(&missing), base.path());
        let problem = inputs.problem.unwrap().to_string();
        assert_eq!(
            problem,
            format!(
                "read local directory {}: no such directory (a relative path is relative to the \
                 current directory, which cargo sets to the package root)",
                missing.display(),
            )
        );
    }

    #[test]
    fn existing_directories_are_listed_by_name() {
        let base = tempfile::tempdir().unwrap();
        let data = base.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(base.path().join("file"), "x").unwrap();
        let input = State::scratch().file(crate::llb::FileAction::copy(
            &State::local_dir(&data),
            "/",
            "/data",
        ));
        let inputs = TestInputs::of(&input, base.path());
        assert!(inputs.problem.is_none(), "{:?}", inputs.problem);
        assert_eq!(
            inputs.dirs.into_iter().collect::<Vec<_>>(),
            [(format!("dir={}", data.display()), data)]
        );
        let file = TestInputs::of(&State::local_dir(base.path().join("file")), base.path());
        assert!(
            file.problem
                .unwrap()
                .to_string()
                .contains("it is not a directory"),
            "a file is not a directory"
        );
        let named = TestInputs::of(&State::local("ctx"), base.path());
        assert!(
            named
                .problem
                .unwrap()
                .to_string()
                .contains("no host directory stands for it")
        );
    }

    #[test]
    fn the_summary_line_counts_bytes_files_and_transfers() {
        let stats = TransferStats {
            file_bytes_sent: 0,
            files_sent: 1,
            transfers: 2,
            transfer_time: std::time::Duration::from_millis(1500),
        };
        assert_eq!(
            describe(&stats, None),
            "buildtest: local files sent: 0 bytes in 1 file (2 transfers, 1.500 s)"
        );
        let probe = TransferStats {
            file_bytes_sent: 1_400_000,
            ..TransferStats::default()
        };
        assert_eq!(
            describe(&stats, Some(&probe)),
            "buildtest: local files sent: 0 bytes in 1 file (2 transfers, 1.500 s); of which the \
             probe: 1400000 bytes"
        );
    }
}
