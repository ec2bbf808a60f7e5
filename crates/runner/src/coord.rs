//! `sigprop coord-check`: the coordinate check of Yang et al. 2022 (microsoft/mup's
//! `coord_check`), read by a fit instead of by eye. Networks of several widths (or, for
//! residual networks, several depths) are trained for a few steps on one fixed batch; at
//! every step each site's `mean |h|` is recorded; per parametrization, step and site the
//! log-log slope of `mean |h|` (mean over seeds) against width (or depth) is fitted, and a
//! slope within the tolerance is `flat`.
//!
//! Writes `coord.csv` (every measurement), `coord_fit.csv` (every slope with its verdict)
//! and one chart per step, width (or depth) on the x axis.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sigprop_nets::{
    CoordRecord, Parametrization, Params, ProbeOptions, TrainOptions, device, initial_params,
};
use sigprop_plot::{Band, variance_chart};
use sigprop_report::html::write_html;
use sigprop_report::output::{plain_csv, write_atomic};
use sigprop_spec::error::RunnerError;
use sigprop_spec::settings::{RunSpec, Settings};
use sigprop_spec::tables::{Axis, CoordPlan};

use crate::execute::prepare_out;
use crate::schedule::{Place, progress_bar, schedule};

/// `coord.csv`: one row per parametrization x width (depth) x seed x step x site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordRow {
    /// `standard`, `ntk` or `mup`.
    pub param: String,
    /// The width (or depth) of the network.
    pub x: usize,
    /// Seed.
    pub seed: u64,
    /// Updates made before the forward pass.
    pub step: usize,
    /// Site.
    pub site: String,
    /// Layer (the depth + 1 for `readout`; in a depth check, the last block's output is
    /// called layer 0, `last`).
    pub layer: usize,
    /// `mean |h|` over the fixed batch and the units.
    pub mean_abs: f64,
}

/// `coord_fit.csv`: one row per parametrization x step x site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordFit {
    /// Parametrization.
    pub param: String,
    /// `width` or `depth`.
    pub axis: String,
    /// Step.
    pub step: usize,
    /// Site.
    pub site: String,
    /// Layer.
    pub layer: usize,
    /// Widths (or depths) with a finite, positive `mean|h|` (mean over seeds) at this step
    /// and site.
    pub points: usize,
    /// Least-squares slope of `ln mean|h|` (mean over seeds) against `ln x`; NaN unless
    /// every width (depth) has a point.
    pub slope: f64,
    /// The tolerance.
    pub tolerance: f64,
    /// `flat` (|slope| <= tolerance), `grows`, `shrinks`, or `undefined` (a width or depth
    /// without a finite positive mean, such as a run that diverged before this step).
    pub verdict: String,
}

/// What `sigprop coord-check` wrote.
#[derive(Debug, Clone)]
pub struct CoordFinished {
    /// Output folder.
    pub dir: PathBuf,
    /// Every fit.
    pub fits: Vec<CoordFit>,
    /// Charts.
    pub charts: Vec<PathBuf>,
}

/// Least-squares slope of `y` on `x` (at least two distinct x).
pub fn slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    sxy / sxx
}

