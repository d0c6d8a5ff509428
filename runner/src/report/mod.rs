//! Layer `report` (being written).
