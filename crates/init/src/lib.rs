//! sigprop-init: weight initializers as pure `f64`/`f32` math, no Burn.
//!
//! - [`Activation`]: the nonlinearities shared by the workspace (scalar phi, phi', phi'').
//! - [`Spec`]: the `NAME[:key=value,...]` syntax every scheme and activation is written in.
#![warn(missing_docs)]

pub mod activation;
pub mod error;
pub mod spec;

pub use activation::{ACTIVATION_NAMES, Activation, SELU_ALPHA, SELU_LAMBDA};
pub use error::InitError;
pub use spec::{Spec, fmt_f64};
