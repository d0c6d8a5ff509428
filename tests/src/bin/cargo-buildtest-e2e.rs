//! The `cargo-buildtest` binary, built again in this package so the end-to-end tests can find it
//! (`CARGO_BIN_EXE_cargo-buildtest-e2e`); identical to `cargo-buildtest/src/main.rs`.

fn main() {
    std::process::exit(cargo_buildtest::main_impl());
}
