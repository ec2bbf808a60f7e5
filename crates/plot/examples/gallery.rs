//! Renders one example of every chart family from synthetic numbers, to look at the house
//! style: `cargo run -p sigprop-plot --example gallery -- /tmp/plot-examples`.
//!
//! The numbers are made-up shapes (geometric decay, a bell curve), not measurements or
//! theory: this file shows what the charts look like, it is not an experiment.

use std::f64::consts::PI;
use std::path::PathBuf;

use sigprop_plot::{
    Band, Heatmap, Histogram, PlotError, fraction_chart, heatmap_chart, histogram_chart,
    variance_chart,
};

/// A band whose mean follows `f(layer)` with a spread widening like `sqrt(layer)`.
fn band(label: &str, depth: usize, f: impl Fn(f64) -> f64, theory: bool) -> Band {
    let x: Vec<f64> = (0..=depth).map(|l| l as f64).collect();
    let mean: Vec<f64> = x
        .iter()
        .map(|&l| f(l) * (1.0 + 0.04 * (l * 1.3).sin()))
        .collect();
    let spread = |l: f64| (0.08 * l.sqrt()).exp();
    let lo = x.iter().zip(&mean).map(|(&l, m)| m / spread(l)).collect();
    let hi = x.iter().zip(&mean).map(|(&l, m)| m * spread(l)).collect();
    let theory = theory.then(|| x.iter().map(|&l| f(l)).collect());
    Band {
        label: label.into(),
        x,
        mean,
        lo,
        hi,
        theory,
        x_names: Vec::new(),
    }
}

fn main() -> Result<(), PlotError> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/plot-examples".into()),
    );
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("creating {}: {e}", dir.display());
        std::process::exit(2);
    }

    let mut vanishing = band("glorot_uniform / relu", 40, |l| 0.5f64.powf(l), true);
    vanishing.mean[33] = 0.0; // an underflow: the line breaks instead of failing
    let bands = [
        band("he_normal / relu", 40, |_| 2.0, true),
        band("lecun_normal / tanh", 40, |l| 1.0 / (1.0 + 0.3 * l), true),
        vanishing,
        band(
            "orthogonal(gain=1.2) / tanh",
            40,
            |l| 1.1f64.powf(l) * 0.4,
            false,
        ),
    ];
    let title = "Preactivation variance vs depth (width 256, 30 seeds)";
    variance_chart(
        &dir.join("variance_log"),
        title,
        "layer",
        "Var[h]",
        &bands,
        true,
    )?;

    let many: Vec<Band> = (0..12)
        .map(|i| {
            let rate = 0.02 * i as f64 - 0.1;
            band(
                &format!("σ_w² = {:.2}", 1.5 + 0.1 * i as f64),
                20,
                move |l| 1.0 + rate * l,
                i % 3 == 0,
            )
        })
        .collect();
    variance_chart(
        &dir.join("variance_linear_12"),
        "Twelve series, linear y",
        "layer",
        "Var[h]",
        &many,
        false,
    )?;

    let frac = |label: &str, p0: f64, rate: f64| {
        let mut b = band(
            label,
            30,
            move |l| p0 + (1.0 - p0) * (1.0 - (-rate * l).exp()),
            true,
        );
        for v in b.lo.iter_mut().chain(&mut b.hi).chain(&mut b.mean) {
            *v = v.clamp(0.0, 1.0);
        }
        b
    };
    let fracs = [
        frac("relu, σ_b² = 0", 0.5, 0.0),
        frac("relu, σ_b² = 0.1", 0.45, 0.02),
        frac("tanh saturated", 0.0, 0.08),
    ];
    fraction_chart(
        &dir.join("fraction"),
        "Dead and saturated units",
        "layer",
        "fraction of units",
        &fracs,
    )?;

    let hists: Vec<Histogram> = [1usize, 2, 3, 4, 5]
        .iter()
        .map(|&layer| {
            let sd = 0.9 / (1.0 + 0.35 * layer as f64);
            let edges: Vec<f64> = (0..=80).map(|k| -1.0 + 2.0 * k as f64 / 80.0).collect();
            let counts = edges
                .windows(2)
                .map(|e| {
                    let m = (e[0] + e[1]) / 2.0;
                    (1e5 * (-m * m / (2.0 * sd * sd)).exp() / (sd * (2.0 * PI).sqrt())).round()
                })
                .collect();
            Histogram {
                label: format!("layer {layer}"),
                edges,
                counts,
            }
        })
        .collect();
    histogram_chart(
        &dir.join("histogram"),
        "Activation values, tanh, Glorot init",
        "activation value",
        &hists,
    )?;

    let x: Vec<f64> = (0..60).map(|i| 1.0 + 3.0 * i as f64 / 59.0).collect();
    let y: Vec<f64> = (0..40).map(|i| 0.3 * i as f64 / 39.0).collect();
    let chi = |w: f64, b: f64| w / 2.0 * (-4.0 * b).exp() + 0.3;
    let values = y
        .iter()
        .map(|&b| x.iter().map(|&w| 1.0 / chi(w, b).ln().abs()).collect())
        .map(|row: Vec<f64>| {
            row.into_iter()
                .map(|v| if v > 300.0 { f64::NAN } else { v })
                .collect()
        })
        .collect();
    let curve: Vec<(f64, f64)> = (0..100)
        .map(|i| {
            let b = 0.35 * i as f64 / 99.0;
            (2.0 * 0.7 * (4.0 * b).exp(), b)
        })
        .collect();
    let heat = Heatmap {
        x,
        y,
        values,
        x_label: "σ_w²".into(),
        y_label: "σ_b²".into(),
        value_label: "depth scale ξ_c (layers)".into(),
        log_color: true,
        diverging: false,
        curve_label: "χ₁ = 1".into(),
    };
    heatmap_chart(
        &dir.join("heatmap"),
        "Correlation depth scale, tanh",
        &heat,
        Some(&curve),
    )?;
    println!("wrote charts to {}", dir.display());
    Ok(())
}
