//! Learning-rate transfer: when `train` sweeps learning rates, the best one of each
//! configuration (the lowest mean evaluation loss at the last step among the learning
//! rates no seed diverged at), `best_lr.csv`, the chart of that loss against the learning
//! rate per configuration, and how far the best learning rate moves over the configurations
//! of each parametrization, in steps of the learning-rate grid.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sigprop_plot::{Band, variance_chart};
use sigprop_report::aggregate::key_of;
use sigprop_report::outcome::{Arm, TrainOutcome};
use sigprop_report::rows::ConfigKey;
use sigprop_spec::error::RunnerError;
use sigprop_spec::experiment::Experiment;

/// `best_lr.csv`: one row per configuration (its learning rates together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestLr {
    /// The parametrization it was trained under.
    pub param: String,
    /// Learning rates trained.
    pub lrs: usize,
    /// Of those, the ones no seed diverged at.
    pub finite: usize,
    /// The learning rate of the lowest mean evaluation loss at the last step; empty when
    /// every learning rate diverged.
    pub best_lr: Option<f64>,
    /// Its position in the learning-rate grid sorted ascending (0 the smallest).
    pub best_index: Option<usize>,
    /// The mean evaluation loss at the last step there.
    pub loss_final: Option<f64>,
    /// Its 95% interval over seeds.
    pub loss_final_lo: Option<f64>,
    /// Upper end.
    pub loss_final_hi: Option<f64>,
}

/// How far the best learning rate moves over the configurations of one parametrization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// The parametrization.
    pub param: String,
    /// Configurations with a best learning rate.
    pub configurations: usize,
    /// The smallest and largest best learning rate.
    pub lowest: f64,
    /// Largest.
    pub highest: f64,
    /// Their distance in grid steps (0: every configuration has the same best).
    pub grid_steps: usize,
}

/// The best learning rate of every configuration of `exp` over `lrs` (only with two or
/// more learning rates; the dense runs of a lottery).
pub fn best_lrs(
    exp: &Experiment,
    lrs: &[f64],
    outcomes: &[TrainOutcome],
) -> Vec<(ConfigKey, BestLr)> {
    if lrs.len() < 2 {
        return Vec::new();
    }
    let mut grid = lrs.to_vec();
    grid.sort_by(f64::total_cmp);
    exp.runs
        .iter()
        .filter_map(|spec| {
            let mine: Vec<&TrainOutcome> = outcomes
                .iter()
                .filter(|o| o.spec == spec.index && o.arm == Arm::Dense)
                .collect();
            let param = mine.first()?.cols.param.clone();
            let finite: Vec<&&TrainOutcome> = mine
                .iter()
                .filter(|o| o.summary.diverged == 0 && o.summary.loss_final.is_finite())
                .collect();
            let best = finite
                .iter()
                .min_by(|a, b| a.summary.loss_final.total_cmp(&b.summary.loss_final));
            Some((
                key_of(spec),
                BestLr {
                    param,
                    lrs: mine.len(),
                    finite: finite.len(),
                    best_lr: best.map(|o| o.cols.lr),
                    best_index: best.and_then(|o| grid.iter().position(|&l| l == o.cols.lr)),
                    loss_final: best.map(|o| o.summary.loss_final),
                    loss_final_lo: best.and_then(|o| o.summary.loss_final_lo),
                    loss_final_hi: best.and_then(|o| o.summary.loss_final_hi),
                },
            ))
        })
        .collect()
}

/// Per parametrization (in order of appearance), how far the best learning rate moves.
pub fn transfers(best: &[(ConfigKey, BestLr)], lrs: &[f64]) -> Vec<Transfer> {
    let mut grid = lrs.to_vec();
    grid.sort_by(f64::total_cmp);
    let mut params: Vec<&str> = Vec::new();
    for (_, b) in best {
        if !params.contains(&b.param.as_str()) {
            params.push(&b.param);
        }
    }
    params
        .into_iter()
        .filter_map(|p| {
            let idx: Vec<usize> = best
                .iter()
                .filter(|(_, b)| b.param == p)
                .filter_map(|(_, b)| b.best_index)
                .collect();
            let (lo, hi) = (*idx.iter().min()?, *idx.iter().max()?);
            Some(Transfer {
                param: p.to_string(),
                configurations: idx.len(),
                lowest: grid[lo],
                highest: grid[hi],
                grid_steps: hi - lo,
            })
        })
        .collect()
}

impl Transfer {
    /// One line: `completep: best lr 0.01 to 0.03 over 5 configurations, 1 grid step`.
    pub fn line(&self) -> String {
        let steps = match self.grid_steps {
            1 => "1 grid step".to_string(),
            n => format!("{n} grid steps"),
        };
        let range = if self.lowest == self.highest {
            format!("{}", self.lowest)
        } else {
            format!("{} to {}", self.lowest, self.highest)
        };
        format!(
            "{}: best lr {range} over {} configurations, {steps}",
            self.param, self.configurations
        )
    }
}

/// `loss_vs_lr.svg/png`: each configuration's mean evaluation loss at the last step against
/// log10 of the learning rate (band: the 95% interval over seeds; diverged learning rates
/// left out).
pub fn loss_vs_lr_chart(
    dir: &Path,
    exp: &Experiment,
    outcomes: &[TrainOutcome],
) -> Result<Vec<PathBuf>, RunnerError> {
    let mut bands = Vec::new();
    for spec in &exp.runs {
        let mut points: Vec<(f64, f64, f64, f64)> = outcomes
            .iter()
            .filter(|o| o.spec == spec.index && o.arm == Arm::Dense)
            .filter(|o| o.summary.diverged == 0 && o.summary.loss_final.is_finite())
            .map(|o| {
                let m = o.summary.loss_final;
                (
                    o.cols.lr.log10(),
                    m,
                    o.summary.loss_final_lo.unwrap_or(m),
                    o.summary.loss_final_hi.unwrap_or(m),
                )
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        bands.push(Band {
            label: spec.label.clone(),
            x: points.iter().map(|p| p.0).collect(),
            mean: points.iter().map(|p| p.1).collect(),
            lo: points.iter().map(|p| p.2.max(p.1 * 1e-3)).collect(),
            hi: points.iter().map(|p| p.3).collect(),
            theory: None,
            x_names: Vec::new(),
        });
    }
    if bands.is_empty() {
        return Ok(Vec::new());
    }
    variance_chart(
        &dir.join("loss_vs_lr"),
        "Evaluation loss at the last step against the learning rate (band: 95% over seeds)",
        "log10 learning rate",
        "loss at K (mean over seeds)",
        &bands,
        true,
    )
    .map_err(|e| RunnerError::Plot(e.to_string()))
}
