//! The probed pass on Burn: a network's forward and backward pass with every site recorded,
//! its statistics reduced on the device and read back. Needs the `burn` feature.

use std::time::Instant;

use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

use crate::arch::ResolvedNet;
use crate::build::declare;
use crate::error::NetError;
use crate::forward::{DeviceParam, DeviceParams, Recorder, SiteIn, SiteKind, WeightGrad, upload};
use crate::handles::ParamId;
use crate::inputs::loss_seeds;
use crate::params::Params;
use crate::precision::{
    DYNAMIC_LOSS_SCALE_START, Dtype, LossScale, PrecisionOptions, PrecisionStats, relative_error,
};
use crate::stats::{
    BatchStats, ChannelMoments, LayerStats, Reducer, Summary, TokenStats, Want, effective_rank,
    saturation_threshold,
};

use super::{LayerHistogram, PhaseTimes, ProbeOptions, ProbeResult, batchable, histogram_edges};

struct Site {
    site: String,
    layer: usize,
    /// The model node it is (graph models).
    node: Option<String>,
    z: Tensor<2>,
    h: Tensor<2>,
    pz: Tensor<2>,
    ph: Tensor<2>,
    weight: Option<WeightGrad>,
    scale: Option<ParamId>,
    saturation: Option<f64>,
    kind: SiteKind,
    /// `h` as `[batch * pixels, channels]`, for a residual site of a convolutional network.
    channels: Option<Tensor<2>>,
    /// Tokens per sequence, for the token statistics.
    tokens: Option<usize>,
    /// A `[batch, features]` site (neither tokens nor pixels): pair correlation and
    /// activation rank.
    flat: bool,
    /// Attention probabilities, for their entropy.
    attention: Option<Tensor<4>>,
    /// Weights reported by role.
    roles: Vec<(&'static str, ParamId)>,
}

struct Probing {
    device: Device,
    sites: Vec<Site>,
}

impl Recorder for Probing {
    fn site<const D: usize>(&mut self, s: SiteIn<'_>, z: Tensor<D>) -> Tensor<D> {
        let dims = z.dims();
        let rows = dims[0];
        let cols: usize = dims[1..].iter().product();
        // The probes in the pass's own float type; what the statistics read, in f32.
        let (z, pz) = crate::kernels::tap(z, &self.device);
        let (h, ph) = crate::kernels::tap(s.kind.apply(z.clone()), &self.device);
        // A residual site with channels gets per-channel moments for the signal-propagation
        // plots (over batch and pixels, as Brock, De & Smith 2021 define them).
        let channels = (D == 4 && !s.kind.pointwise()).then(|| {
            let (c, pixels) = (dims[1], cols / dims[1].max(1));
            h.clone()
                .reshape([rows, c, pixels])
                .swap_dims(1, 2)
                .reshape([rows * pixels, c])
        });
        let channels = channels.map(as_f32);
        self.sites.push(Site {
            site: s.site.to_string(),
            layer: s.layer,
            node: s.node.map(str::to_string),
            z: as_f32(z.clone().reshape([rows, cols])),
            h: as_f32(h.clone().reshape([rows, cols])),
            pz,
            ph,
            weight: s.weight,
            scale: s.scale,
            saturation: saturation_threshold(s.kind.activation()),
            kind: s.kind,
            channels,
            flat: D == 2 && s.tokens.is_none(),
            tokens: s.tokens.filter(|&t| t > 0 && cols.is_multiple_of(t)),
            attention: s.attention.map(as_f32),
            roles: s.roles,
        });
        h
    }
}

/// `t` in f32 (unchanged where it already is: an f32 pass is the same operations as
/// before low precision existed).
fn as_f32<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    crate::forward::in_dtype(t, DType::F32)
}

/// A gradient of a low-precision pass in f32 with the loss scale divided out (`unscale`
/// is `1 / scale`); an f32 pass's unchanged.
fn unscaled<const D: usize>(g: Tensor<D>, unscale: f64) -> Tensor<D> {
    let g = as_f32(g);
    if unscale == 1.0 {
        g
    } else {
        g.mul_scalar(unscale)
    }
}

/// Run one probed pass of `net` with `params` on `device` (a plain device: autodiff is
/// switched on here). `seed` keys the input batch and the loss.
pub fn probe(
    net: &ResolvedNet,
    params: &Params,
    seed: u64,
    opts: &ProbeOptions,
    device: &Device,
) -> Result<ProbeResult, NetError> {
    probe_uploaded(
        net,
        params,
        upload(params, device, false),
        seed,
        opts,
        device,
    )
}

/// [`probe`], with `params` already on `device` as `uploaded` (without autodiff).
pub(crate) fn probe_uploaded(
    net: &ResolvedNet,
    params: &Params,
    uploaded: DeviceParams,
    seed: u64,
    opts: &ProbeOptions,
    device: &Device,
) -> Result<ProbeResult, NetError> {
    probe_seeds(net, &[params], uploaded, &[seed], opts, device)?
        .pop()
        .ok_or_else(|| NetError::Readback {
            what: "the probed pass",
            why: "it measured no seed".into(),
        })
}

