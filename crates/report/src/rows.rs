//! The row types of every CSV the runner writes, one `#[derive(Serialize)]` struct each.
//!
//! Column meanings are THEORY.md's; a doc comment on each field says what it holds. A row
//! is written as the pair `(ConfigKey, row)` so the configuration columns lead every file;
//! the same structs deserialize by column name, so `sigprop plot DIR` redraws from the
//! CSVs alone.

use serde::{Deserialize, Serialize};
pub use sigprop_nets::LayerStats;

use crate::labels::{Form, Verdict};

/// Identifies a configuration in every CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigKey {
    /// Configuration index within the experiment.
    pub config: usize,
    /// Legend label (the grid values).
    pub label: String,
    /// Architecture.
    pub arch: String,
    /// Weight initializer spec.
    pub init: String,
    /// Bias initializer spec.
    pub bias_init: String,
    /// Activation spec.
    pub activation: String,
    /// Depth.
    pub depth: usize,
    /// Width: in layers.csv and aggregate.csv the layer's own width N_l when the
    /// configuration gives explicit `widths`; otherwise (and in summary.csv) `--width`.
    pub width: usize,
    /// Batch.
    pub batch: usize,
    /// Backend.
    pub backend: String,
    /// Loss.
    pub loss: String,
    /// The `--prune` spec; empty for a dense network (and in files written before it).
    #[serde(default)]
    pub prune: String,
    /// The float type of the probed pass: f32, bf16 or f16 (f32 in files written before
    /// it).
    #[serde(default = "f32_name")]
    pub dtype: String,
    /// The loss scale of a low-precision pass: off, dynamic or a number.
    #[serde(default = "off_name")]
    pub loss_scale: String,
}

fn f32_name() -> String {
    "f32".into()
}

fn off_name() -> String {
    "off".into()
}

/// `layers.csv`: one row per run (configuration x seed) x site. Its columns are the run's
/// ([`RunCols`]), every statistic of [`LayerStats`] (each documented there, as THEORY.md
/// defines it), then the theory ([`TheoryCols`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    /// Which run.
    pub run: RunCols,
    /// The measured statistics of one site.
    pub stats: LayerStats,
    /// Signal-propagation-plot columns (residual block outputs only).
    pub spp: SppCols,
    /// Token and attention columns (sequence models only).
    pub tokens: TokenCols,
    /// Pair-correlation and activation-rank columns (`[batch, features]` sites).
    pub batch: BatchCols,
    /// Jacobian-spectrum columns (with `--jacobian`, at the layers measured).
    pub jacobian: JacobianCols,
    /// Low-precision columns (with `--dtype bf16|f16`).
    pub precision: PrecisionCols,
    /// The mean-field predictions for the same layer.
    pub theory: TheoryCols,
}

impl Serialize for LayerRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (
            &self.run,
            &self.stats,
            &self.spp,
            &self.tokens,
            &self.batch,
            &self.jacobian,
            &self.precision,
            &self.theory,
        )
            .serialize(s)
    }
}

/// The run columns of `layers.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCols {
    /// `c<config>-s<seed>`.
    pub run_id: String,
    /// Seed.
    pub seed: u64,
}

/// The signal-propagation-plot columns of `layers.csv` (Brock, De & Smith 2021), filled at
/// each residual block output (`out`), empty elsewhere. A "channel" is a unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SppCols {
    /// Mean over channels of the squared channel mean of the block output. A channel is a
    /// unit of an MLP (its mean over the batch: `(act_var - act_batch_var) + act_mean^2`,
    /// exactly, from the population statistics) or a feature map of a CNN (its mean over
    /// batch and pixels).
    pub spp_sq_mean: Option<f64>,
    /// Mean over channels of the channel variance of the block output (`act_batch_var` for
    /// an MLP; over batch and pixels for a CNN).
    pub spp_var: Option<f64>,
    /// Mean over channels of the channel variance of the scaled residual branch before the
    /// add (the block's `branch` site).
    pub spp_branch_var: Option<f64>,
}

