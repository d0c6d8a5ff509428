//! Layer `llb` (being written).
