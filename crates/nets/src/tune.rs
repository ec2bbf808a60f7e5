//! The meta-learned schemes: `metainit` (Dauphin & Schoenholz 2019) and `gradinit` (Zhu et
//! al. 2021). Both start from their `base` draw and learn one scale per weight tensor (every
//! tensor of two or more dimensions: linear, convolution, attention and recurrent matrices,
//! and the cross-entropy head), on Gaussian batches of their own keys and the probe's loss
//! averaged over the batch. Biases, gains and scalars keep their draws.
//!
//! Burn has no double backward, so the second-order quantities are finite differences of
//! gradients: `H v ~ (g(w + d v) - g(w - d v)) / (2 d)`, central, so the error is of order
//! `d^2`; `d` moves the largest entry of `v` by 4e-3 of the weights' root mean square
//! ([`fd_step`]).
//!
//! - **metainit** lowers the gradient quotient
//!   `GQ = mean_i |(g_i - (H g)_i) / (g_i + eps sign(g_i)) - 1|` over every parameter entry:
//!   how much one gradient step of size 1 would change each gradient entry. Each step draws
//!   a batch, takes the slope of `GQ` in every tensor's log-norm (exact up to finite
//!   differences, eleven passes: see [`Objective::quotient_slope`]), and moves each log-norm
//!   by signSGD with momentum. The authors' code takes the same slope by double backward and
//!   steps the norm itself; the log-norm keeps the norm positive and the step independent
//!   of the width.
//! - **gradinit** learns scales `alpha` (from 1, floored at `alpha-min`) by Adam on
//!   `L(S~; w - eta A(g))`, the loss on a second batch after one step of SGD (`A(g) = g`)
//!   or of Adam's first step (`A(g) = sign(g)`) from the scaled weights, with `g` the
//!   gradient on a first batch `S`. While `||g||` (the 2-norm for SGD, the 1-norm for Adam)
//!   exceeds `gamma`, the objective is `||g||` instead. The slope in `alpha` is exact up to
//!   the finite difference: `<v_t, w0_t> - eta <(H v)_t, w0_t>` for tensor `t`, `v` the
//!   looked-ahead gradient and `w0` the base draw (the second term is 0 for Adam's step).
//!
//! What each did is returned as a [`Tuning`]: the scale of every tuned tensor relative to
//! its base draw, and the objective before and after on an evaluation batch.

/// What a meta-learned scheme did to one weight tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TunedTensor {
    /// The tensor's path.
    pub path: String,
    /// Its final values over its base draw.
    pub scale: f64,
}

/// What `metainit` or `gradinit` did to a network.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// `metainit` or `gradinit`.
    pub method: &'static str,
    /// Optimisation steps taken.
    pub steps: usize,
    /// Objectives on the evaluation batch: name, at the base draw, after tuning.
    pub metrics: Vec<(&'static str, f64, f64)>,
    /// Every tuned tensor, in creation order.
    pub tensors: Vec<TunedTensor>,
}

#[cfg(feature = "burn")]
mod pass;
#[cfg(feature = "burn")]
pub use pass::tune;
