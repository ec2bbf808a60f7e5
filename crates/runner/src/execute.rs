//! Running an experiment: every configuration over its seeds, written as it finishes.
//!
//! Configurations are validated up front (a typo fails before any compute). On CPU
//! backends configurations, and the seeds within each, run in parallel with rayon; on a
//! GPU one at a time. After each finished
//! configuration, the CSVs of all finished ones are rewritten atomically, in configuration
//! order, so an interrupted suite loses nothing that finished and a rerun writes the same
//! bytes. Charts, report and manifest come last.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use sigprop_nets::{PhaseTimes, ProbeOptions, ResolvedNet, device, device_name, measure};

use crate::aggregate::{aggregate, key_of};
use crate::error::RunnerError;
use crate::experiment::Experiment;
use crate::output::{keyed_csv, plain_csv, write_atomic};
use crate::overlay::{chi1, critical_for, predictions};
use crate::rows::{
    AggRow, ConfigKey, HistRow, LayerRow, RunCols, SppCols, SummaryRow, TheoryCols, TokenCols,
};
use crate::settings::RunSpec;
use crate::summary::{Extra, summarize};

/// Histogram bins.
pub const HIST_BINS: usize = 60;

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
    /// Per-seed phase times.
    pub times: Vec<(u64, PhaseTimes)>,
    /// Device description.
    pub device: String,
    /// sigma_w of a critical scheme.
    pub critical_sigma_w: Option<f64>,
}

