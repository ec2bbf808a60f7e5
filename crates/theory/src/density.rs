//! The limiting eigenvalue density of `J J^T` for a deep network's input-output Jacobian,
//! from free probability (Pennington, Schoenholz & Ganguli 2017 and 2018), where the
//! activation's derivative takes at most two values: linear and ReLU networks.
//!
//! `J J^T` is the free product of the layers' `W^k (W^k)^T` and `(D^k)^2`, so its
//! S-transform is the product of theirs: `1 / (sigma_w2 (1 + m))` for weights with
//! independent entries (Marchenko-Pastur), `1 / sigma_w2` for scaled orthogonal weights,
//! `1` for a linear activation's `D^2 = I`, and `(1 + m) / (m + 1/2)` for ReLU's, whose
//! `D^2` is 0 or 1 with probability 1/2 each at every layer and every bias (pre-activations
//! are symmetric about 0). With `S` the product, the moment generating function
//! `M(z) = E[lambda / (z - lambda)]` solves `(1 + M) = z M S(M)`, and the density is
//! `rho(x) = -Im M(x + i0) / (pi x)`. The equation is solved by Newton's method along a
//! decreasing grid of `x`, each solution starting the next from just below the real axis,
//! which selects the physical root (`Im M < 0`) inside the support.

use num_complex::Complex64 as C;
use sigprop_init::Activation;

use crate::predict::WeightSpectrum;

/// The density of the eigenvalues `lambda` of `J J^T` (squared singular values) on a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct EigenDensity {
    /// Grid of `lambda`, increasing, log-spaced.
    pub lambda: Vec<f64>,
    /// The density of the continuous part at each `lambda` (integrates with the atom to 1).
    pub density: Vec<f64>,
    /// The probability mass at `lambda = 0` (1/2 for ReLU: half of `D` is zero).
    pub atom_at_zero: f64,
}

impl EigenDensity {
    /// The density of `log10(s)`, `s = sqrt(lambda)` the singular value, at each grid point:
    /// `rho(lambda) * 2 lambda ln 10`.
    pub fn log10_sv_density(&self) -> Vec<f64> {
        self.lambda
            .iter()
            .zip(&self.density)
            .map(|(&l, &d)| d * 2.0 * l * std::f64::consts::LN_10)
            .collect()
    }

    /// `int lambda^k rho(lambda) d lambda` over the grid by the trapezoid rule in
    /// `log lambda` (the atom at zero adds nothing for `k > 0`).
    pub fn moment(&self, k: i32) -> f64 {
        let f: Vec<f64> = self
            .lambda
            .iter()
            .zip(&self.density)
            .map(|(&l, &d)| l.powi(k) * d * l)
            .collect();
        let mut s = 0.0;
        for i in 1..f.len() {
            s += 0.5 * (f[i] + f[i - 1]) * (self.lambda[i] / self.lambda[i - 1]).ln();
        }
        s
    }
}

/// The eigenvalue density of `J J^T` after the layers with `sigma_w2` (`Var(W) N` per
/// layer), for a linear or ReLU activation and weights of the given spectrum; `None` for
/// other activations (their `D^2` is not a two-point law), for orthogonal linear networks
/// (one point, `prod sigma_w2`) and for orthogonal ReLU networks of one or two layers (point
/// masses, then an arcsine law with infinite edges). `points` grid points span
/// `lambda` from above the support's upper edge down to `1e-16` of it.
pub fn jacobian_density(
    activation: Activation,
    sigma_w2: &[f64],
    spectrum: WeightSpectrum,
    points: usize,
) -> Option<EigenDensity> {
    let relu = match activation {
        Activation::Linear => false,
        Activation::Relu => true,
        _ => return None,
    };
    if sigma_w2.is_empty() || points < 2 || sigma_w2.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return None;
    }
    // Orthogonal weights leave point masses the grid cannot hold: a linear network's whole
    // spectrum is one point; one ReLU layer's is 0 and sigma_w2 (a projection); two ReLU
    // layers' is the free product of two projections, an arcsine law whose density is
    // infinite at both edges. From three ReLU layers on the density is a curve.
    if spectrum == WeightSpectrum::Orthogonal && (!relu || sigma_w2.len() < 3) {
        return None;
    }
    let layers = sigma_w2.len() as f64;
    let log_scale: f64 = sigma_w2.iter().map(|s| s.ln()).sum();
    let gaussian = spectrum == WeightSpectrum::Iid;
    // log S(m) and its derivative.
    let log_s = |m: C| -> (C, C) {
        let one = C::new(1.0, 0.0);
        let mut v = C::new(-log_scale, 0.0);
        let mut dv = C::new(0.0, 0.0);
        if gaussian {
            v -= layers * (one + m).ln();
            dv -= layers / (one + m);
        }
        if relu {
            let h = m + 0.5;
            v += layers * ((one + m).ln() - h.ln());
            dv += layers * (one / (one + m) - one / h);
        }
        (v, dv)
    };
    // Mean and normalized variance (free multiplication: means multiply, normalized
    // variances add) to place the grid above the support.
    let (mu1, nvar) = if relu { (0.5, 1.0) } else { (1.0, 0.0) };
    let m1 = (log_scale + layers * f64::ln(mu1)).exp();
    let spread = layers * (nvar + if gaussian { 1.0 } else { 0.0 });
    let top = m1 * 4.0 * (spread + 2.0) * std::f64::consts::E;
    let bottom = top * 1e-16;
    let atom = if relu { 0.5 } else { 0.0 };
    let mut lambda = Vec::with_capacity(points);
    let mut density = Vec::with_capacity(points);
    // Far above the support M(z) ~ E[lambda] / z.
    let mut m = C::new(m1 / top, 0.0);
    let step = (bottom / top).ln() / (points - 1) as f64;
    for i in 0..points {
        let x = top * (step * i as f64).exp();
        let z = C::new(x, x * 1e-12);
        let mut cur = C::new(m.re, m.im.min(-1e-6 * m.norm()));
        let residual = |m: C| {
            let s = log_s(m).0.exp();
            (C::new(1.0, 0.0) + m - z * m * s).norm()
        };
        for _ in 0..200 {
            let (ls, dls) = log_s(cur);
            let s = ls.exp();
            // F(m) = (1 + m) - z m S(m); F' = 1 - z S (1 + m (log S)').
            let f = C::new(1.0, 0.0) + cur - z * cur * s;
            let df = C::new(1.0, 0.0) - z * s * (C::new(1.0, 0.0) + cur * dls);
            if !df.is_finite() || df.norm() == 0.0 {
                break;
            }
            let mut delta = f / df;
            // Damped: never move further than half the iterate's own size.
            let cap = 0.5 * (cur.norm() + 1e-300);
            if delta.norm() > cap {
                delta *= cap / delta.norm();
            }
            cur -= delta;
            if delta.norm() <= 1e-14 * cur.norm() {
                break;
            }
        }
        // At the support's edges the root is (nearly) double and Newton stalls at the
        // rounding level of F rather than of m: accept what solves the equation.
        if !cur.is_finite() || residual(cur) > 1e-10 * (1.0 + cur.norm()) {
            return None;
        }
        if cur.im > 0.0 {
            cur = cur.conj();
        }
        m = cur;
        lambda.push(x);
        density.push((-m.im / (std::f64::consts::PI * x)).max(0.0));
    }
    lambda.reverse();
    density.reverse();
    Some(EigenDensity {
        lambda,
        density,
        atom_at_zero: atom,
    })
}
