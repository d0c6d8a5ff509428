//! A Debian image with packages installed: needs registry access (and network for apt), so
//! every test is ignored by default. Run with `--include-ignored` on a builder that has both.

use buildtest::prelude::*;

fn base() -> State {
    State::image("docker.io/library/debian:bookworm-slim")
}

fn with_curl() -> State {
    base()
        .run([
            "sh",
            "-c",
            "apt-get update && apt-get install -y --no-install-recommends curl ca-certificates",
        ])
        .root()
}

#[buildtest::test]
#[ignore = "needs registry access"]
fn is_bookworm() -> Test {
    Test::on(base())
        .check(file("/etc/os-release").contains("VERSION_CODENAME=bookworm"))
        .check(file("/etc/debian_version").starts_with("12."))
}

#[buildtest::test]
#[ignore = "needs registry access"]
fn curl_is_installed() -> Test {
    Test::on(with_curl())
        .check(cmd(["curl", "--version"]).stdout_starts_with("curl 7."))
        .check(file("/usr/bin/curl").exists().mode(0o755).owner(0, 0))
        .check(
            cmd(["dpkg-query", "-W", "-f", "${Status}", "curl"])
                .stdout_equals("install ok installed"),
        )
}

#[buildtest::test]
#[ignore = "needs registry access"]
fn no_package_caches_left_in_the_slim_image() -> Test {
    Test::on(base()).check(
        cmd([
            "sh",
            "-c",
            "ls /var/lib/apt/lists | grep -v -e lock -e partial",
        ])
        .exit_code(1),
    )
}

fn main() {
    buildtest::main()
}