impl Outcome {
    /// The key of the rows of `layer`: its `width` is the layer's own (N_layer) when the
    /// configuration gives explicit `widths`, else the configuration's width.
    pub fn key_at(&self, layer: usize) -> ConfigKey {
        let mut k = self.key.clone();
        let net = &self.spec.net;
        if let Some(&n) = net.arch.widths(net).get(layer) {
            k.width = n;
        }
        k
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// No progress bar.
    pub quiet: bool,
}

/// Check every configuration before running any.
pub(crate) fn validate(exp: &Experiment) -> Result<Vec<(ResolvedNet, Option<f64>)>, RunnerError> {
    // Every backend the experiment uses must start, checked once each and in this thread
    // before any worker runs.
    let mut backends = Vec::new();
    for r in &exp.runs {
        if !backends.contains(&r.backend) {
            backends.push(r.backend);
        }
    }
    for b in backends {
        device(b)?;
    }
    exp.runs
        .iter()
        .map(|r| {
            let net = r
                .net
                .resolve()
                .map_err(|e| RunnerError::input(e.to_string()))?;
            let critical = critical_for(&net)?;
            Ok((net, critical))
        })
        .collect()
}

/// Create the output folder, failing early with a one-line message if it is unwritable.
pub fn prepare_out(out: &Path) -> Result<(), RunnerError> {
    let fail = |e: std::io::Error| {
        RunnerError::input(format!("--out {}: cannot write there: {e}", out.display()))
    };
    std::fs::create_dir_all(out).map_err(fail)?;
    let probe = out.join(".sigprop-write-test");
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

fn run_one(
    spec: &RunSpec,
    net: &ResolvedNet,
    critical: Option<f64>,
) -> Result<Outcome, RunnerError> {
    let dev = device(spec.backend)?;
    let key = key_of(spec);
    let theory: HashMap<(String, usize), TheoryCols> = predictions(net, spec.batch, critical)?
        .unwrap_or_default()
        .into_iter()
        .map(|t| ((t.site, t.layer), t.cols))
        .collect();
    let opts = ProbeOptions {
        batch: spec.batch,
        hist_layers: spec.hist_layers.clone(),
        hist_bins: HIST_BINS,
    };
    // Seeds are independent passes: on a CPU backend they run on all cores (rayon), and
    // come back in seed order, so every CSV is the same as a one-seed-at-a-time run.
    let measure_seed = |&seed: &u64| measure(net, seed, critical, &opts, &dev);
    let measured: Vec<_> = if spec.backend.is_cpu() {
        spec.seeds
            .par_iter()
            .map(measure_seed)
            .collect::<Result<_, _>>()?
    } else {
        spec.seeds
            .iter()
            .map(measure_seed)
            .collect::<Result<_, _>>()?
    };
    let mut layers = Vec::new();
    let mut hists = Vec::new();
    let mut times = Vec::new();
    let mut lsuv_totals = Vec::new();
    for (i, (&seed, m)) in spec.seeds.iter().zip(measured).enumerate() {
        if !m.lsuv.is_empty() {
            lsuv_totals.push(m.lsuv.iter().map(|l| l.0).sum());
        }
        times.push((seed, m.result.times));
        // Each block output's branch site, for its signal-propagation-plot columns.
        let branches: HashMap<usize, sigprop_nets::LayerStats> = m
            .result
            .stats
            .iter()
            .filter(|s| s.site == "branch")
            .map(|s| (s.layer, s.clone()))
            .collect();
        for s in m.result.stats {
            let spp = match branches.get(&s.layer) {
                Some(b) if s.site == "out" => SppCols::of(&s, b),
                _ => SppCols::default(),
            };
            let theory = theory
                .get(&(s.site.clone(), s.layer))
                .cloned()
                .unwrap_or_default();
            let run = RunCols {
                run_id: format!("c{}-s{}", spec.index, seed),
                seed,
            };
            layers.push(LayerRow {
                run,
                tokens: TokenCols::of(&s),
                stats: s,
                spp,
                theory,
            });
        }
        if i == 0 {
            for h in m.result.histograms {
                for (bin, &count) in h.counts.iter().enumerate() {
                    hists.push(HistRow {
                        config: spec.index,
                        label: spec.label.clone(),
                        site: h.site.clone(),
                        layer: h.layer,
                        tensor: h.tensor.to_string(),
                        bin,
                        lo: h.edges[bin],
                        hi: h.edges[bin + 1],
                        count,
                    });
                }
            }
        }
    }
    let aggs = aggregate(&layers);
    let extra = Extra {
        seeds: spec.seeds.len(),
        lsuv_totals,
        theory_chi1: chi1(net, critical),
    };
    let summary = summarize(&key.arch, &layers, &aggs, extra);
    Ok(Outcome {
        spec: spec.clone(),
        key,
        layers,
        aggs,
        summary,
        hists,
        times,
        device: device_name(&dev),
        critical_sigma_w: critical,
    })
}

/// Rewrite the CSVs from the finished outcomes, in configuration order.
pub fn write_csvs(out: &Path, done: &[&Outcome]) -> Result<(), RunnerError> {
    let layers: Vec<(ConfigKey, &LayerRow)> = done
        .iter()
        .flat_map(|o| o.layers.iter().map(|r| (o.key_at(r.stats.layer), r)))
        .collect();
    let aggs: Vec<(ConfigKey, &AggRow)> = done
        .iter()
        .flat_map(|o| o.aggs.iter().map(|r| (o.key_at(r.layer), r)))
        .collect();
    let sums: Vec<(ConfigKey, &SummaryRow)> =
        done.iter().map(|o| (o.key.clone(), &o.summary)).collect();
    let hists: Vec<&HistRow> = done.iter().flat_map(|o| o.hists.iter()).collect();
    let grid: Vec<GridRow> = done
        .iter()
        .flat_map(|o| {
            o.spec.grid.iter().map(|(k, v)| GridRow {
                config: o.spec.index,
                key: k.clone(),
                value: v.clone(),
            })
        })
        .collect();
    write_atomic(&out.join("layers.csv"), &keyed_csv(&layers)?)?;
    write_atomic(&out.join("aggregate.csv"), &keyed_csv(&aggs)?)?;
    write_atomic(&out.join("summary.csv"), &keyed_csv(&sums)?)?;
    write_atomic(&out.join("histograms.csv"), &plain_csv(&hists)?)?;
    write_atomic(&out.join("grid.csv"), &plain_csv(&grid)?)
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

/// Run every configuration of `exp`, writing CSVs as they finish; returns the outcomes in
/// configuration order and the wall time.
pub fn run_experiment(
    exp: &Experiment,
    opts: &RunOptions,
) -> Result<(Vec<Outcome>, f64), RunnerError> {
    let start = Instant::now();
    let resolved = validate(exp)?;
    prepare_out(&opts.out)?;
    let bar = ProgressBar::new(exp.runs.len() as u64);
    if opts.quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} configurations  {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let done: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; exp.runs.len()]);
    let work = |(i, (spec, (net, critical))): (usize, (&RunSpec, &(ResolvedNet, Option<f64>)))| -> Result<(), RunnerError> {
        let outcome = run_one(spec, net, *critical)?;
        let mut guard = done
            .lock()
            .map_err(|_| RunnerError::Internal("a worker panicked while writing results".into()))?;
        guard[i] = Some(outcome);
        let finished: Vec<&Outcome> = guard.iter().flatten().collect();
        write_csvs(&opts.out, &finished)?;
        bar.inc(1);
        Ok(())
    };
    let all_cpu = exp.runs.iter().all(|r| r.backend.is_cpu());
    let items: Vec<_> = exp.runs.iter().zip(resolved.iter()).enumerate().collect();
    if all_cpu {
        items.into_par_iter().try_for_each(work)?;
    } else {
        items.into_iter().try_for_each(work)?;
    }
    bar.finish_and_clear();
    let outcomes: Vec<Outcome> = done
        .into_inner()
        .map_err(|_| RunnerError::Internal("a worker panicked while writing results".into()))?
        .into_iter()
        .flatten()
        .collect();
    Ok((outcomes, start.elapsed().as_secs_f64()))
}
