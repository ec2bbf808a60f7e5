//! `sigprop theory`'s numbers, without a network: the mean-field quantities of an activation
//! at a weight and bias variance (`--info`), and the per-layer predictions of an i.i.d. MLP
//! (the default table), and the order/chaos phase diagram (`--phase-diagram`). The flags'
//! values are checked here; printing them is the binary's.
//! Not the theory itself (the theory crate) nor its columns next to measurements
//! (overlay.rs).

use std::path::{Path, PathBuf};

use sigprop_init::{Activation, Scheme};
use sigprop_nets::{Arch, NetConfig};
use sigprop_plot::{Heatmap, heatmap_chart};
use sigprop_report::overlay::theory_params;
use sigprop_spec::error::RunnerError;
use sigprop_theory::{
    Critical, LayerPrediction, MeanField, Phase, critical_sigma_w, phase_grid, predict_mlp,
};

use crate::execute::prepare_out;

/// Largest depth, width or batch the prediction table is made for (one row a layer; the
/// prediction itself is width-free).
pub const MAX_SIZE: usize = 1_000_000;

/// `--sigma-b` (0 when not given), checked.
pub fn sigma_b(given: Option<f64>) -> Result<f64, RunnerError> {
    let sigma_b = given.unwrap_or(0.0);
    if !(sigma_b >= 0.0 && sigma_b.is_finite()) {
        return Err(RunnerError::input(format!(
            "--sigma-b {sigma_b} is not allowed; expected a number >= 0"
        )));
    }
    Ok(sigma_b)
}

/// The mean-field quantities `--info` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// The activation.
    pub activation: Activation,
    /// sigma_b.
    pub sigma_b: f64,
    /// sigma_w^2 used.
    pub sigma_w2: f64,
    /// Where sigma_w^2 comes from, for the reader.
    pub from: String,
    /// The fixed point of the q-map (`None`: q diverges).
    pub q_star: Option<f64>,
    /// chi_1.
    pub chi1: f64,
    /// The depth scale of q.
    pub xi_q: f64,
    /// The depth scale of c.
    pub xi_c: f64,
    /// Ordered, critical or chaotic.
    pub phase: Phase,
    /// The critical sigma_w at this sigma_b, or why there is none.
    pub critical: Critical,
}

/// `--info`: the mean-field quantities at the weight variance `init` implies for a
/// `width x width` layer, else at the critical sigma_w (else at sigma_w^2 = 1).
pub fn info(
    activation: Activation,
    sigma_b: f64,
    init: Option<&str>,
    width: usize,
) -> Result<Info, RunnerError> {
    let critical = critical_sigma_w(activation, sigma_b);
    let (sigma_w2, from) = match init {
        Some(init) => (
            sigma_w2_of(activation, init, width)?,
            format!("--init {init}"),
        ),
        None => match critical {
            Critical::Root { sigma_w, .. } => {
                (sigma_w * sigma_w, "the critical sigma_w".to_string())
            }
            _ => (1.0, "sigma_w^2 = 1 (no critical point)".to_string()),
        },
    };
    let mf = MeanField {
        activation,
        sigma_w2,
        sigma_b2: sigma_b * sigma_b,
    };
    Ok(Info {
        activation,
        sigma_b,
        sigma_w2,
        from,
        q_star: mf.q_star(),
        chi1: mf.chi1(),
        xi_q: mf.xi_q(),
        xi_c: mf.xi_c(),
        phase: mf.phase(),
        critical,
    })
}

