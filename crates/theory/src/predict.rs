//! Per-layer mean-field predictions for a finite MLP, in the harness's column names.
//!
//! The forward pass iterates the length map layer by layer with each layer's own
//! `sigma_w2` (THEORY.md: `q^1 = sigma_w2[0] E[x^2] + sigma_b2`, the input is not passed
//! through `phi`); the backward pass multiplies the gradient variance down under the usual
//! gradient-independence assumption (Schoenholz et al. 2017, sec. 4), with the width ratio
//! `N_(l+1) / N_l` that a non-square layer contributes. Widths enter only through those
//! ratios: the predictions are infinite-width ones, with no finite-width fluctuations.
//! This file predicts one network; the maps themselves are in `meanfield.rs`.

use sigprop_init::Activation;

use crate::error::{TheoryError, check_nonnegative};
use crate::moments::{expect_pair, expect_preact};

/// What mean-field theory predicts for one layer, named like the measured columns
/// (THEORY.md, "Per-layer statistics"). Layer `l` runs from 1 to the depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerPrediction {
    /// Layer index `l`, 1-based as in THEORY.md.
    pub layer: usize,
    /// `Var(z^l) = q^l` (pre-activations have mean 0).
    pub preact_var: f64,
    /// `E[h^l] = E[phi(sqrt(q^l) z)]`.
    pub act_mean: f64,
    /// Population variance of all entries of `h^l`: `E[phi^2] - E[phi]^2`.
    pub act_var: f64,
    /// `E[(h^l)^2] = E[phi(sqrt(q^l) z)^2]`, what the next layer and `wgrad_var` see.
    pub act_second_moment: f64,
    /// `Var(dL/dz^l) = E[phi'(z^l)^2] * act_grad_var`.
    pub grad_var: f64,
    /// `Var(dL/dh^l)`: the loss's at the top, `sigma_w2[l+1] (N_(l+1)/N_l) grad_var^(l+1)`
    /// below.
    pub act_grad_var: f64,
    /// `Var(dL/dW^l) ~= batch * E[(h^(l-1))^2] * grad_var^l`, with `h^0 = x`.
    pub wgrad_var: f64,
}

/// Mean-field predictions for every layer of an MLP at initialization.
///
/// - `sigma_w2[l-1]` is layer `l`'s `Var(W^l) * N_(l-1)` (2 for He with ReLU, 1 for LeCun);
/// - `widths` are `N_0..N_depth`, one more than `sigma_w2`;
/// - `input_second_moment` is `E[x^2]` (1 for `N(0, 1)` inputs);
/// - `output_grad_var` is `Var(dL/dh^depth)` (1 for the projection loss).
///
/// Overflow is a result: a variance that grows past `f64::MAX` comes back infinite, not as
/// an error. Errors are only for bad input (length mismatch, zero width or batch, negative
/// or non-finite variances).
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::predict_mlp;
/// // ReLU with Xavier-like sigma_w2 = 1 halves q per layer (He et al. 2015).
/// let p = predict_mlp(Activation::Relu, &[1.0; 3], 0.0, &[64; 4], 32, 1.0, 1.0).unwrap();
/// for (l, q) in p.iter().zip([1.0, 0.5, 0.25]) {
///     assert!((l.preact_var - q).abs() < 1e-15);
/// }
/// // and the gradient variance halves going down: 0.5 at the top, 0.125 at layer 1.
/// assert!((p[2].grad_var - 0.5).abs() < 1e-14 && (p[0].grad_var - 0.125).abs() < 1e-14);
/// ```
pub fn predict_mlp(
    act: Activation,
    sigma_w2: &[f64],
    sigma_b2: f64,
    widths: &[usize],
    batch: usize,
    input_second_moment: f64,
    output_grad_var: f64,
) -> Result<Vec<LayerPrediction>, TheoryError> {
    validate(
        sigma_w2,
        sigma_b2,
        widths,
        batch,
        input_second_moment,
        output_grad_var,
    )?;
    let depth = sigma_w2.len();

    // Forward: q^1 from the input, then the length map with each layer's sigma_w2.
    let mut layers = Vec::with_capacity(depth);
    let mut dphi2 = Vec::with_capacity(depth);
    let mut q = sigma_w2[0] * input_second_moment + sigma_b2;
    for l in 0..depth {
        let mean = expect_preact(act, q, |u| act.phi(u));
        let m2 = expect_preact(act, q, |u| act.phi(u).powi(2));
        dphi2.push(expect_preact(act, q, |u| act.dphi(u).powi(2)));
        layers.push(LayerPrediction {
            layer: l + 1,
            preact_var: q,
            act_mean: mean,
            // An infinite second moment is an infinite variance, not inf - inf.
            act_var: if m2.is_infinite() {
                m2
            } else {
                m2 - mean * mean
            },
            act_second_moment: m2,
            grad_var: f64::NAN,
            act_grad_var: f64::NAN,
            wgrad_var: f64::NAN,
        });
        if l + 1 < depth {
            q = sigma_w2[l + 1] * m2 + sigma_b2;
        }
    }

    // Backward: Var(dL/dh^depth) is the loss's; each layer below scales it by
    // sigma_w2 (N_(l+1) / N_l) E[phi'^2].
    let top = Backward {
        sigma_w2,
        widths,
        batch,
        input_second_moment,
        output_grad_var,
    };
    top.fill(&mut layers, &dphi2, |_| 1.0);
    Ok(layers)
}

