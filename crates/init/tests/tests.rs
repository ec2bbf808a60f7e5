//! Integration tests of sigprop-init, one binary: the sampled moments of every scheme
//! against its formula, and the structural and reproducibility guarantees.

#[path = "tests/moments.rs"]
mod moments;
#[path = "tests/properties.rs"]
mod properties;
