// A `[[bin]]` name cargo did not build: a compile error that names the binary and the variable.
fn main() {
    let _greet = buildtest::cargo_bin!("gret");
}