/// The backward recursion shared by the MLP predictions.
struct Backward<'a> {
    sigma_w2: &'a [f64],
    widths: &'a [usize],
    batch: usize,
    input_second_moment: f64,
    output_grad_var: f64,
}

impl Backward<'_> {
    /// Fill the gradient columns of `layers` (forward columns set, `dphi2[l]` =
    /// E[phi'(z^l)^2]), from the top down. `du(l)` turns Var(dL/dz^l) into the variance of
    /// the gradient at the weights' output (1 without normalization; 1/(s_l + eps) when z^l
    /// is a normalized s_l-variance pre-activation).
    fn fill(&self, layers: &mut [LayerPrediction], dphi2: &[f64], du: impl Fn(usize) -> f64) {
        let depth = layers.len();
        let mut act_grad_var = self.output_grad_var;
        for l in (0..depth).rev() {
            if l + 1 < depth {
                let ratio = self.widths[l + 2] as f64 / self.widths[l + 1] as f64;
                act_grad_var = self.sigma_w2[l + 1] * ratio * layers[l + 1].grad_var * du(l + 1);
            }
            let grad_var = dphi2[l] * act_grad_var;
            let h_prev_m2 = if l == 0 {
                self.input_second_moment
            } else {
                layers[l - 1].act_second_moment
            };
            let layer = &mut layers[l];
            layer.act_grad_var = act_grad_var;
            layer.grad_var = grad_var;
            layer.wgrad_var = self.batch as f64 * h_prev_m2 * grad_var * du(l);
        }
    }
}

/// Per-sample normalization of an MLP's pre-activations, for [`predict_normalized_mlp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleNorm {
    /// LayerNorm: subtract the sample's mean over features, divide by its standard deviation.
    Layer,
    /// RMSNorm: divide by the root mean square over features.
    Rms,
}

