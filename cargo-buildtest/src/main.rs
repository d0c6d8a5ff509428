//! `cargo buildtest`: not implemented yet; this binary says so and exits 2.

fn main() {
    eprintln!("cargo buildtest: the subcommand is not implemented yet; run suites with `cargo test`");
    std::process::exit(2);
}