/// Run the check: `base` gives the network (its width or depth is replaced by each of the
/// axis's values); `quiet` hides the progress bar.
pub fn coord_check(
    base: &Settings,
    plan: &CoordPlan,
    out: &Path,
    about: (&str, &str, &str),
    quiet: bool,
) -> Result<CoordFinished, RunnerError> {
    let xs = plan.axis.values();
    let mut distinct = xs.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 2 || distinct.len() != xs.len() {
        return Err(RunnerError::input(format!(
            "--{}s: expected at least two different values, each once",
            plan.axis.name()
        )));
    }
    if xs.contains(&0) {
        return Err(RunnerError::input(format!(
            "--{}s 0: expected whole numbers > 0",
            plan.axis.name()
        )));
    }
    if plan.steps == 0 {
        return Err(RunnerError::input(
            "--steps 0: expected a whole number of steps > 0",
        ));
    }
    if !(plan.lr.is_finite() && plan.lr > 0.0) {
        return Err(RunnerError::input(format!(
            "--lr {}: expected a positive finite number",
            plan.lr
        )));
    }
    if plan.params.is_empty() {
        return Err(RunnerError::input(
            "--params: expected one or more of standard, ntk, mup",
        ));
    }
    // One configuration per axis value.
    let mut specs: Vec<RunSpec> = xs
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let mut s = base.clone();
            match plan.axis {
                Axis::Width(_) => {
                    s.width = Some(x);
                    // An architecture that takes explicit widths keeps its input features
                    // fixed while the hidden widths vary.
                    let explicit = s
                        .arch
                        .as_deref()
                        .unwrap_or(sigprop_spec::settings::defaults::ARCH)
                        .parse::<sigprop_nets::Arch>()
                        .is_ok_and(|a| a.own_keys().contains(&"widths"));
                    if explicit {
                        let depth = s.depth.unwrap_or(sigprop_spec::settings::defaults::DEPTH);
                        let mut widths = vec![toml::Value::Integer(plan.input_dim as i64)];
                        widths.extend((0..depth).map(|_| toml::Value::Integer(x as i64)));
                        s.arch_settings
                            .insert("widths".into(), toml::Value::Array(widths));
                    }
                }
                Axis::Depth(_) => s.depth = Some(x),
            }
            s.to_run(i, format!("{}={x}", plan.axis.name()), Vec::new())
        })
        .collect::<Result<_, _>>()?;
    if let Axis::Depth(_) = plan.axis
        && !specs[0].net.config.arch.capabilities().residual
    {
        return Err(RunnerError::input(format!(
            "--depths: a depth check is for residual networks (--arch {})",
            sigprop_nets::archs_with(|c| c.residual)
        )));
    }
    // `init = "auto"`: each width's (depth's) own recommendation, measured before the check.
    crate::recommend::resolve_auto_specs(&mut specs)?;
    prepare_out(out)?;
    let base_width = plan.base_width.unwrap_or(match plan.axis {
        Axis::Width(_) => distinct[0],
        Axis::Depth(_) => specs[0].net.config.width,
    });
    let seeds = specs[0].seeds.clone();
    let mut jobs: Vec<(usize, usize, u64)> = Vec::new();
    for p in 0..plan.params.len() {
        for c in 0..specs.len() {
            jobs.extend(seeds.iter().map(|&s| (p, c, s)));
        }
    }
    let stage = |&(_, c, seed): &(usize, usize, u64)| -> Result<Params, RunnerError> {
        let spec = &specs[c];
        let dev = device(spec.backend)?;
        Ok(initial_params(&spec.net, seed, spec.batch, &dev)?.0)
    };
    let work = |&(p, c, seed): &(usize, usize, u64),
                params: Params|
     -> Result<Vec<CoordRecord>, RunnerError> {
        let spec = &specs[c];
        let dev = device(spec.backend)?;
        let opts = TrainOptions {
            steps: plan.steps,
            optimizer: plan.optimizer,
            lr: plan.lr,
            batch: spec.batch,
            task: plan.task.clone(),
            log_steps: Vec::new(),
            probe: ProbeOptions {
                batch: spec.batch,
                hist_layers: Vec::new(),
                hist_bins: 0,
                jacobian: None,
            },
            param: Parametrization {
                kind: plan.params[p],
                base_width,
            },
            eval_batch: spec.batch,
            fixed_batch: true,
            coords: true,
            resume: None,
            checkpoint_at: None,
        };
        Ok(sigprop_nets::train(&spec.net, &params, seed, &opts, &dev)?.coords)
    };
    let bar = progress_bar(jobs.len(), 0, "trainings", quiet);
    let results = schedule(
        &jobs,
        Place::of(specs.iter().map(|s| s.backend.is_cpu()), false),
        &bar,
        |_| 1,
        stage,
        work,
    )?;
    bar.finish_and_clear();
    let mut rows = Vec::new();
    for (&(p, c, seed), recs) in jobs.iter().zip(results) {
        let depth = specs[c].net.config.depth;
        let primary = specs[c].net.config.arch.primary_site();
        for r in recs {
            // A depth check compares the last block's output and the readout.
            let layer = match plan.axis {
                Axis::Width(_) => r.layer,
                Axis::Depth(_) if r.site == "readout" => 1,
                Axis::Depth(_) if r.site == primary && r.layer == depth => 0,
                Axis::Depth(_) => continue,
            };
            rows.push(CoordRow {
                param: plan.params[p].to_string(),
                x: xs[c],
                seed,
                step: r.step,
                site: r.site,
                layer,
                mean_abs: r.mean_abs,
            });
        }
    }
    let fits = fit(&rows, plan);
    write_atomic(&out.join("coord.csv"), &plain_csv(&rows)?)?;
    write_atomic(&out.join("coord_fit.csv"), &plain_csv(&fits)?)?;
    let charts = charts(out, &rows, plan)?;
    let (name, description, command) = about;
    let md = report_md(name, description, command, plan, &fits, &charts, out);
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    write_html(out, name, &md, None)?;
    let manifest = serde_json::json!({
        "experiment": name,
        "description": description,
        "command": command,
        "sigprop_version": env!("CARGO_PKG_VERSION"),
        "git_commit": sigprop_report::report::git_commit(),
        "coord": {
            "axis": plan.axis.name(),
            "values": plan.axis.values(),
            "params": plan.params.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "steps": plan.steps,
            "optimizer": plan.optimizer.to_string(),
            "lr": plan.lr,
            "base_width": base_width,
            "input_dim": plan.input_dim,
            "task": plan.task.describe(),
            "tolerance": plan.tolerance,
        },
        "configurations": specs.iter().map(|s| serde_json::json!({
            "label": s.label,
            "net": s.net,
            "batch": s.batch,
            "backend": s.backend,
            "seeds": s.seeds,
            "auto": s.auto,
            "autoinit": sigprop_report::report::autoinit_json(&s.net),
        })).collect::<Vec<_>>(),
    });
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| RunnerError::Plot(e.to_string()))?;
    write_atomic(&out.join("manifest.json"), text.as_bytes())?;
    Ok(CoordFinished {
        dir: out.to_path_buf(),
        fits,
        charts,
    })
}

