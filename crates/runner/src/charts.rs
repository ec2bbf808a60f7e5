//! Which charts an output folder gets, drawn from the CSV rows alone.
//!
//! This file only selects and arranges data (series per configuration, histogram bins,
//! heatmap cells); drawing is the plot crate's. Because it reads nothing but rows that
//! round-trip through the CSVs, `sigprop plot DIR` redraws exactly what a run drew.

use std::path::{Path, PathBuf};

use sigprop_init::Activation;
use sigprop_plot::{
    Band, Heatmap, Histogram, fraction_chart, heatmap_chart, histogram_chart, variance_chart,
};
use sigprop_theory::{Critical, critical_sigma_w};

use crate::error::RunnerError;
use crate::execute::GridRow;
use crate::rows::{AggRow, ConfigKey, HistRow, SummaryRow};
use crate::summary::primary_site;

/// Line charts get too crowded past this many configurations; heatmaps take over.
pub const MAX_LINES: usize = 12;

/// The rows a chart set is drawn from.
pub struct ChartData<'a> {
    /// aggregate.csv.
    pub aggs: &'a [(ConfigKey, AggRow)],
    /// summary.csv.
    pub summaries: &'a [(ConfigKey, SummaryRow)],
    /// histograms.csv.
    pub hists: &'a [HistRow],
    /// grid.csv.
    pub grid: &'a [GridRow],
}

fn plot_err(e: impl std::fmt::Display) -> RunnerError {
    RunnerError::Plot(e.to_string())
}

fn bands(data: &ChartData<'_>, stat: &str, configs: &[usize]) -> Vec<Band> {
    data.summaries
        .iter()
        .filter(|(key, _)| configs.contains(&key.config))
        .map(|(key, _)| {
            let site = primary_site(&key.arch);
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
            }
        })
        .collect()
}

/// Charts with more lines than this are split into one panel per activation.
pub const PANEL_LINES: usize = 6;

/// The panels: `("", all)`, or one `("_<activation>", configs)` per activation when many
/// lines span several activations.
fn panels(data: &ChartData<'_>) -> Vec<(String, String, Vec<usize>)> {
    let all: Vec<usize> = data.summaries.iter().map(|(k, _)| k.config).collect();
    let mut acts: Vec<&str> = Vec::new();
    for (k, _) in data.summaries {
        if !acts.contains(&k.activation.as_str()) {
            acts.push(&k.activation);
        }
    }
    if all.len() <= PANEL_LINES || acts.len() < 2 {
        return vec![(String::new(), String::new(), all)];
    }
    acts.iter()
        .map(|a| {
            let configs = data
                .summaries
                .iter()
                .filter(|(k, _)| k.activation == *a)
                .map(|(k, _)| k.config)
                .collect();
            let stem: String = a
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            (format!("_{stem}"), format!(" ({a})"), configs)
        })
        .collect()
}

fn has_positive(b: &[Band]) -> bool {
    b.iter()
        .any(|b| b.mean.iter().any(|v| v.is_finite() && *v > 0.0))
}

/// Draw every chart for the data into `dir`; returns the files written (SVG and PNG).
pub fn draw_all(dir: &Path, data: &ChartData<'_>) -> Result<Vec<PathBuf>, RunnerError> {
    let mut files = Vec::new();
    let n = data.summaries.len();
    let x_label = match data.summaries.first().map(|(k, _)| k.arch.as_str()) {
        Some("resmlp") => "residual block",
        Some("rnn") => "time step",
        _ => "layer",
    };
    if n > 0 && n <= MAX_LINES {
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
        let variances = [
            ("preact_var", "Pre-activation variance Var(z)", "Var(z)"),
            ("grad_var", "Gradient variance Var(dL/dz)", "Var(dL/dz)"),
            (
                "wgrad_var",
                "Weight-gradient variance Var(dL/dW)",
                "Var(dL/dW)",
            ),
        ];
        let fractions = [
            ("dead_frac", "Dead units (h = 0)"),
            ("saturated_frac", "Saturated units (phi'(z) < 0.01)"),
        ];
        for (suffix, which, configs) in panels(data) {
            for (stat, what, y) in variances {
                let b = bands(data, stat, &configs);
                if has_positive(&b) {
                    let title = format!("{what}{which}: {band}");
                    let stem = dir.join(format!("{stat}{suffix}"));
                    files.extend(
                        variance_chart(&stem, &title, x_label, y, &b, true).map_err(plot_err)?,
                    );
                }
            }
            for (stat, what) in fractions {
                let b = bands(data, stat, &configs);
                if has_positive(&b) {
                    let title = format!("{what}{which}: {band}");
                    let stem = dir.join(format!("{stat}{suffix}"));
                    files.extend(
                        fraction_chart(&stem, &title, x_label, "fraction", &b).map_err(plot_err)?,
                    );
                }
            }
        }
        files.extend(histograms(dir, data)?);
    }
    files.extend(heatmaps(dir, data)?);
    Ok(files)
}

fn histograms(dir: &Path, data: &ChartData<'_>) -> Result<Vec<PathBuf>, RunnerError> {
    let mut files = Vec::new();
    for (key, _) in data.summaries {
        for (tensor, what) in [
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
            let stem = dir.join(format!("hist_{tensor}_c{}", key.config));
            let title = format!("Histograms of {what}: {}", key.label);
            files.extend(histogram_chart(&stem, &title, what, &hists).map_err(plot_err)?);
        }
    }
    Ok(files)
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

fn heatmaps(dir: &Path, data: &ChartData<'_>) -> Result<Vec<PathBuf>, RunnerError> {
    let Some((kx, ky)) = two_numeric_keys(data.grid) else {
        return Ok(Vec::new());
    };
    let value = |config: usize, key: &str| {
        data.grid
            .iter()
            .find(|g| g.config == config && g.key == key)
            .and_then(|g| g.value.parse::<f64>().ok())
    };
    let axis = |key: &str| {
        let mut v: Vec<f64> = data
            .grid
            .iter()
            .filter(|g| g.key == key)
            .filter_map(|g| g.value.parse().ok())
            .collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
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
                activations
                    .first()
                    .and_then(|a| a.parse::<Activation>().ok())
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
                    .collect()
            });
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
        for (key, s) in data.summaries {
            let (Some(x), Some(y)) = (value(key.config, &kx), value(key.config, &ky)) else {
                continue;
            };
            let ix = xs.iter().position(|&v| v == x);
            let iy = ys.iter().position(|&v| v == y);
            if let (Some(ix), Some(iy)) = (ix, iy) {
                values[iy][ix] = if s.verdict == "diverged" {
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
            x_label: kx.clone(),
            y_label: ky.clone(),
            value_label: label.to_string(),
            log_color: false,
        };
        let title = format!("{label} over {kx} x {ky}");
        files.extend(
            heatmap_chart(&dir.join(stem), &title, &heat, curve.as_deref()).map_err(plot_err)?,
        );
    }
    Ok(files)
}
