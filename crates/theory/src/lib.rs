//! sigprop-theory: mean-field theory of signal propagation at initialization, in pure `f64`
//! (no Burn), to overlay on what the harness measures. Definitions follow THEORY.md
//! (Poole et al. 2016; Schoenholz et al. 2017).
//!
//! - [`quadrature`]: Gaussian expectations by composite adaptive Gauss-Legendre split at
//!   kinks ([`gauss_expect`], [`gauss_expect_2d`]); [`legendre`]: the rule's nodes.
//! - [`moments`]: expectations over one pre-activation or a correlated pair
//!   ([`expect_preact`], [`expect_pair`]).
//! - [`meanfield`]: one layer's length map: [`MeanField`] with the q-map, `q*`, `chi_1`,
//!   the depth scale `xi_q` and the [`Phase`].
//! - [`cmap`]: the same layer's correlation map: `c_map`, `c*` and `xi_c` on [`MeanField`].
//! - [`critical`]: the edge of chaos, [`critical_sigma_w`] -> [`Critical`], and
//!   [`numerical_gain`].
//! - [`predict`]: per-layer predictions for a finite MLP, [`predict_mlp`] ->
//!   [`LayerPrediction`], named like the measured columns.
//! - [`conv`]: the same recursions pixel by pixel for zero-padded convolutions,
//!   [`predict_conv`], and with residual blocks, [`predict_rescnn`].
//! - [`recurrent`]: the same recursions over an RNN's time steps, and its Jacobian through
//!   time: [`Recurrent`].
//! - [`softmax`]: the moments of softmax attention rows over Gaussian scores,
//!   [`softmax_moments`].
//! - [`transformer`]: a transformer's residual stream, its variance and its tokens'
//!   agreement over the blocks, [`TransformerStream`].
//! - [`finite`]: the finite-width yardstick, the mean and variance of one input's log gain
//!   `ln(|z^L|^2 / |z^1|^2)`, [`log_gain`] -> [`LogGain`].
//! - [`autoinit`]: the `autoinit` scheme's per-layer scales, [`autoinit_plan`].
//! - [`phase`]: the `(sigma_w^2, sigma_b^2)` phase diagram as data, [`phase_grid`].
//! - [`error`]: [`TheoryError`], for bad input only.
#![warn(missing_docs)]

pub mod autoinit;
pub mod cmap;
pub mod conv;
pub mod critical;
pub mod density;
pub mod dks;
pub mod error;
pub mod finite;
pub mod legendre;
pub mod meanfield;
pub mod moments;
pub mod phase;
pub mod predict;
pub mod quadrature;
pub mod recurrent;
mod roots;
pub mod softmax;
pub mod transformer;

pub use autoinit::{AutoInitPlan, AutoInitRule, autoinit_plan};
pub use conv::{predict_conv, predict_rescnn};
pub use critical::{Critical, SIGMA_W_CAP, SIGMA_W_MAX, critical_sigma_w, numerical_gain};
pub use density::{EigenDensity, jacobian_density};
pub use dks::{dks_shape, resolve_activation};
pub use error::TheoryError;
pub use finite::{LogGain, log_gain};
pub use legendre::gauss_legendre;
pub use meanfield::{CRITICAL_TOL, MeanField, Phase};
pub use moments::{expect_pair, expect_preact};
pub use phase::{PhaseGrid, phase_grid};
pub use predict::{
    JacobianPrediction, LayerPrediction, SampleNorm, SitePrediction, WeightSpectrum,
    predict_jacobian, predict_mlp, predict_normalized_mlp, predict_resmlp, predict_resmlp_corr,
};
pub use quadrature::{PANEL, RANGE, expect_with_magnitude, gauss_expect, gauss_expect_2d};
pub use recurrent::Recurrent;
pub use softmax::softmax_moments;
pub use transformer::{RoleVariances, TransformerStream};
