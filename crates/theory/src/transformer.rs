//! The forward mean field of a transformer's residual stream at initialization: how the
//! stream's variance grows over the blocks and how its tokens come to agree.
//!
//! Per token the stream has second moment `s` per feature and two distinct tokens of a
//! sequence have covariance `c` per feature (`rho = c / s`, the tokens' cosine). A block
//! (pre-norm or no norm, non-causal attention) maps `(s, c)` as follows, every weight a fresh
//! zero-mean draw with `sigma_r^2 = Var(W_r) * fan_in` for its role `r`:
//!
//! ```text
//! u = norm(x):        m_u = s / (s + eps) (LayerNorm, RMSNorm) or s (none),  c_u = rho m_u
//! scores q_t k_s / sqrt(d_h), the part that varies over keys s:
//!   v_B = (sigma_q^2 c_u + sigma_b^2) sigma_k^2 (m_u - c_u)     shared by the queries
//!   v_E = sigma_q^2 (m_u - c_u) sigma_k^2 (m_u - c_u)           each query's own
//! (E1, E2) = softmax_moments(T, v_B, v_E)
//! values:             m_v = sigma_v^2 m_u + sigma_b^2,  c_v = sigma_v^2 c_u + sigma_b^2
//! attention output:   Var(o) = c_v + (m_v - c_v) E1,   Cov(o_t, o_t') = c_v + (m_v - c_v) E2
//! branch:             alpha^2 (sigma_o^2 Var(o) + sigma_b^2),  alpha^2 (sigma_o^2 Cov + sigma_b^2)
//! stream:             s <- a^2 s + Var(branch),  c <- a^2 c + Cov(branch)   (a = skip; none: 0)
//! MLP (same norm):    q_z = sigma_up^2 m_u + sigma_b^2,  c_z = sigma_up^2 c_u + sigma_b^2,
//!                     branch alpha^2 (sigma_down^2 E[phi(z)^2] + sigma_b^2) and
//!                     alpha^2 (sigma_down^2 E[phi(z_t) phi(z_t')] + sigma_b^2), added the same way
//! ```
//!
//! The branch is independent of the stream it is added to (its last weight has mean 0),
//! so second moments add. The value and the attention weights are independent given the
//! tokens (different weights), so `Var(o) = sum_(s,s') A_s A_s' Cov(v_s, v_s')`; the shared
//! part `c_v` passes whole, the rest only by `E1`, which is `1/T` for uniform attention and
//! grows with the scores' variance. Attention thus copies a shared component into every
//! token, `rho` grows, and through `c_u` the next attention passes more: the stream's
//! variance grows faster than linearly in depth unless the branches shrink (`1/sqrt(L)`).
//! Infinite width: the scores are Gaussian and `<u_s, u_s'> / d` is exactly `c_u`; at
//! finite width the softmax weights correlate with the tokens' chance alignments, which
//! adds to `Var(o)` a term of order `1/d` (about +7% at `d = 128` and 32 tokens, +2% at
//! `d = 512`). Score variances past `softmax::MAX_SCORE_VAR` give NaN from that block on.

use sigprop_init::Activation;

use crate::error::{TheoryError, check_nonnegative};
use crate::moments::{expect_pair, expect_preact};
use crate::predict::SitePrediction;
use crate::softmax::softmax_moments;

/// `Var(W) * fan_in` of each role of a transformer block's weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoleVariances {
    /// Query map.
    pub query: f64,
    /// Key map.
    pub key: f64,
    /// Value map.
    pub value: f64,
    /// Attention output map.
    pub output: f64,
    /// MLP up map.
    pub up: f64,
    /// MLP down map (fan-in `mlp-ratio * d`).
    pub down: f64,
}

/// A transformer whose stream the mean field describes: pre-norm (or none), non-causal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformerStream {
    /// The MLP's nonlinearity.
    pub activation: Activation,
    /// Blocks.
    pub blocks: usize,
    /// Tokens per sequence.
    pub tokens: usize,
    /// Blocks with an MLP sublayer (not attention-only).
    pub mlp: bool,
    /// LayerNorm/RMSNorm before each branch, with this eps; `None`: no normalization.
    pub norm_eps: Option<f64>,
    /// The skip multiplier squared (`a^2`; 0 without the skip connection).
    pub skip2: f64,
    /// The branch multiplier squared at initialization.
    pub alpha2: f64,
    /// The weights' variances by role.
    pub sigma2: RoleVariances,
    /// Every bias's variance.
    pub sigma_b2: f64,
    /// Cosine of two input tokens of a sequence (unit-variance tokens).
    pub input_corr: f64,
}

