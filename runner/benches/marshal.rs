//! Marshalling benchmark (filled in with the llb layer).
fn main() {}
