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

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::NetError;

/// One layer's (or site's) statistics, every column as defined in THEORY.md.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Site within the layer (`layer` for MLPs, `conv`, `step`, `out` / `branch.i` for resmlp).
    pub site: String,
    /// 1-based layer, block or time step.
    pub layer: usize,
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
    /// Variance of the entries of dL/dW for the weights reported by role at this site
    /// (a transformer's `q`, `k`, `v`, `o` at `attn`); empty elsewhere.
    #[serde(skip)]
    pub role_wgrad: Vec<(&'static str, f64)>,
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

/// What to compute for one tensor.
#[derive(Clone, Copy)]
pub(crate) struct Want {
    pub zeros: bool,
    /// Count entries with |x| > threshold (saturation of phi at z).
    pub saturation: Option<f64>,
}

/// Column summaries of one tensor, back on the host.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub mean: f64,
    pub var: f64,
    /// Mean over columns of the variance across rows.
    pub within_var: f64,
    pub nonfinite: u64,
    pub zero_frac: f64,
    pub sat_frac: f64,
}

/// Collects device-side column reductions and reads them back in one transfer.
///
/// On a GPU backend, tensors of the same row count and the same counts asked for are reduced together: side
/// by side as the columns of one tensor, a few kernels for a whole group instead of a few for
/// each tensor (on a GPU a pass's statistics are otherwise hundreds of tiny kernels, each
/// costing a launch). A column's reductions do not depend on its neighbours: each is the
/// same sum over the same rows in the same order.
pub(crate) struct Reducer {
    tensors: Vec<Tensor<2>>,
    layout: Vec<(usize, usize, Want)>,
    /// Merge on a host backend too (for tests of the merging on the CPU).
    fuse_on_host: bool,
}

/// Tensors of more entries than this are reduced on their own (their kernels are long
/// enough; a copy would only cost memory).
const FUSE_MAX_ENTRIES: usize = 1 << 20;

/// Entries of one group of tensors reduced together, at most (a bound on the copy).
const FUSE_GROUP_ENTRIES: usize = 1 << 24;

/// Column means and variances, and the count of non-finite entries, with the scaling
/// that keeps finite values near f32's limit from overflowing (the exact second pass).
fn exact_pass(x: &Tensor<2>) -> Tensor<2> {
    let scale = x.clone().abs().max_dim(0).clamp_min(f32::MIN_POSITIVE);
    let y = x.clone() / scale.clone();
    let mean = y.clone().mean_dim(0);
    let var = (y - mean.clone()).square().mean_dim(0);
    let nonfinite = x.clone().is_finite().bool_not().float().sum_dim(0);
    Tensor::cat(vec![scale, mean, var, nonfinite], 1)
}

/// A tensor's values on the host as `f32` (converted if the backend's dtype differs); a
/// failed transfer is an error naming `what`, never an empty vector.
pub(crate) fn read_back<const D: usize>(
    t: Tensor<D>,
    what: &'static str,
) -> Result<Vec<f32>, NetError> {
    t.try_into_vec_as::<f32>().map_err(|e| NetError::Readback {
        what,
        why: format!("{e:?}"),
    })
}

/// The sum of every entry of `t`, in an order that does not depend on the thread count.
///
/// flex's whole-tensor sum (and mean) splits a tensor of 4Mi entries or more over rayon's
/// threads and adds the pieces in whatever tree the work-stealing produced, so its last
/// bits may change between runs. Here a long tensor is summed in rows of 64Ki entries
/// (each row one sequential sum), then the row sums (fewer than 4Mi), then the tail.
pub(crate) fn ordered_sum<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    const ROW: usize = 1 << 16;
    let t: Tensor<1> = t.flatten(0, D - 1);
    let n = t.dims()[0];
    if n < 1 << 20 {
        return t.sum();
    }
    let rows = n / ROW;
    let head = rows * ROW;
    let main = t
        .clone()
        .narrow(0, 0, head)
        .reshape([rows, ROW])
        .sum_dim(1)
        .reshape([rows])
        .sum();
    if head == n {
        main
    } else {
        main + t.narrow(0, head, n - head).sum()
    }
}

