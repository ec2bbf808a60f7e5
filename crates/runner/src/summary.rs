//! One line per configuration: growth rates, ratios and a verdict.
//!
//! The verdict rule, applied to the seed means at the configuration's primary site
//! (`layer` for mlp, `conv` for cnn, `step` for rnn, `out` for resmlp):
//!
//! 1. `diverged`: any seed produced a NaN or Inf anywhere (where it started is reported:
//!    see `SummaryRow::first_nonfinite_layer`).
//! 2. `collapsed`: at the last layer the activations carry no information about the
//!    input: `dead_frac > 0.99`, or `act_var == 0`, or `act_batch_var < 0.01 * act_var`
//!    (all inputs mapped to nearly the same point: rank collapse).
//! 3. Otherwise, with F = ln(preact_var[last] / preact_var[first]) (forward change) and
//!    B = ln(grad_var[first] / grad_var[last]) (backward change), a change beyond a factor of
//!    [`RATIO_LIMIT`] in either direction decides: the larger of |F| and |B| wins, and its
//!    sign says `exploding` (> 0) or `vanishing` (< 0).
//! 4. Else `stable`.

use crate::rows::{AggRow, LayerRow, SummaryRow};

/// A change of variance over the whole depth beyond this factor is not stable.
pub const RATIO_LIMIT: f64 = 100.0;

/// The site whose rows describe the network's layers.
pub fn primary_site(arch: &str) -> &'static str {
    match arch {
        "resmlp" => "out",
        "cnn" => "conv",
        "rnn" => "step",
        _ => "layer",
    }
}

/// Seed means of `stat` at the primary site, by layer.
pub fn series(aggs: &[AggRow], site: &str, stat: &str) -> Vec<(usize, f64)> {
    aggs.iter()
        .filter(|a| a.site == site && a.stat == stat)
        .map(|a| (a.layer, a.mean))
        .collect()
}

/// Least-squares slope of ln(y) against x over the finite, positive points.
pub fn log_slope(points: &[(usize, f64)]) -> f64 {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(_, y)| y.is_finite() && *y > 0.0)
        .map(|&(x, y)| (x as f64, y.ln()))
        .collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return f64::NAN;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx = pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
    let sxy = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>();
    sxy / sxx
}

/// Inputs of [`summarize`] besides the rows.
pub struct Extra {
    /// Seeds run.
    pub seeds: usize,
    /// LSUV rescalings per seed (summed over layers); empty for other schemes.
    pub lsuv_totals: Vec<usize>,
    /// Mean-field chi_1, if it applies.
    pub theory_chi1: Option<f64>,
}

/// Summarize one configuration from its layer rows (all seeds) and their aggregate.
pub fn summarize(arch: &str, rows: &[LayerRow], aggs: &[AggRow], extra: Extra) -> SummaryRow {
    let site = primary_site(arch);
    let fwd = series(aggs, site, "preact_var");
    let bwd = series(aggs, site, "grad_var");
    let first_last = |s: &[(usize, f64)]| match (s.first(), s.last()) {
        (Some(a), Some(b)) => (a.1, b.1),
        _ => (f64::NAN, f64::NAN),
    };
    let (f0, f1) = first_last(&fwd);
    let (b0, b1) = first_last(&bwd);
    let fwd_ratio = f1 / f0;
    let bwd_ratio = b0 / b1;
    let first_nonfinite_layer = rows
        .iter()
        .filter(|r| r.stats.nonfinite_forward > 0)
        .map(|r| r.stats.layer)
        .min()
        .or_else(|| {
            rows.iter()
                .filter(|r| r.stats.nonfinite > 0)
                .map(|r| r.stats.layer)
                .max()
        });
    let mut bad_seeds: Vec<u64> = rows
        .iter()
        .filter(|r| r.stats.nonfinite > 0)
        .map(|r| r.run.seed)
        .collect();
    bad_seeds.sort_unstable();
    bad_seeds.dedup();
    let last = |stat: &str| series(aggs, site, stat).last().map_or(f64::NAN, |p| p.1);
    let verdict = if first_nonfinite_layer.is_some() {
        "diverged"
    } else {
        let (dead, var, batch_var) = (last("dead_frac"), last("act_var"), last("act_batch_var"));
        if dead > 0.99 || var == 0.0 || batch_var < 0.01 * var {
            "collapsed"
        } else {
            let (f, b) = (fwd_ratio.ln(), bwd_ratio.ln());
            let limit = RATIO_LIMIT.ln();
            let worst = if f.abs() >= b.abs() || b.is_nan() {
                f
            } else {
                b
            };
            if worst.is_nan() {
                // 0/0 ratios: a variance that is exactly zero carries no signal.
                "collapsed"
            } else if worst > limit {
                "exploding"
            } else if worst < -limit {
                "vanishing"
            } else {
                "stable"
            }
        }
    };
    let lsuv_iterations = (!extra.lsuv_totals.is_empty())
        .then(|| extra.lsuv_totals.iter().sum::<usize>() as f64 / extra.lsuv_totals.len() as f64);
    SummaryRow {
        seeds: extra.seeds,
        fwd_log_slope: log_slope(&fwd),
        bwd_log_slope: -log_slope(&bwd),
        fwd_ratio,
        bwd_ratio,
        verdict: verdict.to_string(),
        first_nonfinite_layer,
        nonfinite_seeds: bad_seeds.len(),
        lsuv_iterations,
        theory_chi1: extra.theory_chi1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_slope_recovers_a_geometric_decay() {
        let pts: Vec<(usize, f64)> = (1..=10).map(|l| (l, 3.0 * 0.5f64.powi(l as i32))).collect();
        assert!((log_slope(&pts) - 0.5f64.ln()).abs() < 1e-12);
        // Non-finite and non-positive points are skipped, not propagated.
        let mut with_bad = pts.clone();
        with_bad.push((11, f64::NAN));
        with_bad.push((12, 0.0));
        assert!((log_slope(&with_bad) - 0.5f64.ln()).abs() < 1e-12);
    }
}