/// Mean-field predictions for an MLP whose pre-activations are normalized per sample
/// (LayerNorm or RMSNorm, gain 1, bias 0, `eps`): `u^l = h^(l-1) W^l + b^l`,
/// `z^l = norm(u^l)`, `h^l = phi(z^l)`, columns as [`predict_mlp`]'s with `z` the normalized
/// pre-activation.
///
/// At infinite width the normalized `z^l` is `N(0, s_l / (s_l + eps))` whatever the scale
/// of the weights, with `s_l = sigma_w2 E[(h^(l-1))^2] + sigma_b2` the variance of `u^l`.
/// Backward, the normalization divides the gradient by `sqrt(s_l + eps)` (and projects out
/// the one or two directions it removed; to leading order in 1/N that loss of variance is
/// cancelled by the spread of the per-sample scale, E[1/sigma^2] > 1/E[sigma^2], and both are
/// left out), so a layer scales `Var(dL/dh)` by
/// `sigma_w2 (N_l / N_(l-1)) E[phi'(z)^2] / (s_l + eps)`: without bias,
/// `E[phi'^2] / E[phi^2]` of the previous layer, independent of `sigma_w2`. For ReLU that
/// is 1 (flat gradients); for tanh about 1.18 per layer (exploding gradients).
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::{SampleNorm, predict_normalized_mlp};
/// let w = [4096usize; 6];
/// let p = predict_normalized_mlp(Activation::Relu, &[2.0; 5], 0.0, &w, 64, 1.0, 1.0, SampleNorm::Layer, 1e-5).unwrap();
/// assert!(p.iter().all(|l| (l.preact_var - 1.0).abs() < 1e-4));
/// // ReLU: E[phi'^2] = E[phi^2] = 1/2 at unit variance, so gradients stay flat.
/// assert!((p[1].grad_var / p[4].grad_var - 1.0).abs() < 1e-2);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn predict_normalized_mlp(
    act: Activation,
    sigma_w2: &[f64],
    sigma_b2: f64,
    widths: &[usize],
    batch: usize,
    input_second_moment: f64,
    output_grad_var: f64,
    norm: SampleNorm,
    eps: f64,
) -> Result<Vec<LayerPrediction>, TheoryError> {
    validate(
        sigma_w2,
        sigma_b2,
        widths,
        batch,
        input_second_moment,
        output_grad_var,
    )?;
    check_nonnegative("eps", eps)?;
    let depth = sigma_w2.len();
    let mut layers = Vec::with_capacity(depth);
    let mut dphi2 = Vec::with_capacity(depth);
    let mut s_pre = Vec::with_capacity(depth);
    let mut h_m2 = input_second_moment;
    for (l, &w2) in sigma_w2.iter().enumerate() {
        let s = w2 * h_m2 + sigma_b2;
        let q = s / (s + eps);
        let mean = expect_preact(act, q, |u| act.phi(u));
        let m2 = expect_preact(act, q, |u| act.phi(u).powi(2));
        dphi2.push(expect_preact(act, q, |u| act.dphi(u).powi(2)));
        s_pre.push(s);
        layers.push(LayerPrediction {
            layer: l + 1,
            preact_var: q,
            act_mean: mean,
            act_var: m2 - mean * mean,
            act_second_moment: m2,
            grad_var: f64::NAN,
            act_grad_var: f64::NAN,
            wgrad_var: f64::NAN,
        });
        h_m2 = m2;
    }
    // LayerNorm and RMSNorm agree at infinite width (the sample mean of u vanishes there).
    let _ = norm;
    let top = Backward {
        sigma_w2,
        widths,
        batch,
        input_second_moment,
        output_grad_var,
    };
    top.fill(&mut layers, &dphi2, |l| 1.0 / (s_pre[l] + eps));
    Ok(layers)
}

/// The mean-field forward prediction at one site of a residual network.
#[derive(Debug, Clone, PartialEq)]
pub struct SitePrediction {
    /// Block index `k`, 1-based.
    pub block: usize,
    /// `branch.i` (the input of the branch's `i`-th activation) or `out` (the block output).
    pub site: String,
    /// Variance of the site's pre-activation (all have mean 0).
    pub preact_var: f64,
    /// Population variance of the site's activation.
    pub act_var: f64,
    /// `Var(dL/dz)` at the site: the whole stream's gradient at `out`, the branch's share
    /// of it at `branch.i`.
    pub grad_var: f64,
    /// `Var(dL/dh)`, `h` the site's activation (`h = z` at `out`).
    pub act_grad_var: f64,
    /// `Var(dL/dW)` of the weight the site feeds, `W_(k,i)` at `branch.i`, as for the MLP
    /// `~= batch * E[h^2] * Var(dL/du_i)`; NaN at `out`, which feeds no weight.
    pub wgrad_var: f64,
}

