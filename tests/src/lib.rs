//! End-to-end tests of `cargo buildtest` live in this package's `tests/e2e/` (one test binary
//! with submodules), run against fixture workspaces in `tests/fixtures/` and the real Docker
//! engine started by `scripts/builders.sh up`.
