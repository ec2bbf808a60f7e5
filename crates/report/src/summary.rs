//! One line per configuration: growth rates with their seed intervals and the shape of the
//! change with depth (fitted by trend.rs), and the verdict read from them (verdict.rs).
//!
//! Everything is read at the configuration's primary site (`layer` for mlp, `conv` for cnn,
//! `step` for rnn, `out` for resmlp), forward from Var(z) = `preact_var` and backward from
//! Var(dL/dz) = `grad_var`. The growth rate of a direction is the least-squares slope of
//! ln(variance) per layer: on the seed means for the point value, on each seed's own series
//! for a 95% t-interval. Times the layer span it is the total log change `T`. A direction is
//! `flat` when the interval of `T` reaches inside `±ln(FLAT_FACTOR)` (a single seed: its
//! value); otherwise its shape decides: `power-law` when ln(variance) is better fitted
//! (smaller residual sum of squares) as a line in ln(layer) than in layer, else
//! `exponential`, whose depth scale is 1/|rate| layers. Power-law decay is what a critical
//! network does (tanh at sigma_w = 1: q ~ 1/(2l)); exponential change is the ordered or
//! chaotic phase.

use sigprop_nets::Arch;
use sigprop_spec::format::fmt_num;

use crate::rows::{AggRow, LayerRow, SummaryRow};
use crate::trend::{Trend, corr_depth_scale, log_slope, series, shape};
use crate::verdict::{MERGE_COS, Measured, TokenMerge};

/// The site whose rows describe the network's layers, for an `arch` column value (the
/// architecture's own answer; `layer` for a name this build does not know).
pub fn primary_site(arch: &str) -> &'static str {
    arch.parse::<Arch>().map_or("layer", Arch::primary_site)
}

/// Inputs of [`summarize`] besides the rows.
pub struct Extra {
    /// Seeds run.
    pub seeds: usize,
    /// LSUV rescalings per seed (summed over layers); empty for other schemes.
    pub lsuv_totals: Vec<usize>,
    /// Mean-field chi_1, if it applies.
    pub theory_chi1: Option<f64>,
    /// The c-map's fixed point `c*` and depth scale `xi_c`, if they apply.
    pub corr_fixed: Option<(f64, f64)>,
    /// The cosine of the input tokens of a sequence (0: independent tokens).
    pub input_token_cos: f64,
    /// Each seed's log gains, one per input (`None` when a record has none).
    pub log_gains: Option<Vec<Vec<f64>>>,
    /// The finite-width theory of the log gain, where it applies.
    pub theory_log_gain: Option<sigprop_theory::LogGain>,
}

/// The log gain's mean, variance (n - 1) over all seeds' inputs, and the variance's 95%
/// delete-one-seed jackknife interval, Student t with seeds - 1 degrees of freedom (each
/// seed's inputs share one network, so they are not independent draws; the jackknife over
/// seeds counts them as they are). Sums are taken about the overall mean, each seed's left
/// out by subtraction.
fn log_gain_stats(seeds: &[Vec<f64>]) -> (f64, f64, Option<(f64, f64)>) {
    let n = seeds.iter().map(Vec::len).sum::<usize>() as f64;
    let mean = seeds.iter().flatten().sum::<f64>() / n;
    // Per seed: count, sum and sum of squares of the deviations from the mean.
    let parts: Vec<(f64, f64, f64)> = seeds
        .iter()
        .map(|g| {
            let d = g.iter().map(|x| x - mean);
            (g.len() as f64, d.clone().sum(), d.map(|x| x * x).sum())
        })
        .collect();
    let (s1, s2) = parts.iter().fold((0.0, 0.0), |a, p| (a.0 + p.1, a.1 + p.2));
    let var_of = |m: f64, t1: f64, t2: f64| (t2 - t1 * t1 / m) / (m - 1.0);
    let var = var_of(n, s1, s2);
    let k = parts.len();
    if k < 2 {
        return (mean, var, None);
    }
    let leave: Vec<f64> = parts
        .iter()
        .map(|p| var_of(n - p.0, s1 - p.1, s2 - p.2))
        .collect();
    let kf = k as f64;
    let avg = leave.iter().sum::<f64>() / kf;
    let se = ((kf - 1.0) / kf * leave.iter().map(|v| (v - avg).powi(2)).sum::<f64>()).sqrt();
    let t = crate::aggregate::t975(k - 1);
    (mean, var, Some((var - t * se, var + t * se)))
}