/// Mean-field predictions, forward and backward, for a pre-activation residual MLP of equal
/// widths at initialization: `depth` blocks `x^k = s x^(k-1) + alpha u_m`, with `s = 1`
/// (`shortcut`) or 0, a branch of `m` maps `u_i = phi(u_(i-1)) W_(k,i) + b_(k,i)` from
/// `u_0 = x^(k-1)`, `sigma_w2` one entry per branch map (block-major). The branch is
/// independent of the skip (its weights have mean 0), so variances add (Brock, De & Smith
/// 2021; Yang & Schoenholz 2017):
///
/// ```text
/// q_0 = input second moment,   v_0 = q^(k-1),   v_i = sigma_w2 E[phi(sqrt(v_(i-1)) z)^2] + sigma_b2
/// q^k = s^2 q^(k-1) + alpha^2 v_m
/// ```
///
/// Backward, with gradient independence, from `g^depth = output_grad_var`
/// (`Var(dL/dx^depth)`): the branch receives `G_m = alpha^2 g^k`, each map passes
/// `G_(i-1) = sigma_w2 E[phi'(sqrt(v_(i-1)) z)^2] G_i` down (the `grad_var` of `branch.i`),
/// and the stream adds the two paths:
///
/// ```text
/// g^(k-1) = s^2 g^k + G_0
/// ```
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::predict_resmlp;
/// // ReLU, He branches of two maps: each branch returns the block input's variance, so the
/// // residual stream doubles every block.
/// let p = predict_resmlp(Activation::Relu, &[2.0; 6], 2, 0.0, 1.0, true, 1.0, 16, 1.0).unwrap();
/// let outs: Vec<f64> = p.iter().filter(|s| s.site == "out").map(|s| s.preact_var).collect();
/// assert!((outs[2] - 8.0).abs() < 1e-9);
/// // and the gradient doubles every block on its way down, the mirror image.
/// let grads: Vec<f64> = p.iter().filter(|s| s.site == "out").map(|s| s.grad_var).collect();
/// assert!((grads[0] - 4.0).abs() < 1e-9 && (grads[2] - 1.0).abs() < 1e-12);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn predict_resmlp(
    act: Activation,
    sigma_w2: &[f64],
    m: usize,
    sigma_b2: f64,
    alpha2: f64,
    shortcut: bool,
    input_second_moment: f64,
    batch: usize,
    output_grad_var: f64,
) -> Result<Vec<SitePrediction>, TheoryError> {
    check_branches(sigma_w2, m, sigma_b2, alpha2)?;
    check_nonnegative("input second moment", input_second_moment)?;
    check_nonnegative("output_grad_var", output_grad_var)?;
    if batch == 0 {
        return Err(TheoryError::Zero {
            what: "batch".into(),
        });
    }
    let nan = f64::NAN;
    let mut out = Vec::with_capacity(sigma_w2.len() / m * (m + 1));
    // Per branch site, in order: E[phi^2] and E[phi'^2] at its pre-activation.
    let mut moments = Vec::with_capacity(sigma_w2.len());
    let mut q = input_second_moment;
    for (k, branch) in sigma_w2.chunks(m).enumerate() {
        let mut v = q;
        for (i, &w2) in branch.iter().enumerate() {
            let mean = expect_preact(act, v, |u| act.phi(u));
            let m2 = expect_preact(act, v, |u| act.phi(u).powi(2));
            moments.push((m2, expect_preact(act, v, |u| act.dphi(u).powi(2))));
            out.push(SitePrediction {
                block: k + 1,
                site: format!("branch.{}", i + 1),
                preact_var: v,
                act_var: m2 - mean * mean,
                grad_var: nan,
                act_grad_var: nan,
                wgrad_var: nan,
            });
            v = w2 * m2 + sigma_b2;
        }
        q = if shortcut { q } else { 0.0 } + alpha2 * v;
        out.push(SitePrediction {
            block: k + 1,
            site: "out".into(),
            preact_var: q,
            act_var: q,
            grad_var: nan,
            act_grad_var: nan,
            wgrad_var: nan,
        });
    }
    // Backward, block by block from the top; `out` holds m + 1 sites a block.
    let s2 = if shortcut { 1.0 } else { 0.0 };
    let mut g = output_grad_var;
    for (k, block) in out.chunks_mut(m + 1).enumerate().rev() {
        let (branch, stream) = block.split_at_mut(m);
        stream[0].grad_var = g;
        stream[0].act_grad_var = g;
        // Var(dL/du_i), from the branch's output down.
        let mut gu = alpha2 * g;
        for (i, site) in branch.iter_mut().enumerate().rev() {
            let (m2, dphi2) = moments[k * m + i];
            let w2 = sigma_w2[k * m + i];
            site.wgrad_var = batch as f64 * m2 * gu;
            site.act_grad_var = w2 * gu;
            site.grad_var = dphi2 * site.act_grad_var;
            gu = site.grad_var;
        }
        g = s2 * g + gu;
    }
    Ok(out)
}

