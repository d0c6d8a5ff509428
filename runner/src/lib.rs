//! # buildtest — test container images with ordinary Rust functions, on BuildKit
//!
//! Layers, from the ground up (a module imports only from layers below it):
//!
//! 1. [`proto`] — protobuf types generated from the project's own `.proto` files.
//! 2. [`llb`] — the pure, synchronous LLB model: [`llb::State`], ops, marshalling.
//! 3. [`client`] — connecting to a builder and BuildKit's Control API.
//! 4. [`check`] — command and file checks and how each becomes an exec.
//! 5. [`report`] — per-check result records, JUnit, progress.
//! 6. [`harness`] — registration, concurrent runs, the libtest-compatible front.

pub mod check;
pub mod client;
pub mod harness;
pub mod llb;
pub mod proto;
pub mod report;
