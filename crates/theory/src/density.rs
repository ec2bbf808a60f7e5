//! The limiting eigenvalue density of `J J^T` for a deep network's input-output Jacobian,
//! from free probability (Pennington, Schoenholz & Ganguli 2017 and 2018): in closed form
//! for linear and ReLU networks, through discretized laws of `D^2` for other activations.
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
/// layer) and bias variance `sigma_b2`, for weights of the given spectrum, inputs of second
/// moment 1. Linear and ReLU activations use their exact two-point `D^2`; every other
/// activation the law of `D^2 = phi'(sqrt(q^l) z)^2` at each layer's `q^l` (the length map's)
/// as 256 Gauss-Legendre atoms on `z` in `[-10, 10]` (see [`smooth_density`]). `None` for
/// orthogonal linear networks (one point, `prod sigma_w2`), for orthogonal networks of one or
/// two layers (point masses, then infinite edges), where the atoms miss the moments of `D^2`
/// by more than 1e-6 (a jump of `phi'`, as hard-tanh's, or a very large `q`) or `D^2` is 0
/// with positive probability, and where the equations cannot be solved along the grid. `points` grid points span
/// `lambda` from above the support's upper edge down to `1e-16` of it.
pub fn jacobian_density(
    activation: Activation,
    sigma_w2: &[f64],
    sigma_b2: f64,
    spectrum: WeightSpectrum,
    points: usize,
) -> Option<EigenDensity> {
    let relu = match activation {
        Activation::Linear => false,
        Activation::Relu => true,
        _ => return smooth_density(activation, sigma_w2, sigma_b2, spectrum, points),
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
    let log_s = |m: C, _: &mut ()| -> Option<(C, C)> {
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
        Some((v, dv))
    };
    // Mean and normalized variance (free multiplication: means multiply, normalized
    // variances add) to place the grid above the support.
    let (mu1, nvar) = if relu { (0.5, 1.0) } else { (1.0, 0.0) };
    let m1 = (log_scale + layers * f64::ln(mu1)).exp();
    let spread = layers * (nvar + if gaussian { 1.0 } else { 0.0 });
    let atom = if relu { 0.5 } else { 0.0 };
    sweep(m1, spread, points, atom, 1e-14, (), log_s, |_| {})
}

/// Solves `1 + M = z M S(M)` along a log grid of `points` values of `x`, from above the
/// support (placed by the mean `m1` and normalized variance `spread` of `lambda`) down to
/// 1e-16 of the top, and returns the density `-Im M / (pi x)` with the atom `atom` at 0.
/// `log_s(m, state)` gives `log S(m)` and its derivative, updating `state` (each layer's
/// root `z_l` for discretized laws) from the last accepted grid point's; `conj` conjugates
/// a state. Newton's method on `m` stops at a step of `tol` relative, each grid point
/// starting from the previous solution just below the real axis, which selects the
/// physical root (`Im M < 0`) inside the support.
#[allow(clippy::too_many_arguments)]
fn sweep<St: Clone>(
    m1: f64,
    spread: f64,
    points: usize,
    atom: f64,
    tol: f64,
    mut state: St,
    log_s: impl Fn(C, &mut St) -> Option<(C, C)>,
    conj: impl Fn(&mut St),
) -> Option<EigenDensity> {
    let one = C::new(1.0, 0.0);
    let top = m1 * 4.0 * (spread + 2.0) * std::f64::consts::E;
    let bottom = top * 1e-16;
    let mut lambda = Vec::with_capacity(points);
    let mut density = Vec::with_capacity(points);
    // Far above the support M(z) ~ E[lambda] / z.
    let mut m = C::new(m1 / top, 0.0);
    let step = (bottom / top).ln() / (points - 1) as f64;
    for i in 0..points {
        let x = top * (step * i as f64).exp();
        let z = C::new(x, x * 1e-12);
        let mut cur = C::new(m.re, m.im.min(-1e-6 * m.norm()));
        let mut trial = state.clone();
        for _ in 0..200 {
            let Some((ls, dls)) = log_s(cur, &mut trial) else {
                break;
            };
            let s = ls.exp();
            // F(m) = (1 + m) - z m S(m); F' = 1 - z S (1 + m (log S)').
            let f = one + cur - z * cur * s;
            let df = one - z * s * (one + cur * dls);
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
            if delta.norm() <= tol * cur.norm() {
                break;
            }
        }
        // At the support's edges the root is (nearly) double and Newton stalls at the
        // rounding level of F rather than of m: accept what solves the equation.
        let residual =
            log_s(cur, &mut trial).map(|(ls, _)| (one + cur - z * cur * ls.exp()).norm());
        if !cur.is_finite() || !residual.is_some_and(|r| r <= 1e-10 * (1.0 + cur.norm())) {
            if below_the_support(m) {
                lambda.extend((i..points).map(|j| top * (step * j as f64).exp()));
                density.resize(lambda.len(), 0.0);
                break;
            }
            return None;
        }
        if cur.im > 0.0 {
            cur = cur.conj();
            conj(&mut trial);
        }
        m = cur;
        state = trial;
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

/// Whether the last solution `m` lies below the support's lower edge: `M(x)` real and near
/// `M(0) = -1` (no atom at 0), where `1 + m` loses every digit to rounding and the equation
/// can no longer be solved, but the density is 0 down to `x = 0`.
fn below_the_support(m: C) -> bool {
    m.im.abs() <= 1e-12 * m.norm() && (1.0 + m.re).abs() < 1e-3
}

/// Atoms of the discretized law of `D^2`.
const ATOMS: usize = 256;

/// Half-width of the discretized `z` range, in standard deviations.
const Z_RANGE: f64 = 10.0;

/// The law of `D^2 = phi'(sqrt(q) z)^2`, `z ~ N(0, 1)`, as Gauss-Legendre atoms on
/// `[-Z_RANGE, Z_RANGE]` weighted by the normal density: `(values, probabilities)`.
fn d2_law(act: Activation, q: f64) -> (Vec<f64>, Vec<f64>) {
    let (nodes, weights) = crate::legendre::gauss_legendre(ATOMS);
    let norm = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
    let mut d = Vec::with_capacity(ATOMS);
    let mut p = Vec::with_capacity(ATOMS);
    for (x, w) in nodes.iter().zip(&weights) {
        let z = x * Z_RANGE;
        d.push(act.dphi(q.sqrt() * z).powi(2));
        p.push(w * Z_RANGE * norm * (-0.5 * z * z).exp());
    }
    let total: f64 = p.iter().sum();
    p.iter_mut().for_each(|v| *v /= total);
    (d, p)
}

/// `M(z) = E[d / (z - d)]` of a discrete law and its derivative.
fn m_of(law: &(Vec<f64>, Vec<f64>), z: C) -> (C, C) {
    let (mut m, mut dm) = (C::new(0.0, 0.0), C::new(0.0, 0.0));
    for (&d, &p) in law.0.iter().zip(&law.1) {
        let r = C::new(1.0, 0.0) / (z - d);
        m += p * d * r;
        dm -= p * d * r * r;
    }
    (m, dm)
}

/// Activations whose `D^2` has a continuous law: its S-transform at `m` is
/// `(1 + m) / (m z_l)` with `z_l` the root of `M_l(z_l) = m` on the branch where
/// `z_l ~ E[d] / m` as `m -> 0`, found by Newton's method from the previous grid point's
/// root (one per layer, each layer at its own `q^l`). The outer equation is solved as for
/// the two-point laws, with `d log S / dm` through `z_l' = 1 / M_l'(z_l)`.
fn smooth_density(
    act: Activation,
    sigma_w2: &[f64],
    sigma_b2: f64,
    spectrum: WeightSpectrum,
    points: usize,
) -> Option<EigenDensity> {
    if sigma_w2.is_empty()
        || points < 2
        || !(sigma_b2.is_finite() && sigma_b2 >= 0.0)
        || sigma_w2.iter().any(|s| !(s.is_finite() && *s > 0.0))
        // One or two orthogonal layers leave point masses or infinite edges (as for ReLU).
        || (spectrum == WeightSpectrum::Orthogonal && sigma_w2.len() < 3)
    {
        return None;
    }
    let gaussian = spectrum == WeightSpectrum::Iid;
    // Each layer's law at the length map's q^l (inputs of second moment 1). Consecutive
    // layers whose q agrees to 1e-12 (the map has converged) share one law, counted.
    let mut laws: Vec<(Vec<f64>, Vec<f64>)> = Vec::with_capacity(sigma_w2.len());
    // E[D^2] and E[D^4] of each law.
    let mut moments: Vec<(f64, f64)> = Vec::with_capacity(sigma_w2.len());
    let mut counts: Vec<f64> = Vec::with_capacity(sigma_w2.len());
    let mut last_q = f64::NAN;
    let mut q = sigma_w2[0] + sigma_b2;
    for (l, _) in sigma_w2.iter().enumerate() {
        if !(q.is_finite() && q > 0.0) {
            return None;
        }
        if (q - last_q).abs() <= 1e-12 * q {
            if let Some(c) = counts.last_mut() {
                *c += 1.0;
            }
        } else {
            let law = d2_law(act, q);
            // The atoms must reproduce E[D^2] and E[D^4] as the moment quadrature (which
            // splits at kinks and grades for large q) computes them: a jump of phi' between
            // nodes (hard-tanh) or a phi' varying faster than the nodes (very large q) would
            // make the curve disagree with the predicted moments. And a D^2 that is 0 with
            // positive probability puts an atom at 0 that this path does not carry.
            let exact1 = crate::moments::expect_preact(act, q, |u| act.dphi(u).powi(2));
            let exact2 = crate::moments::expect_preact(act, q, |u| act.dphi(u).powi(4));
            let (mu1, mu2, zero) = law
                .0
                .iter()
                .zip(&law.1)
                .fold((0.0, 0.0, 0.0), |(a, b, z), (&d, &p)| {
                    (a + p * d, b + p * d * d, if d == 0.0 { z + p } else { z })
                });
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-6 * y.abs();
            if !close(mu1, exact1) || !close(mu2, exact2) || zero > 0.0 {
                return None;
            }
            laws.push(law);
            moments.push((mu1, mu2));
            counts.push(1.0);
            last_q = q;
        }
        if l + 1 < sigma_w2.len() {
            let m2 = crate::moments::expect_preact(act, q, |u| act.phi(u).powi(2));
            q = sigma_w2[l + 1] * m2 + sigma_b2;
        }
    }
    let counted = || moments.iter().zip(&counts);
    if moments.iter().any(|m| m.0.is_nan() || m.0 <= 0.0) {
        return None;
    }
    let layers = sigma_w2.len() as f64;
    let log_scale: f64 = sigma_w2.iter().map(|s| s.ln()).sum();
    let m1 = (log_scale + counted().map(|(m, c)| c * m.0.ln()).sum::<f64>()).exp();
    let spread: f64 = counted()
        .map(|(m, c)| c * (m.1 / (m.0 * m.0) - 1.0 + if gaussian { 1.0 } else { 0.0 }))
        .sum();
    let one = C::new(1.0, 0.0);
    let top = m1 * 4.0 * (spread + 2.0) * std::f64::consts::E;
    let zs: Vec<C> = moments
        .iter()
        .map(|&(mu1, mu2)| C::new(mu1 * top / m1 + mu2 / mu1, 0.0))
        .collect();
    // Solve every layer's M_l(z_l) = m from the current roots; log S (the weights' part
    // included) and its derivative, the layers' d log S_D / dm through z_l' = 1 / M_l'(z_l).
    let log_s = |m: C, zs: &mut Vec<C>| -> Option<(C, C)> {
        let (mut ls, mut dls) = (C::new(-log_scale, 0.0), C::new(0.0, 0.0));
        if gaussian {
            ls -= layers * (one + m).ln();
            dls -= layers / (one + m);
        }
        for ((law, z), &count) in laws.iter().zip(zs.iter_mut()).zip(&counts) {
            let mut done = false;
            for _ in 0..100 {
                let (mz, dmz) = m_of(law, *z);
                if !dmz.is_finite() || dmz.norm() == 0.0 {
                    return None;
                }
                let mut step = (mz - m) / dmz;
                let cap = 0.5 * z.norm();
                if step.norm() > cap {
                    step *= cap / step.norm();
                }
                *z -= step;
                if step.norm() <= 1e-13 * z.norm() {
                    done = true;
                    break;
                }
            }
            let (mz, dmz) = m_of(law, *z);
            if !done && (mz - m).norm() > 1e-10 * (1.0 + m.norm()) {
                return None;
            }
            ls += count * ((one + m).ln() - m.ln() - z.ln());
            dls += count * (one / (one + m) - one / m - one / (dmz * *z));
        }
        Some((ls, dls))
    };
    let conj = |zs: &mut Vec<C>| zs.iter_mut().for_each(|z| *z = z.conj());
    // The inner roots are solved to 1e-13, so the outer Newton stops there too.
    sweep(m1, spread, points, 0.0, 1e-13, zs, log_s, conj)
}
