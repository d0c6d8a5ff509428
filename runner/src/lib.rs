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
pub use harness::{Export, Test, main};

#[doc(hidden)]
pub use harness::__private;

/// The binary cargo built for this package's `[[bin]]` target `name`, as a
/// state holding just that file at `/name` (its mode kept: an executable
/// stays executable).
///
/// `name` is a string literal; the path comes from `CARGO_BIN_EXE_<name>`,
/// which cargo sets when it compiles integration tests and benchmarks of a
/// package with that binary (and builds the binary first). A name with no
/// such binary is a compile error naming the variable. At run time the
/// runner sends the file from cargo's target directory (the state is a
/// [`State::local_dir_with`](llb::State::local_dir_with) of the binary's
/// directory whose only include pattern matches exactly the binary's file
/// name), so a rebuilt binary is picked up by the next run and an unchanged
/// one is not sent again.
///
/// ```ignore
/// use buildtest::prelude::*;
///
/// #[buildtest::test]
/// fn greet_runs_on_debian() -> Test {
///     let input = State::image("debian:bookworm")
///         .file(FileAction::copy(&cargo_bin!("greet"), "/greet", "/usr/local/bin/greet"));
///     Test::on(input).check(cmd(["greet", "world"]).stdout_equals("hello, world\n"))
/// }
/// ```
///
/// (Marked `ignore`: doctests are not integration tests, so cargo sets no
/// `CARGO_BIN_EXE_*` for them.)
#[macro_export]
macro_rules! cargo_bin {
    ($name:literal $(,)?) => {
        $crate::__private::cargo_bin(
            $name,
            ::core::env!(
                ::core::concat!("CARGO_BIN_EXE_", $name),
                ::core::concat!(
                    "cargo_bin!(\"",
                    $name,
                    "\"): cargo sets no CARGO_BIN_EXE_",
                    $name,
                    ": this package has no [[bin]] target named `",
                    $name,
                    "`, or this is not an integration test or benchmark"
                )
            ),
        )
    };
}

/// Everything a test file needs: `use buildtest::prelude::*;`, then `#[buildtest::test]`.
///
/// The attribute is deliberately not in the prelude: a glob-imported `test` makes every
/// built-in `#[test]` in that module ambiguous (E0659).
pub mod prelude {
    pub use crate::cargo_bin;
    pub use crate::check::{cmd, file, metadata};
    pub use crate::harness::{Export, Test};
    pub use crate::llb::{DockerfileOptions, FileAction, State};
}
