//! One probe per platform: which platforms have a probe, the embedded binaries, and the probe as
//! an inline state, an image or a served directory for each.
//!
//! The runner's build script embeds a static probe for linux/amd64 and, when the host can build
//! one, for linux/arm64 (see `runner/build.rs`). A check runs the probe of the platform its input
//! is solved for: the input's own platform ([`crate::llb::ImageOptions::platform`]) or the run's
//! (`BUILDTEST_PLATFORM`). [`ProbePlatform::embedded`] says why a probe is missing, and what to do.
//!
//! ```
//! use buildtest::check::ProbePlatform;
//! use buildtest::llb::Platform;
//!
//! let arm = ProbePlatform::for_platform(&Platform::linux_arm64()).unwrap();
//! assert_eq!(arm.name(), "linux/arm64");
//! assert_eq!(arm.rust_target(), "aarch64-unknown-linux-gnu");
//! assert!(ProbePlatform::for_platform(&Platform::new("linux", "s390x")).is_err());
//! ```

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use super::errors::CheckError;
use super::exec::{PROBE_FILE, probe_bytes};
use super::image::{PROBE_IMAGE_REPOSITORY, ProbeImage, image_archive};
use super::local::write_local_dir;
use crate::llb::{FileAction, ImageOptions, Platform, ResolveMode, State};

/// A platform the check probe can be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ProbePlatform {
    /// `linux/amd64` (x86_64).
    LinuxAmd64,
    /// `linux/arm64` (aarch64; variant `v8` or none).
    LinuxArm64,
}

/// The static linux/arm64 probe (empty when this build could not make one).
static PROBE_ARM64: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/buildtest-probe-arm64"));
/// Its hex SHA-256, computed by the build script (empty with it).
static PROBE_ARM64_SHA256: &str =
    include_str!(concat!(env!("OUT_DIR"), "/buildtest-probe-arm64.sha256"));
/// The linux/amd64 probe's hex SHA-256.
static PROBE_AMD64_SHA256: &str = include_str!(concat!(env!("OUT_DIR"), "/buildtest-probe.sha256"));

impl ProbePlatform {
    /// Every platform a probe exists for, in a fixed order.
    pub const ALL: [ProbePlatform; 2] = [ProbePlatform::LinuxAmd64, ProbePlatform::LinuxArm64];

    /// `(label, platform)` for every probe platform: the instances of a test over platforms,
    /// `#[buildtest::test(each = ProbePlatform::each())] fn t(platform: Platform) -> Test`, each
    /// named by its platform ([`ProbePlatform::label`]: `t::linux-amd64`, `t::linux-arm64`).
    pub fn each() -> [(&'static str, Platform); 2] {
        Self::ALL.map(|p| (p.label(), p.platform()))
    }

    /// The platform as a test-name segment: `linux-amd64`, `linux-arm64`.
    pub fn label(self) -> &'static str {
        match self {
            ProbePlatform::LinuxAmd64 => "linux-amd64",
            ProbePlatform::LinuxArm64 => "linux-arm64",
        }
    }

    /// The probe platform that runs on `platform`, or [`CheckError::UnsupportedPlatform`].
    pub fn for_platform(platform: &Platform) -> Result<ProbePlatform, CheckError> {
        match (
            platform.os.as_str(),
            platform.architecture.as_str(),
            platform.variant.as_str(),
        ) {
            ("linux", "amd64", _) => Ok(ProbePlatform::LinuxAmd64),
            ("linux", "arm64", "" | "v8") => Ok(ProbePlatform::LinuxArm64),
            _ => Err(CheckError::UnsupportedPlatform {
                platform: platform.to_string(),
            }),
        }
    }

    /// The platform, as images and `marshal` name it.
    pub fn platform(self) -> Platform {
        match self {
            ProbePlatform::LinuxAmd64 => Platform::linux_amd64(),
            ProbePlatform::LinuxArm64 => Platform::linux_arm64(),
        }
    }

