//! The initial weights of a seed with every data-driven step applied, staged on a device
//! ahead of its pass, and measured: the entry points the runner schedules. Needs the
//! `burn` feature.

use std::time::Instant;

use burn::tensor::Device;

use crate::arch::ResolvedNet;
use crate::build::build_params;
use crate::error::NetError;
use crate::params::Params;
use crate::probe::{ProbeOptions, ProbeResult};
use crate::prune::PrunedTensor;
use crate::tune::Tuning;
use crate::{forward, lsuv, probe, prune, tune};

/// One measured network: its statistics and, for LSUV, the rescalings made per layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The probed pass.
    pub result: ProbeResult,
    /// LSUV per layer: rescalings made and the final target variance (empty for other
    /// schemes).
    pub lsuv: Vec<(usize, f64)>,
    /// What `--prune` kept of each pruned tensor (empty without).
    pub pruned: Vec<PrunedTensor>,
    /// What `metainit` or `gradinit` did.
    pub tuning: Option<Tuning>,
}

/// The initial weights of `net` for `seed`: filled, then LSUV's rescalings (on a batch of
/// `batch`) when the scheme is LSUV, which are returned per layer, then the scales of
/// `metainit` or `gradinit` and `--prune`'s masks (see [`initial_params_pruned`]).
pub fn initial_params(
    net: &ResolvedNet,
    seed: u64,
    batch: usize,
    device: &Device,
) -> Result<(Params, Vec<(usize, f64)>), NetError> {
    initial_params_pruned(net, seed, batch, device).map(|i| (i.params, i.lsuv))
}

/// A network's initial weights and what the data-driven steps did to them.
#[derive(Debug, Clone)]
pub struct Initial {
    /// The weights (pruned ones 0, with their masks).
    pub params: Params,
    /// LSUV per layer: rescalings made and the final target variance.
    pub lsuv: Vec<(usize, f64)>,
    /// What `--prune` kept of each pruned tensor.
    pub pruned: Vec<PrunedTensor>,
    /// What `metainit` or `gradinit` did.
    pub tuning: Option<Tuning>,
}

/// [`initial_params`], then the scales of `metainit` or `gradinit`, then `--prune`'s masks (on a batch of `batch`), whose result per
/// pruned tensor is returned too.
pub fn initial_params_pruned(
    net: &ResolvedNet,
    seed: u64,
    batch: usize,
    device: &Device,
) -> Result<Initial, NetError> {
    let mut params = build_params(net, seed)?;
    let lsuv = lsuv::lsuv(net, &mut params, seed, batch, device)?;
    let tuning = tune::tune(net, &mut params, seed, batch, device)?;
    let pruned = prune::prune(net, &mut params, seed, batch, device)?;
    Ok(Initial {
        params,
        lsuv,
        pruned,
        tuning,
    })
}

/// A network's initial weights for one seed, filled on the host and uploaded to the device
/// (without autodiff): everything a probed pass needs before it starts. [`stage`] can run
/// on another thread while the device computes the previous seed's pass.
pub struct Staged {
    init: Initial,
    uploaded: forward::DeviceParams,
    seed: u64,
    /// Seconds the fill, the data-driven steps and the upload took.
    init_s: f64,
}

/// Fill `net`'s weights for `seed` (then LSUV, `metainit`/`gradinit` and `--prune` where
/// asked, on a batch of `batch`) and upload them to `device`.
pub fn stage(
    net: &ResolvedNet,
    seed: u64,
    batch: usize,
    device: &Device,
) -> Result<Staged, NetError> {
    let t0 = Instant::now();
    let init = initial_params_pruned(net, seed, batch, device)?;
    let uploaded = forward::upload(&init.params, device, false);
    let _ = device.sync();
    Ok(Staged {
        init,
        uploaded,
        seed,
        init_s: t0.elapsed().as_secs_f64(),
    })
}

/// The probed pass of weights [`stage`]d for the same `net` and seed.
pub fn measure_staged(
    net: &ResolvedNet,
    staged: Staged,
    opts: &ProbeOptions,
    device: &Device,
) -> Result<Measured, NetError> {
    measure_staged_seeds(net, vec![staged], opts, device)?
        .pop()
        .ok_or_else(|| NetError::Readback {
            what: "the probed pass",
            why: "it measured no seed".into(),
        })
}

/// The probed pass of several seeds [`stage`]d for the same `net`, run as one pass over
/// their stacked weights where [`probe::batchable`] allows (one seed at a time otherwise).
/// Each seed's numbers are those of its solo [`measure_staged`].
pub fn measure_staged_seeds(
    net: &ResolvedNet,
    staged: Vec<Staged>,
    opts: &ProbeOptions,
    device: &Device,
) -> Result<Vec<Measured>, NetError> {
    if staged.len() > 1 && !probe::batchable(net, opts) {
        return staged
            .into_iter()
            .map(|s| measure_staged(net, s, opts, device))
            .collect();
    }
    let mut inits = Vec::with_capacity(staged.len());
    let mut uploaded = Vec::with_capacity(staged.len());
    let mut seeds = Vec::with_capacity(staged.len());
    let mut init_s = Vec::with_capacity(staged.len());
    for s in staged {
        inits.push(s.init);
        uploaded.push(s.uploaded);
        seeds.push(s.seed);
        init_s.push(s.init_s);
    }
    let stacked = forward::DeviceParams::stack(uploaded)?;
    let params: Vec<&Params> = inits.iter().map(|i| &i.params).collect();
    let results = probe::probe_seeds(net, &params, stacked, &seeds, opts, device)?;
    Ok(results
        .into_iter()
        .zip(inits)
        .zip(init_s)
        .map(|((mut result, init), s)| {
            result.times.init_s += s;
            Measured {
                result,
                lsuv: init.lsuv,
                pruned: init.pruned,
                tuning: init.tuning,
            }
        })
        .collect())
}

/// Build the network for `seed` (weights, then LSUV when asked) and run one probed pass.
pub fn measure(
    net: &ResolvedNet,
    seed: u64,
    opts: &ProbeOptions,
    device: &Device,
) -> Result<Measured, NetError> {
    let staged = stage(net, seed, opts.batch, device)?;
    measure_staged(net, staged, opts, device)
}