/// The mean of every entry of `t`, in an order that does not depend on the thread count
/// (see [`ordered_sum`]).
pub(crate) fn ordered_mean<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    ordered_sum(t).div_scalar(n as f64)
}

fn read(t: Tensor<2>, what: &'static str) -> Result<Vec<f64>, NetError> {
    Ok(read_back(t, what)?.into_iter().map(f64::from).collect())
}

impl Reducer {
    pub fn new() -> Self {
        Reducer {
            tensors: Vec::new(),
            layout: Vec::new(),
            fuse_on_host: false,
        }
    }

    /// Queue `x` (viewed as `[rows, cols]`); returns the handle for [`Reducer::finish`].
    pub fn push(&mut self, x: Tensor<2>, want: Want) -> usize {
        let [rows, cols] = x.dims();
        self.tensors.push(x.inner());
        self.layout.push((rows, cols, want));
        self.layout.len() - 1
    }

    /// The groups of tensors reduced together, in push order: same rows, same counts, each
    /// small, at most [`FUSE_GROUP_ENTRIES`] a group.
    fn groups(&self) -> Vec<Vec<usize>> {
        // On the host each kernel is a loop with no launch to save: every tensor alone.
        let fuse = self
            .tensors
            .first()
            .is_some_and(|t| self.fuse_on_host || !crate::backend::on_host(&t.device()));
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut open: Vec<(usize, usize)> = Vec::new(); // (group, entries so far)
        for (i, &(rows, cols, want)) in self.layout.iter().enumerate() {
            let entries = rows * cols;
            let joins = |g: &[usize]| {
                let (r, _, w) = self.layout[g[0]];
                r == rows && w.zeros == want.zeros && w.saturation == want.saturation
            };
            let slot = (fuse && entries <= FUSE_MAX_ENTRIES)
                .then(|| {
                    open.iter()
                        .position(|&(g, n)| n + entries <= FUSE_GROUP_ENTRIES && joins(&groups[g]))
                })
                .flatten();
            match slot {
                Some(o) => {
                    groups[open[o].0].push(i);
                    open[o].1 += entries;
                }
                None => {
                    if entries <= FUSE_MAX_ENTRIES {
                        open.push((groups.len(), entries));
                    }
                    groups.push(vec![i]);
                }
            }
        }
        groups
    }

