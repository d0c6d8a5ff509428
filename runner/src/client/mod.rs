//! Layer `client` (being written).
