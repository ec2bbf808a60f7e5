//! The singular values of a network's input-output Jacobian at a few of the batch's inputs,
//! and of its partial Jacobians `dh^l / dh^0` at chosen layers (Pennington, Schoenholz &
//! Ganguli 2017, "Resurrecting the sigmoid in deep learning through dynamical isometry").
//!
//! For a chain of linear maps and pointwise activations, `h^l = phi(h^(l-1) W^l + b^l)`,
//! the Jacobian of the row vector `h^l` with respect to `h^0` is exactly
//! `J^l = W^1 D^1 W^2 D^2 ... W^l D^l`, `D^l = diag(phi'(z^l))` at that input. It is built on
//! the backend, one matrix product per layer for all samples at once, from the weights and
//! the pre-activations the probed pass computed; the derivative `phi'` is the scalar
//! reference of the initializer crate. The chosen `J^l` are read back and their singular
//! values computed in f64 by faer (sequentially per matrix, samples in parallel, so the
//! numbers do not depend on the thread count).

use serde::{Deserialize, Serialize};

use crate::arch::ResolvedNet;
use crate::error::NetError;

#[cfg(feature = "burn")]
mod pass;
#[cfg(feature = "burn")]
pub(crate) use pass::{VJP_CHUNK_BYTES, spectra, vjp_spectra};

/// The most memory a Jacobian may need at its peak: 4 GiB. The peak is about five times
/// the product tensor (`samples x N_0 x` widest width, f32): the previous product, the
/// matrix product and its scaled copy on the device, the f32 read-back and the f64 copies
/// the decompositions work on.
pub const JACOBIAN_MAX_BYTES: f64 = 4.0 * 1024.0 * 1024.0 * 1024.0;

/// The peak over the product tensor's size (see [`JACOBIAN_MAX_BYTES`]).
const PEAK_FACTOR: f64 = 5.0;

/// What `--jacobian` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JacobianOptions {
    /// Inputs of the batch (the first ones) whose Jacobians are taken, > 0.
    pub samples: usize,
    /// Layers whose partial Jacobian `dh^l / dh^0` is taken (1-based); empty: the last.
    pub layers: Vec<usize>,
}

impl JacobianOptions {
    /// The layers to report, for a network of `depth` layers: sorted, deduplicated.
    pub fn layers_of(&self, depth: usize) -> Vec<usize> {
        let mut l = if self.layers.is_empty() {
            vec![depth]
        } else {
            self.layers.clone()
        };
        l.sort_unstable();
        l.dedup();
        l
    }

