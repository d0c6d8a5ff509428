//! How a check becomes LLB: the embedded probe as a file on scratch, and one exec per check
//! that runs it on a writable copy of the input.

use std::sync::LazyLock;

use super::errors::CheckError;
use super::model::Check;
use crate::llb::{FileAction, NetMode, Platform, State};

/// Where the probe state is mounted (read-only) in every check exec.
pub const PROBE_MOUNT: &str = "/.buildtest";
/// The probe's path inside [`probe_state`].
pub const PROBE_FILE: &str = "/buildtest-probe";
/// The probe's path inside a check exec (`argv[0]`).
pub const PROBE_PATH: &str = "/.buildtest/buildtest-probe";

/// The static linux/amd64 probe built by the runner's build script (empty when this host could
/// not build it).
static PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/buildtest-probe"));

/// The embedded probe binary (a static-pie linux/amd64 executable).
pub fn probe_bytes() -> Result<&'static [u8], CheckError> {
    if PROBE.is_empty() {
        let reason = option_env!("BUILDTEST_PROBE_UNAVAILABLE")
            .unwrap_or("this build of buildtest carries no check probe");
        return Err(CheckError::ProbeUnavailable {
            reason: reason.to_owned(),
        });
    }
    Ok(PROBE)
}

static PROBE_STATE: LazyLock<State> =
    LazyLock::new(|| State::scratch().file(FileAction::mkfile(PROBE_FILE, 0o755, PROBE)));

/// A state holding only the probe, at [`PROBE_FILE`] with mode `0755` (a FileOp `mkfile` on
/// scratch: its bytes travel inline in every Definition that uses it). Cheap to call: the state
/// is built once per process.
pub fn probe_state() -> State {
    PROBE_STATE.clone()
}

/// Whether checks can run on `platform`: linux/amd64 (any variant) and linux/arm64 (`v8` or no
/// variant), the platforms a probe exists for ([`super::ProbePlatform`]). Whether this build
/// embeds that probe is [`super::ProbePlatform::embedded`].
pub fn ensure_platform(platform: &Platform) -> Result<(), CheckError> {
    super::ProbePlatform::for_platform(platform).map(|_| ())
}

impl Check {
    /// The exec that runs this check: writable root = `input`, `probe` (normally
    /// [`probe_state`]) mounted read-only at [`PROBE_MOUNT`], argv = [`PROBE_PATH`] followed by
    /// [`Check::probe_args`], network `none`, vertex named after [`Check::label`]. Returns the
    /// exec's root (what `input.requires(id, [..])` should depend on).
    ///
    /// When `input` carries an image config ([`State::image_config`]), the exec starts with its
    /// `Env` and `WorkingDir`, and a command check without its own [`Cmd::user`](super::Cmd::user)
    /// runs its command as the config's `User`, as `docker run` would. The probe itself stays root
    /// (it must be able to switch to any user, and file checks see every file), so the user goes
    /// to the probe as `--user` rather than into the exec's meta.
    ///
    /// `probe` must hold the probe for the platform the input is solved for (see
    /// [`super::ProbePlatform`]).
    ///
    /// Fails before anything is solved when the check is invalid (see [`Check::validate`]) or
    /// when `input` was pinned to a platform no probe exists for. The platform given to
    /// `marshal` is checked by [`ensure_platform`].
    pub fn to_exec(&self, input: &State, probe: &State) -> Result<State, CheckError> {
        if let Some(platform) = &input.platform {
            ensure_platform(platform)?;
        }
        let image_user = input
            .image_config()
            .map(|c| c.user.as_str())
            .filter(|u| !u.is_empty());
        let mut args = Vec::with_capacity(16);
        args.push(PROBE_PATH.to_owned());
        match (self, image_user) {
            (Check::Cmd(c), Some(user)) if c.user.is_none() => {
                args.extend(Check::Cmd(c.clone().user(user)).probe_args()?);
            }
            _ => args.extend(self.probe_args()?),
        }
        let mut exec = input.run(args);
        if image_user.is_some() {
            exec = exec.user("");
        }
        Ok(exec
            .mount_readonly(PROBE_MOUNT, probe.clone())
            .network(NetMode::None)
            .custom_name(self.label())
            .root())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::check::{cmd, file};
    use crate::llb::{ImageOptions, State};

    #[test]
    fn unsupported_platforms_are_typed_errors() {
        assert!(ensure_platform(&Platform::linux_amd64()).is_ok());
        assert!(ensure_platform(&Platform::linux_amd64().with_variant("v3")).is_ok());
        assert!(ensure_platform(&Platform::linux_arm64()).is_ok());
        let e = ensure_platform(&Platform::new("linux", "riscv64")).unwrap_err();
        assert_eq!(
            e,
            CheckError::UnsupportedPlatform {
                platform: "linux/riscv64".to_owned()
            }
        );
        assert_eq!(
            e.to_string(),
            "run checks on platform linux/riscv64: unsupported platform (the check probe exists for linux/amd64 and linux/arm64 only)"
        );
        let arm = Platform::new("linux", "arm").with_variant("v7");
        assert!(
            ensure_platform(&arm)
                .unwrap_err()
                .to_string()
                .contains("linux/arm/v7")
        );

        let pinned = State::image_with(
            "alpine:3.20",
            ImageOptions::new().platform(Platform::new("windows", "amd64")),
        );
        let e = Check::from(file("/x"))
            .to_exec(&pinned, &probe_state())
            .unwrap_err();
        assert!(matches!(e, CheckError::UnsupportedPlatform { .. }), "{e:?}");
    }

    #[test]
    fn invalid_checks_fail_before_any_llb_is_built() {
        let input = State::image("alpine:3.20");
        let e = Check::from(cmd(["grep"]).stdout_matches("("))
            .to_exec(&input, &probe_state())
            .unwrap_err();
        assert!(matches!(e, CheckError::InvalidRegex { .. }), "{e:?}");
    }
}
