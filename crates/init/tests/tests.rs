//! Integration tests of sigprop-init, one binary: the sampled moments of every scheme
//! against its formula, the structural and reproducibility guarantees, and a fuzz target
//! over spec strings.

#[path = "tests/fuzz.rs"]
mod fuzz;
#[path = "tests/moments.rs"]
mod moments;
#[path = "tests/properties.rs"]
mod properties;
