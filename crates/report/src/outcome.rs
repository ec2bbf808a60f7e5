//! What a finished configuration produced, in memory: the probed pass's rows, summary and
//! extras ([`Outcome`]), and a trained configuration's runs and summary ([`TrainOutcome`]).
//! The executors and studies build these; the reports and charts read them, as the
//! [`Tables`] of a finished experiment. Not how they are computed (execute.rs, train.rs) nor
//! stored (store.rs).

use std::path::Path;

use serde::{Deserialize, Serialize};
use sigprop_nets::{PhaseTimes, TrainResult};
use sigprop_spec::error::RunnerError;
use sigprop_spec::settings::RunSpec;

use crate::output::{grid_csv, keyed_csv, plain_csv, read_keyed, read_plain, write_atomic};
use crate::rows::{
    AggRow, ConfigKey, DensityRow, GridRow, HistRow, LayerRow, SpectrumRow, SummaryRow,
};
use crate::store::TuningRecord;

/// Each pruned tensor of one run: its path, entries kept and entries in all.
pub type PrunedTensors = Vec<(String, usize, usize)>;

/// Everything measured for one configuration.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The configuration.
    pub spec: RunSpec,
    /// Its CSV key.
    pub key: ConfigKey,
    /// layers.csv rows, seeds in order.
    pub layers: Vec<LayerRow>,
    /// aggregate.csv rows.
    pub aggs: Vec<AggRow>,
    /// summary.csv row.
    pub summary: SummaryRow,
    /// Seed 0's histograms.
    pub hists: Vec<HistRow>,
    /// Every measured singular value (with `--jacobian`), seeds in order.
    pub spectra: Vec<SpectrumRow>,
    /// The free-probability density of the singular values at the measured layers, where
    /// it is a curve.
    pub densities: Vec<DensityRow>,
    /// Per-seed phase times.
    pub times: Vec<(u64, PhaseTimes)>,
    /// Device description.
    pub device: String,
    /// sigma_w of a critical scheme.
    pub critical_sigma_w: Option<f64>,
    /// `--prune`, per seed: each pruned tensor's path, entries kept and entries in all.
    pub pruned: Vec<(u64, PrunedTensors)>,
    /// `metainit` or `gradinit`, per seed: what the tuning did.
    pub tuning: Vec<(u64, TuningRecord)>,
}

impl Outcome {
    /// The key of the rows of `layer`: its `width` is the layer's own (N_layer) when the
    /// configuration gives explicit `widths`, else the configuration's width.
    pub fn key_at(&self, layer: usize) -> ConfigKey {
        let mut k = self.key.clone();
        if let Some(&n) = self.spec.net.widths.get(layer) {
            k.width = n;
        }
        k
    }
}

/// The tables charts and the report are drawn from, keyed as their CSVs hold them: built
/// from the outcomes of a finished experiment ([`Tables::of`]), or read back from a folder's
/// CSVs ([`Tables::read`], `sigprop plot`). The CSVs store every number exactly, so both give
/// the same charts.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// `aggregate.csv`.
    pub aggs: Vec<(ConfigKey, AggRow)>,
    /// `summary.csv`.
    pub summaries: Vec<(ConfigKey, SummaryRow)>,
    /// `histograms.csv`.
    pub hists: Vec<HistRow>,
    /// `grid.csv`.
    pub grid: Vec<GridRow>,
    /// `spectrum.csv` (empty without `--jacobian`).
    pub spectra: Vec<(ConfigKey, SpectrumRow)>,
    /// `spectrum_theory.csv` (empty where no density applies).
    pub densities: Vec<(ConfigKey, DensityRow)>,
}

impl Tables {
    /// The tables of `done`, in its order.
    pub fn of(done: &[&Outcome]) -> Tables {
        Tables {
            aggs: done
                .iter()
                .flat_map(|o| o.aggs.iter().map(|r| (o.key_at(r.layer), r.clone())))
                .collect(),
            summaries: done
                .iter()
                .map(|o| (o.key.clone(), o.summary.clone()))
                .collect(),
            hists: done.iter().flat_map(|o| o.hists.iter().cloned()).collect(),
            grid: done
                .iter()
                .flat_map(|o| {
                    o.spec.grid.iter().map(|(k, v)| GridRow {
                        config: o.spec.index,
                        key: k.clone(),
                        value: v.clone(),
                    })
                })
                .collect(),
            spectra: done
                .iter()
                .flat_map(|o| o.spectra.iter().map(|r| (o.key_at(r.layer), r.clone())))
                .collect(),
            densities: done
                .iter()
                .flat_map(|o| o.densities.iter().map(|r| (o.key_at(r.layer), r.clone())))
                .collect(),
        }
    }

    /// Write the tables into `out` (`spectrum.csv` and `spectrum_theory.csv` only where
    /// they have rows).
    pub fn write(&self, out: &Path) -> Result<(), RunnerError> {
        write_atomic(&out.join(AGGREGATE_CSV), &keyed_csv(&self.aggs)?)?;
        write_atomic(&out.join(SUMMARY_CSV), &keyed_csv(&self.summaries)?)?;
        write_atomic(&out.join(HISTOGRAMS_CSV), &plain_csv(&self.hists)?)?;
        if !self.spectra.is_empty() {
            write_atomic(&out.join(SPECTRUM_CSV), &keyed_csv(&self.spectra)?)?;
        }
        if !self.densities.is_empty() {
            write_atomic(&out.join(SPECTRUM_THEORY_CSV), &keyed_csv(&self.densities)?)?;
        }
        write_atomic(&out.join(GRID_CSV), &grid_csv(&self.grid)?)
    }

