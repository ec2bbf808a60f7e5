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

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::arch::LinearIds;
use crate::config::ResolvedNet;
use crate::error::NetError;
use crate::forward::{DeviceParam, DeviceParams};

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
    /// without an exact Jacobian, a product that would not fit in memory.
    pub fn check(&self, net: &ResolvedNet, batch: usize) -> Result<(), NetError> {
        let cfg = &net.config;
        if !cfg.arch.exact_jacobian() {
            return Err(NetError::BadConfig {
                key: "jacobian",
                value: cfg.arch.kind().name().to_string(),
                allowed: "arch mlp with norm none (the other architectures' Jacobians are not \
                          built yet)"
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
        let widest = net.widths.iter().copied().max().unwrap_or(0) as f64;
        let bytes = PEAK_FACTOR * k * net.widths[0] as f64 * widest * 4.0;
        if bytes > JACOBIAN_MAX_BYTES {
            return Err(NetError::BadConfig {
                key: "jacobian-samples",
                value: self.samples.to_string(),
                allowed: format!(
                    "a Jacobian whose peak memory (about 5 x samples x N_0 x widest width x 4 \
                     bytes) fits in 4 GiB (this needs {:.1} GiB)",
                    bytes / JACOBIAN_MAX_BYTES * 4.0
                ),
            });
        }
        Ok(())
    }
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

/// The spectra of `chain` (the network's linear maps in order) with `z[l-1]` the
/// pre-activations `[batch, N_l]` of layer `l`.
pub(crate) fn spectra(
    net: &ResolvedNet,
    chain: &[LinearIds],
    z: &[Tensor<2>],
    p: &DeviceParams,
    opts: &JacobianOptions,
    device: &Device,
) -> Result<Vec<Spectrum>, NetError> {
    let layers = opts.layers_of(chain.len());
    let act = net.activation;
    let mut prod: Option<Tensor<3>> = None;
    let mut out = Vec::new();
    for (i, (ids, z)) in chain.iter().zip(z).enumerate() {
        let l = i + 1;
        let [batch, n] = z.dims();
        let k = opts.samples.min(batch);
        let zk = crate::stats::read_back(z.clone().slice([0..k, 0..n]), "pre-activations")?;
        let d: Vec<f32> = zk.iter().map(|&v| act.dphi(f64::from(v)) as f32).collect();
        let d = Tensor::<3>::from_data(TensorData::new(d, [k, 1, n]), device);
        let w = match p.get(ids.weight) {
            Some(DeviceParam::D2(w)) => w.clone().inner(),
            _ => {
                return Err(NetError::Readback {
                    what: "a weight of the Jacobian",
                    why: "not a matrix".into(),
                });
            }
        };
        let [n_in, _] = w.dims();
        let next = match prod.take() {
            None => w.reshape([1, n_in, n]) * d,
            Some(pr) => {
                let [_, n0, m] = pr.dims();
                pr.reshape([k * n0, m]).matmul(w).reshape([k, n0, n]) * d
            }
        };
        if layers.contains(&l) {
            let [_, n0, _] = next.dims();
            let data = crate::stats::read_back(next.clone(), "a Jacobian")?;
            let per: Vec<Spectrum> = data
                .par_chunks(n0 * n)
                .enumerate()
                .map(|(sample, m)| Spectrum {
                    sample,
                    layer: l,
                    values: singular_values(m, n0, n),
                })
                .collect();
            out.extend(per);
        }
        if l == layers.last().copied().unwrap_or(0) {
            break;
        }
        prod = Some(next);
    }
    Ok(out)
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
