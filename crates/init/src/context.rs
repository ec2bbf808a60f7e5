//! What a fill may need to know about the network around the tensor: the critical
//! `sigma_w`, Fixup's and a residual network's branch layout, autoinit's per-layer plan.
//!
//! The initializer crate does not compute a critical `sigma_w` (that is the theory crate's
//! quadrature): the network crate supplies it through [`FillContext`]. The parameters the
//! network crate reads back from a scheme to run it (LSUV, MetaInit, GradInit) live next to
//! `Scheme` in `scheme.rs`. Not the schemes themselves: this file knows none.

use crate::activation::Activation;
use crate::error::InitError;

/// Network context for one fill.
#[derive(Debug, Clone, PartialEq)]
pub struct FillContext {
    /// The activation that follows the layer.
    pub activation: Activation,
    /// The `sigma_w` with `chi_1 = 1` for this activation and the scheme's `sigma_b`
    /// (needed by `critical`).
    pub critical_sigma_w: Option<f64>,
    /// Where the tensor sits in a residual network (needed by `fixup`).
    pub fixup: Option<FixupContext>,
    /// The residual stream around the tensor (read by `gpt2`, `small-init`, `t-fixup` and
    /// `deepnet`).
    pub residual: Option<ResidualContext>,
    /// The layer's scales under `autoinit` (computed by the theory crate for the
    /// activation; needed by `autoinit`).
    pub autoinit: Option<AutoInitLayer>,
}

/// One layer's part of an `autoinit` plan: what its weights and biases are drawn with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoInitLayer {
    /// Weight variance times fan-in: `W ~ N(0, sigma_w2 / fan_in)`.
    pub sigma_w2: f64,
    /// Bias variance: `b ~ N(0, sigma_b2)` (zeros when 0).
    pub sigma_b2: f64,
    /// Whether each output unit's incoming weights are centred (row sums exactly 0, the
    /// variance kept), so the mean of the incoming activations cancels.
    pub center: bool,
}

/// A weight's place relative to a residual stream: what `gpt2`, `small-init`, `t-fixup`
/// and `deepnet` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidualContext {
    /// Blocks of the network, `N` in T-Fixup's and DeepNet's formulas (a transformer block
    /// holds an attention and an MLP branch).
    pub blocks: usize,
    /// Residual branches adding into the stream over the whole network (a transformer:
    /// two per block, one with `--attention-only`; a residual MLP or CNN: one per block).
    pub branches: usize,
    /// Features of the stream (a transformer's d-model).
    pub width: usize,
    /// Whether this weight writes into the stream: a branch's last map (a transformer's
    /// attention output projection and MLP down projection).
    pub writes_stream: bool,
    /// Whether this weight computes attention scores (a query or key projection), which
    /// T-Fixup and DeepNet leave at Xavier gain 1.
    pub scores: bool,
}

impl FillContext {
    /// A context that knows only the activation.
    pub fn new(activation: Activation) -> FillContext {
        FillContext {
            activation,
            critical_sigma_w: None,
            fixup: None,
            residual: None,
            autoinit: None,
        }
    }

    /// The same context with a critical `sigma_w`.
    pub fn with_critical_sigma_w(mut self, sigma_w: f64) -> FillContext {
        self.critical_sigma_w = Some(sigma_w);
        self
    }

    /// The same context with a residual-stream position.
    pub fn with_residual(mut self, residual: ResidualContext) -> FillContext {
        self.residual = Some(residual);
        self
    }

    /// The same context with a Fixup position.
    pub fn with_fixup(mut self, fixup: FixupContext) -> FillContext {
        self.fixup = Some(fixup);
        self
    }
}

/// A tensor's position in a residual network, for Fixup (Zhang et al. 2019).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixupContext {
    /// `L`, the number of residual branches.
    pub num_branches: usize,
    /// `m`, the number of weight layers in each branch.
    pub layers_per_branch: usize,
    /// What this tensor is.
    pub role: FixupRole,
}

/// Which Fixup rule a tensor follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixupRole {
    /// A weight layer inside a branch, not its last: He-normal times `L^(-1/(2m-2))`.
    BranchInner,
    /// The last weight layer of a branch: zeros.
    BranchLast,
    /// The classification head (last layer of the network): zeros.
    Head,
}

impl FixupContext {
    /// Fixup's multiplier for inner branch layers, `L^(-1/(2m-2))`.
    ///
    /// With `m = 1` a branch's only layer is its last (zero-initialised), so there is no
    /// inner layer to scale: asking for one is an error rather than a division by zero.
    pub fn inner_scale(&self) -> Result<f64, InitError> {
        if self.num_branches == 0 || self.layers_per_branch < 2 {
            return Err(InitError::NeedsContext {
                name: "fixup".into(),
                needs: format!(
                    "num_branches >= 1 and layers_per_branch >= 2 for a branch-inner layer \
                     (got L={}, m={}; with m=1 the only layer is the zero-initialised last one)",
                    self.num_branches, self.layers_per_branch
                ),
            });
        }
        let m = self.layers_per_branch as f64;
        Ok((self.num_branches as f64).powf(-1.0 / (2.0 * m - 2.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixup_scale_is_l_to_the_minus_one_over_2m_minus_2() {
        let c = FixupContext {
            num_branches: 16,
            layers_per_branch: 3,
            role: FixupRole::BranchInner,
        };
        assert!((c.inner_scale().unwrap() - 0.5).abs() < 1e-15); // 16^(-1/4)
        let c = FixupContext {
            num_branches: 9,
            layers_per_branch: 2,
            role: FixupRole::BranchInner,
        };
        assert!((c.inner_scale().unwrap() - 1.0 / 3.0).abs() < 1e-15); // 9^(-1/2)
        let c1 = FixupContext {
            num_branches: 9,
            layers_per_branch: 1,
            role: FixupRole::BranchInner,
        };
        let e = c1.inner_scale().unwrap_err().to_string();
        assert!(e.contains("m=1"), "{e}");
    }
}
