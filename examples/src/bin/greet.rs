//! `greet`: the small program the `cargo_bin` example suite tests inside container images.
//!
//! `greet NAME` prints `hello, NAME!`; without a name it prints a usage line to stderr and exits
//! with code 2. `greet --version` prints the package version.

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("--version") => println!("greet {}", env!("CARGO_PKG_VERSION")),
        Some(name) => println!("hello, {name}!"),
        None => {
            eprintln!("usage: greet NAME");
            std::process::exit(2);
        }
    }
}
