//! The check probe (work in progress).

fn main() {
    eprintln!("buildtest-probe: not built yet");
    std::process::exit(2);
}
