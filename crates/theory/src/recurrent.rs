//! Mean-field predictions for a vanilla RNN unrolled over `T` time steps (Chen, Pennington &
//! Schoenholz 2018, "Dynamical isometry and a mean field theory of RNNs"):
//!
//! ```text
//! z_t = x_t W_ih + h_(t-1) W_hh + b,   h_t = phi(z_t),   h_0 = 0
//! ```
//!
//! with fresh `N(0, E[x^2])` inputs at every step. At infinite width `z_t` is Gaussian with
//!
//! ```text
//! q_1     = sigma_ih2 E[x^2] + sigma_b2
//! q_(t+1) = sigma_hh2 E[phi(sqrt(q_t) z)^2] + sigma_ih2 E[x^2] + sigma_b2
//! ```
//!
//! which is the MLP's length map with `sigma_hh2` as every layer's `sigma_w2`, the input's
//! share `sigma_ih2 E[x^2]` added to the bias's, and an input of second moment 0 (`h_0`).
//! Backward the loss at `h_T` runs down through `W_hh^T` once a step, the MLP's recursion
//! again; the weight gradient a step contributes, `h_(t-1)^T dL/dz_t`, is the MLP layer's
//! (zero at the first step). The recurrent weight is the same at every step: the forward
//! map does not see that at infinite width, and the backward one does not either, the
//! readout being drawn independently of `W_hh` (Yang 2020, Tensor Programs II).
//!
//! The Jacobian through time `dh_T / dh_0 = W_hh D_1 W_hh D_2 ... W_hh D_T` is the MLP's
//! chain with one matrix repeated. Its free-probability moments are the MLP's
//! ([`predict_jacobian`]): for Gaussian weights, powers of one matrix have the singular
//! values of a product of independent ones (Alexeev, Götze & Tikhomirov 2010), and for
//! orthogonal ones every power is orthogonal; between them the derivatives `D_t` are taken as
//! free of the weight, as Chen et al. 2018 do.

use sigprop_init::Activation;

use crate::error::TheoryError;
use crate::meanfield::MeanField;
use crate::predict::{JacobianPrediction, LayerPrediction, WeightSpectrum};
use crate::predict::{predict_jacobian, predict_mlp};

/// The variances that set an RNN's mean field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recurrent {
    /// The nonlinearity `phi`.
    pub activation: Activation,
    /// `Var(W_ih) * width`, the input-to-hidden weight.
    pub sigma_ih2: f64,
    /// `Var(W_hh) * width`, the hidden-to-hidden weight.
    pub sigma_hh2: f64,
    /// `Var(b)`.
    pub sigma_b2: f64,
    /// `E[x_t^2]` of the inputs (1 for `N(0, 1)` inputs).
    pub input_second_moment: f64,
}

impl Recurrent {
    /// What the input and the bias add to every step's `q`: `q_1`, as `h_0 = 0`.
    pub fn drive(&self) -> f64 {
        self.sigma_ih2 * self.input_second_moment + self.sigma_b2
    }

    /// The one-step map as an MLP layer's: `sigma_w2 = sigma_hh2`, `sigma_b2` the drive. Its
    /// fixed point is the one the steps reach from `q_1 = drive` (`q_star_from(drive)`),
    /// which for some activations differs from the map's `q_star`.
    pub fn step_map(&self) -> MeanField {
        MeanField::new(self.activation, self.sigma_hh2, self.drive())
    }

    /// Per-step predictions for `steps` time steps of `width` units and `batch` sequences,
    /// named like the measured columns at the `step` site (`output_grad_var` is
    /// `Var(dL/dh_T)`, 1 for the projection loss).
    ///
    /// ```
    /// use sigprop_init::Activation;
    /// use sigprop_theory::Recurrent;
    /// // A linear RNN with orthogonal W_hh (sigma_hh2 = 1) and unit-variance drive adds one
    /// // unit of variance a step: q_t = t.
    /// let rnn = Recurrent { activation: Activation::Linear, sigma_ih2: 1.0, sigma_hh2: 1.0,
    ///                       sigma_b2: 0.0, input_second_moment: 1.0 };
    /// let p = rnn.predict(5, 64, 8, 1.0).unwrap();
    /// assert!(p.iter().all(|s| (s.preact_var - s.layer as f64).abs() < 1e-12));
    /// assert_eq!(p[0].wgrad_var, 0.0); // h_0 = 0
    /// ```
    pub fn predict(
        &self,
        steps: usize,
        width: usize,
        batch: usize,
        output_grad_var: f64,
    ) -> Result<Vec<LayerPrediction>, TheoryError> {
        self.check()?;
        predict_mlp(
            self.activation,
            &vec![self.sigma_hh2; steps],
            self.drive(),
            &vec![width; steps + 1],
            batch,
            0.0,
            output_grad_var,
        )
    }

