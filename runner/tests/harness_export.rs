//! A `harness = false` fixture for `tests/export.rs`: gated exports on the offline image
//! `buildtest/busybox:latest`. The image names and file paths come from the environment
//! (`EXPORT_FIXTURE_TAG`, `EXPORT_FIXTURE_DIR`), so every run of the test uses its own.

use buildtest::prelude::*;

fn tag() -> String {
    std::env::var("EXPORT_FIXTURE_TAG").unwrap_or_else(|_| "unset".to_owned())
}

fn dir() -> std::path::PathBuf {
    std::env::var_os("EXPORT_FIXTURE_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::env::temp_dir().join("buildtest-export-fixture"))
}

/// The input: busybox plus one file, so the exported image is the test's own.
fn input() -> State {
    State::image("buildtest/busybox:latest").file(FileAction::mkfile(
        "/release.txt",
        0o644,
        "tested\n",
    ))
}

mod gated {
    use super::*;

    #[buildtest::test]
    fn passing() -> Test {
        Test::on(input())
            .check(file("/release.txt").equals("tested\n"))
            .check(cmd(["cat", "/release.txt"]).stdout_equals("tested\n"))
            .export(Export::image(format!("buildtest-export-pass:{}", tag())))
            .export(Export::docker_tar(dir().join("pass-docker.tar")))
    }

    /// An input carrying an image config: the exported image keeps it (Env, Cmd, WorkingDir).
    #[buildtest::test]
    fn configured() -> Test {
        let config = buildtest::llb::ImageConfig::from_image_json(
            br#"{"config":{"Env":["PATH=/bin","APP_MODE=tested"],"Cmd":["/bin/sh"],"WorkingDir":"/srv"}}"#,
        )
        .unwrap_or_default();
        Test::on(input().with_image_config(&config))
            .check(cmd(["sh", "-c", "echo $APP_MODE"]).stdout_equals("tested\n"))
            .export(Export::image(format!("buildtest-export-pass:{}", tag())))
    }

    /// An OCI layout: written by a Docker 25+ engine's image save, refused before solving by
    /// older engines (naming the builder and what it supports).
    #[buildtest::test]
    fn oci() -> Test {
        Test::on(input())
            .check(file("/release.txt").exists())
            .export(Export::oci_tar(dir().join("pass-oci.tar")))
    }

    #[buildtest::test]
    fn failing() -> Test {
        Test::on(input())
            .check(file("/release.txt").exists())
            .check(cmd(["cat", "/release.txt"]).stdout_equals("not what it holds\n"))
            .export(Export::image(format!("buildtest-export-fail:{}", tag())))
            .export(Export::docker_tar(dir().join("fail-docker.tar")))
            .export(Export::local_dir(dir().join("fail-rootfs")))
    }

    /// The input's filesystem as a directory (the `tar` exporter through the session's
    /// FileSend, unpacked on the client).
    #[buildtest::test]
    fn local() -> Test {
        Test::on(input())
            .check(file("/release.txt").exists())
            .export(Export::local_dir(dir().join("rootfs")))
    }
}

/// A 150 MB input, so its directory export takes long enough to be interrupted midway (the
/// content is fixed, so the builder's cache is reused across runs instead of growing).
mod slow {
    use super::*;

    #[buildtest::test]
    fn big() -> Test {
        let input = State::image("buildtest/busybox:latest")
            .run(["dd", "if=/dev/zero", "of=/big", "bs=1M", "count=150"])
            .network(buildtest::llb::NetMode::None)
            .root();
        Test::on(input)
            .check(file("/big").exists())
            .export(Export::local_dir(dir().join("big-rootfs")))
    }
}

fn main() {
    buildtest::main()
}
