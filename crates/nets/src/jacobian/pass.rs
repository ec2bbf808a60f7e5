//! The Jacobians on Burn: the exact product of a chain's linear maps and pointwise
//! derivatives, and the vector-Jacobian route of autodiff, read back for their spectra.
//! Needs the `burn` feature.

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use crate::arch::{NetLayout, ResolvedNet};
use crate::error::NetError;
use crate::forward::{DeviceParam, DeviceParams, Recorder, SiteIn, upload};
use crate::handles::LinearIds;
use crate::params::Params;

use super::{JacobianOptions, Spectrum, input_features, singular_values};

/// The most device memory one chunk of the vector-Jacobian route's pass may take (its
/// activations with their autodiff records), about: 1 GiB.
pub(crate) const VJP_CHUNK_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

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

/// Keeps `h` of the primary site at the chosen layers, as `[rows, features]`.
struct Capture<'a> {
    site: &'static str,
    layers: &'a [usize],
    kept: Vec<(usize, Tensor<2>)>,
}

impl Recorder for Capture<'_> {
    fn site<const D: usize>(&mut self, s: SiteIn<'_>, z: Tensor<D>) -> Tensor<D> {
        let h = s.kind.apply(z);
        if s.site == self.site && self.layers.contains(&s.layer) {
            let dims = h.dims();
            let cols: usize = dims[1..].iter().product();
            self.kept
                .push((s.layer, h.clone().reshape([dims[0], cols])));
        }
        h
    }
}

/// The spectra of any architecture whose samples are independent, from vector-Jacobian
/// products on the backend: for input `k` and layer `l`, row `j` of `(J^l)^T` is the
/// gradient of `h^l_j` with respect to the input. Every `(k, l, j)` is one row of a batch
/// of copies of the inputs; the loss `sum_r h^(l_r)_(r, j_r)` picks each row's own output,
/// so one backward pass gives all the rows of a chunk (chunks of about `chunk_bytes` of
/// activations, [`VJP_CHUNK_BYTES`] in the probe). `x` holds the first `k` inputs,
/// row-major. Spectra come out layer by layer, inputs in order within a layer (as the exact
/// route's).
pub(crate) fn vjp_spectra(
    net: &ResolvedNet,
    layout: &NetLayout,
    params: &Params,
    x: &[f32],
    opts: &JacobianOptions,
    device: &Device,
    chunk_bytes: f64,
) -> Result<Vec<Spectrum>, NetError> {
    let cfg = &net.config;
    let layers = opts.layers_of(cfg.depth);
    let n0 = input_features(net);
    let k = x.len() / n0.max(1);
    let outs: Vec<usize> = layers
        .iter()
        .map(|&l| net.config.arch.primary_features(net, l))
        .collect();
    // Rows: (sample, layer index, output unit), sample-major.
    let per_sample: usize = outs.iter().sum();
    let total = k * per_sample;
    let chunk = ((chunk_bytes / vjp_row_bytes(net)) as usize).clamp(1, total.max(1));
    let row_of = |r: usize| -> (usize, usize, usize) {
        let (sample, mut j) = (r / per_sample, r % per_sample);
        let mut li = 0;
        while j >= outs[li] {
            j -= outs[li];
            li += 1;
        }
        (sample, li, j)
    };
    let ad = device.clone().autodiff();
    let p = upload(params, &ad, false);
    // The transposed Jacobians, one `N_l x N_0` block per (sample, layer), f32.
    let mut jt: Vec<Vec<f32>> = (0..k)
        .flat_map(|_| outs.iter().map(|&n| vec![0f32; n * n0]))
        .collect();
    let site = cfg.arch.primary_site();
    let mut start = 0;
    while start < total {
        let end = (start + chunk).min(total);
        let rows = end - start;
        let mut xs = Vec::with_capacity(rows * n0);
        let mut picks: Vec<Vec<f32>> = outs.iter().map(|&n| vec![0f32; rows * n]).collect();
        for r in start..end {
            let (sample, li, j) = row_of(r);
            xs.extend_from_slice(&x[sample * n0..(sample + 1) * n0]);
            picks[li][(r - start) * outs[li] + j] = 1.0;
        }
        let xt = Tensor::<2>::from_data(TensorData::new(xs, [rows, n0]), &ad).require_grad();
        let mut rec = Capture {
            site,
            layers: &layers,
            kept: Vec::new(),
        };
        let _ = layout.forward(net, &p, xt.clone(), &mut rec);
        let mut loss: Option<Tensor<1>> = None;
        for (li, &l) in layers.iter().enumerate() {
            let h = rec
                .kept
                .iter()
                .find(|(kl, _)| *kl == l)
                .map(|(_, h)| h.clone())
                .ok_or_else(|| NetError::Readback {
                    what: "a Jacobian layer's output",
                    why: format!("no site {site} at layer {l}"),
                })?;
            let pick = Tensor::<2>::from_data(
                TensorData::new(std::mem::take(&mut picks[li]), [rows, outs[li]]),
                &ad,
            );
            let term = (h * pick).sum();
            loss = Some(match loss {
                None => term,
                Some(t) => t + term,
            });
        }
        let Some(loss) = loss else { break };
        let grads = loss.backward();
        let g = xt.grad(&grads).ok_or_else(|| NetError::Readback {
            what: "a Jacobian row",
            why: "the input has no gradient".into(),
        })?;
        let g = crate::stats::read_back(g, "a Jacobian")?;
        for r in start..end {
            let (sample, li, j) = row_of(r);
            let at = (r - start) * n0;
            jt[sample * layers.len() + li][j * n0..(j + 1) * n0].copy_from_slice(&g[at..at + n0]);
        }
        start = end;
    }
    let order: Vec<(usize, usize)> = (0..layers.len())
        .flat_map(|li| (0..k).map(move |sample| (li, sample)))
        .collect();
    Ok(order
        .par_iter()
        .map(|&(li, sample)| Spectrum {
            sample,
            layer: layers[li],
            values: singular_values(&jt[sample * layers.len() + li], outs[li], n0),
        })
        .collect())
}

