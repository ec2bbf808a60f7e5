//! Pruning at initialization: `--prune METHOD:sparsity=S`, masks computed once the weights are
//! drawn (and LSUV has run) and applied before the first pass. Training keeps pruned weights
//! at exactly 0 (their gradients are masked).
//!
//! What is pruned: every weight tensor of two or more dimensions (linear, convolution,
//! attention and recurrent matrices), not biases, normalization gains, scalars or the
//! cross-entropy head. The scores, higher kept:
//!
//! - `random`: a keyed uniform draw per entry; each tensor loses the same fraction `S`
//!   (layerwise, as in Lee et al. 2020's random baseline).
//! - `magnitude`: `|w|`, one global threshold over all pruned tensors.
//! - `snip`: `|w dL/dw|` on a batch of its own (Lee, Ajanthan & Torr 2019), global.
//! - `grasp`: `w (H g)`, `g = dL/dw`, `H g` by a finite difference of gradients
//!   `(g(w + d g) - g(w)) / d` (Wang, Zhang & Grosse 2020 remove the largest `-w (H g)`), global.
//! - `synflow`: `|w dR/dw|` with `R = 1^T (prod |W_l|) 1`, the data-free path norm of the
//!   linearized network, pruned over `iterations` rounds to the sparsities
//!   `1 - (1 - S)^(k / iterations)` (Tanaka et al. 2020), global. Each tensor is divided by
//!   its own `fan_in * mean |w|` first: for a chain of layers that multiplies every score by
//!   one common factor, so the ranking is unchanged and `R` stays within `f32`. Hence plain
//!   chains only (`mlp`, `cnn`) without normalization.
//!
//! A global threshold prunes exactly `floor(S * N)` of the `N` entries (ties broken by
//! position), so the realized sparsity is `S` up to one entry.

/// What pruning left of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct PrunedTensor {
    /// Its path.
    pub path: String,
    /// Entries kept.
    pub kept: usize,
    /// Entries in all.
    pub total: usize,
}

#[cfg(feature = "burn")]
mod pass;
#[cfg(feature = "burn")]
pub(crate) use pass::read_grads;
#[cfg(feature = "burn")]
pub use pass::{lottery_masks, prune};
