//! `cargo buildtest`: build a workspace's buildtest suites and run their checks on BuildKit.
//!
//! All logic lives in the library ([`cargo_buildtest::main_impl`]); see its docs and
//! `errors.rs` for the exit codes.

fn main() {
    std::process::exit(cargo_buildtest::main_impl());
}