/// One probed pass of several seeds of `net` at once: `params[k]` is seed `seeds[k]`'s,
/// `uploaded` all of them stacked ([`DeviceParams::stack`]). Rows `[k * batch, (k + 1) *
/// batch)` of every tensor are seed k's, the loss is the sum of the seeds' losses, so each
/// seed's gradients are its own, and each seed's statistics are reduced from its own rows
/// by the same operations as in its solo pass: every seed's numbers are its solo run's
/// (tested on each backend). The times of each seed are the pass's divided by the seeds.
pub(crate) fn probe_seeds(
    net: &ResolvedNet,
    params: &[&Params],
    uploaded: DeviceParams,
    seeds: &[u64],
    opts: &ProbeOptions,
    device: &Device,
) -> Result<Vec<ProbeResult>, NetError> {
    if opts.batch == 0 {
        return Err(NetError::BadConfig {
            key: "batch",
            value: "0".into(),
            allowed: "a whole number > 0".into(),
        });
    }
    let n = seeds.len();
    if n == 0 || params.len() != n || uploaded.seeds() != n || (n > 1 && !batchable(net, opts)) {
        return Err(NetError::BadConfig {
            key: "seed-batch",
            value: n.to_string(),
            allowed: "1 for this configuration (an architecture that takes stacked seeds, \
                      without histograms or a Jacobian, may batch more)"
                .into(),
        });
    }
    let t0 = Instant::now();
    let ad = device.clone().autodiff();
    let declared = declare(net);
    let p = uploaded.into_leaves();
    let shape = net.config.arch.input_shape(net, opts.batch);
    let mut x_host = Vec::with_capacity(n * shape[0] * shape[1]);
    for &seed in seeds {
        x_host.extend(crate::build::net_input(net, seed, "input", shape, || {
            net.config.arch.input(seed, shape)
        })?);
    }
    // The inputs whose Jacobians the vector-Jacobian route takes (the exact route reads the
    // pass's own pre-activations).
    let jacobian_inputs: Vec<f32> = match &opts.jacobian {
        Some(j) if !net.config.arch.exact_jacobian() => {
            x_host[..j.samples.min(shape[0]) * shape[1]].to_vec()
        }
        _ => Vec::new(),
    };
    let x = Tensor::<2>::from_data(TensorData::new(x_host, [n * shape[0], shape[1]]), &ad);
    let _ = ad.sync();
    let init_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let (rec, grads, low) = match opts.precision {
        Some(precision) if precision.dtype != Dtype::F32 => {
            let reference = reference_pass(net, &declared, &p, x.clone(), seeds, &ad)?;
            let (rec, grads, scale) =
                low_precision_pass(net, &declared, &p, x, seeds, precision, &ad)?;
            let low = Low {
                precision,
                scale,
                reference,
            };
            (rec, grads, Some(low))
        }
        _ => {
            let mut rec = Probing {
                device: ad.clone(),
                sites: Vec::new(),
            };
            let out = declared.layout.forward(net, &p, x, &mut rec);
            let loss = loss_seeds(net.config.loss, &p, declared.head, out, seeds, "loss", &ad)?;
            (rec, loss.backward(), None)
        }
    };
    let _ = ad.sync();
    let forward_backward_s = t1.elapsed().as_secs_f64();

    let t2 = Instant::now();
    let unscale = low.as_ref().map_or(1.0, |l| 1.0 / l.scale);
    let lost = match &low {
        Some(low) => Some(precision_stats(&rec.sites, &grads, low)?),
        None => None,
    };
    let taken: Vec<Taken> = rec
        .sites
        .iter()
        .map(|s| Taken::of(s, &p, &grads, unscale))
        .collect();
    let per_seed: Vec<Vec<Taken>> = if n == 1 {
        vec![taken]
    } else {
        (0..n)
            .map(|k| taken.iter().map(|t| t.seed(k, n)).collect())
            .collect()
    };
    let mut stats = seeds_stats(&rec.sites, &per_seed, params, gain_sites(net, &rec.sites))?;
    // A low-precision pass is one seed's (never batched).
    if let (Some(lost), Some((first, _))) = (lost, stats.first_mut()) {
        for (row, lost) in first.iter_mut().zip(lost) {
            row.precision = Some(lost);
        }
    }
    let (histograms, spectra) = if n == 1 {
        let histograms = histograms(&rec.sites, &grads, opts, unscale)?;
        let spectra = match &opts.jacobian {
            Some(j) if !net.config.arch.exact_jacobian() => {
                j.check(net, opts.batch)?;
                crate::jacobian::vjp_spectra(
                    net,
                    &declared.layout,
                    params[0],
                    &jacobian_inputs,
                    j,
                    device,
                    crate::jacobian::VJP_CHUNK_BYTES,
                )?
            }
            Some(j) => {
                j.check(net, opts.batch)?;
                let chain = declared
                    .layout
                    .jacobian_chain()
                    .ok_or_else(|| NetError::Readback {
                        what: "the Jacobian's chain",
                        why: "the architecture has none".into(),
                    })?;
                // Each linear map's site: the one its weight's gradient is read at; a weight
                // shared over time steps (the RNN's) is the chain's map once per step, the
                // step's site in turn.
                let z: Vec<Tensor<2>> = chain
                    .iter()
                    .enumerate()
                    .map(|(i, ids)| {
                        let earlier = chain[..i].iter().filter(|c| c.weight == ids.weight).count();
                        rec.sites
                            .iter()
                            .filter(|s| s.weight.as_ref().is_some_and(|w| w.weight() == ids.weight))
                            .nth(earlier)
                            .map(|s| s.z.clone().inner())
                            .ok_or_else(|| NetError::Readback {
                                what: "a Jacobian layer's pre-activations",
                                why: "no site records them".into(),
                            })
                    })
                    .collect::<Result<_, _>>()?;
                crate::jacobian::spectra(net, &chain, &z, &p, j, device)?
            }
            None => Vec::new(),
        };
        (histograms, spectra)
    } else {
        (Vec::new(), Vec::new())
    };
    let stats_s = t2.elapsed().as_secs_f64();
    let share = n as f64;
    let times = PhaseTimes {
        init_s: init_s / share,
        forward_backward_s: forward_backward_s / share,
        stats_s: stats_s / share,
    };
    // Histograms and spectra exist only for a solo pass (n == 1).
    let mut extras = Some((histograms, spectra));
    Ok(stats
        .into_iter()
        .map(|(stats, log_gains)| {
            let (histograms, spectra) = extras.take().unwrap_or_default();
            ProbeResult {
                stats,
                log_gains,
                histograms,
                spectra,
                times,
            }
        })
        .collect())
}

