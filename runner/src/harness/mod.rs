//! Layer `harness` (being written).