/// The default table: the per-layer predictions of a `depth`-layer MLP of `width` units
/// initialized by `init` (default `variance-scaling:scale=1`), on a batch of `batch`.
pub fn table(
    activation: Activation,
    sigma_b: f64,
    init: Option<&str>,
    sizes: (Option<usize>, Option<usize>, Option<usize>),
) -> Result<Vec<LayerPrediction>, RunnerError> {
    let init = init.unwrap_or("variance-scaling:scale=1");
    let depth = sizes.0.unwrap_or(20);
    let width = sizes.1.unwrap_or(256);
    let batch = sizes.2.unwrap_or(128);
    for (flag, v) in [("--depth", depth), ("--width", width), ("--batch", batch)] {
        if v == 0 || v > MAX_SIZE {
            return Err(RunnerError::input(format!(
                "{flag} {v} is not allowed; expected a whole number from 1 to {MAX_SIZE}"
            )));
        }
    }
    let w2 = sigma_w2_of(activation, init, width)?;
    let widths = vec![width; depth + 1];
    predict_mlp(
        activation,
        &vec![w2; depth],
        sigma_b * sigma_b,
        &widths,
        batch,
        1.0,
        1.0,
    )
    .map_err(|e| RunnerError::input(e.to_string()))
}

/// sigma_w^2 = Var(W) * fan_in that `init` implies for a `width x width` layer.
pub fn sigma_w2_of(act: Activation, init: &str, width: usize) -> Result<f64, RunnerError> {
    let scheme: Scheme = init
        .parse()
        .map_err(|e| RunnerError::input(format!("--init: {e}")))?;
    // autoinit's first layer differs from the others and it sets its own bias: name the
    // equivalent i.i.d. layers instead of predicting a network it would not build.
    if let Some(q) = scheme.autoinit_q() {
        let plan = sigprop_theory::autoinit_plan(act, q)
            .map_err(|e| RunnerError::input(format!("--init {scheme}: {e}")))?;
        let h = plan.hidden;
        let msg = if h.center {
            format!(
                "--init {scheme}: for {act} its rows are centred, which this theory does not \
                 model; use sigprop run --init {scheme} to measure it"
            )
        } else {
            format!(
                "--init {scheme}: for {act} its hidden layers are --init \
                 variance-scaling:scale={},distribution=normal --sigma-b {} (the first layer \
                 has sigma_w^2 {}); give those to theory",
                h.sigma_w2,
                h.sigma_b2.sqrt(),
                plan.first.sigma_w2
            )
        };
        return Err(RunnerError::input(msg));
    }
    // A one-layer network reads the scheme's variance. TAT's leaky ReLU and DKS would
    // re-solve themselves for that one layer; to every scheme they are the linear activation
    // (PyTorch gain 1, as they are scaled to unit second moment), so it stands in.
    let name = match act {
        Activation::TatLeakyRelu { .. } | Activation::Dks { .. } => Activation::Linear.to_string(),
        other => other.to_string(),
    };
    let mut net = NetConfig::new(Arch::Mlp, 1, width, &name, init);
    net.bias_init = "zeros".into();
    let resolved = net
        .resolve()
        .map_err(|e| RunnerError::input(e.to_string()))?;
    theory_params(&resolved)
        .map(|(w2, _)| w2[0])
        .ok_or_else(|| {
            RunnerError::input(format!(
                "--init {scheme}: its weight variance is not fixed in advance (the theory \
                 needs i.i.d. zero-mean weights of known variance)"
            ))
        })
}

/// Depth scales beyond this are drawn as this (xi_c diverges at criticality).
const XI_CAP: f64 = 1000.0;

/// `--phase-diagram`: the order/chaos diagram of `act`, xi_c as a heatmap over (sigma_w^2,
/// sigma_b^2) with the chi_1 = 1 curve (Schoenholz et al. 2017, figure 1 style), drawn into
/// `dir` (created); the files written. The numbers are the theory crate's, the drawing the
/// plot crate's.
pub fn phase_diagram(act: Activation, dir: &Path) -> Result<Vec<PathBuf>, RunnerError> {
    prepare_out(dir)?;
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
    heatmap_chart(&stem, &title, &heat, Some(&curve)).map_err(|e| RunnerError::Plot(e.to_string()))
}
