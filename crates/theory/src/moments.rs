//! Gaussian expectations over pre-activations, split at the activation's kinks.
//!
//! The mean-field maps integrate functions of `u ~ N(0, q)` (one pre-activation) or of a
//! pair `(u1, u2)` with `Var u1 = Var u2 = q` and correlation `c`. This file turns those
//! into standard-normal integrals for [`crate::quadrature`], placing breakpoints where a kink
//! `k` of `phi` (or its sharp transition at 0, for large `q`) lands in `z` units:
//! `z = k / sqrt(q)`. It knows nothing of `sigma_w`, `sigma_b` or fixed points.

use sigprop_init::Activation;

use crate::quadrature::{expect_with_magnitude, gauss_expect};

/// Grading of the smooth transition of `phi` away from 0, in `u` units: every activation
/// here reaches its asymptotes (up to `e^-40`) by `|u| = 40`.
const GRADING: [f64; 4] = [1.0, 4.0, 16.0, 40.0];

/// The points in `u` where the integrand should be split at variance `q`: the kinks of
/// `phi`; 0, where every activation here changes fastest; and, once `sqrt(q)` is large
/// enough that they fall within one standard deviation of 0, the graded points `+-GRADING`,
/// so that a transition of width `1/sqrt(q)` in `z` (sigmoid's step at `q = 1e12`) is never
/// thinner than the panel it sits in and cannot fall between quadrature nodes unseen.
fn u_breakpoints(act: Activation, q: f64) -> Vec<f64> {
    let mut points = act.kinks().to_vec();
    if !points.contains(&0.0) {
        points.push(0.0);
    }
    let sq = q.sqrt();
    for k in GRADING {
        if k < sq {
            points.push(k);
            points.push(-k);
        }
    }
    points
}

/// `E[f(u)]` for `u = sqrt(q) z ~ N(0, q)`, with `act`'s kinks as breakpoints (so `f` may be
/// `phi`, `phi'`, `phi^2`, ... of that activation).
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::expect_preact;
/// // E[relu(u)^2] = q/2 for u ~ N(0, q).
/// let m2 = expect_preact(Activation::Relu, 3.0, |u| Activation::Relu.phi(u).powi(2));
/// assert!((m2 - 1.5).abs() < 1e-13);
/// ```
pub fn expect_preact(act: Activation, q: f64, f: impl Fn(f64) -> f64) -> f64 {
    let s = q.sqrt();
    let bp: Vec<f64> = u_breakpoints(act, q).iter().map(|k| k / s).collect();
    gauss_expect(|z| f(s * z), &bp)
}