/// The residual c-map: the correlation between the two inputs of a pair at every site of
/// [`predict_resmlp`]'s network, in the order of its predictions `sites` (`branch.1..=
/// branch.m`, then `out`, a block at a time), whose variances it reads, from inputs at
/// cosine `c0`; the other arguments are those `sites` were predicted with.
///
/// The skip and the branch output are uncorrelated (the branch's last weights have mean 0),
/// so the pair's covariance `k` adds as the stream's variance `q` does:
///
/// ```text
/// k_0 = k^(k-1),   k_i = sigma_w2 E[phi(u) phi(u')] + sigma_b2
///   with (u, u') Gaussian of variance v_(i-1) and correlation k_(i-1) / v_(i-1)
/// k^k = s^2 k^(k-1) + alpha^2 k_m
/// ```
///
/// and the site's correlation is `k_(i-1) / v_(i-1)` at `branch.i`, `k^k / q^k` at `out`
/// (Yang & Schoenholz 2017 for the residual recursion; Poole et al. 2016 for the pair
/// expectation).
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::{predict_resmlp, predict_resmlp_corr};
/// // Without a branch (alpha = 0) the stream keeps the input's cosine exactly: each block's
/// // sites are branch.1 (the stream), branch.2 (inside the branch) and out.
/// let (w2, act) = ([1.0; 4], Activation::Tanh);
/// let sites = predict_resmlp(act, &w2, 2, 0.0, 0.0, true, 1.0, 16, 1.0).unwrap();
/// let c = predict_resmlp_corr(act, &sites, &w2, 2, 0.0, 0.0, true, 0.3).unwrap();
/// assert_eq!(c.len(), 6);
/// assert!([0, 2, 3, 5].iter().all(|&i| (c[i] - 0.3).abs() < 1e-12));
/// ```
#[allow(clippy::too_many_arguments)]
pub fn predict_resmlp_corr(
    act: Activation,
    sites: &[SitePrediction],
    sigma_w2: &[f64],
    m: usize,
    sigma_b2: f64,
    alpha2: f64,
    shortcut: bool,
    c0: f64,
) -> Result<Vec<f64>, TheoryError> {
    check_branches(sigma_w2, m, sigma_b2, alpha2)?;
    let expected = sigma_w2.len() / m * (m + 1);
    if sites.len() != expected {
        return Err(TheoryError::LengthMismatch {
            what: "sites",
            got: sites.len(),
            expected,
            rule: "predict_resmlp's sites: m + 1 a block",
        });
    }
    if !(-1.0..=1.0).contains(&c0) {
        return Err(TheoryError::BadValue {
            what: "input cosine".into(),
            value: c0,
            allowed: "a number with -1 <= c <= 1",
        });
    }
    let s2 = if shortcut { 1.0 } else { 0.0 };
    let corr = |k: f64, v: f64| {
        if v > 0.0 {
            (k / v).clamp(-1.0, 1.0)
        } else {
            f64::NAN
        }
    };
    let mut out = Vec::with_capacity(sites.len());
    // The input's covariance: c0 times its second moment, the first site's variance.
    let mut k = c0 * sites[0].preact_var;
    for (block, branch_w2) in sites.chunks(m + 1).zip(sigma_w2.chunks(m)) {
        let (branch, stream) = block.split_at(m);
        let mut kv = k;
        for (site, &w2) in branch.iter().zip(branch_w2) {
            let c = corr(kv, site.preact_var);
            out.push(c);
            kv = w2 * expect_pair(act, site.preact_var, c, |u| act.phi(u), |u| act.phi(u))
                + sigma_b2;
        }
        k = s2 * k + alpha2 * kv;
        out.push(corr(k, stream[0].preact_var));
    }
    Ok(out)
}

/// The checks every residual prediction makes: `sigma_w2` one non-negative entry per branch
/// map (blocks x `m` maps, `m > 0`), and non-negative `sigma_b2` and `alpha2`.
pub(crate) fn check_branches(
    sigma_w2: &[f64],
    m: usize,
    sigma_b2: f64,
    alpha2: f64,
) -> Result<(), TheoryError> {
    if sigma_w2.is_empty() {
        return Err(TheoryError::Empty { what: "sigma_w2" });
    }
    if m == 0 || !sigma_w2.len().is_multiple_of(m) {
        return Err(TheoryError::LengthMismatch {
            what: "sigma_w2",
            got: sigma_w2.len(),
            expected: sigma_w2.len().div_ceil(m.max(1)) * m.max(1),
            rule: "one entry per branch map: blocks x branch layers",
        });
    }
    check_nonnegative("sigma_b2", sigma_b2)?;
    check_nonnegative("alpha2", alpha2)?;
    for &w in sigma_w2 {
        check_nonnegative("sigma_w2", w)?;
    }
    Ok(())
}

