//! Pruning at initialization on Burn: random, magnitude, SNIP, GraSP and SynFlow scores,
//! the masks they cut, and the lottery ticket's masks. Needs the `burn` feature.

use burn::tensor::{Device, Tensor, TensorData};
use sigprop_init::spec::fmt_f64;
use sigprop_init::{Activation, Key, fans};

use crate::arch::ResolvedNet;
use crate::build::{check_prune, declare};
use crate::error::NetError;
use crate::forward::{DeviceParam, DeviceParams, Plain, upload};
use crate::handles::ParamId;
use crate::inputs::loss;
use crate::options::PruneMethod;
use crate::params::Params;
use crate::stats::read_back;

use super::PrunedTensor;

/// The tensors `--prune` applies to: two or more dimensions, not the head.
pub(crate) fn prunable(net: &ResolvedNet) -> Vec<ParamId> {
    let d = declare(net);
    d.jobs
        .iter()
        .enumerate()
        .filter(|(i, j)| {
            j.shape.len() >= 2 && d.head != Some(ParamId(*i)) && !crate::params::is_table(&j.path)
        })
        .map(|(i, _)| ParamId(i))
        .collect()
}

/// Prune `params` in place by `net`'s `--prune` spec (nothing without one): zero the pruned
/// entries and record each tensor's mask. Returns what each pruned tensor kept.
pub fn prune(
    net: &ResolvedNet,
    params: &mut Params,
    seed: u64,
    batch: usize,
    device: &Device,
) -> Result<Vec<PrunedTensor>, NetError> {
    let Some(spec) = net.prune else {
        return Ok(Vec::new());
    };
    check_prune(net, &spec)?;
    let ids = prunable(net);
    let mut degenerate = false;
    let all_zero = |scores: &[Vec<f64>]| scores.iter().flatten().all(|&v| v == 0.0);
    let mut keep: Vec<Vec<bool>> = ids
        .iter()
        .map(|id| vec![true; params.tensors[id.0].data.len()])
        .collect();
    match spec.method {
        PruneMethod::Random => {
            for (k, id) in ids.iter().enumerate() {
                let t = &params.tensors[id.0];
                let scores = vec![keyed_uniform(
                    seed,
                    &format!("prune.{}", t.path),
                    t.data.len(),
                )];
                let mut one = vec![keep[k].clone()];
                cut(&scores, &mut one, spec.sparsity);
                keep[k] = one.pop().unwrap_or_default();
            }
        }
        PruneMethod::Magnitude => {
            let scores = ids
                .iter()
                .map(|id| {
                    params.tensors[id.0]
                        .data
                        .iter()
                        .map(|&w| f64::from(w).abs())
                        .collect()
                })
                .collect::<Vec<Vec<f64>>>();
            degenerate = all_zero(&scores);
            cut(&scores, &mut keep, spec.sparsity);
        }
        PruneMethod::Snip => {
            let g = grads(net, params, &ids, seed, batch, device, None)?;
            let scores = ids
                .iter()
                .zip(&g)
                .map(|(id, g)| {
                    let w = &params.tensors[id.0].data;
                    w.iter()
                        .zip(g)
                        .map(|(&w, &g)| (f64::from(w) * g).abs())
                        .collect()
                })
                .collect::<Vec<Vec<f64>>>();
            degenerate = all_zero(&scores);
            cut(&scores, &mut keep, spec.sparsity);
        }
        PruneMethod::Grasp => {
            let g = grads(net, params, &ids, seed, batch, device, None)?;
            let (wn, gn) = ids.iter().zip(&g).fold((0.0, 0.0), |(a, b), (id, g)| {
                let w = &params.tensors[id.0].data;
                (
                    a + w.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>(),
                    b + g.iter().map(|v| v * v).sum::<f64>(),
                )
            });
            // A step of 1e-3 of the weights' norm along g: well above f32 rounding of the
            // gradients, small against the curvature's scale.
            let step = if gn > 0.0 {
                1e-3 * (wn / gn).sqrt()
            } else {
                0.0
            };
            let scores = if step > 0.0 {
                let g2 = grads(net, params, &ids, seed, batch, device, Some((&g, step)))?;
                ids.iter()
                    .zip(g.iter().zip(&g2))
                    .map(|(id, (g, g2))| {
                        let w = &params.tensors[id.0].data;
                        w.iter()
                            .zip(g.iter().zip(g2))
                            .map(|(&w, (a, b))| f64::from(w) * (b - a) / step)
                            .collect()
                    })
                    .collect::<Vec<Vec<f64>>>()
            } else {
                ids.iter()
                    .map(|id| vec![0.0; params.tensors[id.0].data.len()])
                    .collect()
            };
            degenerate = all_zero(&scores);
            cut(&scores, &mut keep, spec.sparsity);
        }
        PruneMethod::Synflow => {
            for round in 1..=spec.iterations {
                let s = 1.0 - (1.0 - spec.sparsity).powf(round as f64 / spec.iterations as f64);
                let scores = synflow_scores(net, params, &ids, &keep, device)?;
                degenerate |= all_zero(&scores);
                cut(&scores, &mut keep, s);
            }
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    // Scores that are all 0 (a network without gradient, or without any path) would prune
    // by position alone: refuse instead.
    if spec.sparsity > 0.0 && degenerate {
        return Err(NetError::BadConfig {
            key: "prune",
            value: spec.to_string(),
            allowed: format!(
                "a network whose {} scores are not all 0 (this one has no gradient or weights to rank)",
                spec.method.as_str()
            ),
        });
    }
    for (id, k) in ids.iter().zip(keep) {
        let t = &mut params.tensors[id.0];
        for (w, &kept) in t.data.iter_mut().zip(&k) {
            if !kept {
                *w = 0.0;
            }
        }
        out.push(PrunedTensor {
            path: t.path.clone(),
            kept: k.iter().filter(|&&b| b).count(),
            total: k.len(),
        });
        t.mask = Some(k);
    }
    Ok(out)
}

/// One round of the lottery ticket's two arms (Frankle & Carbin 2019): `ticket` keeps, in
/// each prunable tensor, the `1 - sparsity` fraction of entries largest in magnitude after
/// training (`trained`), at their values in `initial` (the weights rewound to, whose masks
/// are kept: entries they removed go first); `random` keeps as many entries of each tensor,
/// chosen uniformly at random (key `lottery.random.<path>`), also at their `initial` values.
/// Both record their masks, so training keeps the removed entries at 0. Iterative pruning
/// calls it once a round with the last round's ticket as `initial`.
pub fn lottery_masks(
    net: &ResolvedNet,
    initial: &Params,
    trained: &Params,
    sparsity: f64,
    seed: u64,
) -> Result<(Params, Params), NetError> {
    if !(0.0..1.0).contains(&sparsity) {
        return Err(NetError::BadConfig {
            key: "lottery",
            value: fmt_f64(sparsity),
            allowed: "a sparsity in [0, 1)".into(),
        });
    }
    let mut ticket = initial.clone();
    let mut random = initial.clone();
    for id in prunable(net) {
        let t = &initial.tensors[id.0];
        let n = t.data.len();
        let kept_before = t.mask.clone().unwrap_or_else(|| vec![true; n]);
        let magnitude: Vec<Vec<f64>> = vec![
            trained.tensors[id.0]
                .data
                .iter()
                .map(|&w| f64::from(w).abs())
                .collect(),
        ];
        let mut k_ticket = vec![kept_before.clone()];
        cut(&magnitude, &mut k_ticket, sparsity);
        let draws = vec![keyed_uniform(
            seed,
            &format!("lottery.random.{}", t.path),
            n,
        )];
        let mut k_random = vec![kept_before];
        cut(&draws, &mut k_random, sparsity);
        for (params, keep) in [(&mut ticket, k_ticket), (&mut random, k_random)] {
            let keep = keep.into_iter().next().unwrap_or_default();
            let dst = &mut params.tensors[id.0];
            for (w, &k) in dst.data.iter_mut().zip(&keep) {
                if !k {
                    *w = 0.0;
                }
            }
            dst.mask = Some(keep);
        }
    }
    Ok((ticket, random))
}

/// `n` draws of `U(0, 1)` from the key `(seed, name)`: the scores of a random mask.
pub(crate) fn keyed_uniform(seed: u64, name: &str, n: usize) -> Vec<f64> {
    let mut u = vec![0f32; n];
    sigprop_init::fill_uniform(&Key::new(seed, name), &mut u, 0.0, 1.0);
    u.into_iter().map(f64::from).collect()
}

/// Keep the highest scores: remove `floor(s * N)` entries of the `N` in `scores` (all
/// tensors together), the lowest first, entries already removed (`keep` false) before any
/// other, ties by position. NaN scores count as lowest.
fn cut(scores: &[Vec<f64>], keep: &mut [Vec<bool>], s: f64) {
    let total: usize = scores.iter().map(Vec::len).sum();
    // 0.29 * 100 is 28.999999999999996 in f64: snap before the floor.
    let remove = (s * total as f64 + 1e-9).floor() as usize;
    let mut order: Vec<(bool, f64, usize, usize)> = Vec::with_capacity(total);
    for (t, (sc, k)) in scores.iter().zip(keep.iter()).enumerate() {
        for (i, (&v, &kept)) in sc.iter().zip(k).enumerate() {
            let v = if v.is_nan() { f64::NEG_INFINITY } else { v };
            order.push((kept, v, t, i));
        }
    }
    order.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    for &(_, _, t, i) in order.iter().take(remove) {
        keep[t][i] = false;
    }
}

/// The loss's gradients with respect to the tensors `ids` on the pruning batch (its own key,
/// `prune.input`), as host `f64`; with `shift = Some((g, d))` at the weights `w + d g`.
fn grads(
    net: &ResolvedNet,
    params: &Params,
    ids: &[ParamId],
    seed: u64,
    batch: usize,
    device: &Device,
    shift: Option<(&[Vec<f64>], f64)>,
) -> Result<Vec<Vec<f64>>, NetError> {
    let mut shifted;
    let params = match shift {
        Some((g, d)) => {
            shifted = params.clone();
            for (id, g) in ids.iter().zip(g) {
                for (w, g) in shifted.tensors[id.0].data.iter_mut().zip(g) {
                    *w = (f64::from(*w) + d * g) as f32;
                }
            }
            &shifted
        }
        None => params,
    };
    let ad = device.clone().autodiff();
    let declared = declare(net);
    let p = upload(params, &ad, true);
    let shape = net.config.arch.input_shape(net, batch);
    let x = Tensor::<2>::from_data(
        TensorData::new(
            crate::build::net_input(net, seed, "prune.input", shape, || {
                net.config.arch.input_keyed(seed, "prune.input", shape)
            })?,
            shape,
        ),
        &ad,
    );
    let out = declared.layout.forward(net, &p, x, &mut Plain);
    let loss = loss(net.config.loss, &p, declared.head, out, seed, "loss", &ad)?;
    let g = loss.backward();
    read_grads(&p, ids, &g, params)
}

/// The gradients of `ids` in `g`, as host `f64` (zeros for a tensor without one).
pub(crate) fn read_grads(
    p: &DeviceParams,
    ids: &[ParamId],
    g: &burn::tensor::Gradients,
    params: &Params,
) -> Result<Vec<Vec<f64>>, NetError> {
    ids.iter()
        .map(|id| {
            let n = params.tensors[id.0].data.len();
            let v = match p.get(*id) {
                Some(DeviceParam::D2(w)) => w.grad(g).map(|t| t.reshape([n])),
                Some(DeviceParam::D4(w)) => w.grad(g).map(|t| t.reshape([n])),
                Some(DeviceParam::D1(w)) => w.grad(g),
                None => None,
            };
            Ok(match v {
                Some(t) => read_back(t, "a pruning gradient")?
                    .into_iter()
                    .map(f64::from)
                    .collect(),
                None => vec![0.0; n],
            })
        })
        .collect()
}

/// SynFlow's scores `|w dR/dw|` for the linearized network with the current `keep` masks.
fn synflow_scores(
    net: &ResolvedNet,
    params: &Params,
    ids: &[ParamId],
    keep: &[Vec<bool>],
    device: &Device,
) -> Result<Vec<Vec<f64>>, NetError> {
    let mut lin = net.clone();
    lin.activation = Activation::Linear;
    let declared = declare(net);
    let mut abs = params.clone();
    for t in abs.tensors.iter_mut() {
        t.data.iter_mut().for_each(|v| *v = 0.0);
    }
    for ((id, k), job) in ids
        .iter()
        .zip(keep)
        .zip(ids.iter().map(|id| &declared.jobs[id.0]))
    {
        let src = &params.tensors[id.0].data;
        let fan_in = match fans(&job.shape, job.layout) {
            Ok(f) => f.fan_in as f64,
            Err(e) => return Err(NetError::init(job.path.clone(), e)),
        };
        let kept: Vec<f64> = src
            .iter()
            .zip(k)
            .map(|(&w, &kk)| if kk { f64::from(w).abs() } else { 0.0 })
            .collect();
        let mean = kept.iter().sum::<f64>() / kept.len().max(1) as f64;
        let c = fan_in * mean;
        let dst = &mut abs.tensors[id.0].data;
        for (d, v) in dst.iter_mut().zip(&kept) {
            *d = if c > 0.0 { (v / c) as f32 } else { 0.0 };
        }
    }
    let ad = device.clone().autodiff();
    let p = upload(&abs, &ad, true);
    let shape = lin.config.arch.input_shape(&lin, 1);
    let x = Tensor::<2>::ones(shape, &ad);
    let out = declared.layout.forward(&lin, &p, x, &mut Plain);
    let g = out.sum().backward();
    let grads = read_grads(&p, ids, &g, &abs)?;
    Ok(ids
        .iter()
        .zip(grads)
        .map(|(id, g)| {
            abs.tensors[id.0]
                .data
                .iter()
                .zip(g)
                .map(|(&w, g)| (f64::from(w) * g).abs())
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_removes_the_lowest_scores_globally_and_keeps_removed_entries_removed() {
        let scores = vec![vec![5.0, 1.0, 3.0], vec![2.0, 4.0, 0.5]];
        let mut keep = vec![vec![true; 3], vec![true; 3]];
        cut(&scores, &mut keep, 0.5);
        assert_eq!(
            keep,
            vec![vec![true, false, true], vec![false, true, false]]
        );
        // An entry already removed goes first even with a high score.
        let mut keep = vec![vec![false, true, true], vec![true; 3]];
        cut(&scores, &mut keep, 0.34);
        assert_eq!(keep, vec![vec![false, true, true], vec![true, true, false]]);
    }
}
