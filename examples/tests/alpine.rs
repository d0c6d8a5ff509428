//! An Alpine image: needs registry access, so every test is ignored by default.

use buildtest::prelude::*;

fn base() -> State {
    State::image("alpine:3.20")
}

#[buildtest::test]
#[ignore = "needs registry access"]
fn release_file() -> Test {
    Test::on(base())
        .check(file("/etc/alpine-release").starts_with("3.20."))
        .check(file("/bin/sh").link_target("/bin/busybox"))
}

#[buildtest::test]
#[ignore = "needs registry access"]
fn jq_from_apk() -> Test {
    let input = base().run(["apk", "add", "--no-cache", "jq"]).root();
    Test::on(input).check(
        cmd(["jq", "-r", ".name"])
            .stdin("{\"name\": \"buildtest\"}")
            .stdout_equals("buildtest\n"),
    )
}

#[buildtest::test]
#[ignore = "needs registry access"]
fn runs_as_an_unprivileged_user() -> Test {
    let input = base().run(["adduser", "-D", "-u", "1000", "app"]).root();
    Test::on(input)
        .check(cmd(["id", "-un"]).user("app").stdout_equals("app\n"))
        .check(file("/home/app").is_dir().owner(1000, 1000))
}

fn main() {
    buildtest::main()
}