/// A low-precision pass's loss scale and the f32 pass it is measured against.
struct Low {
    precision: PrecisionOptions,
    /// The loss scale the backward pass ran with.
    scale: f64,
    reference: Reference,
}

/// The f32 pass of the same seed and weights: each site's z and dL/dz, off the graph.
struct Reference {
    sites: Vec<(String, usize)>,
    z: Vec<Tensor<2>>,
    gz: Vec<Option<Tensor<2>>>,
}

/// The f32 pass of `x` over the leaves `p` (their gradients are not kept).
fn reference_pass(
    net: &ResolvedNet,
    declared: &crate::build::Declared,
    p: &DeviceParams,
    x: Tensor<2>,
    seeds: &[u64],
    ad: &Device,
) -> Result<Reference, NetError> {
    let mut rec = Probing {
        device: ad.clone(),
        sites: Vec::new(),
    };
    let out = declared.layout.forward(net, p, x, &mut rec);
    let loss = loss_seeds(net.config.loss, p, declared.head, out, seeds, "loss", ad)?;
    let grads = loss.backward();
    Ok(Reference {
        sites: rec
            .sites
            .iter()
            .map(|s| (s.site.clone(), s.layer))
            .collect(),
        z: rec.sites.iter().map(|s| s.z.clone().inner()).collect(),
        gz: rec.sites.iter().map(|s| s.pz.grad(&grads)).collect(),
    })
}

/// The pass of `x` over the leaves `p` in `precision`'s float type: weights and inputs cast
/// (token ids stay exact), every operation in that type; the network's output cast to f32
/// for the loss (as mixed-precision training computes it), and the loss multiplied by the
/// loss scale before the backward pass. A dynamic scale starts at 2^16 and halves while a
/// gradient of the pass is non-finite and the loss is finite (no scale helps an overflow of
/// the forward pass), down to 1. Returns the recorded sites, the gradients and the scale.
fn low_precision_pass(
    net: &ResolvedNet,
    declared: &crate::build::Declared,
    p: &DeviceParams,
    x: Tensor<2>,
    seeds: &[u64],
    precision: PrecisionOptions,
    ad: &Device,
) -> Result<(Probing, burn::tensor::Gradients, f64), NetError> {
    let dtype = precision.dtype.float_dtype();
    let mut scale = match precision.loss_scale {
        LossScale::Off => 1.0,
        LossScale::Fixed(s) => s,
        LossScale::Dynamic => DYNAMIC_LOSS_SCALE_START,
    };
    loop {
        // Cast afresh for each try: a backward pass consumes the casts' graph.
        let low = p.cast(dtype);
        let x = if net.config.arch.token_input().is_some() {
            x.clone()
        } else {
            x.clone().cast(dtype)
        };
        let mut rec = Probing {
            device: ad.clone(),
            sites: Vec::new(),
        };
        let out = declared.layout.forward(net, &low, x, &mut rec);
        let loss = loss_seeds(
            net.config.loss,
            p,
            declared.head,
            as_f32(out),
            seeds,
            "loss",
            ad,
        )?;
        let dynamic = precision.loss_scale == LossScale::Dynamic && scale > 1.0;
        if dynamic && !finite_sum(vec![loss.clone().inner()])? {
            scale = 1.0;
        }
        let grads = loss.mul_scalar(scale).backward();
        if !dynamic || scale <= 1.0 {
            return Ok((rec, grads, scale));
        }
        let mut all: Vec<Tensor<1>> = rec
            .sites
            .iter()
            .flat_map(|s| [s.pz.grad(&grads), s.ph.grad(&grads)])
            .flatten()
            .map(|g| as_f32(g).abs().sum())
            .collect();
        all.extend(p.0.iter().flatten().filter_map(|t| match t {
            DeviceParam::D1(t) => t.grad(&grads).map(|g| g.abs().sum()),
            DeviceParam::D2(t) => t.grad(&grads).map(|g| g.abs().sum()),
            DeviceParam::D4(t) => t.grad(&grads).map(|g| g.abs().sum()),
        }));
        if finite_sum(all)? {
            return Ok((rec, grads, scale));
        }
        scale /= 2.0;
    }
}

/// Whether every one of `sums` (one-entry tensors) is finite, in one read-back.
fn finite_sum(sums: Vec<Tensor<1>>) -> Result<bool, NetError> {
    if sums.is_empty() {
        return Ok(true);
    }
    let v = crate::stats::read_back(Tensor::cat(sums, 0), "the loss scale's check")?;
    Ok(v.iter().all(|x| x.is_finite()))
}