    /// `linux/amd64` or `linux/arm64`.
    pub fn name(self) -> &'static str {
        match self {
            ProbePlatform::LinuxAmd64 => "linux/amd64",
            ProbePlatform::LinuxArm64 => "linux/arm64",
        }
    }

    /// The Rust target the probe is built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            ProbePlatform::LinuxAmd64 => "x86_64-unknown-linux-gnu",
            ProbePlatform::LinuxArm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The probe embedded in this build for this platform, or [`CheckError::ProbeMissing`] saying
    /// why there is none and what to do.
    pub fn embedded(self) -> Result<&'static [u8], CheckError> {
        let (bytes, reason) = match self {
            ProbePlatform::LinuxAmd64 => (
                probe_bytes().unwrap_or_default(),
                option_env!("BUILDTEST_PROBE_UNAVAILABLE"),
            ),
            ProbePlatform::LinuxArm64 => (
                PROBE_ARM64,
                option_env!("BUILDTEST_PROBE_ARM64_UNAVAILABLE"),
            ),
        };
        if bytes.is_empty() {
            return Err(CheckError::ProbeMissing {
                platform: self.name().to_owned(),
                reason: reason
                    .unwrap_or("this build of buildtest carries no probe for it")
                    .to_owned(),
                embedded: embedded_list(),
            });
        }
        Ok(bytes)
    }

    /// Whether this build embeds a probe for this platform.
    pub fn is_embedded(self) -> bool {
        self.embedded().is_ok()
    }

    /// The embedded probe's hex SHA-256 (empty when none is embedded).
    pub fn sha256(self) -> &'static str {
        match self {
            ProbePlatform::LinuxAmd64 => PROBE_AMD64_SHA256.trim(),
            ProbePlatform::LinuxArm64 => PROBE_ARM64_SHA256.trim(),
        }
    }

    /// The embedded probe as a [`ProbeBinary`], or [`CheckError::ProbeMissing`].
    pub fn binary(self) -> Result<ProbeBinary, CheckError> {
        Ok(ProbeBinary {
            platform: self,
            bytes: self.embedded()?,
            sha256: self.sha256().to_owned(),
        })
    }

    /// The embedded probe image's reference (see [`ProbeBinary::image_reference`]).
    pub fn image_reference(self) -> Result<String, CheckError> {
        Ok(self.binary()?.image_reference())
    }

    /// The embedded probe as an image archive (see [`ProbeBinary::image`]).
    pub fn image(self) -> Result<ProbeImage, CheckError> {
        Ok(self.binary()?.image())
    }

    /// The probe image `reference` as the state to mount, resolved for this platform from the
    /// engine's local store first.
    pub fn image_state(self, reference: &str) -> State {
        State::image_with(
            reference,
            ImageOptions::default()
                .resolve_mode(ResolveMode::PreferLocal)
                .platform(self.platform()),
        )
    }
}

/// A probe binary for one platform: embedded in this build, or built by the builder from the
/// embedded source ([`super::probe_build_state`]) and read back.
#[derive(Debug, Clone)]
pub struct ProbeBinary {
    /// The platform it runs on.
    pub platform: ProbePlatform,
    /// The static executable.
    pub bytes: &'static [u8],
    /// Its hex SHA-256.
    pub sha256: String,
}

impl ProbeBinary {
    /// A probe obtained at run time (kept for the rest of the process: one per platform and run).
    pub fn from_built(platform: ProbePlatform, bytes: Vec<u8>) -> ProbeBinary {
        use sha2::{Digest as _, Sha256};
        let sha256 = hex::encode(Sha256::digest(&bytes));
        ProbeBinary {
            platform,
            bytes: Box::leak(bytes.into_boxed_slice()),
            sha256,
        }
    }

    /// The probe image's reference: `buildtest/probe:<first 16 hex digits of its SHA-256>` (the
    /// embedded linux/amd64 one is [`super::probe_image_reference`]).
    pub fn image_reference(&self) -> String {
        let tag = self.sha256.get(..16).unwrap_or(&self.sha256);
        format!("{PROBE_IMAGE_REPOSITORY}:{tag}")
    }

    /// The probe as an image archive for `POST /images/load`, its config naming its platform.
    pub fn image(&self) -> ProbeImage {
        let architecture = match self.platform {
            ProbePlatform::LinuxAmd64 => "amd64",
            ProbePlatform::LinuxArm64 => "arm64",
        };
        image_archive(self.bytes, self.image_reference(), architecture)
    }

    /// Writes the probe into its directory under `base` for the `session` delivery (see
    /// [`super::probe_local_dir`]) and returns the directory.
    pub fn local_dir(&self, base: &Path) -> Result<PathBuf, CheckError> {
        write_local_dir(base, self.bytes, &self.image_reference())
    }

    /// A state holding only the probe, inline (a `mkfile` on scratch). The embedded linux/amd64
    /// one is [`super::probe_state`] (built once per process).
    pub fn inline_state(&self) -> State {
        static ARM64: LazyLock<State> = LazyLock::new(|| {
            State::scratch().file(FileAction::mkfile(PROBE_FILE, 0o755, PROBE_ARM64))
        });
        match self.platform {
            ProbePlatform::LinuxAmd64
                if std::ptr::eq(self.bytes, probe_bytes().unwrap_or_default()) =>
            {
                super::probe_state()
            }
            ProbePlatform::LinuxArm64 if std::ptr::eq(self.bytes, PROBE_ARM64) => ARM64.clone(),
            _ => State::scratch().file(FileAction::mkfile(PROBE_FILE, 0o755, self.bytes)),
        }
    }
}

