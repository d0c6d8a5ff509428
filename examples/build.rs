//! Builds a second, statically linked copy of `src/bin/greet.rs` into `$OUT_DIR/static/greet` for
//! the `cargo_bin` example suite, which shows that a `+crt-static` binary starts in images
//! without glibc (busybox, scratch) where the glibc-linked one cargo builds does not.
//!
//! `greet` has no dependencies, so one `rustc` call is the whole build.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/bin/greet.rs";
    println!("cargo::rerun-if-changed={source}");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("static");
    if let Err(err) = std::fs::create_dir_all(&out_dir) {
        panic!("failed to create {}: {err}", out_dir.display());
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "-C",
            "opt-level=s",
            "-C",
            "target-feature=+crt-static",
        ])
        .arg("--crate-name")
        .arg("greet")
        .arg("-o")
        .arg(out_dir.join("greet"))
        .arg(source)
        .env("CARGO_PKG_VERSION", version)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "failed to build the static greet ({status}): glibc's static libraries \
             (libc6-dev) are needed for -C target-feature=+crt-static"
        ),
        Err(err) => panic!("failed to run rustc: {err}"),
    }
}