impl TransformerStream {
    /// Predictions at every site, block by block: `attn` (the attention output),
    /// `attn.branch`, then with an MLP `attn.out`, `mlp.hidden`, `mlp.branch`, and `out`.
    /// Forward columns only: the gradient columns are NaN (the backward pass through
    /// normalization and attention is not in this mean field).
    ///
    /// ```
    /// use sigprop_init::Activation;
    /// use sigprop_theory::{RoleVariances, TransformerStream};
    /// // Pre-LN blocks of unit maps (linear): the MLP branch adds 1 a block, and attention
    /// // at least the mean of T unit values, 1/T.
    /// let ones = RoleVariances { query: 1.0, key: 1.0, value: 1.0, output: 1.0, up: 1.0, down: 1.0 };
    /// let tf = TransformerStream { activation: Activation::Linear, blocks: 6, tokens: 8,
    ///     mlp: true, norm_eps: Some(0.0), skip2: 1.0, alpha2: 1.0, sigma2: ones,
    ///     sigma_b2: 0.0, input_corr: 0.0 };
    /// let p = tf.predict().unwrap();
    /// let out: Vec<f64> = p.iter().filter(|s| s.site == "out").map(|s| s.preact_var).collect();
    /// // Each block adds its MLP branch (1) and an attention branch of at least 1/T.
    /// assert!(out.windows(2).all(|w| w[1] - w[0] > 1.0 + 1.0 / 8.0 - 1e-12));
    /// ```
    pub fn predict(&self) -> Result<Vec<SitePrediction>, TheoryError> {
        self.check()?;
        let r = self.sigma2;
        let b2 = self.sigma_b2;
        let (mut s, mut c) = (1.0f64, self.input_corr);
        let mut out = Vec::new();
        let site = |block: usize, name: &str, v: f64, act_var: f64| SitePrediction {
            block,
            site: name.into(),
            preact_var: v,
            act_var,
            grad_var: f64::NAN,
            act_grad_var: f64::NAN,
            wgrad_var: f64::NAN,
        };
        for k in 1..=self.blocks {
            // Attention.
            let (m_u, c_u) = self.normalized(s, c);
            let spread = m_u - c_u;
            let shared = (r.query * c_u + b2) * r.key * spread;
            let own = r.query * spread * r.key * spread;
            let (e1, e2) = softmax_moments(self.tokens, shared, own);
            let (m_v, c_v) = (r.value * m_u + b2, r.value * c_u + b2);
            let var_o = c_v + (m_v - c_v) * e1;
            let cov_o = c_v + (m_v - c_v) * e2;
            out.push(site(k, "attn", var_o, var_o));
            let br = self.alpha2 * (r.output * var_o + b2);
            let br_c = self.alpha2 * (r.output * cov_o + b2);
            out.push(site(k, "attn.branch", br, br));
            s = self.skip2 * s + br;
            c = self.skip2 * c + br_c;
            if self.mlp {
                out.push(site(k, "attn.out", s, s));
                let (m_u, c_u) = self.normalized(s, c);
                let q_z = r.up * m_u + b2;
                let act = self.activation;
                let mean = expect_preact(act, q_z, |u| act.phi(u));
                let m2 = expect_preact(act, q_z, |u| act.phi(u).powi(2));
                let corr = if q_z > 0.0 {
                    ((r.up * c_u + b2) / q_z).clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                let cross = expect_pair(act, q_z, corr, |u| act.phi(u), |u| act.phi(u));
                out.push(site(k, "mlp.hidden", q_z, m2 - mean * mean));
                let br = self.alpha2 * (r.down * m2 + b2);
                let br_c = self.alpha2 * (r.down * cross + b2);
                out.push(site(k, "mlp.branch", br, br));
                s = self.skip2 * s + br;
                c = self.skip2 * c + br_c;
            }
            out.push(site(k, "out", s, s));
        }
        Ok(out)
    }

    /// The second moment and the token covariance of the branch input `u = norm(x)`.
    fn normalized(&self, s: f64, c: f64) -> (f64, f64) {
        let rho = if s > 0.0 { c / s } else { 0.0 };
        match self.norm_eps {
            Some(eps) => {
                let m = if s + eps > 0.0 { s / (s + eps) } else { 0.0 };
                (m, rho * m)
            }
            None => (s, c),
        }
    }

    /// Refuse what has no meaning: no blocks or tokens, negative or non-finite variances,
    /// an input cosine outside `[0, 1)`.
    fn check(&self) -> Result<(), TheoryError> {
        if self.blocks == 0 {
            return Err(TheoryError::Zero {
                what: "blocks".into(),
            });
        }
        if self.tokens == 0 {
            return Err(TheoryError::Zero {
                what: "tokens".into(),
            });
        }
        let r = self.sigma2;
        for (what, v) in [
            ("sigma2.query", r.query),
            ("sigma2.key", r.key),
            ("sigma2.value", r.value),
            ("sigma2.output", r.output),
            ("sigma2.up", r.up),
            ("sigma2.down", r.down),
            ("sigma_b2", self.sigma_b2),
            ("skip2", self.skip2),
            ("alpha2", self.alpha2),
            ("norm_eps", self.norm_eps.unwrap_or(0.0)),
            ("input_corr", self.input_corr),
        ] {
            check_nonnegative(what, v)?;
        }
        if self.input_corr >= 1.0 {
            return Err(TheoryError::BadValue {
                what: "input_corr".into(),
                value: self.input_corr,
                allowed: "0 <= c < 1",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xavier_like() -> TransformerStream {
        TransformerStream {
            activation: Activation::Gelu,
            blocks: 8,
            tokens: 32,
            mlp: true,
            norm_eps: Some(1e-5),
            skip2: 1.0,
            alpha2: 1.0,
            sigma2: RoleVariances {
                query: 0.0,
                key: 1.0,
                value: 1.0,
                output: 1.0,
                up: 0.4,
                down: 1.6,
            },
            sigma_b2: 0.0,
            input_corr: 0.0,
        }
    }

    /// Uniform attention (zero queries): the first block's attention output is the mean of
    /// T independent unit values, 1/T; every token gets the same output, so the stream's
    /// token covariance after the add is exactly that variance.
    #[test]
    fn uniform_attention_passes_one_over_t_and_shares_it() {
        let p = xavier_like().predict().unwrap();
        assert_eq!(p[0].site, "attn");
        let m = 1.0 / (1.0 + 1e-5);
        assert!(
            (p[0].preact_var - m / 32.0).abs() < 1e-12,
            "{}",
            p[0].preact_var
        );
        assert_eq!(p[2].site, "attn.out");
        assert!((p[2].preact_var - (1.0 + m / 32.0)).abs() < 1e-12);
        // The next block's attention passes the shared part whole: more than 1/T.
        let second = p.iter().find(|s| s.block == 2 && s.site == "attn").unwrap();
        assert!(second.preact_var > 2.0 / 32.0, "{}", second.preact_var);
        assert!(p.iter().all(|s| s.grad_var.is_nan()));
    }

    /// Without attention scores or MLP, unit branches without norm double the stream (x + x
    /// W, W of variance 1): s_l = 2^l; with the 1/sqrt(L) multiplier (1 + 1/L)^L.
    #[test]
    fn unnormalized_unit_branches_double_the_stream_and_one_over_sqrt_l_bounds_it() {
        let mut tf = xavier_like();
        tf.mlp = false;
        tf.norm_eps = None;
        tf.input_corr = 0.5;
        // One token: attention is the identity on the values.
        tf.tokens = 1;
        let p = tf.predict().unwrap();
        let out: Vec<f64> = p
            .iter()
            .filter(|s| s.site == "out")
            .map(|s| s.preact_var)
            .collect();
        for (l, v) in out.iter().enumerate() {
            assert!((v - 2f64.powi(l as i32 + 1)).abs() < 1e-9, "{l}: {v}");
        }
        tf.alpha2 = 1.0 / 8.0;
        let last = tf.predict().unwrap().last().unwrap().preact_var;
        assert!((last - (1.0 + 1.0 / 8.0f64).powi(8)).abs() < 1e-9, "{last}");
    }
}