impl std::fmt::Display for ProbePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The platforms this build embeds a probe for.
pub fn embedded_probe_platforms() -> Vec<ProbePlatform> {
    ProbePlatform::ALL
        .into_iter()
        .filter(|p| p.is_embedded())
        .collect()
}

/// `linux/amd64, linux/arm64`, or `none`.
fn embedded_list() -> String {
    let names: Vec<&str> = ProbePlatform::ALL
        .into_iter()
        .filter(|p| match p {
            ProbePlatform::LinuxAmd64 => probe_bytes().is_ok(),
            ProbePlatform::LinuxArm64 => !PROBE_ARM64.is_empty(),
        })
        .map(ProbePlatform::name)
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn platforms_map_to_probes() {
        let amd = ProbePlatform::for_platform(&Platform::linux_amd64()).unwrap();
        assert_eq!(amd, ProbePlatform::LinuxAmd64);
        assert_eq!(
            ProbePlatform::for_platform(&Platform::linux_amd64().with_variant("v3")).unwrap(),
            ProbePlatform::LinuxAmd64
        );
        assert_eq!(
            ProbePlatform::for_platform(&Platform::linux_arm64().with_variant("v8")).unwrap(),
            ProbePlatform::LinuxArm64
        );
        let e = ProbePlatform::for_platform(&Platform::new("linux", "arm").with_variant("v7"))
            .unwrap_err();
        assert_eq!(
            e,
            CheckError::UnsupportedPlatform {
                platform: "linux/arm/v7".to_owned()
            }
        );
        for p in ProbePlatform::ALL {
            assert_eq!(ProbePlatform::for_platform(&p.platform()).unwrap(), p);
            assert_eq!(p.to_string(), p.platform().to_string());
        }
    }

    #[test]
    fn the_amd64_probe_is_the_one_the_check_layer_always_embedded() {
        let amd = ProbePlatform::LinuxAmd64;
        assert_eq!(amd.embedded().unwrap(), probe_bytes().unwrap());
        assert_eq!(
            amd.image_reference().unwrap(),
            super::super::probe_image_reference().unwrap()
        );
        assert!(embedded_probe_platforms().contains(&amd));
    }

    #[test]
    fn a_missing_probe_names_its_platform_the_reason_and_what_is_embedded() {
        let arm = ProbePlatform::LinuxArm64;
        match arm.embedded() {
            Ok(bytes) => {
                // An aarch64 ELF executable (e_machine 183).
                assert_eq!(&bytes[..4], b"\x7fELF");
                assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), 183);
                assert_eq!(arm.sha256().len(), 64);
                let image = arm.image().unwrap();
                let inline = |s: State| s.marshal(&arm.platform()).unwrap().to_bytes();
                assert_ne!(
                    inline(arm.binary().unwrap().inline_state()),
                    inline(super::super::probe_state()),
                    "the arm64 probe inline is not the amd64 one"
                );
                assert_ne!(
                    image.reference,
                    ProbePlatform::LinuxAmd64.image_reference().unwrap()
                );
                let archive = String::from_utf8_lossy(&image.archive);
                assert!(archive.contains(r#""architecture":"arm64""#));
            }
            Err(e) => {
                let text = e.to_string();
                assert!(text.starts_with("run checks on linux/arm64: "), "{text}");
                assert!(text.contains("BUILDTEST_PROBE_AARCH64_RUSTC"), "{text}");
                assert!(text.contains("embeds probes for: linux/amd64"), "{text}");
            }
        }
    }

    #[test]
    fn probe_image_states_are_pinned_to_their_platform() {
        let arm = ProbePlatform::LinuxArm64.image_state("buildtest/probe:x");
        assert_eq!(arm.platform, Some(Platform::linux_arm64()));
        // Pinning linux/amd64 changes nothing for a linux/amd64 run: the same op bytes.
        let pinned = ProbePlatform::LinuxAmd64.image_state("buildtest/probe:x");
        let unpinned = super::super::probe_image_state("buildtest/probe:x");
        let amd = Platform::linux_amd64();
        assert_eq!(
            pinned.marshal(&amd).unwrap().to_bytes(),
            unpinned.marshal(&amd).unwrap().to_bytes()
        );
    }
}
