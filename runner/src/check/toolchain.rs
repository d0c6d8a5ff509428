//! The probe built by the builder itself, for hosts that could not build (and embed) the probe a
//! platform needs: an LLB graph that compiles the probe's embedded source in a Rust toolchain
//! image for that platform, without network. BuildKit caches it like any other graph, so the
//! compile is paid once per builder (and platform, and probe source).
//!
//! ```
//! use buildtest::check::{DEFAULT_TOOLCHAIN_IMAGE, ProbePlatform, probe_build_state, probe_source};
//! use buildtest::llb::Platform;
//!
//! assert!(probe_source().iter().any(|(path, _)| *path == "probe/src/main.rs"));
//! let built = probe_build_state(ProbePlatform::LinuxArm64, DEFAULT_TOOLCHAIN_IMAGE);
//! // scratch + source files, the toolchain image, the compile: the probe is `/buildtest-probe`.
//! assert!(built.marshal(&Platform::linux_arm64()).unwrap().len() >= 3);
//! ```
//!
//! The source is `probe/` (a standalone manifest with the workspace's `release-probe` profile as
//! its `release` profile, and `src/`) and `regex-lite/` (its one dependency, as a path
//! dependency), bundled by the runner's build script. The toolchain image needs `sh`, `cp` and a
//! `cargo` on `PATH` (the official Rust image's `/usr/local/cargo/bin` is on the exec's `PATH`)
//! whose toolchain can link a static glibc binary (glibc's `libc.a`, e.g. Debian's libc6-dev).

use super::exec::PROBE_FILE;
use super::platforms::ProbePlatform;
use crate::llb::{FileAction, ImageOptions, NetMode, State};

/// The toolchain image used when nothing else is configured: the official Rust image (slim
/// variant: cargo, gcc and glibc's development files).
pub const DEFAULT_TOOLCHAIN_IMAGE: &str = "rust:1-slim";

/// The probe's source as `(path, contents)`, paths relative to the build directory.
static SOURCE: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/probe-source.rs"));

/// Where the source is mounted in the compile step.
const SOURCE_DIR: &str = "/buildtest-src";
/// Where the compile step leaves the probe.
const OUT_DIR: &str = "/buildtest-out";

/// The probe's embedded source: `(path relative to the build directory, contents)`.
pub fn probe_source() -> &'static [(&'static str, &'static [u8])] {
    SOURCE
}

/// The state holding only the probe compiled for `platform` in `toolchain_image` (at
/// [`PROBE_FILE`], mode 0755): mount it like [`super::probe_state`], or solve it and read the file
/// back. The compile runs without network (`cargo build --offline`, a path dependency only).
pub fn probe_build_state(platform: ProbePlatform, toolchain_image: &str) -> State {
    let mut dirs: Vec<String> = SOURCE
        .iter()
        .filter_map(|(path, _)| path.rsplit_once('/').map(|(dir, _)| format!("/{dir}")))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut actions = FileAction::mkdir("/probe", 0o755).make_parents(true);
    for dir in &dirs {
        actions = actions.mkdir(dir.clone(), 0o755).make_parents(true);
    }
    for (path, data) in SOURCE {
        actions = actions.mkfile(format!("/{path}"), 0o644, data.to_vec());
    }
    let source = State::scratch().file(actions);

    let target = platform.rust_target();
    let script = format!(
        "set -e; cargo build --offline --release --target {target} \
         --manifest-path {SOURCE_DIR}/probe/Cargo.toml --target-dir /tmp/buildtest-probe-target; \
         cp /tmp/buildtest-probe-target/{target}/release/buildtest-probe {OUT_DIR}{PROBE_FILE}; \
         chmod 0755 {OUT_DIR}{PROBE_FILE}"
    );
    let image = State::image_with(
        toolchain_image,
        ImageOptions::new().platform(platform.platform()),
    );
    image
        .run(["sh", "-c", script.as_str()])
        .env(
            "PATH",
            "/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("CARGO_HOME", "/usr/local/cargo")
        .env("RUSTUP_HOME", "/usr/local/rustup")
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .network(NetMode::None)
        .mount(SOURCE_DIR, source)
        .mount(OUT_DIR, State::scratch())
        .custom_name(format!(
            "build the check probe for {platform} in {toolchain_image}"
        ))
        .get_mount(OUT_DIR)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_the_probe_and_its_dependency() {
        let paths: Vec<&str> = SOURCE.iter().map(|(p, _)| *p).collect();
        assert!(paths.contains(&"probe/Cargo.toml"), "{paths:?}");
        assert!(paths.contains(&"probe/src/main.rs"), "{paths:?}");
        assert!(paths.contains(&"regex-lite/Cargo.toml"), "{paths:?}");
        assert!(paths.contains(&"regex-lite/src/lib.rs"), "{paths:?}");
        let manifest = SOURCE
            .iter()
            .find(|(p, _)| *p == "probe/Cargo.toml")
            .map(|(_, m)| String::from_utf8_lossy(m).into_owned())
            .unwrap();
        assert!(
            manifest.contains("regex-lite = { path = \"../regex-lite\" }"),
            "{manifest}"
        );
        assert!(
            manifest.contains("panic = \"abort\""),
            "the release-probe profile: {manifest}"
        );
        assert!(!manifest.contains("inherits"), "{manifest}");
    }

    #[test]
    fn the_build_is_pinned_to_the_platform_and_has_no_network() {
        use crate::llb::Platform;
        // Marshalled for linux/amd64, the compile still runs on linux/arm64 (the image is pinned).
        let built = probe_build_state(ProbePlatform::LinuxArm64, "example/rust:1");
        let bytes = built.marshal(&Platform::linux_amd64()).unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("example/rust:1"), "the image");
        assert!(text.contains("aarch64-unknown-linux-gnu"), "the target");
        assert!(text.contains("arm64"), "the platform");
        assert!(
            !text.contains("amd64"),
            "nothing runs on the marshal platform"
        );
    }
}