/// Below this, `1 - cos` is at the floor of an f32 pass and says nothing of the shape.
const GAP_FLOOR: f64 = 1e-6;

/// How `token_cos` at `site` approaches 1 with depth, with `token_rank` at the last layer;
/// `None` where it is not measured (or not finite at the last layer).
fn token_merge(aggs: &[AggRow], site: &str, input_cos: f64) -> Option<TokenMerge> {
    let rows: Vec<&AggRow> = aggs
        .iter()
        .filter(|a| a.site == site && a.stat == "token_cos")
        .collect();
    let last = rows.last().filter(|a| a.mean.is_finite())?;
    // The first layer of the run that stays merged to the end.
    let merged_from = rows
        .iter()
        .rposition(|a| a.mean < MERGE_COS)
        .map_or(rows.first().map(|a| a.layer), |i| {
            rows.get(i + 1).map(|a| a.layer)
        });
    let gap: Vec<(usize, f64)> = rows
        .iter()
        .map(|a| (a.layer, 1.0 - a.mean))
        .take_while(|p| p.1 >= GAP_FLOOR)
        .collect();
    Some(TokenMerge {
        cos_last: last.mean,
        cos_lo: last.ci95_lo.unwrap_or(last.mean),
        input_cos,
        merged_from,
        rate: log_slope(&gap),
        rank_last: series(aggs, site, "token_rank")
            .last()
            .map_or(f64::NAN, |p| p.1),
    })
}

/// `; corr C, act_rank R` at the last layer of `site`, the parts that are measured.
fn pairs_note(aggs: &[AggRow], site: &str) -> String {
    let last = |stat: &str| {
        series(aggs, site, stat)
            .last()
            .map(|p| p.1)
            .filter(|v| v.is_finite())
    };
    match (last("corr"), last("act_rank")) {
        (Some(c), Some(r)) => format!("; corr {}, act_rank {}", fmt_num(c), fmt_num(r)),
        (Some(c), None) => format!("; corr {}", fmt_num(c)),
        (None, Some(r)) => format!("; act_rank {}", fmt_num(r)),
        (None, None) => String::new(),
    }
}

/// Each seed's series of `value` at `site`, seeds in order of first appearance.
fn per_seed(rows: &[LayerRow], site: &str, value: fn(&LayerRow) -> f64) -> Vec<Vec<(usize, f64)>> {
    let mut seeds: Vec<u64> = Vec::new();
    for r in rows {
        if !seeds.contains(&r.run.seed) {
            seeds.push(r.run.seed);
        }
    }
    seeds
        .iter()
        .map(|&s| {
            rows.iter()
                .filter(|r| r.run.seed == s && r.stats.site == site)
                .map(|r| (r.stats.layer, value(r)))
                .collect()
        })
        .collect()
}