    /// The tables of the folder `dir`, read back from its CSVs; an error naming the first
    /// of the required ones that is missing.
    pub fn read(dir: &Path) -> Result<Tables, RunnerError> {
        for f in [AGGREGATE_CSV, SUMMARY_CSV, HISTOGRAMS_CSV, GRID_CSV] {
            if !dir.join(f).is_file() {
                return Err(RunnerError::input(format!(
                    "{}: no {f} (not a sigprop output folder?)",
                    dir.display()
                )));
            }
        }
        // Written only where Jacobians were measured (and where the theory is a curve).
        fn optional<R: serde::de::DeserializeOwned>(
            path: &Path,
        ) -> Result<Vec<(ConfigKey, R)>, RunnerError> {
            if path.is_file() {
                read_keyed(path)
            } else {
                Ok(Vec::new())
            }
        }
        Ok(Tables {
            aggs: read_keyed(&dir.join(AGGREGATE_CSV))?,
            summaries: read_keyed(&dir.join(SUMMARY_CSV))?,
            hists: read_plain(&dir.join(HISTOGRAMS_CSV))?,
            grid: read_plain(&dir.join(GRID_CSV))?,
            spectra: optional(&dir.join(SPECTRUM_CSV))?,
            densities: optional(&dir.join(SPECTRUM_THEORY_CSV))?,
        })
    }
}

/// The file names of [`Tables`].
const AGGREGATE_CSV: &str = "aggregate.csv";
const SUMMARY_CSV: &str = "summary.csv";
const HISTOGRAMS_CSV: &str = "histograms.csv";
const GRID_CSV: &str = "grid.csv";
const SPECTRUM_CSV: &str = "spectrum.csv";
const SPECTRUM_THEORY_CSV: &str = "spectrum_theory.csv";

/// Which arm of the lottery ticket procedure a configuration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// The network as configured (without `lottery`, the only arm).
    Dense,
    /// The winning ticket: the dense run's largest final weights, rewound and retrained.
    Ticket,
    /// A random mask of the same per-tensor sparsity on the initial weights, retrained.
    Random,
}

impl Arm {
    /// The label suffix and `arm` text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Arm::Dense => "dense",
            Arm::Ticket => "ticket",
            Arm::Random => "random-mask",
        }
    }
}

/// The training columns of every row: what the configuration was trained on and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainCols {
    /// `teacher`, `mixture` or `data`.
    pub task: String,
    /// The loss training minimizes: `mse` (teacher) or `cross-entropy` (mixture, data).
    /// Not the configuration's `loss` column, the loss of the probed passes at the logged
    /// steps.
    pub objective: String,
    /// `sgd`, `momentum` or `adam`.
    pub optimizer: String,
    /// Learning rate.
    pub lr: f64,
    /// Steps trained.
    pub steps: usize,
    /// `standard`, `ntk` or `mup`.
    pub param: String,
}

/// `summary.csv` of a training run: one row per configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Seeds trained.
    pub seeds: usize,
    /// Mean over seeds of the evaluation loss at step 0.
    pub loss_initial: f64,
    /// Mean over seeds of the evaluation loss at the last step (over the seeds that did not
    /// diverge).
    pub loss_final: f64,
    /// Its 95% t-interval over seeds.
    pub loss_final_lo: Option<f64>,
    /// Upper end.
    pub loss_final_hi: Option<f64>,
    /// `loss_final` over the mean initial evaluation loss of the same seeds (those that did
    /// not diverge).
    pub loss_ratio: f64,
    /// The fraction of the initial loss `steps_to_target` looks for.
    pub target: f64,
    /// Mean over the seeds that reached it of the first step whose loss is at most `target`
    /// times that seed's initial loss; empty when no seed did.
    pub steps_to_target: Option<f64>,
    /// Seeds that reached the target.
    pub reached: usize,
    /// Seeds whose loss went non-finite.
    pub diverged: usize,
    /// The first non-finite step of the first diverged seed.
    pub diverged_step: Option<usize>,
    /// Verdict from the evaluation loss: `trains` (every seed's loss at the last step is at
    /// most `target` times its loss at step 0), `partial` (some seeds'), `stalls` (none, and
    /// none diverged) or `diverged` (some seed diverged).
    pub verdict: String,
}

/// One trained configuration.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Its key.
    pub key: ConfigKey,
    /// The experiment's configuration it trains (its grid values).
    pub spec: usize,
    /// Its training columns.
    pub cols: TrainCols,
    /// The runs, seeds in order.
    pub runs: Vec<(u64, TrainResult)>,
    /// Its summary.
    pub summary: TrainSummary,
    /// Its arm of the lottery ticket procedure (`Dense` without one).
    pub arm: Arm,
}