impl SppCols {
    /// The columns of a block output `out` whose branch site is `branch`.
    pub fn of(out: &LayerStats, branch: &LayerStats) -> SppCols {
        let sq_mean = |s: &LayerStats| match s.channel {
            Some(c) => c.sq_mean,
            None => (s.act_var - s.act_batch_var) + s.act_mean * s.act_mean,
        };
        let var = |s: &LayerStats| s.channel.map_or(s.act_batch_var, |c| c.var);
        SppCols {
            spp_sq_mean: Some(sq_mean(out)),
            spp_var: Some(var(out)),
            spp_branch_var: Some(var(branch)),
        }
    }
}

/// The token, attention and weight-role columns of `layers.csv`: filled at the sites of a
/// sequence model that declare them (a transformer's residual stream, its attention
/// outputs), empty elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenCols {
    /// Mean pairwise cosine similarity between the tokens of a sequence, averaged over the
    /// sequences (1: every token points the same way, rank collapse).
    pub token_cos: Option<f64>,
    /// Effective rank of a sequence's `[tokens, features]` matrix (exp of the entropy of
    /// its normalized singular values), averaged over the sequences.
    pub token_rank: Option<f64>,
    /// Mean entropy of the attention rows in nats (at most ln(tokens)).
    pub attn_entropy: Option<f64>,
    /// Mean attention a token pays itself (`A_tt`; 1/tokens for uniform rows, 1 for the
    /// identity).
    pub attn_diag: Option<f64>,
    /// Variance of dL/dW_q, the query projection feeding this attention.
    pub wgrad_q: Option<f64>,
    /// Variance of dL/dW_k, the key projection.
    pub wgrad_k: Option<f64>,
    /// Variance of dL/dW_v, the value projection.
    pub wgrad_v: Option<f64>,
    /// Variance of dL/dW_o, the output projection (also this site's `wgrad_var`).
    pub wgrad_o: Option<f64>,
}

/// The weight-gradient variance of role `name` at a site, where reported.
fn role(s: &LayerStats, name: &str) -> Option<f64> {
    s.role_wgrad.iter().find(|(n, _)| *n == name).map(|r| r.1)
}

impl TokenCols {
    /// The columns of a site's statistics.
    pub fn of(s: &LayerStats) -> TokenCols {
        TokenCols {
            token_cos: s.tokens.map(|t| t.cos),
            token_rank: s.tokens.map(|t| t.rank),
            attn_entropy: s.attn_entropy,
            attn_diag: s.attn_diag,
            wgrad_q: role(s, "q"),
            wgrad_k: role(s, "k"),
            wgrad_v: role(s, "v"),
            wgrad_o: role(s, "o"),
        }
    }
}

/// The columns of `layers.csv` that compare the inputs of the batch, at every site of a
/// network whose sites are `[batch, features]` (`mlp`, `resmlp`, the RNN's steps); empty at
/// sites with tokens or pixels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchCols {
    /// Mean over the pairs of inputs `(0, 1), (2, 3), ...` of the cosine similarity of their
    /// pre-activation vectors `z` (Poole et al. 2016's `c^l`; `input-corr` sets the pairs'
    /// input cosine).
    pub corr: Option<f64>,
    /// Effective rank of the `[batch, features]` activation matrix `h`: exp of the entropy
    /// of its normalized singular values (1: every input has the same direction).
    pub act_rank: Option<f64>,
}

impl BatchCols {
    /// The columns of a site's statistics.
    pub fn of(s: &LayerStats) -> BatchCols {
        BatchCols {
            corr: s.batch.map(|b| b.corr),
            act_rank: s.batch.map(|b| b.act_rank),
        }
    }
}

/// The Jacobian columns of `layers.csv`: at a layer `l` whose partial Jacobian
/// `J = dh^l / dh^0` was measured (`--jacobian`), over the run's `jacobian-samples` inputs;
/// empty elsewhere. `lambda` are the eigenvalues of `J J^T`, the squared singular values
/// (`min(N_0, N_l)` of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JacobianCols {
    /// Mean over the inputs of the mean of `lambda` (the mean squared singular value).
    pub jac_m1: Option<f64>,
    /// Mean over the inputs of the variance of `lambda` (population variance over the
    /// singular values of one input's Jacobian).
    pub jac_var: Option<f64>,
    /// Mean over the inputs of the largest singular value.
    pub jac_max_sv: Option<f64>,
    /// Mean over the inputs of the smallest singular value.
    pub jac_min_sv: Option<f64>,
    /// Mean over the inputs of the condition number, largest over smallest singular value
    /// (infinite when one input's smallest is 0).
    pub jac_cond: Option<f64>,
}

