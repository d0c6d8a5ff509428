//! Layer `check` (being written).