/// `report.md` of a coordinate check: per parametrization, the sites that are not flat at
/// each step, the full table, and the charts.
fn report_md(
    name: &str,
    description: &str,
    command: &str,
    plan: &CoordPlan,
    fits: &[CoordFit],
    charts: &[PathBuf],
    dir: &Path,
) -> String {
    let mut s = format!("# {name}\n\n");
    if !description.is_empty() {
        s += &format!("{}\n\n", description.trim());
    }
    s += &format!("Reproduce with:\n\n```sh\n{command}\n```\n\n");
    s += &format!(
        "Coordinate check against {} ({}), {} steps of {} at lr {} on one fixed batch of {}. \
         Slope: least squares of ln mean|h| (mean over seeds) on ln {}; `flat` within {}.\n\n",
        plan.axis.name(),
        plan.axis
            .values()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        plan.steps,
        plan.optimizer,
        plan.lr,
        plan.task.describe(),
        plan.axis.name(),
        plan.tolerance
    );
    s += "## Verdicts\n\n";
    for p in &plan.params {
        let p = p.to_string();
        let off: Vec<&CoordFit> = fits
            .iter()
            .filter(|f| f.param == p && f.verdict != "flat")
            .collect();
        if off.is_empty() {
            s += &format!("- **{p}**: every site is flat at every step.\n");
        } else {
            let list: Vec<String> = off
                .iter()
                .take(12)
                .map(|f| {
                    format!(
                        "{} {} at step {} ({}, slope {:.3})",
                        f.site, f.layer, f.step, f.verdict, f.slope
                    )
                })
                .collect();
            let more = if off.len() > 12 {
                format!(" and {} more", off.len() - 12)
            } else {
                String::new()
            };
            s += &format!(
                "- **{p}**: {} not flat: {}{more}.\n",
                off.len(),
                list.join("; ")
            );
        }
    }
    s += "\n| param | step | site | layer | slope | verdict |\n|---|---|---|---|---|---|\n";
    for f in fits {
        s += &format!(
            "| {} | {} | {} | {} | {:.3} | {} |\n",
            f.param, f.step, f.site, f.layer, f.slope, f.verdict
        );
    }
    s += &sigprop_report::report::charts_md(charts, dir);
    s += &format!(
        "The check and its files are described in {}.\n",
        sigprop_report::report::docs_link(dir, "training.md")
    );
    s
}

/// (param, step, site, layer).
type SeriesKey = (String, usize, String, usize);

