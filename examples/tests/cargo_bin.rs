//! Test the binary this package builds, inside the images it has to run in.
//!
//! `greet` is this package's `[[bin]]` (`src/bin/greet.rs`). `buildtest::cargo_bin!("greet")` is
//! a state holding exactly the file cargo built for this test run, at `/greet`, mode kept; the
//! run's session sends it to the builder (and sends nothing again while it is unchanged). The
//! build script also builds a `+crt-static` copy, to show what it takes to run in an image
//! without glibc.
//!
//! Offline: `buildtest/debian:bookworm` and `buildtest/busybox:latest` are made by
//! `bash scripts/builders.sh up`.

use buildtest::llb::LocalOptions;
use buildtest::prelude::*;

const DEBIAN: &str = "buildtest/debian:bookworm";
const BUSYBOX: &str = "buildtest/busybox:latest";

/// `greet` as cargo built it: glibc-linked, like every Rust binary for `*-linux-gnu` by default.
fn greet() -> State {
    buildtest::cargo_bin!("greet")
}

/// The same program built with `-C target-feature=+crt-static` (see `build.rs`): no dynamic
/// loader, no shared libraries.
fn greet_static() -> State {
    State::local_dir_with(
        concat!(env!("OUT_DIR"), "/static"),
        LocalOptions::default().include_patterns(["greet"]),
    )
}

/// `bin` (a state with `/greet`) installed as `/usr/local/bin/greet` on `base`.
fn install(base: State, bin: &State) -> State {
    base.file(FileAction::copy(bin, "/greet", "/usr/local/bin/greet").create_dest_path(true))
}

/// The three kinds of base image a Rust binary meets: a distribution with glibc, a tiny
/// image without it, and an empty one.
fn bases() -> Vec<(&'static str, State)> {
    vec![
        ("debian", State::image(DEBIAN)),
        ("busybox", State::image(BUSYBOX)),
        ("scratch", State::scratch()),
    ]
}

/// The copy is exact: the executable bit survives the trip from `target/` into the image.
#[buildtest::test(each = bases())]
fn is_installed_executable(base: State) -> Test {
    Test::on(install(base, &greet())).check(file("/usr/local/bin/greet").exists().mode(0o755))
}

/// On Debian the glibc-linked binary just works: the dynamic loader and libc are there.
#[buildtest::test]
fn runs_on_debian() -> Test {
    Test::on(install(State::image(DEBIAN), &greet()))
        .check(cmd(["/usr/local/bin/greet", "crate"]).stdout_equals("hello, crate!\n"))
        .check(
            cmd(["/usr/local/bin/greet"])
                .exit_code(2)
                .stderr_equals("usage: greet NAME\n"),
        )
        .check(cmd(["/usr/local/bin/greet", "--version"]).stdout_starts_with("greet "))
}

/// Why the glibc-linked binary does not start on busybox or scratch: the program interpreter
/// it names (`/lib64/ld-linux-x86-64.so.2`) and glibc are missing, so `execve` fails with
/// "not found" although the file is there. A `cmd(["/usr/local/bin/greet", …])` check here
/// would fail with: `"/usr/local/bin/greet" not found`.
#[buildtest::test(each = [("busybox", State::image(BUSYBOX)), ("scratch", State::scratch())])]
fn glibc_is_missing(base: State) -> Test {
    Test::on(install(base, &greet()))
        .check(file("/lib64/ld-linux-x86-64.so.2").absent())
        .check(file("/lib/x86_64-linux-gnu/libc.so.6").absent())
}

/// The `+crt-static` build carries what it needs and starts everywhere, scratch included.
#[buildtest::test(each = bases())]
fn static_build_runs_everywhere(base: State) -> Test {
    Test::on(install(base, &greet_static()))
        .check(cmd(["/usr/local/bin/greet", "static"]).stdout_equals("hello, static!\n"))
}

/// Another way onto busybox: bring the glibc-linked binary's loader and libraries along
/// (`ldd target/debug/greet` lists them), copied from the Debian image.
#[buildtest::test]
fn glibc_binary_runs_on_busybox_with_its_libraries() -> Test {
    let debian = State::image(DEBIAN);
    let mut image = State::image(BUSYBOX);
    for (from, to) in [
        // The program interpreter, where the binary's ELF header looks for it.
        (
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/lib64/ld-linux-x86-64.so.2",
        ),
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/x86_64-linux-gnu/libc.so.6",
        ),
        (
            "/lib/x86_64-linux-gnu/libgcc_s.so.1",
            "/lib/x86_64-linux-gnu/libgcc_s.so.1",
        ),
    ] {
        image = image.file(FileAction::copy(&debian, from, to).create_dest_path(true));
    }
    Test::on(install(image, &greet()))
        .check(cmd(["/usr/local/bin/greet", "busybox"]).stdout_equals("hello, busybox!\n"))
}

fn main() {
    buildtest::main()
}
