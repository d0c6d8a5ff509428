//! A Rust program compiled in the toolchain image and tested in a slim runtime image: needs
//! registry access, so every test is ignored by default.

use buildtest::prelude::*;

const MAIN_RS: &str = r#"fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "world".to_owned());
    println!("hello, {name}");
    if name == "error" {
        eprintln!("refusing to greet errors");
        std::process::exit(2);
    }
}
"#;

/// The program, compiled with rustc in the official toolchain image. The image's config applies
/// to the step as `docker run` would apply it: `rustc` is found through its `PATH`, and the rustup
/// proxy finds the toolchain through its `RUSTUP_HOME` and `CARGO_HOME`.
fn build() -> State {
    State::image("docker.io/library/rust:1-slim-bookworm")
        .file(FileAction::mkdir("/src", 0o755).mkfile("/src/main.rs", 0o644, MAIN_RS))
        .run([
            "sh",
            "-c",
            "mkdir -p /out && rustc -O -o /out/hello /src/main.rs",
        ])
        .root()
}

/// A runtime image with only the binary added.
fn runtime() -> State {
    State::image("docker.io/library/debian:bookworm-slim").file(FileAction::copy(
        &build(),
        "/out/hello",
        "/usr/local/bin/hello",
    ))
}

#[buildtest::test]
#[ignore = "needs registry access"]
fn greets() -> Test {
    Test::on(runtime())
        .check(cmd(["hello"]).stdout_equals("hello, world\n"))
        .check(
            cmd(["hello", "buildtest"])
                .stdout_equals("hello, buildtest\n")
                .stderr_empty(),
        )
}

#[buildtest::test]
#[ignore = "needs registry access"]
fn fails_on_errors() -> Test {
    Test::on(runtime()).check(
        cmd(["hello", "error"])
            .exit_code(2)
            .stderr_contains("refusing"),
    )
}

#[buildtest::test]
#[ignore = "needs registry access"]
fn binary_is_installed_executable() -> Test {
    Test::on(runtime()).check(
        file("/usr/local/bin/hello")
            .exists()
            .mode(0o755)
            .owner(0, 0),
    )
}

fn main() {
    buildtest::main()
}