    /// Refuse what cannot be measured: no samples, layers outside `1..=depth`, a network
    /// whose samples are coupled (batch normalization) or whose Jacobian is not built, a
    /// Jacobian that would not fit in memory.
    pub fn check(&self, net: &ResolvedNet, batch: usize) -> Result<(), NetError> {
        let cfg = &net.config;
        if !cfg.arch.capabilities().jacobian {
            return Err(NetError::BadConfig {
                key: "jacobian",
                value: format!("arch {}", cfg.arch),
                allowed: format!(
                    "arch {} (the Jacobian of {} is not built)",
                    crate::arch::archs_with(|c| c.jacobian),
                    cfg.arch
                ),
            });
        }
        if let Some(vocab) = cfg.arch.token_input() {
            return Err(NetError::BadConfig {
                key: "jacobian",
                value: format!("token ids below {vocab}"),
                allowed: "a network fed features, not token ids (a transformer with --embedding \
                          0, a model without an embedding): the input Jacobian needs a \
                          continuous input"
                    .into(),
            });
        }
        if net.unit_scaled() {
            return Err(NetError::BadConfig {
                key: "jacobian",
                value: "branch-scale umup".into(),
                allowed: "a network that is not unit-scaled (unit scaling's backward scales \
                          differ from the forward's, so its backward pass is not the \
                          Jacobian's transpose)"
                    .into(),
            });
        }
        if cfg.arch.norm() == crate::options::Norm::Batch {
            return Err(NetError::BadConfig {
                key: "jacobian",
                value: "norm batch".into(),
                allowed: "norm none, layer or rms (batch normalization couples the samples, so \
                          one input has no Jacobian of its own)"
                    .into(),
            });
        }
        if self.samples == 0 {
            return Err(NetError::BadConfig {
                key: "jacobian-samples",
                value: "0".into(),
                allowed: "a whole number > 0".into(),
            });
        }
        if let Some(&bad) = self.layers.iter().find(|&&l| l == 0 || l > cfg.depth) {
            return Err(NetError::BadConfig {
                key: "jacobian-layers",
                value: bad.to_string(),
                allowed: format!("layers 1..={}", cfg.depth),
            });
        }
        let k = self.samples.min(batch) as f64;
        let (bytes, formula) = if cfg.arch.exact_jacobian() {
            let widest = net.widths.iter().copied().max().unwrap_or(0) as f64;
            (
                PEAK_FACTOR * k * net.widths[0] as f64 * widest * 4.0,
                "about 5 x samples x N_0 x widest width x 4 bytes",
            )
        } else {
            let n0 = input_features(net) as f64;
            let outs: f64 = self
                .layers_of(cfg.depth)
                .iter()
                .map(|&l| net.config.arch.primary_features(net, l) as f64)
                .sum();
            (
                VJP_HOST_FACTOR * k * n0 * outs * 4.0,
                "about 3 x samples x N_0 x the chosen layers' summed widths x 4 bytes",
            )
        };
        if bytes > JACOBIAN_MAX_BYTES {
            return Err(NetError::BadConfig {
                key: "jacobian-samples",
                value: self.samples.to_string(),
                allowed: format!(
                    "a Jacobian whose peak memory ({formula}) fits in 4 GiB (this needs {:.1} \
                     GiB)",
                    bytes / JACOBIAN_MAX_BYTES * 4.0
                ),
            });
        }
        Ok(())
    }
}

/// The peak host memory of the vector-Jacobian route over its f32 Jacobians: those, and the
/// f64 copies the decompositions work on.
const VJP_HOST_FACTOR: f64 = 3.0;
/// Features of one input (`N_0` of the Jacobian).
fn input_features(net: &ResolvedNet) -> usize {
    net.config.arch.input_shape(net, 1)[1]
}

/// The singular values of one Jacobian.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    /// The input's row in the batch (0-based).
    pub sample: usize,
    /// The layer `l` of `dh^l / dh^0`.
    pub layer: usize,
    /// `min(N_0, N_l)` singular values, largest first; all NaN where the Jacobian holds a
    /// non-finite entry (or the decomposition fails).
    pub values: Vec<f64>,
}

/// The singular values of the row-major `rows x cols` matrix `m`, largest first, in f64
/// (NaN where an entry is not finite).
pub fn singular_values(m: &[f32], rows: usize, cols: usize) -> Vec<f64> {
    use faer::diag::Diag;
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::svd;
    use faer::{Mat, Par};

    let r = rows.min(cols);
    if m.iter().any(|v| !v.is_finite()) {
        return vec![f64::NAN; r];
    }
    let a = Mat::<f64>::from_fn(rows, cols, |i, j| f64::from(m[i * cols + j]));
    let mut s = Diag::<f64>::zeros(r);
    let scratch = svd::svd_scratch::<f64>(
        rows,
        cols,
        svd::ComputeSvdVectors::No,
        svd::ComputeSvdVectors::No,
        Par::Seq,
        Default::default(),
    );
    let done = svd::svd(
        a.as_ref(),
        s.as_mut(),
        None,
        None,
        Par::Seq,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    );
    if done.is_err() {
        return vec![f64::NAN; r];
    }
    let mut v: Vec<f64> = s.column_vector().iter().copied().collect();
    v.sort_by(|a, b| b.total_cmp(a));
    v
}
