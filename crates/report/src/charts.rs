//! Which charts an output folder gets, drawn from the CSV rows alone.
//!
//! This file only selects and arranges data (series per configuration, histogram bins,
//! heatmap cells); drawing is the plot crate's. Because it reads nothing but rows that
//! round-trip through the CSVs, `sigprop plot DIR` redraws exactly what a run drew.

use std::path::{Path, PathBuf};

use sigprop_init::Activation;
use sigprop_nets::Arch;
use sigprop_plot::{
    Band, Heatmap, Histogram, Panel, fraction_chart, heatmap_chart, histogram_chart,
    small_multiples_chart, variance_chart,
};
use sigprop_spec::error::RunnerError;
use sigprop_spec::format::slug;
use sigprop_theory::{Critical, critical_sigma_w};

use crate::labels::Verdict;
use crate::outcome::{Tables, TrainOutcome};
use crate::rows::{AggRow, ConfigKey, DensityRow, GridRow, HistRow, SpectrumRow, SummaryRow};
use crate::statistics::{Axis, charted};
use crate::summary::primary_site;

/// Past this many configurations one chart gets too crowded: the lines are drawn as small
/// multiples (a grid of panels of at most [`PANEL_LINES`] lines each) and the per-config
/// histograms are left to the CSV.
pub const MAX_LINES: usize = 12;

fn plot_err(e: impl std::fmt::Display) -> RunnerError {
    RunnerError::Plot(e.to_string())
}

