//! The same checks on linux/amd64 and linux/arm64: each input pins its platform, and each check
//! runs the probe built for it. On an amd64 builder the arm64 instances run under emulation
//! (`bash scripts/builders.sh up` enables qemu-aarch64 and builds `buildtest/busybox:arm64` from
//! Debian's `busybox-static:arm64`).

use buildtest::check::ProbePlatform;
use buildtest::llb::{ImageOptions, NetMode, Platform};
use buildtest::prelude::*;

/// The busybox image for `platform` (`BUILDTEST_ARM64_IMAGE` overrides the arm64 one).
fn busybox_on(platform: Platform) -> State {
    let image = if platform.architecture == "arm64" {
        std::env::var("BUILDTEST_ARM64_IMAGE")
            .ok()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| "buildtest/busybox:arm64".to_owned())
    } else {
        "buildtest/busybox:latest".to_owned()
    };
    State::image_with(&image, ImageOptions::new().platform(platform))
}

/// The probe's ELF machine byte (offset 18) as `od -An -tx1` prints it: `b7` for aarch64, `3e`
/// for x86-64.
fn elf_machine(platform: &Platform) -> &'static str {
    if platform.architecture == "arm64" {
        "b7"
    } else {
        "3e"
    }
}

/// What `uname -m` says on `platform`.
fn machine(platform: &Platform) -> &'static str {
    if platform.architecture == "arm64" {
        "aarch64\n"
    } else {
        "x86_64\n"
    }
}

/// One instance per platform, named by it: `uname_names_the_platform::linux-arm64`. The check
/// also reads the probe that runs it (mounted at `/.buildtest`): it is built for the platform
/// (an amd64 probe would run on an amd64 host whatever the image's platform).
#[buildtest::test(each = ProbePlatform::each())]
fn uname_names_the_platform(platform: Platform) -> Test {
    let expected = machine(&platform);
    let probe_machine = elf_machine(&platform);
    Test::on(busybox_on(platform))
        .check(cmd(["uname", "-m"]).stdout_equals(expected))
        .check(file("/bin/busybox").exists().mode(0o755))
        .check(
            cmd([
                "od",
                "-An",
                "-tx1",
                "-j18",
                "-N1",
                buildtest::check::PROBE_PATH,
            ])
            .stdout_matches(format!(r"^\s*{probe_machine}\s*$")),
        )
}

/// A step built on each platform's image runs on that platform (emulated where it must be), and
/// checks see its result.
#[buildtest::test(each = ProbePlatform::each())]
fn a_run_step_runs_on_the_platform(platform: Platform) -> Test {
    let expected = machine(&platform);
    let input = busybox_on(platform)
        .run(["sh", "-c", "uname -m > /machine"])
        .network(NetMode::None)
        .root();
    Test::on(input).check(file("/machine").equals(expected))
}

fn main() {
    buildtest::main()
}
