//! The moments of softmax attention rows over Gaussian scores, which set how much of the
//! values' variance an attention layer passes on.
//!
//! A query's scores over `T` keys, after the parts shared by all keys cancel in the softmax,
//! are `g_s = B_s + E_s`: `B_s ~ N(0, v_B)` depends on the key only (every query of the
//! sequence sees it) and `E_s ~ N(0, v_E)` is the query's own, all independent. Rows are
//! `A_s = e^(g_s) / Z`, `Z = sum_j e^(g_j)`. With `1 / Z^2 = int_0^inf lam e^(-lam Z) dlam` and
//! `1 / (Z Z') = int int e^(-lam Z - mu Z') dlam dmu` the expectations factor over the keys:
//!
//! ```text
//! E1 = E[sum_s A_s^2]      = T int lam M2(lam) M0(lam)^(T-1) dlam,
//!      M0 = E[e^(-lam e^g)],  M2 = E[e^(2g) e^(-lam e^g)],  g ~ N(0, v_B + v_E)
//! E2 = E[sum_s A_s A'_s]   = T int int N(lam, mu) P(lam, mu)^(T-1) dlam dmu   (two queries)
//!      P = E_B[p(lam e^B) p(mu e^B)],  N = E_B[e^(2B) n(lam e^B) n(mu e^B)],
//!      p(y) = E_E[e^(-y e^E)],  n(y) = E_E[e^E e^(-y e^E)]
//! ```
//!
//! Each is a one- or two-dimensional integral of one-dimensional Gaussian expectations,
//! taken here by fixed Gauss-Legendre rules in `ln lam` (the integrands are smooth there)
//! and over `+-8.5` standard deviations of each Gaussian (`E2`'s inner factors from a table
//! in `ln y`, about 2e-5 relative; `E1` to about 1e-9). `E1 = E2 = 1 / T` for uniform
//! attention (no score variance); `E2 = 1 / T` whenever `v_B = 0` (the rows are then
//! independent and `E[A_s] = 1 / T`). Score variances beyond [`MAX_SCORE_VAR`] give NaN.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::legendre::gauss_legendre;

/// Gaussian expectations by a fixed rule: `E[f(sd z)] = sum_k w_k f(sd z_k)`, `z ~ N(0, 1)`.
struct GaussRule {
    z: Vec<f64>,
    w: Vec<f64>,
}

/// Standard deviations each Gaussian is integrated over (the standard normal's tail mass
/// beyond is 2e-17; weighted by `e^(2g)` the cut tail is `Phi(-(8.5 - 2 sd))`, negligible
/// for the score variances allowed, see [`MAX_SCORE_VAR`]).
const SPAN: f64 = 8.5;

/// The largest score variance `v_B + v_E` the fixed rules are checked for (against Monte
/// Carlo, up to 25: a standard deviation of 5); beyond, the moments are NaN (no prediction)
/// rather than a coarse one: the rules' nodes then lie too far apart to resolve the softmax.
pub const MAX_SCORE_VAR: f64 = 25.0;

impl GaussRule {
    fn new(n: usize) -> Self {
        let (x, w) = gauss_legendre(n);
        let z: Vec<f64> = x.iter().map(|&x| SPAN * x).collect();
        let mut w: Vec<f64> = w
            .iter()
            .zip(&z)
            .map(|(&w, &z)| w * (-0.5 * z * z).exp())
            .collect();
        let total: f64 = w.iter().sum();
        w.iter_mut().for_each(|w| *w /= total);
        GaussRule { z, w }
    }
}

