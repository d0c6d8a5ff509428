//! Example cargo buildtest suites live in this package's `tests/` and `examples/`.