fn validate(
    sigma_w2: &[f64],
    sigma_b2: f64,
    widths: &[usize],
    batch: usize,
    input_second_moment: f64,
    output_grad_var: f64,
) -> Result<(), TheoryError> {
    if sigma_w2.is_empty() {
        return Err(TheoryError::Empty { what: "sigma_w2" });
    }
    if widths.len() != sigma_w2.len() + 1 {
        return Err(TheoryError::LengthMismatch {
            what: "widths",
            got: widths.len(),
            expected: sigma_w2.len() + 1,
            rule: "N_0..N_depth, one more than sigma_w2",
        });
    }
    if let Some(i) = widths.iter().position(|&n| n == 0) {
        return Err(TheoryError::Zero {
            what: format!("widths[{i}]"),
        });
    }
    if batch == 0 {
        return Err(TheoryError::Zero {
            what: "batch".into(),
        });
    }
    for (i, &s) in sigma_w2.iter().enumerate() {
        check_nonnegative(format!("sigma_w2[{i}]"), s)?;
    }
    check_nonnegative("sigma_b2", sigma_b2)?;
    check_nonnegative("input_second_moment", input_second_moment)?;
    check_nonnegative("output_grad_var", output_grad_var)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(act: Activation, sw2: f64, sb2: f64, depth: usize) -> Vec<LayerPrediction> {
        predict_mlp(
            act,
            &vec![sw2; depth],
            sb2,
            &vec![128; depth + 1],
            16,
            1.0,
            1.0,
        )
        .unwrap()
    }

    #[test]
    fn he_normal_keeps_relu_preactivation_variance() {
        let p = uniform(Activation::Relu, 2.0, 0.0, 20);
        for l in &p {
            assert!(
                (l.preact_var - 2.0).abs() < 1e-12,
                "layer {}: {}",
                l.layer,
                l.preact_var
            );
            assert!((l.act_second_moment - 1.0).abs() < 1e-12);
            // relu(u) has mean sqrt(q / 2 pi) and variance q/2 - q/(2 pi).
            let mean = (2.0 / (2.0 * std::f64::consts::PI)).sqrt();
            assert!(
                (l.act_mean - mean).abs() < 1e-12
                    && (l.act_var - (1.0 - mean * mean)).abs() < 1e-12
            );
        }
    }

    #[test]
    fn he_normal_keeps_relu_gradient_variance_at_equal_widths() {
        let p = uniform(Activation::Relu, 2.0, 0.0, 20);
        for l in &p {
            assert!((l.act_grad_var - 1.0).abs() < 1e-12, "layer {}", l.layer);
            assert!((l.grad_var - 0.5).abs() < 1e-12, "layer {}", l.layer);
            // batch 16 * E[h^2] (1, also for the N(0,1) input) * 0.5.
            assert!((l.wgrad_var - 8.0).abs() < 1e-11, "layer {}", l.layer);
        }
    }

    #[test]
    fn width_ratios_scale_the_backward_pass() {
        // Linear, sigma_w2 = 1: act_grad_var^l = N_(l+1)/N_l * act_grad_var^(l+1).
        let p = predict_mlp(
            Activation::Linear,
            &[1.0; 2],
            0.0,
            &[10, 20, 40],
            1,
            1.0,
            3.0,
        )
        .unwrap();
        assert_eq!(p[1].act_grad_var, 3.0);
        assert_eq!(p[0].act_grad_var, 6.0);
    }

    #[test]
    fn tanh_at_sigma_w_one_decays_like_one_over_two_l() {
        // q^(l+1) ~= q^l - 2 (q^l)^2, so q^l ~ 1/(2l); l q^l -> 1/2 up to O(log l / l).
        let p = uniform(Activation::Tanh, 1.0, 0.0, 1000);
        let last = p.last().unwrap();
        let lq = last.layer as f64 * last.preact_var;
        assert!((lq - 0.5).abs() < 0.02 * 0.5, "l q^l = {lq}");
    }

    #[test]
    fn selu_with_lecun_weights_flows_to_mean_zero_variance_one() {
        // Klambauer et al. 2017: (0, 1) is the attracting fixed point; start far from it.
        // q - 1 shrinks by ~0.76 per layer near it, so 100 layers leave ~1e-12.
        for m2 in [0.2, 4.0] {
            let p =
                predict_mlp(Activation::Selu, &[1.0; 100], 0.0, &[64; 101], 8, m2, 1.0).unwrap();
            let last = p.last().unwrap();
            assert!(
                last.act_mean.abs() < 1e-9,
                "E[x^2]={m2}: mean {}",
                last.act_mean
            );
            assert!(
                (last.act_var - 1.0).abs() < 1e-9,
                "E[x^2]={m2}: var {}",
                last.act_var
            );
        }
    }

    #[test]
    fn overflow_is_a_result_not_an_error() {
        let p = uniform(Activation::Relu, 1e200, 0.0, 4);
        assert!(p[3].preact_var.is_infinite() && p[3].act_var.is_infinite());
        assert!(p[0].preact_var.is_finite());
    }

    #[test]
    fn bad_input_names_the_offending_value() {
        let e = predict_mlp(Activation::Tanh, &[1.0; 2], 0.0, &[8; 2], 1, 1.0, 1.0).unwrap_err();
        assert!(
            e.to_string().contains("widths has 2 entries; expected 3"),
            "{e}"
        );
        let e = predict_mlp(Activation::Tanh, &[1.0; 2], 0.0, &[8, 0, 8], 1, 1.0, 1.0).unwrap_err();
        assert_eq!(e.to_string(), "widths[1] = 0; it must be at least 1");
        let e = predict_mlp(Activation::Tanh, &[1.0, -1.0], 0.0, &[8; 3], 1, 1.0, 1.0).unwrap_err();
        assert!(e.to_string().starts_with("sigma_w2[1] = -1"), "{e}");
        let e = predict_mlp(Activation::Tanh, &[], 0.0, &[8], 1, 1.0, 1.0).unwrap_err();
        assert!(matches!(e, TheoryError::Empty { .. }));
        let e = predict_mlp(Activation::Tanh, &[1.0], 0.0, &[8; 2], 0, 1.0, 1.0).unwrap_err();
        assert_eq!(e.to_string(), "batch = 0; it must be at least 1");
    }

    #[test]
    fn the_residual_c_map_without_skips_and_one_map_a_branch_is_the_mlp_c_map() {
        // Blocks without a skip, one map each, alpha = 1: block k's output is the MLP's
        // layer k, and the c-map of Poole et al. gives the next correlation.
        for act in [Activation::Tanh, Activation::Relu] {
            let (sw2, sb2, c0) = (1.7, 0.1, 0.3);
            let w2 = [sw2; 6];
            let sites = predict_resmlp(act, &w2, 1, sb2, 1.0, false, 1.0, 16, 1.0).unwrap();
            let c = predict_resmlp_corr(act, &sites, &w2, 1, sb2, 1.0, false, c0).unwrap();
            let mf = crate::MeanField::new(act, sw2, sb2);
            let (mut q, mut want) = (1.0, c0);
            for k in 0..6 {
                assert!((c[2 * k] - want).abs() < 1e-9, "{act:?} block {k}");
                want = mf.c_map(want, q);
                q = sw2 * expect_preact(act, q, |u| act.phi(u).powi(2)) + sb2;
                assert!((c[2 * k + 1] - want).abs() < 1e-9, "{act:?} block {k} out");
            }
        }
        let sites = predict_resmlp(Activation::Tanh, &[1.0; 2], 1, 0.0, 1.0, true, 1.0, 16, 1.0);
        let sites = sites.unwrap();
        let e = predict_resmlp_corr(Activation::Tanh, &sites, &[1.0; 2], 1, 0.0, 1.0, true, 1.5);
        assert!(e.unwrap_err().to_string().contains("input cosine = 1.5"));
        let e = predict_resmlp_corr(
            Activation::Tanh,
            &sites[1..],
            &[1.0; 2],
            1,
            0.0,
            1.0,
            true,
            0.5,
        );
        assert!(e.unwrap_err().to_string().contains("sites has 3 entries"));
    }
}

