//! `sigprop theory --phase-diagram`: the order/chaos diagram of an activation, xi_c as a
//! heatmap over (sigma_w^2, sigma_b^2) with the chi_1 = 1 curve (Schoenholz et al. 2017,
//! figure 1 style). The numbers are the theory crate's; the drawing is the plot crate's.

use std::path::{Path, PathBuf};

use anyhow::Result;
use sigprop_init::Activation;
use sigprop_plot::{Heatmap, heatmap_chart};
use sigprop_theory::phase_grid;

/// Depth scales beyond this are drawn as this (xi_c diverges at criticality).
const XI_CAP: f64 = 1000.0;

/// Draw the diagram into `dir`; returns the files written.
pub fn draw(act: Activation, dir: &Path) -> Result<Vec<PathBuf>> {
    let grid = phase_grid(act, (0.5, 4.0, 36), (0.0, 0.3, 31));
    let values: Vec<Vec<f64>> = grid
        .xi_c
        .iter()
        .map(|row| {
            row.iter()
                // +inf is criticality (drawn at the cap); NaN is undefined (q* diverges)
                // and stays NaN: a grey cell, not a critical-looking one.
                .map(|&x| if x.is_nan() { x } else { x.min(XI_CAP) })
                .collect()
        })
        .collect();
    let heat = Heatmap {
        x: grid.sigma_w2.clone(),
        y: grid.sigma_b2.clone(),
        values,
        x_label: "σ_w²".into(),
        y_label: "σ_b²".into(),
        value_label: "depth scale ξ_c (layers)".into(),
        log_color: true,
        diverging: false,
        curve_label: "χ₁ = 1 (edge of chaos)".into(),
    };
    let curve = grid.critical_curve();
    let title = format!("Order/chaos phase diagram of {act}: ξ_c and the χ₁ = 1 curve");
    let stem = dir.join(format!("phase_{}", act.name()));
    Ok(heatmap_chart(&stem, &title, &heat, Some(&curve))?)
}
