//! Integration tests of `buildtest::client`.
//!
//! Everything BuildKit does is tested against the project's two **real** Docker engines (Docker 20.10
//! with BuildKit v0.8.3 and Docker 26.1.5 with BuildKit v0.13.2, started by `bash scripts/builders.sh up`;
//! their sockets come from `BUILDTEST_DOCKER20_HOST`/`BUILDTEST_DOCKER26_HOST` or that script's `env`).
//! A missing engine fails the tests with what to run. The Docker `/grpc` upgrade transport is exercised
//! by every engine test. An in-process fake Control server (feature `test-server`) is used only for the
//! direct buildkitd transports (no buildkitd exists here) and for faults a daemon cannot produce on
//! demand (a connection dropped mid-solve).

#![allow(clippy::unwrap_used)]

mod common;
mod fake;

mod caps;
mod concurrency;
mod connect;
mod faults;
mod gateway;
mod session_lost;
mod solve;

/// Generate one `#[tokio::test]` per engine for each listed `async fn(Engine)` of the calling module.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod docker20 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Engine::docker20()).await
                }
            )*
        }
        mod docker26 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Engine::docker26()).await
                }
            )*
        }
    };
}
