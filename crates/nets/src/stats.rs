//! Per-layer statistics of THEORY.md, reduced on the device and finished in `f64`.
//!
//! Each tensor is viewed as `[batch, units]`. On the device, per unit (column): the mean
//! over the batch and the centred variance (two passes, so no cancellation), plus counts of
//! zero and saturated entries where asked. All of these small vectors are concatenated and
//! read back in one transfer; the host combines columns in `f64`: overall mean = mean of
//! column means; overall population variance = mean of column variances + variance of
//! column means (exact for equal column sizes).
//!
//! A tensor whose column means or variances come back non-finite, or whose variances fall
//! in (0, 1e-30) or above 1e30 (where f32 squares underflow or near overflow), or are 0 with
//! a non-zero mean, takes a second, exact pass (only then, so the common case stays cheap): the count of NaN/Inf entries, and the moments of
//! `x / s` with `s` the column's largest magnitude, multiplied back by `s` and `s^2` in f64,
//! so finite values near f32's limit (whose squares overflow) keep a finite variance. When
//! every column's mean is finite, no entry is NaN or Inf, so the count is exactly 0. Not the
//! aggregation over seeds: that is the runner's.

use serde::{Deserialize, Serialize};

#[cfg(feature = "burn")]
mod reduce;
#[cfg(feature = "burn")]
pub(crate) use reduce::{Reducer, Summary, Want, ordered_mean, ordered_sum, read_back};

/// One layer's (or site's) statistics, every column as defined in THEORY.md.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Site within the layer (`layer` for MLPs, `conv`, `step`, `out` / `branch.i` for resmlp).
    pub site: String,
    /// 1-based layer, block or time step.
    pub layer: usize,
    /// The model node the site is, for a graph model (`--model`); empty for the built-in
    /// architectures.
    #[serde(default)]
    pub node: String,
    /// Mean of z^l.
    pub preact_mean: f64,
    /// Population variance of z^l.
    pub preact_var: f64,
    /// Mean of h^l.
    pub act_mean: f64,
    /// Population variance of h^l.
    pub act_var: f64,
    /// Mean over units of the variance across the batch of h^l (rank-collapse detector).
    pub act_batch_var: f64,
    /// Variance of dL/dz^l.
    pub grad_var: f64,
    /// Variance of dL/dh^l.
    pub act_grad_var: f64,
    /// Variance of the entries of dL/dW^l (NaN where the site has no weight).
    pub wgrad_var: f64,
    /// Variance of the entries of W^l (NaN where the site has no weight).
    pub weight_var: f64,
    /// Fraction of h^l entries exactly 0.
    pub dead_frac: f64,
    /// Fraction of entries where phi'(z^l) < 0.01.
    pub saturated_frac: f64,
    /// Count of NaN/Inf among z^l, h^l and the gradients of the layer.
    pub nonfinite: u64,
    /// The part of `nonfinite` in the forward pass (z^l and h^l): where an overflow starts.
    pub nonfinite_forward: u64,
    /// dL/dalpha of the learnable multiplier applied at this site (ReZero, SkipInit: a
    /// residual block's `branch` site); NaN where there is none.
    pub scale_grad: f64,
    /// Per-channel moments of `h` (over batch and pixels) at a residual site of a
    /// convolutional network, for the signal-propagation columns; `None` elsewhere, where a
    /// channel is a unit and the columns above give them. Not a layers.csv column.
    #[serde(skip)]
    pub channel: Option<ChannelMoments>,
    /// Token statistics of `h` at a site of a sequence model (`None` elsewhere). Not a
    /// layers.csv column here: the runner writes them as `token_cos`, `token_rank`.
    #[serde(skip)]
    pub tokens: Option<TokenStats>,
    /// Pair correlation and activation rank (sites of `[batch, features]` networks).
    #[serde(skip)]
    pub batch: Option<BatchStats>,
    /// Mean entropy (nats) of the attention rows whose output this site is (NaN when they
    /// overflowed); `None` elsewhere.
    #[serde(skip)]
    pub attn_entropy: Option<f64>,
    /// Mean attention a token pays itself, `A_tt`, over the rows whose output this site is;
    /// `None` elsewhere.
    #[serde(skip)]
    pub attn_diag: Option<f64>,
    /// Variance of the entries of dL/dW for the weights reported by role at this site
    /// (a transformer's `q`, `k`, `v`, `o` at `attn`); empty elsewhere.
    #[serde(skip)]
    pub role_wgrad: Vec<(&'static str, f64)>,
    /// What a low-precision pass lost at this site against the f32 pass of the same seed
    /// (`--dtype bf16|f16`); `None` for an f32 pass. Not layers.csv columns here: the
    /// runner writes them.
    #[serde(skip)]
    pub precision: Option<crate::precision::PrecisionStats>,
}

