//! sigprop-theory: mean-field theory of signal propagation at initialization, pure `f64`.
#![warn(missing_docs)]

pub mod error;
pub mod meanfield;
pub mod moments;
pub mod quadrature;
mod roots;

pub use error::TheoryError;
pub use meanfield::{CRITICAL_TOL, MeanField, Phase};
pub use moments::{expect_pair, expect_preact};
pub use quadrature::{PANEL, RANGE, gauss_expect, gauss_expect_2d, gauss_legendre};
