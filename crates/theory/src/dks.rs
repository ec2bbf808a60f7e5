//! Deep Kernel Shaping's activation transformation (Martens et al. 2021, "Rapid training of
//! deep neural networks without skip connections or normalization layers using Deep Kernel
//! Shaping", section 5): `phi_hat(x) = gamma (phi(alpha x + beta) + delta)` of a smooth
//! `phi`, with its four numbers chosen so that, for unit-variance pre-activations `z`,
//!
//! - `E[phi_hat(z)^2] = 1`: the Q-map keeps `q = 1` (weights of variance `1 / fan_in`);
//! - `E[phi_hat(z)] = 0`: the C-map keeps orthogonal inputs orthogonal, `C(0) = 0`;
//! - `Q'(1) = E[phi_hat'(z)^2] + E[phi_hat(z) phi_hat''(z)] = 1`: `q = 1` is a fixed point
//!   that neighbouring scales return to at first order;
//! - `C'(1) = E[phi_hat'(z)^2] = zeta^(1/L)` at every layer of an `L`-layer network, so the
//!   network's C-map has slope `zeta` at 1: no pair of nearby inputs moves apart faster.
//!
//! `delta` and `gamma` follow from `alpha, beta` in closed form (the mean and the standard
//! deviation of `phi(alpha z + beta)`); the two remaining conditions are solved for
//! `(ln alpha, beta)` by damped Newton steps from a fixed list of starting points.

use sigprop_init::{Activation, DksShape, InitError, SmoothBase};

use crate::quadrature::gauss_expect;

/// `(delta, gamma, C'(1), Q'(1))` of the transformation at `(alpha, beta)`.
fn conditions(base: Activation, alpha: f64, beta: f64) -> (f64, f64, f64, f64) {
    let u = |z: f64| alpha * z + beta;
    let m1 = gauss_expect(|z| base.phi(u(z)), &[]);
    let var = gauss_expect(|z| (base.phi(u(z)) - m1).powi(2), &[]);
    let d1 = gauss_expect(|z| base.dphi(u(z)).powi(2), &[]);
    let pd2 = gauss_expect(|z| (base.phi(u(z)) - m1) * base.d2phi(u(z)), &[]);
    let c1 = alpha * alpha * d1 / var;
    let q1 = c1 + alpha * alpha * pd2 / var;
    (-m1, 1.0 / var.sqrt(), c1, q1)
}

/// The residuals `(C'(1) - target, Q'(1) - 1)` at `(ln alpha, beta)`.
fn residuals(base: Activation, p: [f64; 2], target: f64) -> [f64; 2] {
    let (_, _, c1, q1) = conditions(base, p[0].exp(), p[1]);
    [c1 - target, q1 - 1.0]
}

fn size(r: [f64; 2]) -> f64 {
    r[0].abs().max(r[1].abs())
}

/// Damped Newton on the residuals from `start`, with a central-difference Jacobian.
fn newton(base: Activation, start: [f64; 2], target: f64) -> ([f64; 2], f64) {
    let mut p = start;
    let mut r = residuals(base, p, target);
    for _ in 0..100 {
        if size(r) <= 1e-13 || size(r).is_nan() {
            break;
        }
        let h = 1e-6;
        let mut jac = [[0.0; 2]; 2];
        for j in 0..2 {
            let (mut up, mut down) = (p, p);
            up[j] += h;
            down[j] -= h;
            let (ru, rd) = (residuals(base, up, target), residuals(base, down, target));
            for i in 0..2 {
                jac[i][j] = (ru[i] - rd[i]) / (2.0 * h);
            }
        }
        let det = jac[0][0] * jac[1][1] - jac[0][1] * jac[1][0];
        if det == 0.0 || !det.is_finite() {
            break;
        }
        let step = [
            -(jac[1][1] * r[0] - jac[0][1] * r[1]) / det,
            -(-jac[1][0] * r[0] + jac[0][0] * r[1]) / det,
        ];
        let mut lambda = 1.0;
        let mut moved = false;
        while lambda > 1e-4 {
            let q = [p[0] + lambda * step[0], p[1] + lambda * step[1]];
            let rq = residuals(base, q, target);
            if size(rq) < size(r) {
                (p, r, moved) = (q, rq, true);
                break;
            }
            lambda /= 2.0;
        }
        if !moved {
            break;
        }
    }
    (p, size(r))
}

