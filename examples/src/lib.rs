//! Example `cargo buildtest` suites, one `harness = false` test target each, in `tests/`:
//!
//! | suite | image | needs |
//! |---|---|---|
//! | `busybox` | `buildtest/busybox:latest` (local, offline) | a builder with that image (`bash scripts/builders.sh up`) |
//! | `cargo_bin` | this package's `[[bin]] greet` (and a `+crt-static` build of it) on `buildtest/debian:bookworm`, `buildtest/busybox:latest` and scratch | a builder with both images (`bash scripts/builders.sh up`) |
//! | `cst` | container-structure-test configs (`tests/cst/*.yaml`) converted check for check, on `buildtest/configured:latest`, `buildtest/busybox:latest` and `buildtest/debian:bookworm` (local, offline) | a builder with the three images (`bash scripts/builders.sh up`) |
//! | `debian` | `debian:bookworm-slim` + packages | registry access (tests are `#[ignore]`d) |
//! | `alpine` | `alpine:3.20` + packages | registry access (tests are `#[ignore]`d) |
//! | `rust_binary` | a Rust program built in `rust:1-slim-bookworm`, tested in `debian:bookworm-slim` | registry access (tests are `#[ignore]`d) |
//!
//! Run them with `cargo buildtest -p buildtest-examples` (or `cargo test -p buildtest-examples`);
//! add `--include-ignored` on a builder that can pull images. Every suite compiles and lists
//! (`--list`) without a builder.

#[cfg(test)]
mod tests {
    /// README's "Coming from container-structure-test" shows `tests/cst.rs` from its first `use`
    /// on; the copy must not drift from the suite that runs.
    #[test]
    fn readme_holds_the_cst_example() {
        let readme = include_str!("../../README.md");
        let suite = include_str!("../tests/cst.rs");
        let begin = "<!-- examples/tests/cst.rs begin -->\n```rust\n";
        let end = "```\n<!-- examples/tests/cst.rs end -->";
        let start = readme.find(begin).map(|i| i + begin.len());
        let stop = readme.find(end);
        let (Some(start), Some(stop)) = (start, stop) else {
            panic!("README has no `{begin}` … `{end}` block");
        };
        let Some(from) = suite.find("use buildtest::") else {
            panic!("tests/cst.rs has no `use buildtest::` line");
        };
        assert_eq!(
            &readme[start..stop],
            &suite[from..],
            "README's copy of examples/tests/cst.rs drifted: copy the file from its first `use` line"
        );
    }
}