/// Summarize one configuration from its layer rows (all seeds) and their aggregate.
pub fn summarize(arch: &str, rows: &[LayerRow], aggs: &[AggRow], extra: Extra) -> SummaryRow {
    let site = primary_site(arch);
    let fwd_means = series(aggs, site, "preact_var");
    let bwd_means = series(aggs, site, "grad_var");
    let fwd = Trend::fit(
        &fwd_means,
        &per_seed(rows, site, |r| r.stats.preact_var),
        1.0,
    );
    let bwd = Trend::fit(
        &bwd_means,
        &per_seed(rows, site, |r| r.stats.grad_var),
        -1.0,
    );
    let first_last = |s: &[(usize, f64)]| match (s.first(), s.last()) {
        (Some(a), Some(b)) => (a.1, b.1),
        _ => (f64::NAN, f64::NAN),
    };
    let (f0, f1) = first_last(&fwd_means);
    let (b0, b1) = first_last(&bwd_means);
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
    let share: Vec<(usize, f64)> = series(aggs, site, "act_batch_var")
        .into_iter()
        .zip(series(aggs, site, "act_var"))
        .map(|((l, b), (_, v))| (l, b / v))
        .collect();
    let last = |stat: &str| series(aggs, site, stat).last().map_or(f64::NAN, |p| p.1);
    let gains = extra
        .log_gains
        .as_deref()
        .filter(|g| !g.is_empty())
        .map(log_gain_stats);
    // The drift of Var(z) next to what finite width allows: the seed mean of Var(z^L) /
    // Var(z^1) estimates the mean field's ratio, and ln of one seed's ratio spreads by at
    // most the log gain's sd (its inputs' gains averaged), so k seeds' by sd / sqrt(k).
    let theory_ends = {
        let t: Vec<f64> = aggs
            .iter()
            .filter(|a| a.site == site && a.stat == "preact_var")
            .filter_map(|a| a.theory)
            .collect();
        t.first().zip(t.last()).map(|(a, b)| (b / a).ln())
    };
    let finite_width = extra
        .theory_log_gain
        .zip(theory_ends)
        .filter(|(t, e)| t.var.is_finite() && e.is_finite() && extra.seeds > 0)
        // A ratio of 1 up to rounding is 0, not 1e-16.
        .map(|(t, e)| {
            (
                if e.abs() < 1e-12 { 0.0 } else { e },
                2.0 * (t.var / extra.seeds as f64).sqrt(),
            )
        });
    let m = Measured {
        fwd,
        bwd,
        fwd_ratio: f1 / f0,
        bwd_ratio: b0 / b1,
        layers: fwd_means.len(),
        last_layer: fwd_means.last().map_or(0, |p| p.0),
        dead_last: last("dead_frac"),
        act_var_last: last("act_var"),
        share_last: share.last().map_or(f64::NAN, |p| p.1),
        share_form: shape(&share),
        share_rate: log_slope(&share),
        first_nonfinite_layer,
        nonfinite_seeds: bad_seeds.len(),
        seeds: extra.seeds,
        chi1: extra.theory_chi1,
        tokens: token_merge(aggs, site, extra.input_token_cos),
        pairs_note: pairs_note(aggs, site),
        axis: arch.parse::<Arch>().map_or("layer", Arch::axis_name),
        finite_width,
    };
    let (verdict, verdict_detail) = m.verdict();
    let unit = unit_scale(aggs);
    let lsuv_iterations = (!extra.lsuv_totals.is_empty())
        .then(|| extra.lsuv_totals.iter().sum::<usize>() as f64 / extra.lsuv_totals.len() as f64);
    let ci = |t: &Trend, i: usize| t.rate_ci.map(|c| if i == 0 { c.0 } else { c.1 });
    SummaryRow {
        seeds: extra.seeds,
        fwd_log_slope: fwd.rate,
        fwd_slope_lo: ci(&fwd, 0),
        fwd_slope_hi: ci(&fwd, 1),
        bwd_log_slope: bwd.rate,
        bwd_slope_lo: ci(&bwd, 0),
        bwd_slope_hi: ci(&bwd, 1),
        fwd_ratio: m.fwd_ratio,
        bwd_ratio: m.bwd_ratio,
        fwd_form: fwd.form,
        bwd_form: bwd.form,
        fwd_power: fwd.power,
        bwd_power: bwd.power,
        batch_var_share: m.share_last,
        log_gain_mean: gains.map(|g| g.0),
        log_gain_var: gains.map(|g| g.1),
        log_gain_var_lo: gains.and_then(|g| g.2).map(|c| c.0),
        log_gain_var_hi: gains.and_then(|g| g.2).map(|c| c.1),
        verdict,
        verdict_detail,
        first_nonfinite_layer,
        nonfinite_seeds: bad_seeds.len(),
        lsuv_iterations,
        theory_chi1: extra.theory_chi1,
        // At the edge of chaos (xi_c infinite) the approach is a power law: no fit.
        corr_depth_scale: extra
            .corr_fixed
            .filter(|f| f.1.is_finite())
            .and_then(|(c_star, _)| {
                let pts: Vec<(usize, f64, f64)> = aggs
                    .iter()
                    .filter(|a| a.site == site && a.stat == "corr")
                    .map(|a| {
                        let half = match (a.ci95_lo, a.ci95_hi) {
                            (Some(lo), Some(hi)) => 0.5 * (hi - lo),
                            _ => 0.0,
                        };
                        (a.layer, a.mean, 2.0 * half)
                    })
                    .collect();
                corr_depth_scale(&pts, c_star)
            }),
        theory_corr_depth_scale: extra.corr_fixed.filter(|f| f.1.is_finite()).and_then(
            |(c_star, _)| {
                let pts: Vec<(usize, f64, f64)> = aggs
                    .iter()
                    .filter(|a| a.site == site && a.stat == "corr")
                    .filter_map(|a| a.theory.map(|t| (a.layer, t, 0.0)))
                    .collect();
                corr_depth_scale(&pts, c_star)
            },
        ),
        theory_xi_c: extra.corr_fixed.map(|f| f.1).filter(|x| x.is_finite()),
        theory_log_gain_mean: extra.theory_log_gain.map(|t| t.mean),
        theory_log_gain_var: extra.theory_log_gain.map(|t| t.var),
        unit_scale: unit.as_ref().map(|u| u.0),
        unit_scale_at: unit.map(|u| u.1),
    }
}

