//! The probe as a one-layer image, for builders that keep an image store (a Docker engine).
//!
//! Inline, the probe is a 1.4 MB `mkfile` op that travels in every check's Definition; the daemon
//! receives, unmarshals and hashes it for every Solve (about 6 ms per check on Docker 20.10, see
//! BENCHMARKS.md). Loaded once into the engine as an image (`POST /images/load`), each Definition
//! carries a reference of a few dozen bytes instead.
//!
//! The archive is the `docker save` layout, written byte for byte by this module so it is the same
//! for the same probe on every machine: `manifest.json`, the image config `<hex>.json` and
//! `<hex>/layer.tar` holding `buildtest-probe` (mode 0755, owner 0:0, mtime 0). The image's tag
//! is derived from the probe's SHA-256, so a changed probe never reuses a stale image.

use sha2::{Digest as _, Sha256};

use super::errors::CheckError;
use super::exec::{PROBE_FILE, probe_bytes};
use crate::llb::{ImageOptions, ResolveMode, State};

/// The repository the probe image is tagged in.
pub const PROBE_IMAGE_REPOSITORY: &str = "buildtest/probe";

/// The probe packaged as an image archive for `POST /images/load`.
#[derive(Debug, Clone)]
pub struct ProbeImage {
    /// `buildtest/probe:<first 16 hex digits of the probe's SHA-256>`.
    pub reference: String,
    /// The `docker save`-layout tar archive.
    pub archive: Vec<u8>,
}

/// The embedded probe's SHA-256 in hex, computed by the build script.
static PROBE_SHA256: &str = include_str!(concat!(env!("OUT_DIR"), "/buildtest-probe.sha256"));

/// The probe image's reference, `buildtest/probe:<first 16 hex digits of the probe's SHA-256>`:
/// cheap (the digest is computed at build time). Fails like [`probe_bytes`] when this build
/// carries no probe.
pub fn probe_image_reference() -> Result<String, CheckError> {
    probe_bytes()?;
    let tag = PROBE_SHA256.get(..16).unwrap_or(PROBE_SHA256);
    Ok(format!("{PROBE_IMAGE_REPOSITORY}:{tag}"))
}

/// Packages the embedded probe as an image archive tagged [`probe_image_reference`]. Fails like
/// [`probe_bytes`] when this build carries no probe.
pub fn probe_image() -> Result<ProbeImage, CheckError> {
    let probe = probe_bytes()?;
    let reference = probe_image_reference()?;
    Ok(image_archive(probe, reference, "amd64"))
}

/// The image archive of `probe` tagged `reference`, its config naming `linux/<architecture>`
/// (BuildKit on a Docker engine resolves a local image only for the platform its config names).
pub(super) fn image_archive(probe: &[u8], reference: String, architecture: &str) -> ProbeImage {
    let mut layer = Tar::default();
    layer.file(PROBE_FILE.trim_start_matches('/'), 0o755, probe);
    let layer = layer.finish();
    let layer_hex = hex::encode(Sha256::digest(&layer));

    let config = format!(
        concat!(
            r#"{{"architecture":"{}","os":"linux","config":{{}},"#,
            r#""rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#
        ),
        architecture, layer_hex
    );
    let config_hex = hex::encode(Sha256::digest(config.as_bytes()));
    let manifest = format!(
        r#"[{{"Config":"{config_hex}.json","RepoTags":["{reference}"],"Layers":["{layer_hex}/layer.tar"]}}]"#
    );

    let mut archive = Tar::default();
    archive.file(&format!("{layer_hex}/layer.tar"), 0o644, &layer);
    archive.file(&format!("{config_hex}.json"), 0o644, config.as_bytes());
    archive.file("manifest.json", 0o644, manifest.as_bytes());
    ProbeImage {
        reference,
        archive: archive.finish(),
    }
}

/// The probe image `reference` as the state to mount at [`super::PROBE_MOUNT`] (in place of
/// [`super::probe_state`]): resolved from the engine's local store first, never pulled when it is
/// there.
pub fn probe_image_state(reference: &str) -> State {
    State::image_with(
        reference,
        ImageOptions::default().resolve_mode(ResolveMode::PreferLocal),
    )
}

/// A minimal ustar writer: regular files only, owner 0:0, mtime 0.
#[derive(Default)]
struct Tar {
    out: Vec<u8>,
}

impl Tar {
    const BLOCK: usize = 512;

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        let mut header = [0u8; Self::BLOCK];
        put(&mut header[0..100], name.as_bytes());
        put_octal(&mut header[100..108], u64::from(mode));
        put_octal(&mut header[108..116], 0);
        put_octal(&mut header[116..124], 0);
        put_octal(&mut header[124..136], data.len() as u64);
        put_octal(&mut header[136..148], 0);
        header[148..156].fill(b' ');
        header[156] = b'0';
        put(&mut header[257..263], b"ustar\0");
        put(&mut header[263..265], b"00");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        put(&mut header[148..156], format!("{sum:06o}\0 ").as_bytes());
        self.out.extend_from_slice(&header);
        self.out.extend_from_slice(data);
        let pad = (Self::BLOCK - data.len() % Self::BLOCK) % Self::BLOCK;
        self.out.resize(self.out.len() + pad, 0);
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.resize(self.out.len() + 2 * Self::BLOCK, 0);
        self.out
    }
}

fn put(field: &mut [u8], value: &[u8]) {
    field[..value.len()].copy_from_slice(value);
}

/// Zero-padded octal, NUL-terminated, filling the field.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    put(field, format!("{value:0digits$o}\0").as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_is_named_after_the_probe_digest() {
        let Ok(probe) = probe_bytes() else {
            panic!("this build carries no probe; the runner's tests need one");
        };
        let hex = hex::encode(Sha256::digest(probe));
        assert_eq!(
            probe_image_reference().unwrap(),
            format!("buildtest/probe:{}", &hex[..16])
        );
        assert_eq!(
            probe_image().unwrap().reference,
            probe_image_reference().unwrap()
        );
    }

    #[test]
    fn tar_headers_are_ustar_with_valid_checksums() {
        let mut tar = Tar::default();
        tar.file("a/b.txt", 0o644, b"hello");
        let out = tar.finish();
        assert_eq!(out.len(), 512 + 512 + 1024);
        let header = &out[..512];
        assert_eq!(&header[..7], b"a/b.txt");
        assert_eq!(&header[100..108], b"0000644\0");
        assert_eq!(&header[124..136], b"00000000005\0");
        assert_eq!(&header[257..263], b"ustar\0");
        let stored = std::str::from_utf8(&header[148..154]).unwrap();
        let mut blank = header.to_vec();
        blank[148..156].fill(b' ');
        let sum: u32 = blank.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
        assert_eq!(&out[512..517], b"hello");
        assert!(out[517..].iter().all(|&b| b == 0));
    }
}