    /// Read everything back and combine in `f64`.
    pub fn finish(self) -> Result<Vec<Summary>, NetError> {
        if self.tensors.is_empty() {
            return Ok(Vec::new());
        }
        // Per group: its columns' means, variances, then the counts asked for. Each
        // tensor's place: (its group's offset in the read-back, the group's columns, the
        // tensor's first column in the group).
        let mut parts = Vec::new();
        let mut place = vec![(0usize, 0usize, 0usize); self.tensors.len()];
        let mut at = 0usize;
        for group in self.groups() {
            let want = self.layout[group[0]].2;
            let mut first = 0usize;
            for &i in &group {
                place[i] = (at, 0, first);
                first += self.layout[i].1;
            }
            let total = first;
            for &i in &group {
                place[i].1 = total;
            }
            let x = if group.len() == 1 {
                self.tensors[group[0]].clone()
            } else {
                Tensor::cat(group.iter().map(|&i| self.tensors[i].clone()).collect(), 1)
            };
            let col_mean = x.clone().mean_dim(0);
            let col_var = (x.clone() - col_mean.clone()).square().mean_dim(0);
            parts.push(col_mean);
            parts.push(col_var);
            let mut n = 2;
            if want.zeros {
                parts.push(x.clone().equal_elem(0.0).float().sum_dim(0));
                n += 1;
            }
            if let Some(t) = want.saturation {
                parts.push(x.abs().greater_elem(t).float().sum_dim(0));
                n += 1;
            }
            at += n * total;
        }
        let values = read(Tensor::cat(parts, 1), "the per-layer reductions")?;
        // A short read-back (a failed transfer) gives NaN, never made-up zeros.
        let take = |from: usize, n: usize| -> Vec<f64> {
            (from..from + n)
                .map(|i| values.get(i).copied().unwrap_or(f64::NAN))
                .collect()
        };
        self.layout
            .iter()
            .zip(&self.tensors)
            .zip(&place)
            .map(|((&(rows, cols, want), x), &(base, total, first))| {
                let mut means = take(base + first, cols);
                let mut vars = take(base + total + first, cols);
                let zeros_at = base + 2 * total;
                let sat_at = zeros_at + if want.zeros { total } else { 0 };
                let zeros = if want.zeros {
                    take(zeros_at + first, cols).iter().sum::<f64>()
                } else {
                    f64::NAN
                };
                let sat = if want.saturation.is_some() {
                    take(sat_at + first, cols).iter().sum::<f64>()
                } else {
                    f64::NAN
                };
                let mut nonfinite = 0.0;
                // A variance in (0, 1e-30) or above 1e30 may have underflowed to subnormals
                // or be near overflow in f32, and a zero variance with a non-zero mean may be
                // an underflow too (a dead ReLU unit has mean and variance exactly 0): such
                // tensors, and any with a non-finite result, get the exact scaled pass.
                let suspect = means.iter().any(|v| !v.is_finite())
                    || means.iter().zip(&vars).any(|(m, v)| {
                        (*v > 0.0 && *v < 1e-30) || *v > 1e30 || (*v == 0.0 && *m != 0.0)
                    });
                let exact = if suspect {
                    read(exact_pass(x), "the exact second pass")?
                } else {
                    Vec::new()
                };
                if exact.len() == 4 * cols {
                    let (scale, rest) = exact.split_at(cols);
                    means = rest[..cols].iter().zip(scale).map(|(m, s)| m * s).collect();
                    vars = rest[cols..2 * cols]
                        .iter()
                        .zip(scale)
                        .map(|(v, s)| v * s * s)
                        .collect();
                    nonfinite = rest[2 * cols..3 * cols].iter().sum::<f64>();
                }
                let n = cols as f64;
                let mean = means.iter().sum::<f64>() / n;
                let within_var = vars.iter().sum::<f64>() / n;
                let between = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / n;
                let entries = (rows * cols) as f64;
                Ok(Summary {
                    mean,
                    var: within_var + between,
                    within_var,
                    nonfinite: nonfinite as u64,
                    zero_frac: zeros / entries,
                    sat_frac: sat / entries,
                })
            })
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use sigprop_init::Activation;

    #[test]
    fn effective_rank_is_exp_of_the_singular_value_entropy() {
        // Orthonormal rows: n equal singular values, rank n.
        let eye: Vec<f32> = (0..16)
            .map(|i| if i % 5 == 0 { 1.0 } else { 0.0 })
            .collect();
        assert!((effective_rank(&eye, 4) - 4.0).abs() < 1e-9);
        // Four equal tokens of 3 features: one singular value.
        assert!((effective_rank(&[1.0f32; 12], 4) - 1.0).abs() < 1e-9);
        // Singular values 2 and 1 (rows (2, 0, 0) and (0, 1, 0)): p = (2/3, 1/3).
        let p: [f64; 2] = [2.0 / 3.0, 1.0 / 3.0];
        let want = (-p.iter().map(|p| p * p.ln()).sum::<f64>()).exp();
        let x = [2.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        assert!((effective_rank(&x, 2) - want).abs() < 1e-9);
        assert_eq!(effective_rank(&[0.0; 6], 2), 0.0);
        assert!(effective_rank(&[f32::NAN, 0.0, 0.0, 1.0], 2).is_nan());
    }

    #[test]
    fn tensors_reduced_together_give_the_summaries_of_each_reduced_alone() {
        let dev = Device::flex();
        let t = |rows: usize, cols: usize, k: u32| {
            // Deterministic values with zeros, large magnitudes and varied columns.
            let data: Vec<f32> = (0..rows * cols)
                .map(|i| {
                    let v = ((i as u32).wrapping_mul(2654435761).wrapping_add(k) >> 8) as f32
                        / 16_777_216.0
                        - 0.5;
                    if i % 7 == 0 {
                        0.0
                    } else {
                        v * (1 + k % 3) as f32
                    }
                })
                .collect();
            Tensor::<2>::from_data(burn::tensor::TensorData::new(data, [rows, cols]), &dev)
        };
        let plain = Want {
            zeros: false,
            saturation: None,
        };
        let zeros = Want {
            zeros: true,
            saturation: None,
        };
        let sat = Want {
            zeros: false,
            saturation: Some(0.4),
        };
        // Interleaved shapes and counts; a tensor past the fusing bound; one that takes the
        // exact second pass (a near-overflow column); one with a single column.
        let mut huge = vec![3.0e37f32; 64];
        huge[1] = -2.0e37;
        let cases: Vec<(Tensor<2>, Want)> = vec![
            (t(32, 16, 1), plain),
            (t(32, 8, 2), zeros),
            (t(16, 16, 3), plain),
            (t(32, 16, 4), sat),
            (t(32, 5, 5), plain),
            (t(1100, 1000, 6), plain),
            (
                Tensor::<2>::from_data(burn::tensor::TensorData::new(huge, [32, 2]), &dev),
                plain,
            ),
            (t(32, 1, 7), zeros),
            (t(32, 16, 8), sat),
            (t(16, 3, 9), plain),
        ];
        let mut together = Reducer::new();
        together.fuse_on_host = true;
        for (x, w) in &cases {
            together.push(x.clone(), *w);
        }
        assert!(together.groups().len() < cases.len());
        let mut host = Reducer::new();
        host.push(cases[0].0.clone(), plain);
        host.push(cases[0].0.clone(), plain);
        assert_eq!(host.groups().len(), 2, "flex reduces each tensor alone");
        assert!(crate::backend::on_host(&Device::flex()));
        #[cfg(feature = "wgpu")]
        assert!(!crate::backend::on_host(&Device::wgpu(
            burn::tensor::DeviceKind::DefaultDevice
        )));
        let together = together.finish().unwrap();
        for ((x, w), fused) in cases.iter().zip(&together) {
            let mut alone = Reducer::new();
            alone.push(x.clone(), *w);
            let alone = alone.finish().unwrap();
            assert_eq!(
                format!("{fused:?}"),
                format!("{:?}", alone[0]),
                "{:?}",
                x.dims()
            );
        }
        // Not vacuous: the counts were asked and found.
        assert!(together[1].zero_frac > 0.1 && together[3].sat_frac > 0.0);
        assert!(together[6].var.is_finite() && together[6].var > 1e70);
    }

    #[test]
    fn ordered_sums_do_not_depend_on_the_thread_count() {
        // 5Mi + 3 entries: past flex's 4Mi threshold for a threaded sum, with a tail.
        let n: usize = 5 * (1 << 20) + 3;
        let tensor = |f: fn(usize) -> f32| {
            let data: Vec<f32> = (0..n).map(f).collect();
            Tensor::<1>::from_data(burn::tensor::TensorData::new(data, [n]), &Device::flex())
        };
        let bits = |t: &Tensor<1>, threads: usize| -> [u32; 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let s = read_back(ordered_sum(t.clone()), "sum").unwrap()[0];
                let m = read_back(ordered_mean(t.clone()), "mean").unwrap()[0];
                [s.to_bits(), m.to_bits()]
            })
        };
        // Fractions, whose f32 sum depends on the order of the additions (flex's own
        // `sum` gives other bits on 2 threads than on 1 here).
        let t = tensor(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.4);
        let one = bits(&t, 1);
        for threads in [2, 3, 4] {
            assert_eq!(bits(&t, threads), one, "{threads} threads");
        }
        // Small integers, whose every partial sum (below 2^24) is exact in f32 in any order:
        // the value must be the exact sum, every row and the tail included, and the mean
        // that sum divided by n, rounded once.
        let t = tensor(|i| ((i * 7919) % 4) as f32);
        let exact: u64 = (0..n).map(|i| ((i * 7919) % 4) as u64).sum();
        assert!(exact < 1 << 24);
        let [s, m] = bits(&t, 2);
        assert_eq!(f32::from_bits(s), exact as f32);
        let mean = exact as f64 / n as f64;
        let got = f64::from(f32::from_bits(m));
        assert!((got - mean).abs() <= mean * 2f64.powi(-24), "{got} {mean}");
    }