/// How alike the inputs of the batch have become at a site of a network whose sites are
/// `[batch, features]` (not per token or pixel).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchStats {
    /// Mean over the pairs of inputs `(0, 1), (2, 3), ...` of the cosine similarity of
    /// their pre-activation vectors `z` (Poole et al. 2016's `c^l`).
    pub corr: f64,
    /// Effective rank of the `[batch, features]` activation matrix `h` (exp of the entropy
    /// of its normalized singular values): 1 when every input maps to one direction.
    pub act_rank: f64,
}

/// How alike the tokens of a sequence are, averaged over the sequences of the batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenStats {
    /// Mean pairwise cosine similarity between the tokens of a sequence (1: rank collapse).
    pub cos: f64,
    /// Effective rank of a sequence's `[tokens, features]` matrix: `exp` of the entropy of
    /// its normalized singular values (Roy & Vetterli 2007), between 1 and `min(T, d)`.
    pub rank: f64,
}

/// The effective rank of a `[t, d]` matrix `x` (row-major, tokens by features): its
/// singular values are the square roots of the eigenvalues of the Gram matrix `x x^T`,
/// formed in `f64` (faer's sequential product of the `f32` entries widened to `f64`, its
/// lower half only, so the small singular values that decide it near collapse survive) and
/// solved by faer's symmetric eigensolver (sequential, so that it is deterministic;
/// eigenvalues within its rounding of 0 count as 0); normalized to sum to 1, they give `exp(-sum p ln p)`. A zero
/// matrix has effective rank 0; a non-finite one, NaN.
pub(crate) fn effective_rank(x: &[f32], t: usize) -> f64 {
    use faer::diag::Diag;
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::matmul::triangular::BlockStructure;
    use faer::linalg::{evd, matmul};
    use faer::{Accum, Mat, Par};

    if x.iter().any(|v| !v.is_finite()) || t == 0 {
        return f64::NAN;
    }
    let d = x.len() / t;
    let n = t;
    let rows = Mat::<f64>::from_fn(n, d, |i, j| f64::from(x[i * d + j]));
    // Only the lower half: the eigensolver reads nothing else, and it halves the product.
    let mut a = Mat::<f64>::zeros(n, n);
    matmul::triangular::matmul(
        a.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        rows.as_ref(),
        BlockStructure::Rectangular,
        rows.transpose(),
        BlockStructure::Rectangular,
        1.0,
        Par::Seq,
    );
    let mut s = Diag::<f64>::zeros(n);
    let scratch = evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::No,
        Par::Seq,
        Default::default(),
    );
    let solved = evd::self_adjoint_evd(
        a.as_ref(),
        s.as_mut(),
        None,
        Par::Seq,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    );
    if solved.is_err() {
        return f64::NAN;
    }
    // Eigenvalues within the solver's rounding of 0 (relative to the largest) are 0.
    let lambda: Vec<f64> = s.column_vector().iter().copied().collect();
    let top = lambda.iter().fold(0.0f64, |m, &l| m.max(l));
    let floor = top * n as f64 * 4.0 * f64::EPSILON;
    let sv: Vec<f64> = lambda
        .iter()
        .map(|&l| if l > floor { l.sqrt() } else { 0.0 })
        .collect();
    let total: f64 = sv.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let entropy: f64 = sv
        .iter()
        .filter(|&&x| x > 0.0)
        .map(|&x| {
            let p = x / total;
            -p * p.ln()
        })
        .sum();
    entropy.exp()
}

/// Moments of a tensor per channel `c`, over batch and pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChannelMoments {
    /// Mean over channels of the squared channel mean.
    pub sq_mean: f64,
    /// Mean over channels of the channel variance.
    pub var: f64,
}

/// The |z| beyond which `phi'(z) < 0.01`, for activations whose derivative vanishes in both
/// tails symmetrically (tanh, sigmoid, hard-tanh, softsign); `None` for the others.
pub fn saturation_threshold(act: sigprop_init::Activation) -> Option<f64> {
    if !act.can_saturate() {
        return None;
    }
    // phi' is even and decreasing in |z| for these activations: bisect phi'(t) = 0.01.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while act.dphi(hi) >= 0.01 {
        hi *= 2.0;
    }
    if act.dphi(lo) < 0.01 {
        return Some(0.0);
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if act.dphi(mid) >= 0.01 {
            lo = mid
        } else {
            hi = mid
        }
    }
    // hard-tanh's phi' drops from 1 to 0 at |z| = 1: the bisection lands on 1.
    Some(hi)
}