/// The bands of `stat` at `at` (the architecture's primary site where `None`).
fn bands(data: &Tables, stat: &str, at: Option<&str>, configs: &[usize]) -> Vec<Band> {
    data.summaries
        .iter()
        .filter(|(key, _)| configs.contains(&key.config))
        .map(|(key, _)| {
            let site = at.unwrap_or_else(|| primary_site(&key.arch));
            let rows: Vec<&AggRow> = data
                .aggs
                .iter()
                .filter(|(k, a)| k.config == key.config && a.site == site && a.stat == stat)
                .map(|(_, a)| a)
                .collect();
            let theory: Vec<f64> = rows.iter().map(|a| a.theory.unwrap_or(f64::NAN)).collect();
            Band {
                label: key.label.clone(),
                x: rows.iter().map(|a| a.layer as f64).collect(),
                mean: rows.iter().map(|a| a.mean).collect(),
                lo: rows.iter().map(|a| a.min).collect(),
                hi: rows.iter().map(|a| a.max).collect(),
                theory: theory.iter().any(|t| t.is_finite()).then_some(theory),
                // A model's node names label the x axis.
                x_names: if rows.iter().all(|a| !a.node.is_empty()) {
                    rows.iter().map(|a| a.node.clone()).collect()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// Charts with more lines than this are split into one panel per activation.
pub const PANEL_LINES: usize = 6;

/// A group of configurations drawn together: file-name suffix, title suffix, members.
struct Group {
    suffix: String,
    title: String,
    configs: Vec<usize>,
}

/// The groups: everything in one, or one per activation when many lines span several
/// activations.
fn groups(data: &Tables) -> Vec<Group> {
    let all: Vec<usize> = data.summaries.iter().map(|(k, _)| k.config).collect();
    let mut acts: Vec<&str> = Vec::new();
    for (k, _) in &data.summaries {
        if !acts.contains(&k.activation.as_str()) {
            acts.push(&k.activation);
        }
    }
    if all.len() <= PANEL_LINES || acts.len() < 2 {
        return vec![Group {
            suffix: String::new(),
            title: String::new(),
            configs: all,
        }];
    }
    acts.iter()
        .map(|a| Group {
            suffix: format!("_{}", slug(a)),
            title: format!(" ({a})"),
            configs: data
                .summaries
                .iter()
                .filter(|(k, _)| k.activation == *a)
                .map(|(k, _)| k.config)
                .collect(),
        })
        .collect()
}

/// The x-axis label of a chart: what a layer is for the architectures in it.
pub fn x_label(data: &Tables, configs: &[usize]) -> &'static str {
    let mut names: Vec<&'static str> = data
        .summaries
        .iter()
        .filter(|(k, _)| configs.contains(&k.config))
        .map(|(k, _)| k.arch.parse::<Arch>().map_or("layer", Arch::axis_name))
        .collect();
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [one] => one,
        _ => "layer, block or time step (by architecture)",
    }
}

fn has_positive(b: &[Band]) -> bool {
    b.iter()
        .any(|b| b.mean.iter().any(|v| v.is_finite() && *v > 0.0))
}

/// A unique file-name slug per configuration (its label's slug; `-c<index>` appended
/// where two labels share one).
pub fn config_slugs(summaries: &[(ConfigKey, SummaryRow)]) -> Vec<(usize, String)> {
    let base: Vec<(usize, String)> = summaries
        .iter()
        .map(|(k, _)| (k.config, slug(&k.label)))
        .collect();
    base.iter()
        .map(|(c, s)| {
            let shared = base.iter().filter(|(_, t)| t == s).count() > 1;
            let s = if s.is_empty() || shared {
                format!("{s}-c{c}").trim_start_matches('-').to_string()
            } else {
                s.clone()
            };
            (*c, s)
        })
        .collect()
}

/// Prefixes of the chart files this module writes besides one per charted statistic
/// (whose files start with the statistic's name).
const OTHER_CHART_PREFIXES: &[&str] = &["hist_", "heatmap_", "spectrum_"];

/// Whether `name` is a chart file this module can write (`.svg`/`.png` named after a
/// charted statistic or one of [`OTHER_CHART_PREFIXES`]): what a redraw removes before
/// drawing, so no chart of an older layout survives.
pub fn is_chart_file(name: &str) -> bool {
    let stem_ok = charted().iter().any(|(s, _)| name.starts_with(s.name))
        || OTHER_CHART_PREFIXES.iter().any(|p| name.starts_with(p));
    stem_ok && (name.ends_with(".svg") || name.ends_with(".png"))
}

/// Remove the charts a previous draw left in `dir` (the files [`is_chart_file`] names;
/// nothing else is touched).
pub fn remove_old_charts(dir: &Path) -> Result<usize, RunnerError> {
    let io = |source| RunnerError::Io {
        action: "listing",
        path: dir.to_path_buf(),
        source,
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_chart_file(name) && path.is_file() {
            std::fs::remove_file(&path).map_err(|source| RunnerError::Io {
                action: "removing",
                path: path.clone(),
                source,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Draw every chart for the data into `dir`, after removing the charts of any earlier
/// draw; returns the files written (SVG and PNG).
pub fn draw_all(dir: &Path, data: &Tables) -> Result<Vec<PathBuf>, RunnerError> {
    remove_old_charts(dir)?;
    let mut files = Vec::new();
    let n = data.summaries.len();
    if n > 0 {
        let seeds = data
            .summaries
            .iter()
            .map(|(_, s)| s.seeds)
            .max()
            .unwrap_or(1);
        // The band is the range over seeds: always inside the data, and positive wherever
        // the data are (a t-interval of a skewed variance can reach below zero).
        let band = if seeds > 1 {
            format!("mean of {seeds} seeds, band min-max")
        } else {
            "one seed".into()
        };
        let charts = charted();
        if n <= MAX_LINES {
            for g in groups(data) {
                let x = x_label(data, &g.configs);
                for (stat, chart) in &charts {
                    let (stat, what, y) = (stat.name, chart.title, chart.y);
                    let b = bands(data, stat, chart.site, &g.configs);
                    if !has_positive(&b) {
                        continue;
                    }
                    // Say so where no mean-field line can be drawn, rather than leaving
                    // the reader to wonder where it went.
                    let note = if chart.theory_note && b.iter().all(|b| b.theory.is_none()) {
                        " (no mean-field prediction applies)"
                    } else {
                        ""
                    };
                    let title = format!("{what}{}: {band}{note}", g.title);
                    let stem = dir.join(format!("{stat}{}", g.suffix));
                    files.extend(
                        match chart.axis {
                            Axis::Fraction => fraction_chart(&stem, &title, x, y, &b),
                            Axis::Log => variance_chart(&stem, &title, x, y, &b, true),
                            Axis::Linear => variance_chart(&stem, &title, x, y, &b, false),
                        }
                        .map_err(plot_err)?,
                    );
                }
            }
            files.extend(histograms(dir, data)?);
            files.extend(spectrum_charts(dir, data)?);
        } else {
            let all: Vec<usize> = data.summaries.iter().map(|(k, _)| k.config).collect();
            let x = x_label(data, &all);
            for (stat, chart) in &charts {
                let (stat, what, y) = (stat.name, chart.title, chart.y);
                let mut panels = Vec::new();
                for g in groups(data) {
                    let parts = g.configs.len().div_ceil(PANEL_LINES);
                    for (i, chunk) in g.configs.chunks(PANEL_LINES).enumerate() {
                        let b = bands(data, stat, chart.site, chunk);
                        let part = if parts > 1 {
                            format!(" {} of {parts}", i + 1)
                        } else {
                            String::new()
                        };
                        let name = g.title.trim().trim_start_matches('(').trim_end_matches(')');
                        let name = if name.is_empty() {
                            "configurations"
                        } else {
                            name
                        };
                        panels.push(Panel {
                            title: format!("{name}{part}"),
                            bands: b,
                        });
                    }
                }
                if !panels.iter().any(|p| has_positive(&p.bands)) {
                    continue;
                }
                let title = format!("{what}: {band}");
                let stem = dir.join(stat);
                files.extend(
                    small_multiples_chart(
                        &stem,
                        &title,
                        x,
                        y,
                        &panels,
                        chart.axis == Axis::Log,
                        chart.axis == Axis::Fraction,
                    )
                    .map_err(plot_err)?,
                );
            }
        }
    }
    files.extend(heatmaps(dir, data)?);
    Ok(files)
}

/// Bins of a singular-value density chart.
const SV_BINS: usize = 60;

/// Decades of singular values a density chart spans below the largest value measured.
const SV_DECADES: f64 = 6.0;

/// One chart per configuration that measured Jacobians: the density of `log10` of the
/// singular values at each measured layer (the seeds pooled, the band their range), with the
/// free-probability density dashed where it is a curve. Densities are per unit of
/// `log10 s` over every singular value of the layer, so values below the chart's left edge
/// (and ReLU's zeros) count in the normalization and the curves compare directly.
fn spectrum_charts(dir: &Path, data: &Tables) -> Result<Vec<PathBuf>, RunnerError> {
    let mut files = Vec::new();
    let slugs = config_slugs(&data.summaries);
    for ((key, _), (_, slug)) in data.summaries.iter().zip(&slugs) {
        let rows: Vec<&SpectrumRow> = data
            .spectra
            .iter()
            .filter(|(k, _)| k.config == key.config)
            .map(|(_, r)| r)
            .collect();
        let top = rows
            .iter()
            .map(|r| r.singular_value)
            .filter(|v| v.is_finite() && *v > 0.0)
            .fold(f64::NEG_INFINITY, f64::max);
        if !top.is_finite() {
            continue;
        }
        let hi = top.log10() + 0.05;
        let lo = hi - SV_DECADES;
        let width = (hi - lo) / SV_BINS as f64;
        let centers: Vec<f64> = (0..SV_BINS)
            .map(|i| lo + (i as f64 + 0.5) * width)
            .collect();
        let mut layers: Vec<usize> = rows.iter().map(|r| r.layer).collect();
        layers.sort_unstable();
        layers.dedup();
        let mut seeds: Vec<u64> = rows.iter().map(|r| r.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let mut below = 0usize;
        let mut bands = Vec::new();
        for &l in &layers {
            // Per seed: counts per bin and the number of values.
            let mut per: Vec<(Vec<f64>, f64)> = vec![(vec![0.0; SV_BINS], 0.0); seeds.len()];
            for r in rows.iter().filter(|r| r.layer == l) {
                let Ok(at) = seeds.binary_search(&r.seed) else {
                    continue;
                };
                per[at].1 += 1.0;
                let u = r.singular_value.log10();
                // NaN (a non-finite Jacobian) and values off the chart's left edge.
                if u.is_nan() || u < lo {
                    below += 1;
                    continue;
                }
                let b = (((u - lo) / width) as usize).min(SV_BINS - 1);
                per[at].0[b] += 1.0;
            }
            let total: f64 = per.iter().map(|p| p.1).sum();
            if total == 0.0 {
                continue;
            }
            let dens = |c: f64, n: f64| if n > 0.0 { c / (n * width) } else { f64::NAN };
            let mean: Vec<f64> = (0..SV_BINS)
                .map(|b| dens(per.iter().map(|p| p.0[b]).sum(), total))
                .collect();
            let seed_dens = |b: usize| per.iter().map(move |p| dens(p.0[b], p.1));
            let theory_pts: Vec<&DensityRow> = data
                .densities
                .iter()
                .filter(|(k, d)| k.config == key.config && d.layer == l)
                .map(|(_, d)| d)
                .collect();
            let theory = (!theory_pts.is_empty()).then(|| {
                centers
                    .iter()
                    .map(|&u| interpolate(&theory_pts, u))
                    .collect()
            });
            bands.push(Band {
                label: format!("layer {l}"),
                x: centers.clone(),
                mean,
                lo: (0..SV_BINS)
                    .map(|b| seed_dens(b).fold(f64::INFINITY, f64::min))
                    .collect(),
                hi: (0..SV_BINS)
                    .map(|b| seed_dens(b).fold(f64::NEG_INFINITY, f64::max))
                    .collect(),
                theory,
                x_names: Vec::new(),
            });
        }
        if !has_positive(&bands) {
            continue;
        }
        let total = rows.len().max(1) as f64;
        let note = if below > 0 {
            format!(
                "; {:.1}% below 1e-{SV_DECADES} of the largest",
                100.0 * below as f64 / total
            )
        } else {
            String::new()
        };
        let theory = if data.densities.iter().any(|(k, _)| k.config == key.config) {
            ", free-probability theory dashed"
        } else {
            ""
        };
        let title = format!(
            "Jacobian spectrum, {}: density of log10 s, {} seed(s){theory}{note}",
            key.label,
            seeds.len()
        );
        let stem = dir.join(format!("spectrum_{slug}"));
        files.extend(
            variance_chart(
                &stem,
                &title,
                "log10 singular value",
                "density",
                &bands,
                false,
            )
            .map_err(plot_err)?,
        );
    }
    Ok(files)
}

/// The density at `u` (log10 of a singular value) by linear interpolation between the
/// theory's points (0 outside them: beyond the support's top, or below the grid).
fn interpolate(points: &[&DensityRow], u: f64) -> f64 {
    let i = points.partition_point(|p| p.log10_sv < u);
    if i == 0 || i == points.len() {
        return 0.0;
    }
    let (a, b) = (points[i - 1], points[i]);
    let t = (u - a.log10_sv) / (b.log10_sv - a.log10_sv);
    a.density + t * (b.density - a.density)
}

fn histograms(dir: &Path, data: &Tables) -> Result<Vec<PathBuf>, RunnerError> {
    let mut files = Vec::new();
    let slugs = config_slugs(&data.summaries);
    for ((key, _), (_, slug)) in data.summaries.iter().zip(&slugs) {
        for (tensor, what) in [
            ("preact", "pre-activations z"),
            ("act", "activation values h"),
            ("grad", "back-propagated gradients dL/dz"),
        ] {
            let rows: Vec<&HistRow> = data
                .hists
                .iter()
                .filter(|h| h.config == key.config && h.tensor == tensor)
                .collect();
            let mut layers: Vec<usize> = rows.iter().map(|h| h.layer).collect();
            layers.dedup();
            let hists: Vec<Histogram> = layers
                .iter()
                .map(|&l| {
                    let bins: Vec<&&HistRow> = rows.iter().filter(|h| h.layer == l).collect();
                    let mut edges: Vec<f64> = bins.iter().map(|h| h.lo).collect();
                    edges.extend(bins.last().map(|h| h.hi));
                    Histogram {
                        label: format!("layer {l}"),
                        edges,
                        counts: bins.iter().map(|h| h.count as f64).collect(),
                    }
                })
                .collect();
            if hists.is_empty() {
                continue;
            }
            let stem = dir.join(format!("hist_{tensor}_{slug}"));
            let title = format!("Histograms of {what}: {}", key.label);
            files.extend(histogram_chart(&stem, &title, what, &hists).map_err(plot_err)?);
        }
    }
    Ok(files)
}

/// A grid key as chart text: the Greek of the field for the mean-field shorthands
/// (`sigma-w2` -> `σ_w²`), other keys as written.
pub fn pretty_key(key: &str) -> String {
    match key {
        "sigma-w2" => "σ_w²".into(),
        "sigma-b2" => "σ_b²".into(),
        "sigma-b" => "σ_b".into(),
        other => other.to_string(),
    }
}

/// Two numeric grid keys, in grid order, if the experiment swept exactly two.
fn two_numeric_keys(grid: &[GridRow]) -> Option<(String, String)> {
    let mut keys: Vec<&str> = Vec::new();
    for g in grid {
        if !keys.contains(&g.key.as_str()) {
            keys.push(&g.key);
        }
    }
    let numeric = |k: &str| {
        grid.iter()
            .filter(|g| g.key == k)
            .all(|g| g.value.parse::<f64>().is_ok())
    };
    (keys.len() == 2 && keys.iter().all(|k| numeric(k)))
        .then(|| (keys[0].to_string(), keys[1].to_string()))
}

/// The numeric value of grid key `key` for configuration `config`, if it has one.
fn grid_value(grid: &[GridRow], config: usize, key: &str) -> Option<f64> {
    grid.iter()
        .find(|g| g.config == config && g.key == key)
        .and_then(|g| g.value.parse::<f64>().ok())
}

/// The distinct numeric values of grid key `key`, ascending: a heatmap's axis.
fn grid_axis(grid: &[GridRow], key: &str) -> Vec<f64> {
    let mut v: Vec<f64> = grid
        .iter()
        .filter(|g| g.key == key)
        .filter_map(|g| g.value.parse().ok())
        .collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

fn heatmaps(dir: &Path, data: &Tables) -> Result<Vec<PathBuf>, RunnerError> {
    let Some((kx, ky)) = two_numeric_keys(&data.grid) else {
        return Ok(Vec::new());
    };
    let value = |config: usize, key: &str| grid_value(&data.grid, config, key);
    let axis = |key: &str| grid_axis(&data.grid, key);
    let (xs, ys) = (axis(&kx), axis(&ky));
    // The chi_1 = 1 curve when the sweep is over (sigma_w2, sigma_b2) of one activation.
    let activations: Vec<&str> = data
        .summaries
        .iter()
        .map(|(k, _)| k.activation.as_str())
        .collect();
    let curve: Option<Vec<(f64, f64)>> =
        (kx == "sigma-w2" && ky == "sigma-b2" && activations.windows(2).all(|w| w[0] == w[1]))
            .then(|| {
                // TAT's leaky ReLU and DKS are solved at the configurations' depth.
                let depth = data.summaries.first().map_or(1, |(k, _)| k.depth);
                activations
                    .first()
                    .and_then(|a| a.parse::<Activation>().ok())
                    .and_then(|a| sigprop_theory::resolve_activation(a, depth).ok())
            })
            .flatten()
            .map(|act| {
                let (lo, hi) = (
                    ys.first().copied().unwrap_or(0.0),
                    ys.last().copied().unwrap_or(0.0),
                );
                (0..=60)
                    .filter_map(|i| {
                        let b2 = lo + (hi - lo) * i as f64 / 60.0;
                        match critical_sigma_w(act, b2.sqrt()) {
                            Critical::Root { sigma_w, .. } => Some((sigma_w * sigma_w, b2)),
                            _ => None,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|c| !c.is_empty());
    let mut files = Vec::new();
    type Metric = fn(&SummaryRow) -> f64;
    let metrics: [(&str, &str, Metric); 2] = [
        (
            "heatmap_grad_growth",
            "ln growth of Var(dL/dz) per layer, backward",
            |s| s.bwd_log_slope,
        ),
        (
            "heatmap_fwd_growth",
            "ln growth of Var(z) per layer, forward",
            |s| s.fwd_log_slope,
        ),
    ];
    for (stem, label, metric) in metrics {
        let mut values = vec![vec![f64::NAN; xs.len()]; ys.len()];
        for (key, s) in &data.summaries {
            let (Some(x), Some(y)) = (value(key.config, &kx), value(key.config, &ky)) else {
                continue;
            };
            let ix = xs.iter().position(|&v| v == x);
            let iy = ys.iter().position(|&v| v == y);
            if let (Some(ix), Some(iy)) = (ix, iy) {
                values[iy][ix] = if s.verdict == Verdict::Diverged {
                    f64::NAN
                } else {
                    metric(s)
                };
            }
        }
        let heat = Heatmap {
            x: xs.clone(),
            y: ys.clone(),
            values,
            x_label: pretty_key(&kx),
            y_label: pretty_key(&ky),
            value_label: label.to_string(),
            log_color: false,
            diverging: true,
            curve_label: if curve.is_some() {
                "χ₁ = 1 (theory)".into()
            } else {
                String::new()
            },
        };
        let title = format!("{label} over {} × {}", pretty_key(&kx), pretty_key(&ky));
        files.extend(
            heatmap_chart(&dir.join(stem), &title, &heat, curve.as_deref()).map_err(plot_err)?,
        );
    }
    Ok(files)
}

/// `loss.svg/png` and `grad_norm.svg/png` of a training run: per configuration the mean
/// over seeds at each step (over the seeds that reached it) with the seeds' range as the
/// band, log y.
pub fn loss_charts(dir: &Path, outcomes: &[TrainOutcome]) -> Result<Vec<PathBuf>, RunnerError> {
    let mut files = Vec::new();
    for (stem, what, title) in [
        (
            "loss",
            "loss",
            "Training loss (mean over seeds, band: seeds' range)",
        ),
        (
            "grad_norm",
            "gradient norm",
            "Gradient norm (mean over seeds, band: seeds' range)",
        ),
    ] {
        let bands: Vec<Band> = outcomes
            .iter()
            .map(|o| {
                let last = o
                    .runs
                    .iter()
                    .filter_map(|(_, r)| r.steps.last().map(|s| s.step))
                    .max()
                    .unwrap_or(0);
                let mut b = Band {
                    label: o.key.label.clone(),
                    ..Band::default()
                };
                for step in 0..=last {
                    let vals: Vec<f64> = o
                        .runs
                        .iter()
                        .filter_map(|(_, r)| r.steps.get(step))
                        .map(|s| if stem == "loss" { s.loss } else { s.grad_norm })
                        .filter(|v| v.is_finite())
                        .collect();
                    if vals.is_empty() {
                        continue;
                    }
                    b.x.push(step as f64);
                    b.mean.push(vals.iter().sum::<f64>() / vals.len() as f64);
                    b.lo.push(vals.iter().copied().fold(f64::INFINITY, f64::min));
                    b.hi.push(vals.iter().copied().fold(f64::NEG_INFINITY, f64::max));
                }
                b
            })
            .collect();
        files.extend(
            variance_chart(&dir.join(stem), title, "step", what, &bands, true).map_err(plot_err)?,
        );
    }
    Ok(files)
}

/// Heatmaps of a training sweep over two numeric grid keys (one per learning rate): the
/// final loss over the initial (`loss_ratio`, log colour; diverged configurations blank).
/// Over (`sigma-w2`, `depth`) of one activation with the theory's `sigma_b2`, the line
/// `depth = 6 xi_c` that Schoenholz et al. 2017 found to bound trainability.
pub fn train_heatmaps(
    dir: &Path,
    outcomes: &[TrainOutcome],
    grid: &[GridRow],
    sigma_b2: &[Option<f64>],
) -> Result<Vec<PathBuf>, RunnerError> {
    // The configurations swept over exactly two numeric keys: configurations with the same
    // grid keys form a part (a suite's [[grid]] tables may differ), and the keys that vary
    // within it (a single value is set, not swept) must be two numeric ones. The first such
    // part is drawn.
    let mut configs: Vec<usize> = grid.iter().map(|g| g.config).collect();
    configs.dedup();
    let keys_of = |c: usize| -> Vec<&str> {
        grid.iter()
            .filter(|g| g.config == c)
            .map(|g| g.key.as_str())
            .collect()
    };
    let mut found: Option<(String, String, Vec<usize>)> = None;
    for &c in &configs {
        let keys = keys_of(c);
        let members: Vec<usize> = configs
            .iter()
            .copied()
            .filter(|&d| keys_of(d) == keys)
            .collect();
        let rows: Vec<GridRow> = grid
            .iter()
            .filter(|g| members.contains(&g.config))
            .cloned()
            .collect();
        let varying: Vec<GridRow> = rows
            .iter()
            .filter(|g| rows.iter().any(|h| h.key == g.key && h.value != g.value))
            .cloned()
            .collect();
        if let Some((kx, ky)) = two_numeric_keys(&varying) {
            found = Some((kx, ky, members));
            break;
        }
    }
    let Some((kx, ky, members)) = found else {
        return Ok(Vec::new());
    };
    let grid: Vec<GridRow> = grid
        .iter()
        .filter(|g| members.contains(&g.config))
        .cloned()
        .collect();
    let grid = grid.as_slice();
    let outcomes: Vec<&TrainOutcome> = outcomes
        .iter()
        .filter(|o| members.contains(&o.spec))
        .collect();
    // The theory's sigma_b^2, when every member has the same.
    let b2s: Vec<Option<f64>> = members
        .iter()
        .map(|&c| sigma_b2.get(c).copied().flatten())
        .collect();
    let sigma_b2 = match b2s.first() {
        Some(Some(b)) if b2s.iter().all(|v| *v == Some(*b)) => Some(*b),
        _ => None,
    };
    let value = |config: usize, key: &str| grid_value(grid, config, key);
    let axis = |key: &str| grid_axis(grid, key);
    let activations: Vec<&str> = outcomes.iter().map(|o| o.key.activation.as_str()).collect();
    let one_activation = activations.windows(2).all(|w| w[0] == w[1]);
    // Drawn with sigma_w^2 on x: the keys are swapped when the suite wrote depth first.
    let (kx, ky) = if kx == "depth" && ky == "sigma-w2" {
        (ky, kx)
    } else {
        (kx, ky)
    };
    let (xs, ys) = (axis(&kx), axis(&ky));
    let curve: Option<Vec<(f64, f64)>> = match (kx.as_str(), ky.as_str(), sigma_b2) {
        ("sigma-w2", "depth", Some(b2)) if one_activation => activations
            .first()
            .and_then(|a| a.parse::<Activation>().ok())
            // TAT's and DKS's activations change with the depth on the axis: no one 6 xi_c
            // line.
            .filter(|a| !a.depends_on_depth())
            .map(|act| {
                let (lo, hi) = (
                    xs.first().copied().unwrap_or(0.0),
                    xs.last().copied().unwrap_or(0.0),
                );
                (0..=200)
                    .filter_map(|i| {
                        let w2 = lo + (hi - lo) * i as f64 / 200.0;
                        let xi = sigprop_theory::MeanField::new(act, w2, b2).xi_c();
                        (xi.is_finite() && xi > 0.0).then_some((w2, 6.0 * xi))
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|c| !c.is_empty()),
        _ => None,
    };
    let mut lrs: Vec<f64> = outcomes.iter().map(|o| o.cols.lr).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    let mut files = Vec::new();
    for (i, lr) in lrs.iter().enumerate() {
        let mut values = vec![vec![f64::NAN; xs.len()]; ys.len()];
        for o in outcomes.iter().filter(|o| o.cols.lr == *lr) {
            let (Some(x), Some(y)) = (value(o.spec, &kx), value(o.spec, &ky)) else {
                continue;
            };
            let ix = xs.iter().position(|&v| v == x);
            let iy = ys.iter().position(|&v| v == y);
            if let (Some(ix), Some(iy)) = (ix, iy) {
                // A configuration with a diverged seed is left blank, as the probe's are.
                values[iy][ix] = if o.summary.diverged > 0 {
                    f64::NAN
                } else {
                    o.summary.loss_ratio
                };
            }
        }
        let heat = Heatmap {
            x: xs.clone(),
            y: ys.clone(),
            values,
            x_label: pretty_key(&kx),
            y_label: pretty_key(&ky),
            value_label: "loss at the last step / loss at step 0".into(),
            log_color: true,
            diverging: false,
            curve_label: if curve.is_some() {
                "depth = 6 ξ_c (theory)".into()
            } else {
                String::new()
            },
        };
        let stem = if lrs.len() == 1 {
            "heatmap_loss_ratio".to_string()
        } else {
            format!("heatmap_loss_ratio_lr{}", i + 1)
        };
        let title = format!(
            "Trained loss ratio over {} × {} (lr {lr})",
            pretty_key(&kx),
            pretty_key(&ky)
        );
        files.extend(
            heatmap_chart(&dir.join(stem), &title, &heat, curve.as_deref()).map_err(plot_err)?,
        );
    }
    Ok(files)
}