/// DKS's transformation of `base` for a network of `depth` layers whose C-map has slope
/// `zeta` at 1; an error where no `(alpha, beta)` meets the conditions to 1e-10.
pub fn dks_shape(base: SmoothBase, zeta: f64, depth: usize) -> Result<DksShape, InitError> {
    let bad = |key: &str, value: String, allowed: String| InitError::BadValue {
        what: "activation",
        name: "dks".into(),
        key: key.into(),
        value,
        allowed,
    };
    if depth == 0 || depth > 100_000 {
        return Err(bad(
            "depth",
            depth.to_string(),
            "a network of 1 to 100000 layers".into(),
        ));
    }
    if !(zeta > 1.0 && zeta.is_finite()) {
        return Err(bad("zeta", zeta.to_string(), "a number above 1".into()));
    }
    let act = base.activation();
    let target = zeta.powf(1.0 / depth as f64);
    const STARTS: [(f64, f64); 8] = [
        (0.5, 0.0),
        (1.0, 0.0),
        (0.3, 0.3),
        (1.0, 0.5),
        (2.0, 0.2),
        (0.8, -0.5),
        (0.2, 1.0),
        (0.5, -1.0),
    ];
    let solved = STARTS
        .iter()
        .map(|&(a, b)| newton(act, [a.ln(), b], target))
        .find(|(_, r)| *r < 1e-10);
    let Some((p, _)) = solved else {
        return Err(bad(
            "zeta",
            sigprop_init::fmt_f64(zeta),
            format!(
                "a zeta whose per-layer slope zeta^(1/{depth}) the transformed {} can meet \
                 with Q'(1) = 1 (none found)",
                act.name()
            ),
        ));
    };
    // An odd base solves with beta and -beta alike: the non-negative one is kept.
    let (alpha, beta) = (p[0].exp(), if base.is_odd() { p[1].abs() } else { p[1] });
    let (delta, gamma, _, _) = conditions(act, alpha, beta);
    Ok(DksShape {
        alpha,
        beta,
        gamma,
        delta,
    })
}

/// The activation a network of `depth` layers runs: TAT's leaky ReLU with its slope, DKS's
/// transformation solved for the depth, any other activation itself.
pub fn resolve_activation(a: Activation, depth: usize) -> Result<Activation, InitError> {
    match a.at_depth(depth)? {
        Activation::Dks {
            base,
            zeta,
            shape: None,
        } => Ok(Activation::Dks {
            base,
            zeta,
            shape: Some(dks_shape(base, zeta, depth)?),
        }),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every base at depths 4, 50 and 100: the solved activation meets DKS's four
    /// conditions, each recomputed from the activation itself.
    #[test]
    fn the_solved_transformation_meets_the_four_conditions() {
        for base in [
            SmoothBase::Tanh,
            SmoothBase::Sigmoid,
            SmoothBase::Softplus,
            SmoothBase::Gelu,
            SmoothBase::Silu,
        ] {
            for depth in [4, 50, 100] {
                let a = resolve_activation(
                    Activation::Dks {
                        base,
                        zeta: 1.5,
                        shape: None,
                    },
                    depth,
                )
                .unwrap();
                let e = |f: &dyn Fn(f64) -> f64| gauss_expect(f, &[]);
                let m1 = e(&|z| a.phi(z));
                let q = e(&|z| a.phi(z).powi(2));
                let c1 = e(&|z| a.dphi(z).powi(2));
                let q1 = c1 + e(&|z| a.phi(z) * a.d2phi(z));
                let case = format!("{a} at depth {depth}");
                assert!(m1.abs() < 1e-10, "{case}: E[phi] {m1}");
                assert!((q - 1.0).abs() < 1e-10, "{case}: Q(1) {q}");
                assert!((q1 - 1.0).abs() < 1e-9, "{case}: Q'(1) {q1}");
                assert!(
                    (c1.powi(depth as i32) - 1.5).abs() < 1e-7,
                    "{case}: C'(1)^L {}",
                    c1.powi(depth as i32)
                );
            }
        }
        let e = dks_shape(SmoothBase::Tanh, 1.0, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zeta"), "{e}");
    }
}
