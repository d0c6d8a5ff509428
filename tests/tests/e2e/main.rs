//! End-to-end tests of `cargo buildtest` on the fixture workspace in `tests/fixtures/workspace`,
//! against the real Docker 20.10 engine (`bash scripts/builders.sh up`). One test binary with
//! submodules; every fixture build shares `target/buildtest-fixtures`.
//!
//! Tests that need the builder fail (never skip) with what to run when it is not reachable.

#![allow(clippy::unwrap_used)]

mod config;
mod export;
mod interrupt;
mod list;
mod run;
mod snapshot;
mod support;
