//! `autoinit`: per-layer weight and bias scales from the analytic moments of the activation.
//!
//! In the spirit of Bingham & Miikkulainen 2023 (AutoInit: scales from the mean and
//! variance that propagate through each layer), with sigprop's own derivation, which asks
//! for the backward direction too. For a hidden layer `z' = W phi(z) + b` of a wide
//! network with `z ~ N(0, q)`, weights of variance `sigma_w^2 / fan_in` and biases of
//! variance `sigma_b^2`, write `m1 = E[phi(z)]`, `m2 = E[phi(z)^2]`, `v = m2 - m1^2` and
//! `d2 = E[phi'(z)^2]`. Then:
//!
//! - backward, the gradient's variance is multiplied by `chi_1 = sigma_w^2 d2` per layer;
//! - forward, `Var(z') = sigma_w^2 m2 + sigma_b^2` for i.i.d. weights, and
//!   `sigma_w^2 v + sigma_b^2` when every output unit's incoming weights sum to zero (the
//!   mean `m1` of the inputs then cancels exactly instead of reaching `z'` as a random
//!   per-unit offset that does not depend on the input).
//!
//! The plan takes `sigma_w^2 = 1 / d2` (`chi_1 = 1`) and fills the rest of `q` with the bias:
//! `sigma_b^2 = q - sigma_w^2 m2` with i.i.d. weights where that is `>= 0` (ReLU: He, tanh:
//! the edge of chaos through `q* = q`, SELU: near LeCun), else with centred rows,
//! `sigma_b^2 = q - sigma_w^2 v` (sigmoid, softplus: their mean would otherwise carry six
//! and three times the variance forward). Where even centred rows carry more than `q`
//! forward, the plan keeps the forward variance (`sigma_w^2 = q / v`, no bias) and reports
//! the `chi_1 < 1` that remains. The first layer reads the input (mean 0, second moment 1
//! per entry, as the harness draws it): `sigma_w^2 = q - sigma_b^2` with the same bias, so
//! `Var(z^1) = q` too.

use sigprop_init::{Activation, AutoInitLayer};

use crate::error::TheoryError;
use crate::moments::expect_preact;

/// Relative slack under which `sigma_w^2 m2` counts as exactly `q` (quadrature rounding:
/// ReLU's `m2 / d2` is 1 to about 1e-13).
const EXACT: f64 = 1e-9;

/// A bias variance that is 0 up to quadrature rounding is 0.
fn snap(b2: f64, q: f64) -> f64 {
    if b2 <= EXACT * q { 0.0 } else { b2 }
}

/// Which branch of the derivation the plan took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoInitRule {
    /// `chi_1 = 1`, i.i.d. weights, the bias fills the forward variance.
    Iid,
    /// `chi_1 = 1`, centred rows cancel the activation's mean, the bias fills the rest.
    Centred,
    /// The forward variance is kept at `q`; `chi_1 < 1` remains.
    ForwardOnly,
}

impl AutoInitRule {
    /// Manifest spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            AutoInitRule::Iid => "iid",
            AutoInitRule::Centred => "centred",
            AutoInitRule::ForwardOnly => "forward-only",
        }
    }
}

/// The scales `autoinit` gives one activation at pre-activation variance `q`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoInitPlan {
    /// Target pre-activation variance.
    pub q: f64,
    /// `E[phi(z)]`, `z ~ N(0, q)`.
    pub mean: f64,
    /// `E[phi(z)^2]`.
    pub second_moment: f64,
    /// `E[phi'(z)^2]`.
    pub deriv_moment: f64,
    /// The first layer (reads the input).
    pub first: AutoInitLayer,
    /// Every later layer.
    pub hidden: AutoInitLayer,
    /// `sigma_w^2 d2` of a hidden layer: the backward factor per layer.
    pub chi1: f64,
    /// The branch taken.
    pub rule: AutoInitRule,
}

impl AutoInitPlan {
    /// One line: what was chosen and why.
    pub fn describe(&self) -> String {
        let h = &self.hidden;
        let why = match self.rule {
            AutoInitRule::Iid => "chi_1 = 1 with i.i.d. weights; the bias fills Var(z) to q",
            AutoInitRule::Centred => {
                "chi_1 = 1; rows centred so the activation's mean cancels; the bias fills Var(z) to q"
            }
            AutoInitRule::ForwardOnly => {
                "Var(z) kept at q; chi_1 = 1 would carry more than q forward even with centred rows"
            }
        };
        format!(
            "sigma_w^2 {:.6} (first layer {:.6}), sigma_b^2 {:.6}, rows {}, chi_1 {:.6}: {why}",
            h.sigma_w2,
            self.first.sigma_w2,
            h.sigma_b2,
            if h.center { "centred" } else { "i.i.d." },
            self.chi1
        )
    }
}

