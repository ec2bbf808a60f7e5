//! The finite-width yardstick: how far one network's squared norm gain may drift from the
//! mean field's at width `N` (Hanin & Nica 2019; Li, Nica & Roy 2021). The log gain
//! `G = ln(|z^L|^2 / |z^1|^2)` of one input is, to leading order in `1/N`, Gaussian; this
//! file gives its mean and variance for an MLP with independent, zero-mean weight entries.
//!
//! The derivation (docs/theory.md writes it out): given layer `l`, the entries of
//! `z^(l+1)` are i.i.d. `N(0, Q_(l+1))` with `Q_(l+1) = sigma_w2 M_l + sigma_b2`,
//! `M_l = |phi(z^l)|^2 / N_l`. Write `M_l = mu(Q_l) (1 + eps_l)`: `eps_l` has mean 0 and
//! variance `(kappa_l - 1) / N_l`, `kappa = E[phi^4] / E[phi^2]^2` at `Q_l`. With
//! `delta_l = ln(Q_l / q_l)` against the mean-field `q_l`, to first order
//! `delta_(l+1) = w_l (eta_l delta_l + eps_l)`, where `w_l = sigma_w2 mu(q_l) / q_(l+1)` is
//! the weights' share of `q_(l+1)` and `eta_l = d ln mu / d ln q` at `q_l`. Since
//! `|z^l|^2 = N_l Q_l A_l` with `A_l = chi^2_(N_l) / N_l`, the log gain is
//! `ln(N_L q_L / (N_1 q_1)) + delta_L - delta_1 + ln A_L - ln A_1`; `A_1` is correlated
//! with `eps_1` (the same `z^1`), no other pair is. For ReLU without bias `w = eta = 1`,
//! `kappa = 6`, and the variance is exactly `5 (L - 1) / N` at equal widths. The mean takes
//! the second-order terms of the same expansion (the curvature `theta = d eta / d ln q`).

use sigprop_init::Activation;

use crate::moments::expect_preact;

/// Mean and variance of the log gain `ln(|z^L|^2 / |z^1|^2)` of one input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogGain {
    /// Its mean.
    pub mean: f64,
    /// Its variance.
    pub var: f64,
}

/// Relative step in `ln q` of the finite differences of `ln mu`.
const LN_Q_STEP: f64 = 1e-3;

/// One layer's moments at the mean-field `q`: `mu = E[phi^2]`, `kappa`, `eta`, `theta`, and
/// `rho = Cov(phi^2, g^2) / mu` with `u = sqrt(q) g`.
struct Moments {
    mu: f64,
    kappa: f64,
    eta: f64,
    theta: f64,
    rho: f64,
}

fn moments(act: Activation, q: f64) -> Option<Moments> {
    let mu_at = |q: f64| expect_preact(act, q, |u| act.phi(u).powi(2));
    let mu = mu_at(q);
    let m4 = expect_preact(act, q, |u| act.phi(u).powi(4));
    let mix = expect_preact(act, q, |u| act.phi(u).powi(2) * u * u / q);
    let (up, down) = (mu_at(q * LN_Q_STEP.exp()), mu_at(q * (-LN_Q_STEP).exp()));
    let h = LN_Q_STEP;
    let m = Moments {
        mu,
        kappa: m4 / (mu * mu),
        eta: (up.ln() - down.ln()) / (2.0 * h),
        theta: (up.ln() - 2.0 * mu.ln() + down.ln()) / (h * h),
        rho: mix / mu - 1.0,
    };
    let all = [m.mu, m.kappa, m.eta, m.theta, m.rho];
    (m.mu > 0.0 && all.iter().all(|x| x.is_finite())).then_some(m)
}