/// Each site's [`PrecisionStats`] of the low-precision pass `sites` (its gradients `grads`)
/// against `low`'s f32 pass, in one read-back. Underflow and overflow are judged on the
/// values the pass held (a gradient still multiplied by the loss scale); the relative error
/// on the gradients with the scale divided out. The sums of squares of the error are taken
/// over the reference's largest magnitude, so that neither overflows in f32.
fn precision_stats(
    sites: &[Site],
    grads: &burn::tensor::Gradients,
    low: &Low,
) -> Result<Vec<PrecisionStats>, NetError> {
    let r = &low.reference;
    let same = sites.len() == r.sites.len()
        && sites
            .iter()
            .zip(&r.sites)
            .all(|(s, (name, layer))| &s.site == name && s.layer == *layer);
    if !same {
        return Err(NetError::Readback {
            what: "the low-precision pass",
            why: "its sites differ from the f32 pass's".into(),
        });
    }
    let tiny = low.precision.dtype.min_normal();
    let unscale = 1.0 / low.scale;
    // Four sums per tensor: the underflowed and overflowed entries, and the squared error
    // (a gradient's with the scale divided out) and squared reference over the reference's
    // largest magnitude.
    let sums = |held: Tensor<2>, reference: Tensor<2>, unscale: f64| -> Tensor<1> {
        let held = as_f32(held);
        let was_tiny = reference.clone().abs().lower_elem(f32::MIN_POSITIVE);
        let under = held
            .clone()
            .abs()
            .lower_elem(tiny)
            .bool_and(was_tiny.bool_not())
            .int()
            .sum()
            .float();
        let over = held
            .clone()
            .is_inf()
            .bool_and(reference.clone().is_finite())
            .int()
            .sum()
            .float();
        let m = reference
            .clone()
            .abs()
            .max()
            .clamp_min(f32::MIN_POSITIVE)
            .reshape([1, 1]);
        let diff = ((unscaled(held, unscale) - reference.clone()) / m.clone())
            .square()
            .sum();
        let base = (reference / m).square().sum();
        Tensor::cat(vec![under, over, diff, base], 0)
    };
    let mut parts: Vec<Tensor<1>> = Vec::new();
    let mut has_grad = Vec::with_capacity(sites.len());
    for (i, s) in sites.iter().enumerate() {
        parts.push(sums(s.z.clone().inner(), r.z[i].clone(), 1.0));
        let held = s.pz.grad(grads);
        has_grad.push(held.is_some() && r.gz[i].is_some());
        if let (Some(held), Some(reference)) = (held, r.gz[i].clone()) {
            parts.push(sums(held, reference, unscale));
        }
    }
    let v = crate::stats::read_back(Tensor::cat(parts, 0), "the low-precision comparison")?;
    let mut at = v.chunks(4);
    let mut next = |entries: f64| -> [f64; 3] {
        match at.next() {
            Some(&[under, over, diff, base]) => [
                f64::from(under) / entries,
                f64::from(over) / entries,
                relative_error(f64::from(diff), f64::from(base)),
            ],
            _ => [f64::NAN; 3],
        }
    };
    Ok(sites
        .iter()
        .zip(has_grad)
        .map(|(s, has_grad)| {
            let entries = s.z.shape().num_elements().max(1) as f64;
            let [underflow_frac, overflow_frac, rel_err] = next(entries);
            let [grad_underflow_frac, grad_overflow_frac, grad_rel_err] = if has_grad {
                next(entries)
            } else {
                [f64::NAN; 3]
            };
            PrecisionStats {
                underflow_frac,
                overflow_frac,
                rel_err,
                grad_underflow_frac,
                grad_overflow_frac,
                grad_rel_err,
                loss_scale: low.scale,
            }
        })
        .collect())
}

/// What the statistics of one site are reduced from, off the autodiff graph: z and h, the
/// gradients at the site, and those of the weights and multipliers it reports.
#[derive(Clone)]
struct Taken {
    z: Tensor<2>,
    h: Tensor<2>,
    gz: Option<Tensor<2>>,
    gh: Option<Tensor<2>>,
    /// The gradient of the weight fed by the site, as `[in, out]` (`[seeds * in, out]` for
    /// stacked seeds).
    wg: Option<Tensor<2>>,
    /// The gradient of the site's multiplier, `[1, 1]`.
    sg: Option<Tensor<2>>,
    channels: Option<Tensor<2>>,
    attention: Option<Tensor<4>>,
    roles: Vec<(&'static str, Option<Tensor<2>>)>,
}

impl Taken {
    /// Site `s`'s tensors after the backward pass `grads`, every gradient multiplied by
    /// `unscale` (the inverse of the loss scale; 1 without one) and in f32.
    fn of(s: &Site, p: &DeviceParams, grads: &burn::tensor::Gradients, unscale: f64) -> Taken {
        let gz = s.pz.grad(grads).map(|g| unscaled(g, unscale));
        let gh = s.ph.grad(grads).map(|g| unscaled(g, unscale));
        let wg = match &s.weight {
            Some(WeightGrad::Leaf(id)) => match p.get(*id) {
                Some(DeviceParam::D2(w)) => w.grad(grads),
                Some(DeviceParam::D4(w)) => w.grad(grads).map(|g| {
                    let [o, i, k1, k2] = g.dims();
                    g.reshape([o, i * k1 * k2])
                }),
                _ => None,
            }
            .map(|g| unscaled(g, unscale)),
            Some(WeightGrad::PerStep { h_prev, .. }) => gz
                .clone()
                .map(|g| as_f32((**h_prev).clone().inner()).transpose().matmul(g)),
            None => None,
        };
        let sg = s.scale.and_then(|id| match p.get(id) {
            Some(DeviceParam::D1(a)) => a.grad(grads).map(|g| unscaled(g, unscale).reshape([1, 1])),
            _ => None,
        });
        let roles = s
            .roles
            .iter()
            .map(|&(name, id)| {
                let g = match p.get(id) {
                    Some(DeviceParam::D2(w)) => w.grad(grads).map(|g| unscaled(g, unscale)),
                    _ => None,
                };
                (name, g)
            })
            .collect();
        Taken {
            z: s.z.clone().inner(),
            h: s.h.clone().inner(),
            gz,
            gh,
            wg,
            sg,
            channels: s.channels.clone().map(Tensor::inner),
            attention: s.attention.clone().map(Tensor::inner),
            roles,
        }
    }

