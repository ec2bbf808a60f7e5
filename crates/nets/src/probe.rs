//! One probed forward and backward pass, turned into per-layer statistics.
//!
//! Inputs, loss targets and weights are drawn on the host from keyed streams (seed, name),
//! so every backend sees the same numbers. Each site's z and h get zero probe leaves; after
//! `backward`, `probe.grad()` is exactly dL/dz and dL/dh. Statistics are reduced on the
//! device (see `stats.rs`); only the few layers chosen for histograms are copied whole.

use serde::{Deserialize, Serialize};

use crate::arch::ResolvedNet;
use crate::stats::LayerStats;

#[cfg(feature = "burn")]
mod pass;
#[cfg(feature = "burn")]
pub use pass::{forward_plain, probe};
#[cfg(feature = "burn")]
pub(crate) use pass::{host_var, probe_seeds};

/// Options of a probed pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeOptions {
    /// Batch size.
    pub batch: usize,
    /// Layers (1-based) whose z, h and dL/dz get histograms.
    pub hist_layers: Vec<usize>,
    /// Bins of each histogram.
    pub hist_bins: usize,
    /// Singular values of the input-output Jacobian (and of partial ones), if asked.
    #[serde(default)]
    pub jacobian: Option<crate::jacobian::JacobianOptions>,
    /// A pass in low precision (`--dtype bf16|f16`), measured against the f32 pass of the
    /// same seed and weights; `None` is the f32 pass alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::precision::PrecisionOptions>,
}

/// A fixed-bin histogram of one tensor at one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerHistogram {
    /// Site name.
    pub site: String,
    /// Layer.
    pub layer: usize,
    /// `preact` (z), `act` (h) or `grad` (dL/dz).
    pub tensor: &'static str,
    /// Half-width of the binned interval [-range, range]: the largest finite |value| of the
    /// tensor kind over the chosen layers (1 if all are zero).
    pub range: f64,
    /// Bin edges, `bins + 1` of them ([`histogram_edges`] of `range`), shared by every chosen layer of the same tensor kind.
    pub edges: Vec<f64>,
    /// Counts per bin (non-finite entries are not counted).
    pub counts: Vec<u64>,
}

/// Wall time of each phase, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Host fill of the weights (and LSUV) plus upload.
    pub init_s: f64,
    /// Forward and backward pass, synchronised.
    pub forward_backward_s: f64,
    /// Statistics reduction and read-back.
    pub stats_s: f64,
}

/// Everything one probed pass measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// One row per site, in forward order.
    pub stats: Vec<LayerStats>,
    /// Each input's log gain `ln(|z^L|^2 / |z^1|^2)` between the primary site's first and
    /// last layers (`z` of one input: all its features, tokens and pixels), in batch order.
    pub log_gains: Vec<f64>,
    /// Histograms of the chosen layers.
    pub histograms: Vec<LayerHistogram>,
    /// Jacobian spectra (with [`ProbeOptions::jacobian`]).
    pub spectra: Vec<crate::jacobian::Spectrum>,
    /// Timings.
    pub times: PhaseTimes,
}

/// Whether `seeds` seeds of `net` with `opts` can run as one pass over stacked parameters
/// ([`probe_seeds`]): the architecture takes them, and no seed wants histograms or a
/// Jacobian (both measured seed by seed), nor a low-precision pass (measured against its
/// own f32 pass).
pub fn batchable(net: &ResolvedNet, opts: &ProbeOptions) -> bool {
    net.config.arch.seed_batching()
        && opts.hist_layers.is_empty()
        && opts.jacobian.is_none()
        && opts.precision.is_none()
}

/// The `bins + 1` edges of a histogram over [-range, range] in equal bins: the one formula
/// for the histograms a run measures and for those read back from a results store.
pub fn histogram_edges(range: f64, bins: usize) -> Vec<f64> {
    (0..=bins)
        .map(|i| -range + 2.0 * range * i as f64 / bins as f64)
        .collect()
}
