//! The probe as a host directory, for the `session` delivery: the run's client session serves it
//! to the builder like any [`State::local_dir`], so its bytes travel at most once per run, and not
//! at all when the builder kept the previous run's copy.
//!
//! The directory is `<temp dir>/buildtest-probe-<first 16 hex digits of the probe's SHA-256>`,
//! holding `buildtest-probe` (mode 0755). The file's mtime is fixed ([`PROBE_MTIME`]), so a
//! directory re-created after a cleanup looks unchanged to BuildKit's transfer cache (it compares
//! size, mtime, mode and owner), and the local source's name, and so every check's cache key, is
//! the same in every run on this machine.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::errors::CheckError;
use super::exec::{PROBE_FILE, probe_bytes};
use super::image::probe_image_reference;
use crate::llb::State;

/// The probe file's mtime in the served directory: 2000-01-01T00:00:00Z.
pub const PROBE_MTIME: Duration = Duration::from_secs(946_684_800);

/// Writes the probe into its directory under `base` (unless it is there, intact) and returns the
/// directory. Safe against concurrent writers (each writes a temporary file and renames it).
pub fn probe_local_dir(base: &Path) -> Result<PathBuf, CheckError> {
    let probe = probe_bytes()?;
    let reference = probe_image_reference()?;
    write_local_dir(base, probe, &reference)
}

/// Writes `probe` into `<base>/buildtest-probe-<tag of reference>` (see [`probe_local_dir`]).
pub(super) fn write_local_dir(
    base: &Path,
    probe: &[u8],
    reference: &str,
) -> Result<PathBuf, CheckError> {
    let tag = reference.rsplit(':').next().unwrap_or("probe");
    let dir = base.join(format!("buildtest-probe-{tag}"));
    let file = dir.join(PROBE_FILE.trim_start_matches('/'));
    let io = |what: &str, path: &Path, e: std::io::Error| CheckError::ProbeUnavailable {
        reason: format!("{what} {}: {e}", path.display()),
    };
    if let Ok(existing) = std::fs::read(&file)
        && existing == probe
        && intact(&file)
    {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
    // Unique per call: nodes are connected concurrently, and two of them may write the same
    // probe at once (a shared temporary name would let one rename the other's half-written file).
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".buildtest-probe.{}.{n}", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&tmp)?;
        f.write_all(probe)?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        f.set_modified(SystemTime::UNIX_EPOCH + PROBE_MTIME)?;
        f.sync_all()
    };
    write().map_err(|e| io("write", &tmp, e))?;
    std::fs::rename(&tmp, &file).map_err(|e| io("rename into", &file, e))?;
    Ok(dir)
}

/// The file has the mode and mtime the served copy must have.
fn intact(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(file).is_ok_and(|md| {
        md.permissions().mode() & 0o7777 == 0o755
            && md.modified().ok() == Some(SystemTime::UNIX_EPOCH + PROBE_MTIME)
    })
}

/// The probe directory `dir` as the state every check mounts at [`super::PROBE_MOUNT`].
pub fn probe_local_state(dir: &Path) -> State {
    State::local_dir(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn the_directory_is_written_once_with_a_fixed_mtime_and_repaired_when_changed() {
        let base = tempfile::tempdir().unwrap();
        let dir = probe_local_dir(base.path()).unwrap();
        let file = dir.join("buildtest-probe");
        assert_eq!(std::fs::read(&file).unwrap(), probe_bytes().unwrap());
        let md = std::fs::metadata(&file).unwrap();
        assert_eq!(md.permissions().mode() & 0o7777, 0o755);
        assert_eq!(md.modified().unwrap(), SystemTime::UNIX_EPOCH + PROBE_MTIME);
        assert_eq!(
            probe_local_dir(base.path()).unwrap(),
            dir,
            "the same path again"
        );

        std::fs::write(&file, b"not the probe").unwrap();
        probe_local_dir(base.path()).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), probe_bytes().unwrap());
        assert!(intact(&file));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["buildtest-probe"], "no temporary file is left");
    }
}