impl JacobianCols {
    /// The columns of one layer's spectra (one per input; none: empty columns).
    pub fn of(spectra: &[&sigprop_nets::Spectrum]) -> JacobianCols {
        if spectra.is_empty() {
            return JacobianCols::default();
        }
        let n = spectra.len() as f64;
        let mut c = [0.0f64; 5];
        for s in spectra {
            let k = s.values.len().max(1) as f64;
            let m1 = s.values.iter().map(|v| v * v).sum::<f64>() / k;
            let var = s.values.iter().map(|v| (v * v - m1).powi(2)).sum::<f64>() / k;
            let max = s.values.first().copied().unwrap_or(f64::NAN);
            let min = s.values.last().copied().unwrap_or(f64::NAN);
            for (acc, v) in c.iter_mut().zip([m1, var, max, min, max / min]) {
                *acc += v / n;
            }
        }
        JacobianCols {
            jac_m1: Some(c[0]),
            jac_var: Some(c[1]),
            jac_max_sv: Some(c[2]),
            jac_min_sv: Some(c[3]),
            jac_cond: Some(c[4]),
        }
    }
}

/// The low-precision columns of `layers.csv`: at every site of a pass in bf16 or f16
/// (`--dtype`), what it lost against the f32 pass of the same seed and weights; empty for
/// an f32 pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrecisionCols {
    /// Fraction of the entries of z that are 0 or subnormal in the low-precision pass and
    /// neither in the f32 pass.
    pub underflow_frac: Option<f64>,
    /// Fraction of the entries of z that are infinite in the low-precision pass and finite
    /// in the f32 pass.
    pub overflow_frac: Option<f64>,
    /// `|z_low - z_f32| / |z_f32|`, norms over the site's whole tensor.
    pub rel_err: Option<f64>,
    /// `underflow_frac` of dL/dz, judged on the values the pass held (still multiplied by
    /// the loss scale).
    pub grad_underflow_frac: Option<f64>,
    /// `overflow_frac` of dL/dz (held values, loss scale included).
    pub grad_overflow_frac: Option<f64>,
    /// `rel_err` of dL/dz, the loss scale divided out.
    pub grad_rel_err: Option<f64>,
    /// The loss scale the backward pass ran with (1 without one; where a dynamic scale
    /// settled).
    pub grad_scale: Option<f64>,
}

impl PrecisionCols {
    /// The columns of a site's statistics.
    pub fn of(s: &LayerStats) -> PrecisionCols {
        match s.precision {
            Some(p) => PrecisionCols {
                underflow_frac: Some(p.underflow_frac),
                overflow_frac: Some(p.overflow_frac),
                rel_err: Some(p.rel_err),
                grad_underflow_frac: Some(p.grad_underflow_frac),
                grad_overflow_frac: Some(p.grad_overflow_frac),
                grad_rel_err: Some(p.grad_rel_err),
                grad_scale: Some(p.loss_scale),
            },
            None => PrecisionCols::default(),
        }
    }
}

/// `spectrum.csv` (after the configuration columns): every singular value measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumRow {
    /// Seed.
    pub seed: u64,
    /// The input's row in the batch (0-based).
    pub sample: usize,
    /// Layer `l` of `dh^l / dh^0`.
    pub layer: usize,
    /// Rank of the singular value, 0 for the largest.
    pub index: usize,
    /// The singular value.
    pub singular_value: f64,
}

impl SpectrumRow {
    /// One row per singular value of `spectra`, measured with `seed`, in their order.
    pub fn of(seed: u64, spectra: &[sigprop_nets::Spectrum]) -> Vec<SpectrumRow> {
        spectra
            .iter()
            .flat_map(|sp| {
                sp.values
                    .iter()
                    .enumerate()
                    .map(move |(index, &singular_value)| SpectrumRow {
                        seed,
                        sample: sp.sample,
                        layer: sp.layer,
                        index,
                        singular_value,
                    })
            })
            .collect()
    }
}