/// Device bytes of one row of the vector-Jacobian route's pass, about: four f32 copies
/// (values, autodiff records, gradients) of one sample's activations.
fn vjp_row_bytes(net: &ResolvedNet) -> f64 {
    let cfg = &net.config;
    let sizes = cfg.arch.pass_sizes(cfg, 1.0);
    4.0 * 4.0 * (sizes[1] + sizes[2] + sizes[3]).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks of one row and of five (crossing input and layer boundaries) give exactly the
    /// spectra of one pass over all rows.
    #[test]
    fn chunked_vector_jacobian_products_equal_one_pass() {
        let cfg = crate::NetConfig::new(crate::Arch::Resmlp, 3, 6, "tanh", "he-normal");
        let net = cfg.resolve().unwrap();
        let params = crate::build_params(&net, 4).unwrap();
        let layout = crate::build::declare(&net).layout;
        let x = crate::inputs::normal_input(4, "input", [3, 6]).unwrap();
        let opts = JacobianOptions {
            samples: 3,
            layers: vec![1, 3],
        };
        let dev = Device::flex();
        let run = |bytes: f64| vjp_spectra(&net, &layout, &params, &x, &opts, &dev, bytes).unwrap();
        let whole = run(VJP_CHUNK_BYTES);
        assert_eq!(whole.len(), 2 * 3);
        let order: Vec<(usize, usize)> = whole.iter().map(|s| (s.layer, s.sample)).collect();
        assert_eq!(order, [(1, 0), (1, 1), (1, 2), (3, 0), (3, 1), (3, 2)]);
        for rows in [1.0, 5.0] {
            let got = run(rows * vjp_row_bytes(&net));
            assert_eq!(got, whole, "chunks of {rows} rows");
        }
    }
}
