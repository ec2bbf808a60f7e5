//! `sigprop coord-check`: the coordinate check of Yang et al. 2022 (microsoft/mup's
//! `coord_check`), read by a fit instead of by eye. Networks of several widths (or, for
//! residual networks, several depths) are trained for a few steps on one fixed batch; at
//! every step each site's `mean |h|` is recorded; per parametrization, step and site each
//! seed's log-log slope of `mean |h|` against width (or depth) is fitted, and the verdict
//! reads the seeds' 95% interval of the mean slope: `flat` within the tolerance, `grows` or
//! `shrinks` beyond it, `unsettled` across it.
//!
//! Writes `coord.csv` (every measurement), `coord_fit.csv` (every slope with its verdict)
//! and one chart per step, width (or depth) on the x axis.

use std::collections::HashMap;
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
    /// The parametrization (`standard`, `ntk`, `mup`, `depth-mup`, `completep`).
    pub param: String,
    /// The width (or depth) of the network.
    pub x: usize,
    /// Seed.
    pub seed: u64,
    /// Updates made before the forward pass.
    pub step: usize,
    /// Site.
    pub site: String,
    /// Layer (the depth + 1 for `readout`). In a depth check, where blocks of different
    /// networks are compared at the same fraction of their depth, layer `q` (1 to 4) is the
    /// output of block `ceil(q L / 4)` and 5 is the readout.
    pub layer: usize,
    /// `mean |h|` over the fixed batch and the units.
    pub mean_abs: f64,
    /// `mean |h - h_0|`: the change since step 0 on the same batch (empty at step 0).
    pub delta_abs: Option<f64>,
}

/// `coord_fit.csv`: one row per parametrization x step x site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordFit {
    /// Parametrization.
    pub param: String,
    /// `width` or `depth`.
    pub axis: String,
    /// `h` (the slope of `mean |h|`) or `dh` (of `mean |h - h_0|`, the update's size; from
    /// step 1).
    pub quantity: String,
    /// Step.
    pub step: usize,
    /// Site.
    pub site: String,
    /// Layer.
    pub layer: usize,
    /// Widths (or depths) with a finite, positive value of the quantity (mean over seeds) at
    /// this step and site.
    pub points: usize,
    /// Seeds whose every width (depth) has a finite, positive value: the per-seed fits.
    pub seeds: usize,
    /// Mean over seeds of each seed's least-squares slope of `ln` of the quantity against
    /// `ln x` (the slope of the seeds' mean of that log); NaN unless every seed has every
    /// point.
    pub slope: f64,
    /// Lower end of the 95% t-interval of that mean over the seeds' slopes (empty for one
    /// seed).
    pub slope_lo: Option<f64>,
    /// Upper end.
    pub slope_hi: Option<f64>,
    /// The tolerance.
    pub tolerance: f64,
    /// `flat` (the interval within +-tolerance), `grows` (above +tolerance), `shrinks`
    /// (below -tolerance), `unsettled` (the interval straddles a tolerance, or one seed
    /// gives no interval), or `undefined` (a width, depth or seed without a finite positive
    /// mean, such as a run that diverged before this step).
    pub verdict: String,
    /// For `unsettled`: the seeds at which the interval, at the same spread around the same
    /// slope, would clear the nearer tolerance; empty otherwise (or when the slope sits on the
    /// tolerance, or more than 10000 would be needed).
    pub seeds_needed: Option<usize>,
}