/// Mean over seeds of each (param, step, site, layer) at each x.
fn means(rows: &[CoordRow]) -> Vec<(SeriesKey, Vec<(usize, f64)>)> {
    // (x, sum, count) per key.
    type Sums = Vec<(usize, f64, usize)>;
    let mut out: Vec<(SeriesKey, Sums)> = Vec::new();
    for r in rows {
        let key = (r.param.clone(), r.step, r.site.clone(), r.layer);
        let i = match out.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                out.push((key, Vec::new()));
                out.len() - 1
            }
        };
        let series = &mut out[i].1;
        match series.iter_mut().find(|(x, _, _)| *x == r.x) {
            Some(e) => {
                e.1 += r.mean_abs;
                e.2 += 1;
            }
            None => series.push((r.x, r.mean_abs, 1)),
        }
    }
    out.into_iter()
        .map(|(k, v)| {
            (
                k,
                v.into_iter().map(|(x, s, n)| (x, s / n as f64)).collect(),
            )
        })
        .collect()
}

fn fit(rows: &[CoordRow], plan: &CoordPlan) -> Vec<CoordFit> {
    let all = plan.axis.values().len();
    means(rows)
        .into_iter()
        .map(|((param, step, site, layer), series)| {
            let (x, y): (Vec<f64>, Vec<f64>) = series
                .iter()
                .filter(|(_, m)| *m > 0.0 && m.is_finite())
                .map(|&(x, m)| ((x as f64).ln(), m.ln()))
                .unzip();
            // Every width (depth) must have its point, else the slope is not the check's.
            let points = x.len();
            let s = if points == all {
                slope(&x, &y)
            } else {
                f64::NAN
            };
            let verdict = if !s.is_finite() {
                "undefined"
            } else if s.abs() <= plan.tolerance {
                "flat"
            } else if s > 0.0 {
                "grows"
            } else {
                "shrinks"
            };
            CoordFit {
                param,
                axis: plan.axis.name().to_string(),
                step,
                site,
                layer,
                points,
                slope: s,
                tolerance: plan.tolerance,
                verdict: verdict.to_string(),
            }
        })
        .collect()
}

fn charts(dir: &Path, rows: &[CoordRow], plan: &CoordPlan) -> Result<Vec<PathBuf>, RunnerError> {
    let m = means(rows);
    let mut steps: Vec<usize> = m.iter().map(|((_, s, _, _), _)| *s).collect();
    steps.sort_unstable();
    steps.dedup();
    let mut files = Vec::new();
    for step in steps {
        let bands: Vec<Band> = m
            .iter()
            .filter(|((_, s, _, _), _)| *s == step)
            .map(|((param, _, site, layer), series)| {
                let name = if site == "readout" {
                    "readout".to_string()
                } else if let Axis::Depth(_) = plan.axis {
                    "last block".to_string()
                } else {
                    format!("{site} {layer}")
                };
                Band {
                    label: format!("{param} {name}"),
                    x: series.iter().map(|(x, _)| (*x as f64).log2()).collect(),
                    mean: series.iter().map(|(_, v)| *v).collect(),
                    lo: series.iter().map(|(_, v)| *v).collect(),
                    hi: series.iter().map(|(_, v)| *v).collect(),
                    theory: None,
                }
            })
            .collect();
        let title = format!(
            "Coordinate check, step {step}: mean |h| against {} ({}, lr {})",
            plan.axis.name(),
            plan.optimizer,
            plan.lr
        );
        files.extend(
            variance_chart(
                &dir.join(format!("coord_step{step}")),
                &title,
                &format!("log2 {}", plan.axis.name()),
                "mean |h| (mean over seeds)",
                &bands,
                true,
            )
            .map_err(|e| RunnerError::Plot(e.to_string()))?,
        );
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_power_law_is_its_exponent() {
        let x: Vec<f64> = [128.0f64, 256.0, 512.0, 1024.0]
            .iter()
            .map(|v| v.ln())
            .collect();
        let y: Vec<f64> = [128.0f64, 256.0, 512.0, 1024.0]
            .iter()
            .map(|v| (3.0 * v.powf(0.5)).ln())
            .collect();
        assert!((slope(&x, &y) - 0.5).abs() < 1e-12);
        let flat = vec![2f64.ln(); 4];
        assert_eq!(slope(&x, &flat), 0.0);
    }
}