/// How a layer's weight matrix spreads the singular values of the Jacobian, in the large-width
/// limit: `s_1`, the first free cumulant of `W^T W`'s S-transform (Pennington, Schoenholz &
/// Ganguli 2017).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightSpectrum {
    /// Independent entries (Gaussian, uniform, sparse): `W^T W` follows Marchenko-Pastur,
    /// `s_1 = -1`.
    Iid,
    /// Scaled Haar orthogonal: every singular value of `W` equal, `s_1 = 0`.
    Orthogonal,
}

/// The mean-field moments of the eigenvalues of `J J^T` for the partial Jacobian
/// `J = dh^l / dh^0` of an MLP, at each layer `l`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JacobianPrediction {
    /// Layer `l`, 1-based.
    pub layer: usize,
    /// Mean eigenvalue of `J J^T` (mean squared singular value): `prod_k sigma_w2[k] mu_1(q^k)`,
    /// `chi_1^l` at a fixed point.
    pub m1: f64,
    /// Variance of those eigenvalues:
    /// `m1^2 sum_k (mu_2(q^k) / mu_1(q^k)^2 - 1 - s_1)`.
    pub var: f64,
}

/// [`JacobianPrediction`]s for layers `1..=sigma_w2.len()` of an MLP of equal widths
/// (`sigma_w2[l-1]` is layer `l`'s `Var(W) N`), with `mu_k(q) = E[phi'(sqrt(q) z)^(2k)]` taken
/// at the length map's `q^l` from inputs of second moment `input_second_moment`.
///
/// `J J^T` is a product of the free pieces `W^k (W^k)^T` and `(D^k)^2`; under free
/// multiplication means multiply and the normalized variance `m_2 / m_1^2 - 1` adds, which
/// is `-s_1` for the weights (1 for Marchenko-Pastur, 0 for orthogonal) and
/// `mu_2 / mu_1^2 - 1` for the activation's derivatives: at criticality (`m1 = 1`) this is
/// Pennington et al. 2017's `sigma^2 = L (mu_2 / mu_1^2 - 1 - s_1)`, and it holds off
/// criticality too. Finite width adds corrections of order `l / N`.
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::{WeightSpectrum, predict_jacobian};
/// // He-initialized ReLU: mu_1 = mu_2 = 1/2, so m1 = 1 and the variance grows by 2 a layer
/// // with Gaussian weights, by 1 with orthogonal ones.
/// let g = predict_jacobian(Activation::Relu, &[2.0; 8], 0.0, 1.0, WeightSpectrum::Iid).unwrap();
/// assert!((g[7].m1 - 1.0).abs() < 1e-12 && (g[7].var - 16.0).abs() < 1e-9);
/// let o = predict_jacobian(Activation::Relu, &[2.0; 8], 0.0, 1.0, WeightSpectrum::Orthogonal).unwrap();
/// assert!((o[7].var - 8.0).abs() < 1e-9);
/// ```
pub fn predict_jacobian(
    act: Activation,
    sigma_w2: &[f64],
    sigma_b2: f64,
    input_second_moment: f64,
    weights: WeightSpectrum,
) -> Result<Vec<JacobianPrediction>, TheoryError> {
    let widths = vec![1; sigma_w2.len() + 1];
    validate(sigma_w2, sigma_b2, &widths, 1, input_second_moment, 1.0)?;
    let s1 = match weights {
        WeightSpectrum::Iid => -1.0,
        WeightSpectrum::Orthogonal => 0.0,
    };
    let mut q = sigma_w2[0] * input_second_moment + sigma_b2;
    let (mut m1, mut spread) = (1.0f64, 0.0f64);
    let mut out = Vec::with_capacity(sigma_w2.len());
    for (l, &w2) in sigma_w2.iter().enumerate() {
        let mu1 = expect_preact(act, q, |u| act.dphi(u).powi(2));
        let mu2 = expect_preact(act, q, |u| act.dphi(u).powi(4));
        m1 *= w2 * mu1;
        spread += mu2 / (mu1 * mu1) - 1.0 - s1;
        out.push(JacobianPrediction {
            layer: l + 1,
            m1,
            var: m1 * m1 * spread,
        });
        if l + 1 < sigma_w2.len() {
            let m2 = expect_preact(act, q, |u| act.phi(u).powi(2));
            q = sigma_w2[l + 1] * m2 + sigma_b2;
        }
    }
    Ok(out)
}
