//! The correlation map of one infinitely wide layer (Poole et al. 2016, eq. 5): how the
//! correlation `c` of two inputs' pre-activations changes per layer, its stable fixed point
//! `c*` and the depth scale `xi_c` over which `c` approaches it (Schoenholz et al. 2017,
//! eq. 9). A second `impl` block of [`MeanField`]; the length map it builds on is in
//! `meanfield.rs`.

use crate::meanfield::{MeanField, depth_scale, homogeneous_second_moment, is_homogeneous};
use crate::moments::expect_pair;
use crate::roots::brent;

impl MeanField {
    /// The correlation map for two inputs at the same length `q` (Poole et al. 2016, eq. 5):
    /// `c' = (sigma_w2 E[phi(u1) phi(u2)] + sigma_b2) / q_map(q)`, `u1 = sqrt(q) z1`,
    /// `u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2)`. At `q = q*` the denominator is `q*`.
    /// For homogeneous `phi`, `q = inf` gives the limit map (the bias no longer counts).
    pub fn c_map(&self, c: f64, q: f64) -> f64 {
        let act = self.activation;
        if let Some(k1) = homogeneous_second_moment(act) {
            let kc = expect_pair(act, 1.0, c, |u| act.phi(u), |u| act.phi(u));
            if self.sigma_b2 == 0.0 || q == f64::INFINITY {
                return kc / k1;
            }
            let w = self.sigma_w2 * q;
            return (w * kc + self.sigma_b2) / (w * k1 + self.sigma_b2);
        }
        let k = expect_pair(act, q, c, |u| act.phi(u), |u| act.phi(u));
        (self.sigma_w2 * k + self.sigma_b2) / self.q_map(q)
    }

    /// `chi_c = sigma_w2 E[phi'(u1) phi'(u2)]` for the pair at correlation `c` and length `q`;
    /// at `c = 1` this is `chi_1`, and at `c*` it is the slope of the c-map there.
    pub fn chi_c_at(&self, c: f64, q: f64) -> f64 {
        let act = self.activation;
        if c == 1.0 {
            return self.chi1_at(q);
        }
        let q = if is_homogeneous(act) { 1.0 } else { q };
        self.sigma_w2 * expect_pair(act, q, c, |u| act.dphi(u), |u| act.dphi(u))
    }

    /// The stable fixed point `c*` of the c-map at `q*`, the one reached from any `c` in
    /// `(0, 1)`, to ~1e-12 (~1e-10 where the c-map's slope at `c*` is within 1e-5 of 1).
    ///
    /// The c-map is increasing and convex on `[0, 1]` (its expansion in Hermite polynomials
    /// has non-negative coefficients), with `c_map(1) = 1`, slope `chi_1` there and
    /// `c_map(0) >= 0`. So `c* = 1` when `chi_1 <= 1`, and otherwise the one root of
    /// `c_map(c) = c` in `[0, 1)`, bracketed on `c = 1 - 2^-k` and refined by Brent's method.
    /// Homogeneous `phi` always give `c* = 1` (ReLU's normalized arc-cosine map has slope 1
    /// at `c = 1` once `q` diverges). NaN when `q*` does not exist for a non-homogeneous `phi`.
    pub fn c_star(&self) -> f64 {
        if is_homogeneous(self.activation) {
            return 1.0;
        }
        let Some(q) = self.q_star() else {
            return f64::NAN;
        };
        if self.chi1_at(q) <= 1.0 {
            return 1.0;
        }
        let g = |c: f64| self.c_map(c, q) - c;
        let g0 = g(0.0);
        if g0 <= 0.0 {
            // c_map(0) = (sigma_w2 E[phi]^2 + sigma_b2) / q* >= 0: only rounding makes it < 0.
            return 0.0;
        }
        let (mut lo, mut glo) = (0.0, g0);
        for k in 1..=40 {
            let c = 1.0 - 0.5f64.powi(k);
            let gc = g(c);
            if gc < 0.0 {
                return brent(g, lo, c, glo, gc, 1e-14);
            }
            (lo, glo) = (c, gc);
        }
        // No sign change down to 1 - 1e-12: c* = 1 to within resolution (chi_1 ~ 1).
        1.0
    }

    /// Depth scale of the correlation map (Schoenholz et al. 2017, eq. 9):
    /// `xi_c^-1 = -log(sigma_w2 E[phi'(u1) phi'(u2)])` at `(q*, c*)`; for `c* = 1` this is
    /// `-log chi_1`. Infinite at criticality (`chi_c >= 1`), NaN when `q*` does not exist
    /// for a non-homogeneous `phi`. For homogeneous `phi` with `sigma_b2 = 0` and `q* = 0`
    /// the formula's premise (a fixed point at `q* > 0`) fails; its value is still returned.
    pub fn xi_c(&self) -> f64 {
        let c = self.c_star();
        if c.is_nan() {
            return f64::NAN;
        }
        if c == 1.0 {
            return depth_scale(self.chi1());
        }
        match self.q_star() {
            Some(q) => depth_scale(self.chi_c_at(c, q)),
            None => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meanfield::Phase;
    use sigprop_init::Activation;

    #[test]
    fn c_map_fixes_one_and_matches_the_arc_cosine_kernel_for_relu() {
        let mf = MeanField::new(Activation::Tanh, 2.5, 0.1);
        let q = mf.q_star().unwrap();
        assert!((mf.c_map(1.0, q) - 1.0).abs() < 1e-13);
        // ReLU, sigma_b = 0: c' = (sqrt(1-c^2) + (pi - acos c) c) / pi.
        let relu = MeanField::new(Activation::Relu, 2.0, 0.0);
        for c in [0.0f64, 0.5, 0.9] {
            let exact = ((1.0 - c * c).sqrt() + (std::f64::consts::PI - c.acos()) * c)
                / std::f64::consts::PI;
            assert!((relu.c_map(c, 1.0) - exact).abs() < 1e-13);
        }
    }

    #[test]
    fn chaotic_tanh_has_a_correlation_fixed_point_below_one() {
        // Odd phi without bias: c* = 0 exactly.
        assert_eq!(MeanField::new(Activation::Tanh, 4.0, 0.0).c_star(), 0.0);
        let mf = MeanField::new(Activation::Tanh, 4.0, 0.3);
        let q = mf.q_star().unwrap();
        let c = mf.c_star();
        assert!(c > 0.0 && c < 1.0, "c* = {c}");
        assert!((mf.c_map(c, q) - c).abs() < 1e-12);
        // Stable: chi_c < 1, so xi_c is finite; gradients still explode (chi_1 > 1).
        assert!(mf.chi_c_at(c, q) < 1.0 && mf.xi_c().is_finite());
        assert!(mf.chi1() > 1.0 && mf.phase() == Phase::Chaotic);
    }

    #[test]
    fn depth_scales_diverge_at_the_edge_of_chaos() {
        let near = |sw2: f64| MeanField::new(Activation::Tanh, sw2, 0.0).xi_c();
        assert!(near(0.99) < near(0.999) && near(0.999) < near(0.9999));
        assert!(near(1.01) < near(1.001), "{} {}", near(1.01), near(1.001));
        assert!(near(1.001) > 100.0);
    }
}