    /// The moments of `dh_t / dh_0`'s squared singular values at every step `t` in
    /// `1..=steps`, for recurrent weights of the given spectrum.
    ///
    /// ```
    /// use sigprop_init::Activation;
    /// use sigprop_theory::{Recurrent, WeightSpectrum};
    /// // Linear and orthogonal: dh_t/dh_0 = W_hh^t is orthogonal, every singular value 1.
    /// let rnn = Recurrent { activation: Activation::Linear, sigma_ih2: 1.0, sigma_hh2: 1.0,
    ///                       sigma_b2: 0.0, input_second_moment: 1.0 };
    /// let o = rnn.jacobian(10, WeightSpectrum::Orthogonal).unwrap();
    /// assert!(o.iter().all(|j| (j.m1 - 1.0).abs() < 1e-12 && j.var.abs() < 1e-12));
    /// // Gaussian: the t-th power's variance grows as t (Fuss-Catalan).
    /// let g = rnn.jacobian(10, WeightSpectrum::Iid).unwrap();
    /// assert!((g[9].var - 10.0).abs() < 1e-9);
    /// ```
    pub fn jacobian(
        &self,
        steps: usize,
        weights: WeightSpectrum,
    ) -> Result<Vec<JacobianPrediction>, TheoryError> {
        self.check()?;
        predict_jacobian(
            self.activation,
            &vec![self.sigma_hh2; steps],
            self.drive(),
            0.0,
            weights,
        )
    }

    /// Refuse negative or non-finite variances (the rest is the MLP's check).
    fn check(&self) -> Result<(), TheoryError> {
        for (what, v) in [
            ("sigma_ih2", self.sigma_ih2),
            ("sigma_b2", self.sigma_b2),
            ("input_second_moment", self.input_second_moment),
        ] {
            crate::error::check_nonnegative(what, v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Step by step, the recursion is the one the module states, computed directly.
    #[test]
    fn the_steps_follow_the_recurrent_length_map() {
        let rnn = Recurrent {
            activation: Activation::Tanh,
            sigma_ih2: 0.7,
            sigma_hh2: 1.3,
            sigma_b2: 0.05,
            input_second_moment: 1.0,
        };
        let p = rnn.predict(12, 32, 4, 1.0).unwrap();
        let mut q = 0.7 + 0.05;
        for s in &p {
            assert!((s.preact_var - q).abs() < 1e-12, "step {}", s.layer);
            let m2 = crate::moments::expect_preact(Activation::Tanh, q, |u| u.tanh().powi(2));
            q = 1.3 * m2 + 0.75;
        }
        // The fixed point of the step map is where the steps settle.
        let q_star = rnn.step_map().q_star().unwrap();
        assert!((p[11].preact_var - q_star).abs() < 1e-3 * q_star);
    }

    /// Backward: from Var(dL/dh_T) = 1 each step down multiplies by
    /// sigma_hh2 E[phi'(z_t)^2].
    #[test]
    fn gradients_shrink_by_chi_per_step() {
        let rnn = Recurrent {
            activation: Activation::Relu,
            sigma_ih2: 1.0,
            sigma_hh2: 1.0,
            sigma_b2: 0.0,
            input_second_moment: 1.0,
        };
        let p = rnn.predict(6, 16, 4, 1.0).unwrap();
        // ReLU: E[phi'^2] = 1/2 at any q, so Var(dL/dh) halves per step down.
        for (t, s) in p.iter().enumerate() {
            let want = 0.5f64.powi(5 - t as i32);
            assert!((s.act_grad_var - want).abs() < 1e-12, "step {}", t + 1);
        }
        assert!(
            Recurrent {
                sigma_ih2: -1.0,
                ..rnn
            }
            .predict(3, 4, 1, 1.0)
            .is_err()
        );
    }
}