    #[test]
    fn saturation_thresholds_solve_phi_prime_equals_one_percent() {
        // tanh' = 1 - tanh^2 = 0.01 at |z| = atanh(sqrt(0.99)).
        let t = saturation_threshold(Activation::Tanh).unwrap();
        assert!((t - 0.99f64.sqrt().atanh()).abs() < 1e-9, "{t}");
        let t = saturation_threshold(Activation::HardTanh).unwrap();
        assert!((t - 1.0).abs() < 1e-9);
        // softsign' = 1/(1+|z|)^2 = 0.01 at |z| = 9.
        let t = saturation_threshold(Activation::Softsign).unwrap();
        assert!((t - 9.0).abs() < 1e-9);
        assert!(saturation_threshold(Activation::Relu).is_none());
    }

    /// Reduce host data `[rows, cols]` on flex and return its summary.
    fn reduce(data: Vec<f32>, shape: [usize; 2], want: Want) -> Summary {
        let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(data, shape), &Device::flex());
        let mut r = Reducer::new();
        r.push(x, want);
        r.finish().unwrap().remove(0)
    }

    /// Rows alternating `a` and `b` in every column of an 8x8 tensor.
    fn alternating_rows(a: f32, b: f32) -> Vec<f32> {
        (0..64)
            .map(|i| if (i / 8) % 2 == 0 { a } else { b })
            .collect()
    }

    const PLAIN: Want = Want {
        zeros: false,
        saturation: None,
    };

    #[test]
    fn reducer_matches_direct_population_statistics() {
        let rows = 7;
        let cols = 5;
        let data: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 11) as f32 - 3.0) * 0.5)
            .collect();
        let s = &reduce(
            data.clone(),
            [rows, cols],
            Want {
                zeros: true,
                saturation: Some(1.0),
            },
        );
        let n = data.len() as f64;
        let mean = data.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(
            (s.mean - mean).abs() < 1e-6 && (s.var - var).abs() < 1e-6,
            "{s:?} {mean} {var}"
        );
        let zeros = data.iter().filter(|&&v| v == 0.0).count() as f64 / n;
        let sat = data.iter().filter(|&&v| v.abs() > 1.0).count() as f64 / n;
        assert_eq!(s.zero_frac, zeros);
        assert_eq!(s.sat_frac, sat);
        assert_eq!(s.nonfinite, 0);
    }

    #[test]
    fn finite_values_near_the_f32_limit_keep_a_finite_variance() {
        // Rows alternate +-3e20 in every column: their squares overflow f32, the variance
        // 9e40 does not overflow f64.
        let s = &reduce(alternating_rows(3e20, -3e20), [8, 8], PLAIN);
        assert!((s.var / 9e40 - 1.0).abs() < 1e-5, "{}", s.var);
        assert_eq!(s.nonfinite, 0);
    }

    #[test]
    fn vanishing_values_keep_their_variance_instead_of_underflowing_to_zero() {
        // Rows alternate +-3e-21 in every column: squares (9e-42) are below f32's normal
        // range, so the within-column variance itself underflows.
        let s = &reduce(alternating_rows(3e-21, -3e-21), [8, 8], PLAIN);
        assert!((s.var / 9e-42 - 1.0).abs() < 1e-5, "{}", s.var);
    }

    #[test]
    fn tiny_values_whose_squares_vanish_entirely_still_get_their_variance() {
        // Rows alternate 1e-25 and 3e-25 in every column (mean 2e-25, variance 1e-50):
        // their squares are 0 in f32.
        let s = &reduce(alternating_rows(1e-25, 3e-25), [8, 8], PLAIN);
        assert!((s.var / 1e-50 - 1.0).abs() < 1e-4, "{}", s.var);
    }

    #[test]
    fn non_finite_entries_are_counted_exactly() {
        let mut data: Vec<f32> = (0..40).map(|i| i as f32).collect();
        data[3] = f32::NAN;
        data[17] = f32::INFINITY;
        data[18] = f32::NEG_INFINITY;
        let s = &reduce(
            data,
            [8, 5],
            Want {
                zeros: true,
                saturation: None,
            },
        );
        assert_eq!(s.nonfinite, 3);
        assert!(s.var.is_nan());
        assert_eq!(s.zero_frac, 1.0 / 40.0);
    }
}