    /// Seed `k`'s part of the tensors of `n` stacked seeds: the k-th of n equal blocks of
    /// rows of each (a batch's rows, a stacked weight's matrix).
    fn seed(&self, k: usize, n: usize) -> Taken {
        fn rows<const D: usize>(t: &Tensor<D>, k: usize, n: usize) -> Tensor<D> {
            let r = t.dims()[0] / n;
            t.clone().narrow(0, k * r, r)
        }
        let opt = |t: &Option<Tensor<2>>| t.as_ref().map(|t| rows(t, k, n));
        Taken {
            z: rows(&self.z, k, n),
            h: rows(&self.h, k, n),
            gz: opt(&self.gz),
            gh: opt(&self.gh),
            wg: opt(&self.wg),
            sg: opt(&self.sg),
            channels: opt(&self.channels),
            attention: self.attention.as_ref().map(|t| rows(t, k, n)),
            roles: self.roles.iter().map(|(name, g)| (*name, opt(g))).collect(),
        }
    }
}

/// Where one site's statistics are among a seed's queued reductions (indices into the
/// [`Reducer`]'s results) and among the tensors it reads back whole.
struct Handle {
    /// The pre-activations z.
    z: usize,
    /// The activations h.
    h: usize,
    /// dL/dz, where the site has a gradient.
    gz: Option<usize>,
    /// dL/dh.
    gh: Option<usize>,
    /// dL/dW of the site's weight.
    wg: Option<usize>,
    /// The gradient of the branch's learnable multiplier.
    sg: Option<usize>,
    /// The per-channel means of a convolution's output.
    channels: Option<usize>,
    /// h read whole (a sequence of tokens per row) and the tokens per sequence.
    tokens: Option<(usize, usize)>,
    /// The per-query attention entropy.
    entropy: Option<usize>,
    /// The attention each query pays itself.
    diag: Option<usize>,
    /// dL/dW of each named weight role (a transformer's query, key, ...).
    roles: Vec<(&'static str, Option<usize>)>,
    /// z and h read whole, for the pair cosine and the activation rank.
    pair: Option<(usize, usize)>,
}

/// One seed's statistics queued on a [`Reducer`], and the tensors read back whole (for the
/// effective ranks and the pair cosine).
struct Pending {
    handles: Vec<Handle>,
    reads: Vec<Tensor<2>>,
    /// Where in `reads` each input's squared norm of `z` is, at the primary site's first and
    /// last layers.
    gain: Option<(usize, usize)>,
}

/// One seed's site statistics and its inputs' log gains.
type SeedStats = (Vec<LayerStats>, Vec<f64>);

/// The indices among `sites` of the primary site's first and last layers (`None` where the
/// architecture records no such site).
fn gain_sites(net: &ResolvedNet, sites: &[Site]) -> Option<(usize, usize)> {
    let primary = net.config.arch.primary_site();
    let of: Vec<usize> = (0..sites.len())
        .filter(|&i| sites[i].site == primary)
        .collect();
    let first = of.iter().copied().min_by_key(|&i| sites[i].layer)?;
    let last = of.iter().copied().max_by_key(|&i| sites[i].layer)?;
    Some((first, last))
}

/// Each input's `ln(|z_last|^2 / |z_first|^2)`, from the squared norms `first` and `last`
/// (one per input), in f64.
fn log_gains(first: &[f32], last: &[f32]) -> Vec<f64> {
    first
        .iter()
        .zip(last)
        .map(|(&a, &b)| (f64::from(b) / f64::from(a)).ln())
        .collect()
}

/// Every seed's statistics of every site from its tensors `taken[k]` (in site order) and
/// its host weights `params[k]`: all seeds' reductions in one [`Reducer`] and one read-back,
/// and the tensors read whole in one more.
fn seeds_stats(
    sites: &[Site],
    taken: &[Vec<Taken>],
    params: &[&Params],
    gain: Option<(usize, usize)>,
) -> Result<Vec<SeedStats>, NetError> {
    let mut red = Reducer::new();
    let mut pending: Vec<Pending> = taken
        .iter()
        .map(|t| queue_stats(sites, t, &mut red, gain))
        .collect();
    let sums = red.finish()?;
    let counts: Vec<usize> = pending.iter().map(|p| p.reads.len()).collect();
    let all: Vec<Tensor<2>> = pending
        .iter_mut()
        .flat_map(|p| std::mem::take(&mut p.reads))
        .collect();
    let mut reads = read_whole(all, "activation and token matrices")?.into_iter();
    let per_seed: Vec<Vec<Vec<f32>>> = counts
        .iter()
        .map(|&n| reads.by_ref().take(n).collect())
        .collect();
    Ok(taken
        .iter()
        .zip(params)
        .zip(&pending)
        .zip(&per_seed)
        .map(|(((taken, params), pending), reads)| {
            let gains = pending.gain.map_or_else(Vec::new, |(a, b)| {
                let read = |i: usize| reads.get(i).map_or(&[][..], Vec::as_slice);
                log_gains(read(a), read(b))
            });
            (
                finish_stats(sites, taken, params, pending, &sums, reads),
                gains,
            )
        })
        .collect())
}

/// Entries joined into one transfer at most (1 GiB of f32: well under the 4 GiB a GPU
/// buffer may hold).
const READ_JOIN_ENTRIES: usize = 1 << 28;

/// Each tensor's values on the host (row-major): on a GPU backend consecutive tensors side by
/// side in as few transfers as [`READ_JOIN_ENTRIES`] allows, on the host one by one (no copy
/// to join them).
fn read_whole(tensors: Vec<Tensor<2>>, what: &'static str) -> Result<Vec<Vec<f32>>, NetError> {
    let Some(first) = tensors.first() else {
        return Ok(Vec::new());
    };
    if crate::backend::on_host(&first.device()) {
        return tensors
            .into_iter()
            .map(|t| crate::stats::read_back(t, what))
            .collect();
    }
    let mut out = Vec::with_capacity(tensors.len());
    let mut group: Vec<Tensor<2>> = Vec::new();
    let mut entries = 0;
    let mut flush = |group: &mut Vec<Tensor<2>>| -> Result<(), NetError> {
        if group.len() == 1 {
            out.push(crate::stats::read_back(group.remove(0), what)?);
        } else if !group.is_empty() {
            let sizes: Vec<usize> = group.iter().map(|t| t.shape().num_elements()).collect();
            let row: Vec<Tensor<2>> = group
                .drain(..)
                .zip(&sizes)
                .map(|(t, &n)| t.reshape([1, n]))
                .collect();
            let all = crate::stats::read_back(Tensor::cat(row, 1), what)?;
            let mut at = 0;
            for n in sizes {
                // A short read-back (a failed transfer) gives NaN, never made-up zeros.
                out.push(
                    (at..at + n)
                        .map(|i| all.get(i).copied().unwrap_or(f32::NAN))
                        .collect(),
                );
                at += n;
            }
        }
        Ok(())
    };
    for t in tensors {
        let n = t.shape().num_elements();
        if !group.is_empty() && entries + n > READ_JOIN_ENTRIES {
            flush(&mut group)?;
            entries = 0;
        }
        entries += n;
        group.push(t);
    }
    flush(&mut group)?;
    Ok(out)
}

/// One seed's statistics of every site queued on `red`, from its tensors `taken` (in site
/// order).
fn queue_stats(
    sites: &[Site],
    taken: &[Taken],
    red: &mut Reducer,
    gain: Option<(usize, usize)>,
) -> Pending {
    let mut handles: Vec<Handle> = Vec::with_capacity(sites.len());
    let mut reads: Vec<Tensor<2>> = Vec::new();
    let plain = Want {
        zeros: false,
        saturation: None,
    };
    for (s, t) in sites.iter().zip(taken) {
        let z = red.push(
            t.z.clone(),
            Want {
                zeros: false,
                saturation: s.saturation,
            },
        );
        let h = red.push(
            t.h.clone(),
            Want {
                zeros: s.kind.pointwise(),
                saturation: None,
            },
        );
        let push_opt =
            |red: &mut Reducer, t: &Option<Tensor<2>>| t.clone().map(|t| red.push(t, plain));
        let ch = push_opt(&mut *red, &t.channels);
        // Token statistics from the tokens read back once for every site: the mean pairwise
        // cosine of each sequence's tokens and their effective rank (a Gram matrix in f32
        // loses the small singular values that decide it near collapse), both on the host.
        let tk = s.tokens.map(|tokens| {
            reads.push(t.h.clone());
            (reads.len() - 1, tokens)
        });
        let ent = t.attention.clone().map(|a| {
            let [b, heads, t, _] = a.dims();
            let e = (a.clone() * a.clamp_min(1e-30).log())
                .sum_dim(3)
                .neg()
                .reshape([b * heads * t, 1]);
            red.push(e, plain)
        });
        // The attention each query pays itself: the diagonal of each row's matrix.
        let diag = t.attention.clone().map(|a| {
            let [b, heads, t, _] = a.dims();
            let eye: Vec<f32> = (0..t * t).map(|k| f32::from(k / t == k % t)).collect();
            let eye = Tensor::<4>::from_data(TensorData::new(eye, [1, 1, t, t]), &a.device());
            let d = (a * eye).sum_dim(3).reshape([b * heads * t, 1]);
            red.push(d, plain)
        });
        let roles: Vec<(&'static str, Option<usize>)> = t
            .roles
            .iter()
            .map(|(name, g)| (*name, push_opt(&mut *red, g)))
            .collect();
        // The pre-activations, for the cosine of each pair of inputs, and the activations,
        // for their effective rank, read back (both reduced on the host, in f64: a few
        // kernels fewer a site on a GPU).
        let pair = (s.flat && t.z.dims()[0] >= 2).then(|| {
            reads.push(t.z.clone());
            reads.push(t.h.clone());
            (reads.len() - 2, reads.len() - 1)
        });
        let gz = push_opt(&mut *red, &t.gz);
        let gh = push_opt(&mut *red, &t.gh);
        let wg = push_opt(&mut *red, &t.wg);
        let sg = push_opt(&mut *red, &t.sg);
        handles.push(Handle {
            z,
            h,
            gz,
            gh,
            wg,
            sg,
            channels: ch,
            tokens: tk,
            entropy: ent,
            diag,
            roles,
            pair,
        });
    }
    // Each input's squared norm of z (one row of z is one input, whatever its tokens or
    // pixels) where the log gain is read.
    let gain = gain.and_then(|(a, b)| {
        let mut norm = |i: usize| {
            let z = taken.get(i)?.z.clone();
            reads.push((z.clone() * z).sum_dim(1));
            Some(reads.len() - 1)
        };
        Some((norm(a)?, norm(b)?))
    });
    Pending {
        handles,
        reads,
        gain,
    }
}

/// The mean over the pairs `i != j` of the tokens (`tokens` rows of `seq`, row-major) of
/// their cosine, in f64, through `|sum_i u_i|^2 - sum_i |u_i|^2` with `u_i` each token over
/// its norm (a zero token counts as a zero vector).
fn token_cosine(seq: &[f32], tokens: usize) -> f64 {
    let d = seq.len() / tokens.max(1);
    let mut sum = vec![0f64; d];
    let mut diag = 0f64;
    for token in seq.chunks(d.max(1)) {
        let norm = token
            .iter()
            .map(|&x| f64::from(x).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1e-30);
        for (s, &x) in sum.iter_mut().zip(token) {
            let u = f64::from(x) / norm;
            *s += u;
            diag += u * u;
        }
    }
    let total: f64 = sum.iter().map(|s| s * s).sum();
    let pairs = (tokens * tokens.saturating_sub(1)).max(1) as f64;
    (total - diag) / pairs
}

/// The mean over the pairs of rows `(0, 1), (2, 3), ...` of `z` (`[rows, cols]`, row-major)
/// of their cosine, in f64. Each norm on its own; a zero vector has no direction: NaN, not
/// a cosine of 0.
fn pair_cosine(z: &[f32], [rows, cols]: [usize; 2]) -> f64 {
    let pairs = rows / 2;
    let row = |r: usize| &z[r * cols..(r + 1) * cols];
    let total: f64 = (0..pairs)
        .map(|p| {
            let (a, b) = (row(2 * p), row(2 * p + 1));
            let (mut dot, mut aa, mut bb) = (0f64, 0f64, 0f64);
            for (&x, &y) in a.iter().zip(b) {
                let (x, y) = (f64::from(x), f64::from(y));
                dot += x * y;
                aa += x * x;
                bb += y * y;
            }
            dot / (aa.sqrt() * bb.sqrt())
        })
        .sum();
    total / pairs as f64
}

/// One seed's statistics of every site from its queued reductions `pending`, their
/// results `sums`, and the tensors it read whole, `reads`.
fn finish_stats(
    sites: &[Site],
    taken: &[Taken],
    params: &Params,
    pending: &Pending,
    sums: &[Summary],
    reads: &[Vec<f32>],
) -> Vec<LayerStats> {
    let handles = &pending.handles;
    let read = |i: usize| reads.get(i).map_or(&[][..], Vec::as_slice);

    let weight_var = |w: &Option<WeightGrad>| {
        w.as_ref()
            .and_then(|w| params.tensors.get(w.weight().0))
            .map_or(f64::NAN, |t| host_var(&t.data))
    };
    // The activation ranks (one eigendecomposition each, the costliest statistic on the
    // host): sites in parallel, each solved sequentially, so the values do not depend on the
    // thread count.
    // The pair cosines alike, with them.
    let rank_jobs: Vec<(usize, [usize; 2], usize, usize)> = taken
        .iter()
        .zip(handles)
        .enumerate()
        .filter_map(|(i, (t, handle))| handle.pair.map(|(z, h)| (i, t.z.dims(), z, h)))
        .collect();
    let ranks: Vec<(usize, BatchStats)> = rank_jobs
        .into_par_iter()
        .map(|(i, dims, z, h)| {
            let stats = BatchStats {
                corr: pair_cosine(read(z), dims),
                act_rank: effective_rank(read(h), dims[0]),
            };
            (i, stats)
        })
        .collect();
    let batch_of = |i: usize| ranks.iter().find(|r| r.0 == i).map(|r| r.1);
    let nan = f64::NAN;
    sites
        .iter()
        .zip(taken)
        .zip(handles)
        .enumerate()
        .map(|(i, ((s, t), handle))| {
            let (z, h) = (&sums[handle.z], &sums[handle.h]);
            let get = |i: Option<usize>| i.map(|i| &sums[i]);
            let (gz, gh, wg, sg) = (
                get(handle.gz),
                get(handle.gh),
                get(handle.wg),
                get(handle.sg),
            );
            let nonfinite = z.nonfinite
                + h.nonfinite
                + gz.map_or(0, |g| g.nonfinite)
                + gh.map_or(0, |g| g.nonfinite)
                + wg.map_or(0, |g| g.nonfinite);
            LayerStats {
                site: s.site.clone(),
                layer: s.layer,
                node: s.node.clone().unwrap_or_default(),
                preact_mean: z.mean,
                preact_var: z.var,
                act_mean: h.mean,
                act_var: h.var,
                act_batch_var: h.within_var,
                grad_var: gz.map_or(nan, |g| g.var),
                act_grad_var: gh.map_or(nan, |g| g.var),
                wgrad_var: wg.map_or(nan, |g| g.var),
                weight_var: weight_var(&s.weight),
                dead_frac: if s.kind.pointwise() { h.zero_frac } else { nan },
                saturated_frac: if s.kind.pointwise() { z.sat_frac } else { nan },
                nonfinite,
                nonfinite_forward: z.nonfinite + h.nonfinite,
                scale_grad: sg.map_or(nan, |g| g.mean),
                channel: get(handle.channels).map(|c| ChannelMoments {
                    sq_mean: (c.var - c.within_var) + c.mean * c.mean,
                    var: c.within_var,
                }),
                tokens: handle.tokens.map(|(h, per)| {
                    // Row i of h holds sequence i's tokens.
                    let [batch, cols] = t.h.dims();
                    let h = read(h);
                    // Sequences in parallel, each solved sequentially, summed in order:
                    // the same value on any number of threads.
                    let each: Vec<(f64, f64)> = (0..batch)
                        .into_par_iter()
                        .map(|i| {
                            let seq = h.get(i * cols..(i + 1) * cols).unwrap_or(&[]);
                            (token_cosine(seq, per), effective_rank(seq, per))
                        })
                        .collect();
                    let n = batch as f64;
                    TokenStats {
                        // One token has no pair to compare.
                        cos: if per > 1 {
                            each.iter().map(|e| e.0).sum::<f64>() / n
                        } else {
                            nan
                        },
                        rank: each.iter().map(|e| e.1).sum::<f64>() / n,
                    }
                }),
                batch: handle.pair.and_then(|_| batch_of(i)),
                attn_entropy: get(handle.entropy).map(|e| e.mean),
                attn_diag: get(handle.diag).map(|e| e.mean),
                role_wgrad: handle
                    .roles
                    .iter()
                    .map(|&(name, g)| (name, get(g).map_or(nan, |g| g.var)))
                    .collect(),
                precision: None,
            }
        })
        .collect()
}

/// The network's output for a host input `x` (row-major, shape `input_shape`), without
/// autodiff or probes: for checks such as norm preservation.
pub fn forward_plain(
    net: &ResolvedNet,
    params: &Params,
    x: Vec<f32>,
    batch: usize,
    device: &Device,
) -> Result<Vec<f32>, NetError> {
    let declared = declare(net);
    let p = upload(params, device, false);
    let shape = net.config.arch.input_shape(net, batch);
    let x = Tensor::<2>::from_data(TensorData::new(x, shape), device);
    let out = declared
        .layout
        .forward(net, &p, x, &mut crate::forward::Plain);
    crate::stats::read_back(out, "the network output")
}

/// Population variance of host data in f64.
pub(crate) fn host_var(data: &[f32]) -> f64 {
    let n = data.len() as f64;
    let mean = data.iter().map(|&v| v as f64).sum::<f64>() / n;
    data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n
}

fn histograms(
    sites: &[Site],
    grads: &burn::tensor::Gradients,
    opts: &ProbeOptions,
    unscale: f64,
) -> Result<Vec<LayerHistogram>, NetError> {
    if opts.hist_layers.is_empty() || opts.hist_bins == 0 {
        return Ok(Vec::new());
    }
    // One site per chosen layer: the first that feeds a weight (for a residual block,
    // `branch.1`, whose h is phi of the block input).
    let mut chosen: Vec<&Site> = Vec::new();
    for s in sites
        .iter()
        .filter(|s| opts.hist_layers.contains(&s.layer) && s.weight.is_some())
    {
        if !chosen.iter().any(|c| c.layer == s.layer) {
            chosen.push(s);
        }
    }
    let mut out = Vec::new();
    for kind in ["preact", "act", "grad"] {
        let data: Vec<Vec<f32>> = chosen
            .iter()
            .map(|s| {
                let t = match kind {
                    "preact" => Some(s.z.clone()),
                    "act" => Some(s.h.clone()),
                    _ => s.pz.grad(grads).map(|g| unscaled(g, unscale)),
                };
                // A site the backward pass never reached has no gradient: an empty
                // histogram, which is what it is. A failed transfer is an error.
                t.map_or(Ok(Vec::new()), |t| {
                    crate::stats::read_back(t, "a histogram tensor")
                })
            })
            .collect::<Result<_, _>>()?;
        let r = data
            .iter()
            .flatten()
            .filter(|v| v.is_finite())
            .fold(0f64, |m, &v| m.max((v as f64).abs()));
        let r = if r > 0.0 { r } else { 1.0 };
        let bins = opts.hist_bins;
        let edges = histogram_edges(r, bins);
        for (s, d) in chosen.iter().zip(&data) {
            let mut counts = vec![0u64; bins];
            for &v in d.iter().filter(|v| v.is_finite()) {
                let i = (((v as f64 + r) / (2.0 * r)) * bins as f64) as usize;
                counts[i.min(bins - 1)] += 1;
            }
            out.push(LayerHistogram {
                site: s.site.clone(),
                layer: s.layer,
                tensor: kind,
                range: r,
                edges: edges.clone(),
                counts,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{pair_cosine, token_cosine};

    #[test]
    fn token_and_pair_cosines_take_their_exact_values() {
        // Three equal tokens: every pair at cosine 1; orthogonal ones: 0; a token and its
        // negative: -1.
        assert!((token_cosine(&[1.0, 2.0, 1.0, 2.0, 1.0, 2.0], 3) - 1.0).abs() < 1e-15);
        assert!(token_cosine(&[1.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 2.0], 3).abs() < 1e-15);
        assert!((token_cosine(&[1.0, 2.0, -1.0, -2.0], 2) + 1.0).abs() < 1e-15);
        // A zero token is a zero vector: its two pairs count 0, the other one 1.
        let c = token_cosine(&[1.0, 1.0, 0.0, 0.0, 2.0, 2.0], 3);
        assert!((c - 1.0 / 3.0).abs() < 1e-15, "{c}");
        // Pairs (0, 1) and (2, 3) of 2-vectors: cosines 1 and 0; an odd last row is left out.
        let z = [1.0, 1.0, 2.0, 2.0, 1.0, 0.0, 0.0, 5.0, 9.0, 9.0];
        assert!((pair_cosine(&z, [5, 2]) - 0.5).abs() < 1e-15);
        // A zero vector has no direction.
        assert!(pair_cosine(&[0.0, 0.0, 1.0, 0.0], [2, 2]).is_nan());
    }
}
