//! Bounds on what a decoded message may contain. A real callback has a few dozen
//! flat fields; these limits only stop hostile or broken input from costing
//! memory and CPU.

/// Maximum nesting depth of a field (a flat field has depth 1).
pub const MAX_DEPTH: usize = 8;

/// Maximum number of fields (leaves and groups) in one message.
pub const MAX_FIELDS: usize = 1_000;