/// Nodes and weights of `panels` equal panels of an `order`-point Gauss-Legendre rule on
/// `[lo, hi]`.
fn composite(lo: f64, hi: f64, panels: usize, order: usize) -> Vec<(f64, f64)> {
    let (x, w) = gauss_legendre(order);
    let h = (hi - lo) / panels as f64;
    (0..panels)
        .flat_map(|p| {
            let mid = lo + (p as f64 + 0.5) * h;
            x.iter()
                .zip(&w)
                .map(move |(&x, &w)| (mid + 0.5 * h * x, 0.5 * h * w))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The range of `ln lam` that carries the integrals for `T` keys and score variance `v`:
/// centred on `-ln(T E[e^g])`, wide enough for the lognormal's tails.
fn log_range(tokens: usize, v: f64) -> (f64, f64) {
    let sd = v.sqrt();
    let centre = -(tokens as f64).ln() - 0.5 * v;
    (centre - 16.0 - 3.0 * sd, centre + 16.0 + 2.0 * SPAN * sd)
}

/// `E1 = E[sum_s A_s^2]` and `E2 = E[sum_s A_s A'_s]` (two queries sharing `B`) for `tokens`
/// keys with shared score variance `shared` (`v_B`) and own score variance `own` (`v_E`).
///
/// ```
/// use sigprop_theory::softmax_moments;
/// // No score variance: uniform rows, both 1/T.
/// let (e1, e2) = softmax_moments(16, 0.0, 0.0);
/// assert!((e1 - 1.0 / 16.0).abs() < 1e-15 && (e2 - 1.0 / 16.0).abs() < 1e-15);
/// // Unit score variance over many keys: E1 close to e^1 / T, larger than uniform.
/// let (e1, e2) = softmax_moments(4096, 0.0, 1.0);
/// assert!((e1 * 4096.0 / 1f64.exp() - 1.0).abs() < 0.01 && (e2 * 4096.0 - 1.0).abs() < 1e-12);
/// ```
pub fn softmax_moments(tokens: usize, shared: f64, own: f64) -> (f64, f64) {
    // A transformer's prediction asks for the same moments whenever its rows are read:
    // each distinct triple is computed once a process (tens of milliseconds for E2).
    type Memo = Mutex<HashMap<(usize, u64, u64), (f64, f64)>>;
    static MEMO: OnceLock<Memo> = OnceLock::new();
    let key = (tokens, shared.to_bits(), own.to_bits());
    let memo = MEMO.get_or_init(Default::default);
    if let Some(hit) = memo.lock().ok().and_then(|m| m.get(&key).copied()) {
        return hit;
    }
    let got = compute(tokens, shared, own);
    if let Ok(mut m) = memo.lock() {
        m.insert(key, got);
    }
    got
}

/// [`softmax_moments`], computed.
fn compute(tokens: usize, shared: f64, own: f64) -> (f64, f64) {
    let t = tokens as f64;
    if tokens <= 1 {
        return (1.0, 1.0);
    }
    let total = shared + own;
    if total <= 0.0 {
        return (1.0 / t, 1.0 / t);
    }
    if total.is_nan() || total > MAX_SCORE_VAR {
        return (f64::NAN, f64::NAN);
    }
    let e1 = self_moment(tokens, total);
    let e2 = if shared <= 0.0 {
        1.0 / t
    } else if own <= 0.0 {
        // One score vector for both rows.
        e1
    } else {
        cross_moment(tokens, shared, own)
    };
    (e1, e2)
}

/// `E1` for scores of variance `v`.
fn self_moment(tokens: usize, v: f64) -> f64 {
    let rule = GaussRule::new(96);
    let sd = v.sqrt();
    let e: Vec<f64> = rule.z.iter().map(|&z| (sd * z).exp()).collect();
    let (lo, hi) = log_range(tokens, v);
    let sum: f64 = composite(lo, hi, 120, 8)
        .iter()
        .map(|&(x, wx)| {
            let lam = x.exp();
            let (mut m0, mut m2) = (0.0, 0.0);
            for (&w, &e) in rule.w.iter().zip(&e) {
                let k = (-lam * e).exp();
                m0 += w * k;
                m2 += w * e * e * k;
            }
            // lam dlam = lam^2 dx
            wx * lam * lam * m2 * m0.powi(tokens as i32 - 1)
        })
        .sum();
    tokens as f64 * sum
}

/// `ln p` and `n` tabulated on an even grid of `ln y`, interpolated linearly.
struct Table {
    lo: f64,
    step: f64,
    ln_p: Vec<f64>,
    n: Vec<f64>,
}

impl Table {
    fn new(lo: f64, hi: f64, points: usize, own: f64) -> Self {
        let rule = GaussRule::new(96);
        let sd = own.sqrt();
        let e: Vec<f64> = rule.z.iter().map(|&z| (sd * z).exp()).collect();
        let step = (hi - lo) / (points - 1) as f64;
        let (mut ln_p, mut n) = (Vec::with_capacity(points), Vec::with_capacity(points));
        for i in 0..points {
            let y = (lo + i as f64 * step).exp();
            let (mut p, mut m) = (0.0, 0.0);
            for (&w, &e) in rule.w.iter().zip(&e) {
                let k = (-y * e).exp();
                p += w * k;
                m += w * e * k;
            }
            // Past underflow the factor is negligible anyway; keep it finite to interpolate.
            ln_p.push(p.max(f64::MIN_POSITIVE).ln());
            n.push(m);
        }
        Table { lo, step, ln_p, n }
    }

    /// `(ln p, n)` at `ln y = t`.
    fn at(&self, t: f64) -> (f64, f64) {
        let f = ((t - self.lo) / self.step).clamp(0.0, (self.n.len() - 1) as f64);
        let i = (f as usize).min(self.n.len() - 2);
        let a = f - i as f64;
        (
            self.ln_p[i] + a * (self.ln_p[i + 1] - self.ln_p[i]),
            self.n[i] + a * (self.n[i + 1] - self.n[i]),
        )
    }
}

/// `E2` for shared variance `shared > 0` and own variance `own > 0`.
fn cross_moment(tokens: usize, shared: f64, own: f64) -> f64 {
    let rule = GaussRule::new(32);
    let sb = shared.sqrt();
    let b: Vec<f64> = rule.z.iter().map(|&z| sb * z).collect();
    let (lo, hi) = log_range(tokens, shared + own);
    let table = Table::new(lo - SPAN * sb - 1.0, hi + SPAN * sb + 1.0, 6000, own);
    let grid = composite(lo, hi, 24, 6);
    // Per node x: (ln p, n) at x + B_k for every B node.
    let at: Vec<Vec<(f64, f64)>> = grid
        .iter()
        .map(|&(x, _)| b.iter().map(|&bk| table.at(x + bk)).collect())
        .collect();
    let e2b: Vec<f64> = b.iter().map(|&bk| (2.0 * bk).exp()).collect();
    let mut sum = 0.0;
    for (i, &(x, wx)) in grid.iter().enumerate() {
        // The integrand is symmetric in (lam, mu): the lower triangle twice, the diagonal once.
        for (j, &(y, wy)) in grid.iter().enumerate().take(i + 1) {
            let (mut p, mut nn) = (0.0, 0.0);
            for k in 0..b.len() {
                let (lp1, n1) = at[i][k];
                let (lp2, n2) = at[j][k];
                let w = rule.w[k];
                p += w * (lp1 + lp2).exp();
                nn += w * e2b[k] * n1 * n2;
            }
            let term = wx * wy * (x + y).exp() * nn * p.powi(tokens as i32 - 1);
            sum += if i == j { term } else { 2.0 * term };
        }
    }
    tokens as f64 * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator of standard normals (xorshift and Box-Muller), for
    /// Monte Carlo checks.
    struct Normals(u64);

    impl Normals {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn next(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// The sample means of `sum A^2` and `sum A A'` over `rows` pairs of rows, with the
    /// standard errors.
    fn monte_carlo(tokens: usize, shared: f64, own: f64, rows: usize) -> [(f64, f64); 2] {
        let mut g = Normals(0x9e37_79b9_7f4a_7c15);
        let (sb, se) = (shared.sqrt(), own.sqrt());
        let mut acc = [[0.0f64; 2]; 2];
        for _ in 0..rows {
            let b: Vec<f64> = (0..tokens).map(|_| sb * g.next()).collect();
            let row = |g: &mut Normals| -> Vec<f64> {
                let s: Vec<f64> = b.iter().map(|&b| b + se * g.next()).collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|&s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                e.iter().map(|e| e / z).collect()
            };
            let (a1, a2) = (row(&mut g), row(&mut g));
            let v = [
                a1.iter().map(|a| a * a).sum::<f64>(),
                a1.iter().zip(&a2).map(|(a, b)| a * b).sum::<f64>(),
            ];
            for k in 0..2 {
                acc[k][0] += v[k];
                acc[k][1] += v[k] * v[k];
            }
        }
        let n = rows as f64;
        acc.map(|[s, s2]| {
            let m = s / n;
            (m, ((s2 / n - m * m) / n).sqrt())
        })
    }

    /// Quadrature against 40000 Monte Carlo pairs of rows: within four standard errors, for
    /// few and many keys, weak and strong scores (score variance up to 25), shared parts from
    /// none to most.
    #[test]
    fn the_moments_match_monte_carlo() {
        for (tokens, shared, own) in [
            (8, 0.3, 0.7),
            (32, 0.0, 1.0),
            (32, 0.5, 0.5),
            (64, 0.1, 2.0),
            (16, 1.5, 0.2),
            (3, 0.8, 0.8),
            (32, 1.0, 3.0),
            (64, 3.0, 6.0),
            (16, 2.0, 14.0),
            (32, 8.0, 17.0),
        ] {
            let (e1, e2) = softmax_moments(tokens, shared, own);
            let [(m1, s1), (m2, s2)] = monte_carlo(tokens, shared, own, 40_000);
            assert!(
                (e1 - m1).abs() < 4.0 * s1,
                "T {tokens} v_B {shared} v_E {own}: E1 {e1} vs {m1} +- {s1}"
            );
            assert!(
                (e2 - m2).abs() < 4.0 * s2,
                "T {tokens} v_B {shared} v_E {own}: E2 {e2} vs {m2} +- {s2}"
            );
        }
    }

    /// Exact limits: one key; a vanishing own part makes the two rows one; two keys with
    /// independent scores of variance v: `E1 = 1/2 + 2 Var(A_1)`, checked by a direct 1-D
    /// integral of the logistic function.
    #[test]
    fn the_moments_meet_their_exact_limits() {
        assert_eq!(softmax_moments(1, 0.7, 0.3), (1.0, 1.0));
        assert!(softmax_moments(8, 10.0, MAX_SCORE_VAR).0.is_nan());
        let (e1, _) = softmax_moments(12, 0.9, 0.0);
        let (_, e2) = softmax_moments(12, 0.9, 1e-9);
        // E2's table is linear in ln y: about 2e-5 relative.
        assert!((e2 - e1).abs() < 1e-4 * e1, "{e2} vs {e1}");
        // Two keys: A_1 = logistic(g_1 - g_2), g_1 - g_2 ~ N(0, 2v).
        let v = 1.3f64;
        let rule = GaussRule::new(200);
        let sd = (2.0 * v).sqrt();
        let a2: f64 = rule
            .z
            .iter()
            .zip(&rule.w)
            .map(|(&z, &w)| w * (1.0 / (1.0 + (-sd * z).exp())).powi(2))
            .sum();
        let (e1, _) = softmax_moments(2, 0.0, v);
        assert!((e1 - 2.0 * a2).abs() < 1e-9, "{e1} vs {}", 2.0 * a2);
    }
}