/// The `autoinit` plan for `act` at pre-activation variance `q`.
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::autoinit_plan;
/// // ReLU: He (sigma_w^2 = 2, no bias, i.i.d. rows).
/// let p = autoinit_plan(Activation::Relu, 1.0).unwrap();
/// assert!((p.hidden.sigma_w2 - 2.0).abs() < 1e-9 && p.hidden.sigma_b2 == 0.0);
/// assert!(!p.hidden.center);
/// ```
pub fn autoinit_plan(act: Activation, q: f64) -> Result<AutoInitPlan, TheoryError> {
    if !(q > 0.0 && q.is_finite()) {
        return Err(TheoryError::BadValue {
            what: "q".into(),
            value: q,
            allowed: "a number > 0",
        });
    }
    let m1 = expect_preact(act, q, |u| act.phi(u));
    let m2 = expect_preact(act, q, |u| act.phi(u).powi(2));
    let d2 = expect_preact(act, q, |u| act.dphi(u).powi(2));
    if !(d2 > 0.0 && d2.is_finite() && m2.is_finite() && m1.is_finite()) {
        return Err(TheoryError::BadValue {
            what: format!("E[phi'(z)^2] of {act} at q={q}"),
            value: d2,
            allowed: "a finite number > 0",
        });
    }
    let v = (m2 - m1 * m1).max(0.0);
    let sw2 = 1.0 / d2;
    let (hidden, rule) = if sw2 * m2 <= q * (1.0 + EXACT) {
        let layer = AutoInitLayer {
            sigma_w2: sw2,
            sigma_b2: snap(q - sw2 * m2, q),
            center: false,
        };
        (layer, AutoInitRule::Iid)
    } else if sw2 * v <= q * (1.0 + EXACT) {
        let layer = AutoInitLayer {
            sigma_w2: sw2,
            sigma_b2: snap(q - sw2 * v, q),
            center: true,
        };
        (layer, AutoInitRule::Centred)
    } else {
        let center = m1 * m1 > 1e-12 * m2;
        let carried = if center { v } else { m2 };
        let layer = AutoInitLayer {
            sigma_w2: q / carried,
            sigma_b2: 0.0,
            center,
        };
        (layer, AutoInitRule::ForwardOnly)
    };
    let first = AutoInitLayer {
        sigma_w2: q - hidden.sigma_b2,
        sigma_b2: hidden.sigma_b2,
        center: false,
    };
    Ok(AutoInitPlan {
        q,
        mean: m1,
        second_moment: m2,
        deriv_moment: d2,
        first,
        hidden,
        chi1: hidden.sigma_w2 * d2,
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meanfield::MeanField;

    #[test]
    fn every_activation_gets_a_plan_whose_forward_and_backward_factors_hold() {
        for act in Activation::all() {
            let p = autoinit_plan(act, 1.0).unwrap();
            let h = p.hidden;
            let carried = if h.center {
                p.second_moment - p.mean * p.mean
            } else {
                p.second_moment
            };
            // Forward: Var(z') = q at every hidden layer and at the first.
            assert!(
                (h.sigma_w2 * carried + h.sigma_b2 - 1.0).abs() < 1e-9,
                "{act}"
            );
            assert!(
                (p.first.sigma_w2 + p.first.sigma_b2 - 1.0).abs() < 1e-12,
                "{act}"
            );
            match p.rule {
                AutoInitRule::ForwardOnly => assert!(p.chi1 < 1.0, "{act}"),
                _ => assert!((p.chi1 - 1.0).abs() < 1e-12, "{act}"),
            }
        }
    }

    #[test]
    fn the_plan_is_he_for_relu_the_edge_of_chaos_for_tanh_and_centred_for_sigmoid() {
        let relu = autoinit_plan(Activation::Relu, 1.0).unwrap();
        assert_eq!(relu.rule, AutoInitRule::Iid);
        assert!((relu.hidden.sigma_w2 - 2.0).abs() < 1e-9);
        // tanh: the i.i.d. plan is a point of the mean-field critical line with q* = 1.
        let tanh = autoinit_plan(Activation::Tanh, 1.0).unwrap();
        assert_eq!(tanh.rule, AutoInitRule::Iid);
        let mf = MeanField::new(Activation::Tanh, tanh.hidden.sigma_w2, tanh.hidden.sigma_b2);
        assert!((mf.q_star().unwrap() - 1.0).abs() < 1e-6);
        assert!((mf.chi1() - 1.0).abs() < 1e-6);
        // sigmoid: the mean 1/2 would carry 6.5 q forward; centred rows carry 0.97 q.
        let sig = autoinit_plan(Activation::Sigmoid, 1.0).unwrap();
        assert_eq!(sig.rule, AutoInitRule::Centred);
        assert!(sig.hidden.center && sig.hidden.sigma_b2 > 0.0 && sig.hidden.sigma_b2 < 0.1);
        assert!((sig.mean - 0.5).abs() < 1e-12);
        assert!(autoinit_plan(Activation::Relu, 0.0).is_err());
    }
}