/// `spectrum_theory.csv` (after the configuration columns): the free-probability density of
/// the singular values at one measured layer and one point of its grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityRow {
    /// Layer `l` of `dh^l / dh^0`.
    pub layer: usize,
    /// `log10` of the singular value.
    pub log10_sv: f64,
    /// The density of `log10` of the singular values there (its integral over the curve is
    /// `1 - atom_at_zero`).
    pub density: f64,
    /// The probability of a singular value 0 (1/2 for ReLU), not part of the curve.
    pub atom_at_zero: f64,
}

/// The mean-field columns of `layers.csv`: empty where the theory does not apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TheoryCols {
    /// Prediction of preact_var.
    pub theory_preact_var: Option<f64>,
    /// Prediction of act_var.
    pub theory_act_var: Option<f64>,
    /// Prediction of grad_var.
    pub theory_grad_var: Option<f64>,
    /// Prediction of wgrad_var.
    pub theory_wgrad_var: Option<f64>,
    /// Prediction of corr (the c-map from the input pairs' cosine, with `input-corr`).
    pub theory_corr: Option<f64>,
    /// Prediction of jac_m1 (free probability; docs/theory.md).
    pub theory_jac_m1: Option<f64>,
    /// Prediction of jac_var.
    pub theory_jac_var: Option<f64>,
}

/// `aggregate.csv` (tidy, long): one row per configuration x site x layer x statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggRow {
    /// Site.
    pub site: String,
    /// Layer.
    pub layer: usize,
    /// The model node of the site (a graph model's); empty for the built-in architectures
    /// (and in files written before it).
    #[serde(default)]
    pub node: String,
    /// Statistic name (a `layers.csv` column).
    pub stat: String,
    /// Seeds aggregated.
    pub n: usize,
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds (n - 1; empty for one seed).
    pub sd: Option<f64>,
    /// Lower end of the 95% t-interval of the mean (empty for one seed).
    pub ci95_lo: Option<f64>,
    /// Upper end of the 95% t-interval of the mean.
    pub ci95_hi: Option<f64>,
    /// Smallest value over seeds (NaN if any seed's value is NaN).
    pub min: f64,
    /// Largest value over seeds.
    pub max: f64,
    /// Mean-field prediction, where it applies.
    pub theory: Option<f64>,
}