/// The log gain's mean and variance for an MLP whose layer `l` has weight variance
/// `sigma_w2[l-1] / N_(l-1)` (independent zero-mean entries), biases of variance
/// `sigma_b2`, widths `widths` = `N_0..N_L`, fed inputs with i.i.d. standard-normal-like
/// entries of second moment `input_second_moment` (the fluctuation of `|x|^2` moves `q^1`
/// when there is a bias). `None` where it does not apply: lengths that do not match, a
/// zero width, or a variance that is 0 or not finite somewhere (a dead or overflowing
/// network has no Gaussian log gain).
pub fn log_gain(
    act: Activation,
    sigma_w2: &[f64],
    sigma_b2: f64,
    widths: &[usize],
    input_second_moment: f64,
) -> Option<LogGain> {
    let depth = sigma_w2.len();
    if depth == 0 || widths.len() != depth + 1 || widths.contains(&0) {
        return None;
    }
    let n = |l: usize| widths[l] as f64;
    let q1 = sigma_w2[0] * input_second_moment + sigma_b2;
    if !(q1 > 0.0 && q1.is_finite()) {
        return None;
    }
    if depth == 1 {
        // z^L is z^1.
        return Some(LogGain {
            mean: 0.0,
            var: 0.0,
        });
    }
    // delta_1 from |x|^2 / N_0 (relative variance 2 / N_0): its variance and mean.
    let w0 = sigma_w2[0] * input_second_moment / q1;
    let v1 = w0 * w0 * 2.0 / n(0);
    let (mut v, mut m) = (v1, -0.5 * v1);
    // Coefficients of delta_L on delta_1 (P) and on eps_1 (beta_1), and the sum over eps_l.
    let mut p = 1.0;
    let mut eps_var = 0.0;
    let mut first: Option<(f64, f64)> = None; // (coefficient of eps_1 so far, rho_1 / N_1)
    let mut q = q1;
    // Layer l's fluctuation feeds layer l + 1, whose weights are sigma_w2[l].
    for (l, &sw2) in sigma_w2.iter().enumerate().skip(1) {
        let mo = moments(act, q)?;
        let q_next = sw2 * mo.mu + sigma_b2;
        if !(q_next > 0.0 && q_next.is_finite()) {
            return None;
        }
        let w = sw2 * mo.mu / q_next;
        let e_var = (mo.kappa - 1.0) / n(l);
        // Second order: the mean picks up the curvature of ln mu and of ln(1 + y).
        m = w * mo.eta * m + 0.5 * w * (mo.theta + mo.eta * mo.eta) * v
            - 0.5 * w * w * (mo.eta * mo.eta * v + e_var);
        v = w * w * (mo.eta * mo.eta * v + e_var);
        // First order: delta_(l+1) = a delta_l + w eps_l, a = w eta.
        let a = w * mo.eta;
        p *= a;
        eps_var = a * a * eps_var + w * w * e_var;
        first = Some(match first {
            None => (w, mo.rho / n(l)),
            Some((beta, r)) => (beta * a, r),
        });
        q = q_next;
    }
    let (beta1, rho1) = first?;
    let (n1, nl) = (n(1), n(depth));
    let var = (p - 1.0).powi(2) * v1 + eps_var + 2.0 / nl + 2.0 / n1 - 2.0 * beta1 * rho1;
    // E ln(chi^2_N / N) = -1/N to leading order.
    let mean = (nl * q / (n1 * q1)).ln() + (m - (-0.5 * v1)) - 1.0 / nl + 1.0 / n1;
    (var.is_finite() && mean.is_finite()).then_some(LogGain { mean, var })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_without_bias_has_variance_five_per_layer_over_the_width() {
        for (depth, n) in [(10, 64), (50, 512)] {
            let g = log_gain(
                Activation::Relu,
                &vec![2.0; depth],
                0.0,
                &vec![n; depth + 1],
                1.0,
            )
            .unwrap();
            let want = 5.0 * (depth as f64 - 1.0) / n as f64;
            assert!((g.var - want).abs() < 1e-9 * want, "{} vs {want}", g.var);
            // E[gain] = 1 exactly, so the mean of its log is -Var / 2 at leading order.
            assert!((g.mean + want / 2.0).abs() < 1e-7 * want, "{}", g.mean);
        }
    }

    #[test]
    fn a_linear_network_has_only_the_chi_squared_terms() {
        // phi(u) = u: kappa = 3, rho = 2, so each hidden layer adds 2 / N, the ends 2/N
        // and 2/N, and the correlation of A_1 with eps_1 takes 4/N: 2 (L - 1) / N.
        let g = log_gain(Activation::Linear, &[1.0; 8], 0.0, &[100; 9], 1.0).unwrap();
        assert!((g.var - 2.0 * 7.0 / 100.0).abs() < 1e-9, "{}", g.var);
    }

    #[test]
    fn one_layer_has_no_gain_and_bad_shapes_have_no_answer() {
        let g = log_gain(Activation::Tanh, &[1.0], 0.0, &[10, 10], 1.0).unwrap();
        assert_eq!((g.mean, g.var), (0.0, 0.0));
        assert!(log_gain(Activation::Tanh, &[1.0; 3], 0.0, &[10; 3], 1.0).is_none());
        assert!(log_gain(Activation::Tanh, &[1.0; 3], 0.0, &[10, 0, 10, 10], 1.0).is_none());
        assert!(log_gain(Activation::Relu, &[0.0; 3], 0.0, &[10; 4], 1.0).is_none());
    }

    #[test]
    fn a_contracting_length_map_forgets_old_fluctuations() {
        // tanh with a bias at its fixed point: each layer's fluctuation is damped by
        // w eta < 1, so the variance saturates instead of growing with depth.
        let at = |depth: usize| {
            log_gain(
                Activation::Tanh,
                &vec![1.5; depth],
                0.05,
                &vec![256; depth + 1],
                1.0,
            )
            .unwrap()
            .var
        };
        let (v20, v40, v80) = (at(20), at(40), at(80));
        assert!(
            v40 > v20 && (v80 - v40).abs() < 0.02 * v40,
            "{v20} {v40} {v80}"
        );
    }
}
