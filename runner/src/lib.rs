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
#[doc(hidden)]
pub mod protocol;
pub mod report;

pub use buildtest_macros::test;
pub use harness::{Test, main};

#[doc(hidden)]
pub use harness::__private;

/// Everything a test file needs: `use buildtest::prelude::*;`, then `#[buildtest::test]`.
///
/// The attribute is deliberately not in the prelude: a glob-imported `test` makes every
/// built-in `#[test]` in that module ambiguous (E0659).
pub mod prelude {
    pub use crate::check::{cmd, file};
    pub use crate::harness::Test;
    pub use crate::llb::{FileAction, State};
}
