//! Example `cargo buildtest` suites, one `harness = false` test target each, in `tests/`:
//!
//! | suite | image | needs |
//! |---|---|---|
//! | `busybox` | `buildtest/busybox:latest` (local, offline) | a builder with that image (`bash scripts/builders.sh up`) |
//! | `cargo_bin` | this package's `[[bin]] greet` (and a `+crt-static` build of it) on `buildtest/debian:bookworm`, `buildtest/busybox:latest` and scratch | a builder with both images (`bash scripts/builders.sh up`) |
//! | `debian` | `debian:bookworm-slim` + packages | registry access (tests are `#[ignore]`d) |
//! | `alpine` | `alpine:3.20` + packages | registry access (tests are `#[ignore]`d) |
//! | `rust_binary` | a Rust program built in `rust:1-slim-bookworm`, tested in `debian:bookworm-slim` | registry access (tests are `#[ignore]`d) |
//!
//! Run them with `cargo buildtest -p buildtest-examples` (or `cargo test -p buildtest-examples`);
//! add `--include-ignored` on a builder that can pull images. Every suite compiles and lists
//! (`--list`) without a builder.