/// `E[f1(u1) f2(u2)]` for a pair of pre-activations with variance `q` each and correlation
/// `c`, written as in Poole et al. 2016: `u1 = sqrt(q) z1`,
/// `u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2)`, `z1, z2` i.i.d. standard normal.
///
/// The inner integral over `z2` is split where `u2` crosses a kink, a point that moves with
/// `z1`; the outer one where `u1` does and where the (smoothed) inner integrand does,
/// `z1 = k / (sqrt(q) c)`. `|c| = 1` reduces to a one-dimensional integral; `|c| > 1` or a
/// NaN gives NaN.
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::expect_pair;
/// // Cho & Saul's arc-cosine kernel at c = 0: E[relu(u1) relu(u2)] = q / (2 pi).
/// let relu = |u: f64| u.max(0.0);
/// let k = expect_pair(Activation::Relu, 2.0, 0.0, relu, relu);
/// assert!((k - 1.0 / std::f64::consts::PI).abs() < 1e-13);
/// ```
pub fn expect_pair(
    act: Activation,
    q: f64,
    c: f64,
    f1: impl Fn(f64) -> f64,
    f2: impl Fn(f64) -> f64,
) -> f64 {
    if c.is_nan() || c.abs() > 1.0 {
        return f64::NAN;
    }
    let sq = q.sqrt();
    let s = (1.0 - c * c).max(0.0).sqrt();
    let kinks = u_breakpoints(act, q);
    let mut outer: Vec<f64> = kinks.iter().map(|k| k / sq).collect();
    if c != 0.0 {
        outer.extend(kinks.iter().map(|k| k / (sq * c)));
    }
    if s == 0.0 {
        return gauss_expect(|z| f1(sq * z) * f2(sq * c * z), &outer);
    }
    // The inner integral's magnitude rides along so the outer tolerance sits above its
    // rounding noise (see `expect_with_magnitude`).
    expect_with_magnitude(
        |z1| {
            let a = f1(sq * z1);
            if a == 0.0 {
                // ReLU's dead half: skip the inner integral.
                return (0.0, 0.0);
            }
            let inner_bp: Vec<f64> = kinks.iter().map(|k| (k / sq - c * z1) / s).collect();
            let (v, m) = expect_with_magnitude(
                |z2| {
                    let v = f2(sq * (c * z1 + s * z2));
                    (v, v.abs())
                },
                &inner_bp,
            );
            (a * v, a.abs() * m)
        },
        &outer,
    )
    .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn pair_expectation_reduces_to_products_and_squares_at_the_ends() {
        let act = Activation::Tanh;
        let phi = |u: f64| act.phi(u);
        let q = 1.3;
        let m = expect_preact(act, q, |u| act.phi(u) + 0.2);
        let m2 = expect_preact(act, q, |u| act.phi(u).powi(2));
        // c = 0: independent; c = 1: the same unit.
        let k0 = expect_pair(act, q, 0.0, |u| phi(u) + 0.2, |u| phi(u) + 0.2);
        assert!((k0 - m * m).abs() < 1e-13, "{k0} vs {}", m * m);
        let k1 = expect_pair(act, q, 1.0, phi, phi);
        assert!((k1 - m2).abs() < 1e-14);
        // Continuity into c = 1 (s -> 0) and c = -1 (odd phi: -E[phi^2]).
        let near = expect_pair(act, q, 1.0 - 1e-12, phi, phi);
        assert!((near - m2).abs() < 1e-10, "{near} vs {m2}");
        assert!((expect_pair(act, q, -1.0, phi, phi) + m2).abs() < 1e-14);
        assert!(expect_pair(act, q, 1.5, phi, phi).is_nan());
    }

    #[test]
    fn sharp_transitions_at_huge_q_are_resolved() {
        // E[Phi(sqrt(q) z)^2] = 1/4 + arcsin(q / (1 + q)) / (2 pi) (orthant probability of
        // (X1 - sqrt(q) z, X2 - sqrt(q) z), correlation q / (1 + q)).
        use sigprop_init::activation::std_normal_cdf;
        for q in [1.0f64, 1e2, 1e4, 1e8, 1e12, 1e16] {
            let got = expect_preact(Activation::Gelu, q, |u| std_normal_cdf(u).powi(2));
            // asin(rho) = atan(rho / sqrt((1 - rho)(1 + rho))), with 1 - rho = 1/(1+q) exact.
            let rho = q / (1.0 + q);
            let exact = 0.25 + (rho / ((1.0 + rho) / (1.0 + q)).sqrt()).atan() / (2.0 * PI);
            assert!((got - exact).abs() < 1e-12, "q={q}: {got} vs {exact}");
        }
    }

    #[test]
    fn leaky_relu_kernel_matches_its_closed_form() {
        // phi = relu(u) - a relu(-u): E[phi(u1) phi(u2)] = (1 + a^2) k(c) - 2 a k(-c), with
        // k(c) = E[relu(u1) relu(u2)] = q/(2 pi) (sqrt(1-c^2) + (pi - acos c) c) (Cho & Saul
        // 2009) and E[relu(u1) relu(-u2)] = k(-c).
        let a = 0.2;
        let act = Activation::LeakyRelu { slope: a };
        let k = |q: f64, c: f64| q / (2.0 * PI) * ((1.0 - c * c).sqrt() + (PI - c.acos()) * c);
        for c in [-0.7, 0.1, 0.95] {
            let q = 0.8;
            let got = expect_pair(act, q, c, |u| act.phi(u), |u| act.phi(u));
            let exact = (1.0 + a * a) * k(q, c) - 2.0 * a * k(q, -c);
            assert!((got - exact).abs() < 1e-13, "c={c}: {got} vs {exact}");
        }
    }
}