/// The verdict of a slope's seed interval against `tolerance`, and for an unsettled one the
/// seeds that would settle it (see [`CoordFit`]); `slopes` are the per-seed slopes.
pub fn interval_verdict(
    slopes: &[f64],
    tolerance: f64,
) -> (f64, Option<(f64, f64)>, &'static str, Option<usize>) {
    use sigprop_report::aggregate::{mean_sd_ci, t975};
    if slopes.is_empty() || slopes.iter().any(|s| !s.is_finite()) {
        return (f64::NAN, None, "undefined", None);
    }
    let (mean, sd, ci) = mean_sd_ci(slopes);
    let Some((lo, hi)) = ci else {
        return (mean, None, "unsettled", None);
    };
    let verdict = if lo >= -tolerance && hi <= tolerance {
        "flat"
    } else if lo > tolerance {
        "grows"
    } else if hi < -tolerance {
        "shrinks"
    } else {
        "unsettled"
    };
    let needed = (verdict == "unsettled")
        .then(|| {
            let margin = (mean.abs() - tolerance).abs();
            let sd = sd.unwrap_or(0.0);
            (slopes.len() + 1..=10_000).find(|&n| t975(n - 1) * sd / (n as f64).sqrt() < margin)
        })
        .flatten();
    (mean, Some((lo, hi)), verdict, needed)
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
            "--params: expected one or more of standard, ntk, mup, depth-mup, completep, umup",
        ));
    }
    // One configuration per parametrization and axis value (a depth parametrization sets
    // the branches' multiplier).
    let mut specs: Vec<Vec<RunSpec>> = Vec::with_capacity(plan.params.len());
    for &kind in &plan.params {
        let under = base.under_param(kind)?;
        let mut row: Vec<RunSpec> = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| configuration(&under, plan, i, x))
            .collect::<Result<_, _>>()?;
        row[0].refuse_precision("coord-check")?;
        row[0].refuse_inputs("coord-check")?;
        if let Axis::Depth(_) = plan.axis
            && !row[0].net.config.arch.capabilities().residual
        {
            return Err(RunnerError::input(format!(
                "--depths: a depth check is for residual networks (--arch {})",
                sigprop_nets::archs_with(|c| c.residual)
            )));
        }
        // `init = "auto"`: each width's (depth's) own recommendation, measured before the
        // check.
        crate::recommend::resolve_auto_specs(&mut row)?;
        specs.push(row);
    }
    prepare_out(out)?;
    let base_width = plan.base_width.unwrap_or(match plan.axis {
        Axis::Width(_) => distinct[0],
        Axis::Depth(_) => specs[0][0].net.config.width,
    });
    let base_depth = plan.base_depth.unwrap_or(match plan.axis {
        Axis::Width(_) => specs[0][0].net.config.depth,
        Axis::Depth(_) => distinct[0],
    });
    let seeds = specs[0][0].seeds.clone();
    let mut jobs: Vec<(usize, usize, u64)> = Vec::new();
    for p in 0..plan.params.len() {
        for c in 0..xs.len() {
            jobs.extend(seeds.iter().map(|&s| (p, c, s)));
        }
    }
    let stage = |&(p, c, seed): &(usize, usize, u64)| -> Result<Params, RunnerError> {
        let spec = &specs[p][c];
        let dev = device(spec.backend)?;
        Ok(initial_params(&spec.net, seed, spec.batch, &dev)?.0)
    };
    let work = |&(p, c, seed): &(usize, usize, u64),
                params: Params|
     -> Result<Vec<CoordRecord>, RunnerError> {
        let spec = &specs[p][c];
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
                precision: None,
            },
            param: Parametrization {
                kind: plan.params[p],
                base_width,
                base_depth,
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
        Place::of(specs.iter().flatten().map(|s| s.backend.is_cpu()), false),
        &bar,
        |_| 1,
        stage,
        work,
    )?;
    bar.finish_and_clear();
    let mut rows = Vec::new();
    for (&(p, c, seed), recs) in jobs.iter().zip(results) {
        let depth = specs[p][c].net.config.depth;
        let primary = specs[p][c].net.config.arch.primary_site();
        for r in recs {
            // A depth check compares the blocks at a quarter, half, three quarters and the
            // whole of the depth, and the readout.
            let layers: Vec<usize> = match plan.axis {
                Axis::Width(_) => vec![r.layer],
                Axis::Depth(_) if r.site == "readout" => vec![5],
                Axis::Depth(_) if r.site == primary => (1..=4)
                    .filter(|q| (q * depth).div_ceil(4) == r.layer)
                    .collect(),
                Axis::Depth(_) => Vec::new(),
            };
            for layer in layers {
                rows.push(CoordRow {
                    param: plan.params[p].to_string(),
                    x: xs[c],
                    seed,
                    step: r.step,
                    site: r.site.clone(),
                    layer,
                    mean_abs: r.mean_abs,
                    delta_abs: r.delta_abs,
                });
            }
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
            "base_depth": base_depth,
            "input_dim": plan.input_dim,
            "task": plan.task.describe(),
            "tolerance": plan.tolerance,
        },
        "configurations": specs.iter().flatten().map(|s| serde_json::json!({
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

/// The configuration of the check at axis value `x` (the `i`th).
fn configuration(
    base: &Settings,
    plan: &CoordPlan,
    i: usize,
    x: usize,
) -> Result<RunSpec, RunnerError> {
    let mut s = base.clone();
    match plan.axis {
        Axis::Width(_) => {
            s.width = Some(x);
            // An architecture that takes explicit widths keeps its input features fixed
            // while the hidden widths vary.
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
}

impl CoordFit {
    /// `[lo, hi]` of the seed interval, to three decimals; empty without one.
    pub fn interval(&self) -> String {
        match (self.slope_lo, self.slope_hi) {
            (Some(lo), Some(hi)) => format!("[{lo:.3}, {hi:.3}]"),
            _ => String::new(),
        }
    }

    /// The verdict, with the seeds that would settle an unsettled one.
    pub fn verdict_text(&self) -> String {
        match self.seeds_needed {
            Some(n) => format!("{} (about {n} seeds would settle it)", self.verdict),
            None => self.verdict.clone(),
        }
    }
}

/// `, [lo, hi]` of a fit's seed interval (or why there is none), and the seeds that would
/// settle an unsettled one.
fn interval_text(f: &CoordFit) -> String {
    let mut t = match f.interval() {
        ci if !ci.is_empty() => format!(", {ci}"),
        _ if f.verdict == "undefined" => String::new(),
        _ => ", one seed: no interval".to_string(),
    };
    if let Some(n) = f.seeds_needed {
        t += &format!(", about {n} seeds would settle it");
    }
    t
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
         Slope: each seed's least-squares slope of ln mean|h| (quantity h) or of ln \
         mean|h - h_0|, the change since step 0 (quantity dh), on ln {}, their mean and 95% \
         t-interval; `flat` when the interval lies within +-{tol}, `grows` or `shrinks` when \
         it lies beyond, `unsettled` otherwise (with the seeds that would settle it).\n\n",
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
        tol = plan.tolerance
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
                        "{} of {} {} at step {} ({}, slope {:.3}{})",
                        f.quantity,
                        f.site,
                        f.layer,
                        f.step,
                        f.verdict,
                        f.slope,
                        interval_text(f)
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
    s += "\n| param | quantity | step | site | layer | slope | 95% interval | verdict |\n\
          |---|---|---|---|---|---|---|---|\n";
    for f in fits {
        s += &format!(
            "| {} | {} | {} | {} | {} | {:.3} | {} | {} |\n",
            f.param,
            f.quantity,
            f.step,
            f.site,
            f.layer,
            f.slope,
            f.interval(),
            f.verdict_text()
        );
    }
    s += &sigprop_report::report::charts_md(charts, dir);
    s += &format!(
        "The check and its files are described in {}.\n",
        sigprop_report::report::docs_link(dir, "training.md")
    );
    s
}

/// (param, quantity, step, site, layer).
type SeriesKey = (String, &'static str, usize, String, usize);

/// One measurement of one quantity: its series, x, seed and value.
struct Point {
    key: SeriesKey,
    x: usize,
    seed: u64,
    value: f64,
}

/// Every row's `mean |h|` (quantity `h`) and, from step 1, `mean |h - h_0|` (`dh`).
fn points(rows: &[CoordRow]) -> Vec<Point> {
    let mut out = Vec::with_capacity(rows.len() * 2);
    for r in rows {
        let values = [("h", Some(r.mean_abs)), ("dh", r.delta_abs)];
        for (quantity, value) in values {
            if let Some(value) = value {
                out.push(Point {
                    key: (r.param.clone(), quantity, r.step, r.site.clone(), r.layer),
                    x: r.x,
                    seed: r.seed,
                    value,
                });
            }
        }
    }
    out
}

/// Mean over seeds of each series at each x, series in the order first met.
fn means(points: &[Point]) -> Vec<(SeriesKey, Vec<(usize, f64)>)> {
    // (x, sum, count) per key.
    type Sums = Vec<(usize, f64, usize)>;
    let mut out: Vec<(SeriesKey, Sums)> = Vec::new();
    let mut index: HashMap<SeriesKey, usize> = HashMap::new();
    for p in points {
        let i = *index.entry(p.key.clone()).or_insert_with(|| {
            out.push((p.key.clone(), Vec::new()));
            out.len() - 1
        });
        let series = &mut out[i].1;
        match series.iter_mut().find(|(x, _, _)| *x == p.x) {
            Some(e) => {
                e.1 += p.value;
                e.2 += 1;
            }
            None => series.push((p.x, p.value, 1)),
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
    let mut seeds: Vec<u64> = rows.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let points = points(rows);
    // Each seed's (ln x, ln value) per series, in one pass over the points.
    let mut per_seed: HashMap<(SeriesKey, u64), (Vec<f64>, Vec<f64>)> = HashMap::new();
    for p in points
        .iter()
        .filter(|p| p.value > 0.0 && p.value.is_finite())
    {
        let (x, y) = per_seed.entry((p.key.clone(), p.seed)).or_default();
        x.push((p.x as f64).ln());
        y.push(p.value.ln());
    }
    means(&points)
        .into_iter()
        .map(|(key, series)| {
            let points = series
                .iter()
                .filter(|(_, m)| *m > 0.0 && m.is_finite())
                .count();
            // Each seed's own slope; every width (depth) must have its point, else the
            // slope is not the check's.
            let slopes: Vec<f64> = seeds
                .iter()
                .map(|&seed| match per_seed.remove(&(key.clone(), seed)) {
                    Some((x, y)) if x.len() == all => slope(&x, &y),
                    _ => f64::NAN,
                })
                .collect();
            let (param, quantity, step, site, layer) = key;
            let fitted = slopes.iter().filter(|s| s.is_finite()).count();
            let (s, ci, verdict, needed) = interval_verdict(&slopes, plan.tolerance);
            CoordFit {
                param,
                axis: plan.axis.name().to_string(),
                quantity: quantity.to_string(),
                step,
                site,
                layer,
                points,
                seeds: fitted,
                slope: s,
                slope_lo: ci.map(|c| c.0),
                slope_hi: ci.map(|c| c.1),
                tolerance: plan.tolerance,
                verdict: verdict.to_string(),
                seeds_needed: needed,
            }
        })
        .collect()
}

/// One chart per step and quantity: `mean |h|` (`coord_step{K}`) and, from step 1, the
/// update's size `mean |h - h_0|` (`coord_delta_step{K}`), against the axis.
fn charts(dir: &Path, rows: &[CoordRow], plan: &CoordPlan) -> Result<Vec<PathBuf>, RunnerError> {
    let m = means(&points(rows));
    let mut keys: Vec<(&'static str, usize)> =
        m.iter().map(|((_, q, s, _, _), _)| (*q, *s)).collect();
    keys.sort_unstable_by_key(|&(q, s)| (q == "dh", s));
    keys.dedup();
    let mut files = Vec::new();
    for (quantity, step) in keys {
        let bands: Vec<Band> = m
            .iter()
            .filter(|((_, q, s, _, _), _)| *s == step && *q == quantity)
            .map(|((param, _, _, site, layer), series)| {
                let name = match plan.axis {
                    _ if site == "readout" => "readout".to_string(),
                    Axis::Depth(_) => match layer {
                        1 => "block L/4",
                        2 => "block L/2",
                        3 => "block 3L/4",
                        _ => "last block",
                    }
                    .to_string(),
                    Axis::Width(_) => format!("{site} {layer}"),
                };
                Band {
                    label: format!("{param} {name}"),
                    x: series.iter().map(|(x, _)| (*x as f64).log2()).collect(),
                    mean: series.iter().map(|(_, v)| *v).collect(),
                    lo: series.iter().map(|(_, v)| *v).collect(),
                    hi: series.iter().map(|(_, v)| *v).collect(),
                    theory: None,
                    x_names: Vec::new(),
                }
            })
            .collect();
        let (what, file) = match quantity {
            "h" => ("mean |h|", format!("coord_step{step}")),
            _ => ("mean |h - h_0|", format!("coord_delta_step{step}")),
        };
        let title = format!(
            "Coordinate check, step {step}: {what} against {} ({}, lr {})",
            plan.axis.name(),
            plan.optimizer,
            plan.lr
        );
        files.extend(
            variance_chart(
                &dir.join(file),
                &title,
                &format!("log2 {}", plan.axis.name()),
                &format!("{what} (mean over seeds)"),
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

    /// The interval decides: tight slopes near 0 are flat, tight slopes beyond the
    /// tolerance grow or shrink, a wide interval across the tolerance is unsettled with the
    /// seeds that would settle it, one seed has no interval.
    #[test]
    fn verdicts_come_from_the_seed_interval() {
        let (m, ci, v, n) = interval_verdict(&[0.01, -0.02, 0.03, 0.0], 0.1);
        assert!((m - 0.005).abs() < 1e-12);
        let (lo, hi) = ci.unwrap();
        assert!(lo > -0.1 && hi < 0.1);
        assert_eq!((v, n), ("flat", None));
        assert_eq!(interval_verdict(&[0.3, 0.32, 0.28], 0.1).2, "grows");
        assert_eq!(interval_verdict(&[-0.3, -0.32, -0.28], 0.1).2, "shrinks");
        // Mean 0.05, sd 0.1: the interval (t 4.303 at 2 df) reaches past 0.1.
        let (m, _, v, n) = interval_verdict(&[0.05, 0.15, -0.05], 0.1);
        assert_eq!(v, "unsettled");
        // Margin 0.05 at sd 0.1: t975(n-1) 0.1 / sqrt(n) < 0.05 first at n = 18.
        assert!((m - 0.05).abs() < 1e-12);
        assert_eq!(n, Some(18));
        assert_eq!(interval_verdict(&[0.0], 0.1).2, "unsettled");
        assert_eq!(interval_verdict(&[0.0, f64::NAN], 0.1).2, "undefined");
    }
}
