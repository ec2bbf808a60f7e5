//! Gauss-Legendre nodes and weights, computed rather than tabulated.
//!
//! The quadrature in `quadrature.rs` uses one fixed rule on every panel; this file only
//! produces that rule (for any `n`), so that no table of 16-digit constants has to be
//! copied in and checked by eye.

/// `n`-point Gauss-Legendre nodes and weights on `[-1, 1]`: the roots `x_i` of the Legendre
/// polynomial `P_n`, found by Newton's method from Tricomi's guess
/// `cos(pi (i + 3/4) / (n + 1/2))`, and `w_i = 2 / ((1 - x_i^2) P_n'(x_i)^2)`
/// (Abramowitz & Stegun 25.4.29; Golub & Welsch 1969 for the theory).
///
/// ```
/// let (x, w) = sigprop_theory::gauss_legendre(3);
/// // The 3-point rule: nodes 0, +-sqrt(3/5), weights 8/9, 5/9.
/// assert!((x[0] + 0.6f64.sqrt()).abs() < 1e-15 && (w[1] - 8.0 / 9.0).abs() < 1e-15);
/// ```
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n {
        let mut x = -(std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (p, d) = legendre_and_derivative(n, x);
            dp = d;
            let step = p / d;
            x -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        // One more evaluation at the converged node for the weight.
        let (_, d) = legendre_and_derivative(n, x);
        if d.is_finite() {
            dp = d;
        }
        nodes[i] = x;
        weights[i] = 2.0 / ((1.0 - x * x) * dp * dp);
    }
    (nodes, weights)
}

/// `(P_n(x), P_n'(x))` by the three-term recurrence `k P_k = (2k-1) x P_(k-1) - (k-1) P_(k-2)`.
fn legendre_and_derivative(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let k = k as f64;
        let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
    }
    (p1, n as f64 * (x * p1 - p0) / (x * x - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_of_degree_2n_minus_1_exactly() {
        let (x, w) = gauss_legendre(16);
        for k in 0..32 {
            let got: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(k)).sum();
            let exact = if k % 2 == 1 {
                0.0
            } else {
                2.0 / (k as f64 + 1.0)
            };
            assert!((got - exact).abs() < 1e-14, "x^{k}: {got} vs {exact}");
        }
    }

    #[test]
    fn weights_are_positive_and_sum_to_two() {
        for n in [1, 2, 5, 16, 40] {
            let (x, w) = gauss_legendre(n);
            assert!(w.iter().all(|&w| w > 0.0) && x.windows(2).all(|p| p[0] < p[1]));
            assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-14, "n = {n}");
        }
    }
}