/// The largest `|ln|` of a variance's seed mean over every site and layer, and where:
/// `preact_var`, `act_var`, `grad_var` and `weight_var`, zero (and non-finite) ones left
/// out; the first in row order on a tie.
fn unit_scale(aggs: &[AggRow]) -> Option<(f64, String)> {
    const STATS: [&str; 4] = ["preact_var", "act_var", "grad_var", "weight_var"];
    aggs.iter()
        .filter(|a| STATS.contains(&a.stat.as_str()) && a.mean.is_finite() && a.mean > 0.0)
        .map(|a| (a.mean.ln().abs(), a))
        .fold(None, |best: Option<(f64, &AggRow)>, (d, a)| match best {
            Some((b, _)) if b >= d => best,
            _ => Some((d, a)),
        })
        .map(|(d, a)| (d, format!("{} at {} {}", a.stat, a.site, a.layer)))
}

#[cfg(test)]
mod tests {
    use super::log_gain_stats;

    #[test]
    fn log_gain_statistics_pool_the_inputs_and_jackknife_over_seeds() {
        let seeds = vec![
            vec![1.0, 2.0, 3.0],
            vec![2.0, 4.0],
            vec![0.0, 1.0, 5.0, 6.0],
        ];
        let all: Vec<f64> = seeds.iter().flatten().copied().collect();
        let n = all.len() as f64;
        let mean = all.iter().sum::<f64>() / n;
        let var = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let (m, v, ci) = log_gain_stats(&seeds);
        assert!(
            (m - mean).abs() < 1e-12 && (v - var).abs() < 1e-12,
            "{m} {v}"
        );
        // The jackknife by hand: each seed left out in turn.
        let leave: Vec<f64> = (0..3)
            .map(|s| {
                let x: Vec<f64> = seeds
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != s)
                    .flat_map(|(_, g)| g.clone())
                    .collect();
                let k = x.len() as f64;
                let mu = x.iter().sum::<f64>() / k;
                x.iter().map(|y| (y - mu).powi(2)).sum::<f64>() / (k - 1.0)
            })
            .collect();
        let avg = leave.iter().sum::<f64>() / 3.0;
        let se = (2.0 / 3.0 * leave.iter().map(|l| (l - avg).powi(2)).sum::<f64>()).sqrt();
        let (lo, hi) = ci.unwrap();
        let t = crate::aggregate::t975(2);
        assert!((lo - (var - t * se)).abs() < 1e-12 && (hi - (var + t * se)).abs() < 1e-12);
        // One seed: no interval; identical seeds: no spread.
        assert!(log_gain_stats(&seeds[..1]).2.is_none());
        let same = vec![vec![0.5, 1.5]; 4];
        let (_, v, ci) = log_gain_stats(&same);
        let (lo, hi) = ci.unwrap();
        assert!((lo - v).abs() < 1e-12 && (hi - v).abs() < 1e-12);
    }
}