/// `summary.csv`: one row per configuration. How the verdict is decided: trend.rs and
/// docs/verdicts.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Seeds run.
    pub seeds: usize,
    /// Least-squares slope of ln(preact_var) per layer, forward (seed means, primary site).
    pub fwd_log_slope: f64,
    /// Lower end of the 95% t-interval of that slope over seeds (each seed's own fit).
    pub fwd_slope_lo: Option<f64>,
    /// Upper end of that interval.
    pub fwd_slope_hi: Option<f64>,
    /// Least-squares slope of ln(grad_var) per layer going backward (from the last layer to
    /// the first): positive means gradients grow on their way to the input.
    pub bwd_log_slope: f64,
    /// Lower end of the 95% t-interval of that slope over seeds.
    pub bwd_slope_lo: Option<f64>,
    /// Upper end of that interval.
    pub bwd_slope_hi: Option<f64>,
    /// preact_var at the last layer over the first.
    pub fwd_ratio: f64,
    /// grad_var at the first layer over the last (backward growth).
    pub bwd_ratio: f64,
    /// Shape of the forward change: `flat`, `power-law`, `exponential` or `unknown`.
    pub fwd_form: Form,
    /// Shape of the backward change.
    pub bwd_form: Form,
    /// Exponent p of preact_var ~ l^p fitted over the layers (seed means).
    pub fwd_power: f64,
    /// Exponent p of grad_var ~ l^p (l counted from the input, as forward).
    pub bwd_power: f64,
    /// act_batch_var / act_var at the last layer: the share of the activation variance that
    /// still tells the inputs apart (1 for independent inputs, 0 once they have merged).
    pub batch_var_share: f64,
    /// Mean over seeds and inputs of the log gain `ln(|z^L|^2 / |z^1|^2)` of one input
    /// between the primary site's first and last layers (empty where a record lacks it).
    pub log_gain_mean: Option<f64>,
    /// Its variance over seeds and inputs (n - 1): the spread a finite width gives.
    pub log_gain_var: Option<f64>,
    /// Lower end of a 95% interval of `log_gain_var` (delete-one-seed jackknife with a
    /// Student t over seeds - 1 degrees of freedom, which
    /// counts the inputs of one network as the correlated samples they are; empty with one
    /// seed).
    pub log_gain_var_lo: Option<f64>,
    /// Upper end of that interval.
    pub log_gain_var_hi: Option<f64>,
    /// `stable`, `critical`, `exploding-gradients`, `vanishing-gradients`, `exploding`,
    /// `vanishing`, `collapsed` or `diverged`.
    pub verdict: Verdict,
    /// The verdict in one line with its numbers (change over the depth, depth scale next to
    /// the theory's, power-law exponents, where the values went non-finite).
    pub verdict_detail: String,
    /// Where an overflow starts, over all seeds: the first layer whose forward values (z, h)
    /// are non-finite; if the forward pass is finite but gradients are not, the last layer
    /// with a non-finite gradient (the first one the backward pass reaches). Empty if none.
    pub first_nonfinite_layer: Option<usize>,
    /// Seeds with any non-finite value.
    pub nonfinite_seeds: usize,
    /// LSUV rescalings summed over layers, mean over seeds (empty for other schemes).
    pub lsuv_iterations: Option<f64>,
    /// Mean-field chi_1 of the configuration (empty where not applicable).
    pub theory_chi1: Option<f64>,
    /// Measured depth scale of `corr`'s approach to the c-map's fixed point `c*`, in layers
    /// (trend.rs `corr_depth_scale`: a log-linear fit once the distance is a tenth of its
    /// largest, above the seeds' noise); empty where `c*` does not apply or the fit has fewer
    /// than three layers.
    pub corr_depth_scale: Option<f64>,
    /// The same fit on the c-map's own `theory_corr` (the measured fit's exact counterpart
    /// over the same layers, finite depth included).
    pub theory_corr_depth_scale: Option<f64>,
    /// The c-map's asymptotic depth scale `xi_c` (Schoenholz et al. 2017).
    pub theory_xi_c: Option<f64>,
    /// Leading-order finite-width mean of the log gain (sigprop_theory::log_gain; an MLP
    /// with independent weight entries).
    pub theory_log_gain_mean: Option<f64>,
    /// Its variance: `5 (L - 1) / N` for ReLU at equal widths, the sum over layers of
    /// `(kappa - 1) / N_l` damped by the length map's slope in general.
    pub theory_log_gain_var: Option<f64>,
    /// The unit-scale audit (Blake et al. 2023, 2024): the largest `|ln|` of any
    /// `preact_var`, `act_var`, `grad_var` or `weight_var` (seed means, every site and
    /// layer; zero variances left out). 0 when every tensor has unit variance, 0.69 when
    /// the farthest is a factor 2 off.
    #[serde(default)]
    pub unit_scale: Option<f64>,
    /// Where that is: `stat at site layer`.
    #[serde(default)]
    pub unit_scale_at: Option<String>,
}

/// `histograms.csv`: seed 0's fixed-bin histograms at the chosen layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistRow {
    /// Configuration index.
    pub config: usize,
    /// Legend label.
    pub label: String,
    /// Site.
    pub site: String,
    /// Layer.
    pub layer: usize,
    /// `preact`, `act` or `grad`.
    pub tensor: String,
    /// Bin index.
    pub bin: usize,
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Entries in the bin.
    pub count: u64,
}

/// `grid.csv`: which grid values made each configuration (for two-parameter charts).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct GridRow {
    /// Configuration index.
    pub config: usize,
    /// Grid key.
    pub key: String,
    /// Its value, as written.
    pub value: String,
}
