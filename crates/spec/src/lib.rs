//! sigprop-spec: what sigprop runs, parsed and checked before anything runs. No Burn: a
//! suite can be parsed, validated and fuzzed without building a network.
//!
//! The modules, from the leaves up (each uses only those above it in this list):
//!
//! - [`error`] (the one error type of the spec, report and runner crates: a user's mistake
//!   is one line and exit code 2 wherever it is found), [`format`] (numbers and slugs for
//!   people);
//! - [`settings`]: the typed, validated form of every flag and suite key, and one
//!   configuration's [`RunSpec`];
//! - [`tables`]: the training and coordinate-check plans;
//! - [`experiment`]: suites and grids into configurations.
#![warn(missing_docs)]

pub mod error;
pub mod experiment;
pub mod format;
pub mod settings;
pub mod tables;

pub use error::RunnerError;
pub use experiment::Experiment;
pub use settings::{RunSpec, Settings};
