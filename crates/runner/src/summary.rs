//! One line per configuration: growth rates with their seed intervals and the shape of the
//! change with depth; the verdict read from them is verdict.rs's.
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

use serde::{Deserialize, Serialize};

use crate::aggregate::mean_sd_ci;
use sigprop_nets::Arch;

use crate::rows::{AggRow, LayerRow, SummaryRow};
use crate::verdict::Measured;

/// A direction whose total change over the depth can be within this factor is `flat`.
pub const FLAT_FACTOR: f64 = 10.0;

/// How a variance changes with depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// Within [`FLAT_FACTOR`] over the depth.
    Flat,
    /// A line in ln(layer): critical behaviour.
    PowerLaw,
    /// A line in layer: a depth scale of 1/|rate| layers.
    Exponential,
    /// Too few finite, positive points to say.
    Unknown,
}

/// The site whose rows describe the network's layers, for an `arch` column value (the
/// architecture's own answer; `layer` for a name this build does not know).
pub fn primary_site(arch: &str) -> &'static str {
    arch.parse::<Arch>().map_or("layer", Arch::primary_site)
}

/// Seed means of `stat` at `site`, by layer.
pub fn series(aggs: &[AggRow], site: &str, stat: &str) -> Vec<(usize, f64)> {
    aggs.iter()
        .filter(|a| a.site == site && a.stat == stat)
        .map(|a| (a.layer, a.mean))
        .collect()
}

/// Least-squares line through `pts`: (slope, residual sum of squares); `None` below two
/// points or with no spread in x.
fn line(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx = pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
    if sxx == 0.0 {
        return None;
    }
    let sxy = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>();
    let slope = sxy / sxx;
    let rss = pts
        .iter()
        .map(|p| (p.1 - my - slope * (p.0 - mx)).powi(2))
        .sum::<f64>();
    Some((slope, rss))
}

/// The finite, positive points of `points` as (layer, ln y).
fn log_points(points: &[(usize, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|(_, y)| y.is_finite() && *y > 0.0)
        .map(|&(x, y)| (x as f64, y.ln()))
        .collect()
}

/// Least-squares slope of ln(y) against x over the finite, positive points.
pub fn log_slope(points: &[(usize, f64)]) -> f64 {
    line(&log_points(points)).map_or(f64::NAN, |l| l.0)
}

/// Exponent `p` of the power law `y ~ (x - x_0 + 1)^p` fitted to the finite, positive points
/// (x_0 the first layer), with its residual sum of squares in ln(y).
fn power_fit(points: &[(usize, f64)]) -> Option<(f64, f64)> {
    let first = points.first()?.0 as f64;
    let pts: Vec<(f64, f64)> = log_points(points)
        .into_iter()
        .map(|(x, ly)| ((x - first + 1.0).ln(), ly))
        .collect();
    line(&pts)
}

/// Exponential or power law, by the smaller residual of the two fits (three points at
/// least; with fewer, a change beyond flat is called exponential).
fn shape(points: &[(usize, f64)]) -> Form {
    let exp = line(&log_points(points));
    match (exp, power_fit(points)) {
        (None, _) => Form::Unknown,
        (Some(_), Some((_, p_rss))) if log_points(points).len() >= 3 => {
            if p_rss < exp.map_or(f64::INFINITY, |e| e.1) {
                Form::PowerLaw
            } else {
                Form::Exponential
            }
        }
        _ => Form::Exponential,
    }
}

/// How one direction's variance changes with depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// ln change per layer (seed means).
    pub rate: f64,
    /// 95% t-interval of the per-seed rates (`None` for one seed).
    pub rate_ci: Option<(f64, f64)>,
    /// Power-law exponent of the variance against the layer index (seed means).
    pub power: f64,
    /// Layers spanned, last - first.
    pub span: f64,
    /// The shape.
    pub form: Form,
}

impl Trend {
    /// Fit `means` (seed means by layer) and `per_seed` (each seed's series); `sign` is +1
    /// forward and -1 backward (a backward rate is growth toward the input).
    pub fn fit(means: &[(usize, f64)], per_seed: &[Vec<(usize, f64)>], sign: f64) -> Trend {
        let rate = sign * log_slope(means);
        let seeds: Vec<f64> = per_seed.iter().map(|s| sign * log_slope(s)).collect();
        let rate_ci = if seeds.iter().all(|r| r.is_finite()) {
            mean_sd_ci(&seeds).2.map(|(a, b)| (a.min(b), a.max(b)))
        } else {
            None
        };
        let span = match (means.first(), means.last()) {
            (Some(a), Some(b)) => (b.0 as f64 - a.0 as f64).abs(),
            _ => 0.0,
        };
        let mut t = Trend {
            rate,
            rate_ci,
            power: power_fit(means).map_or(f64::NAN, |p| p.0),
            span,
            form: Form::Unknown,
        };
        let limit = FLAT_FACTOR.ln();
        let (lo, hi) = t.total_interval();
        t.form = if !rate.is_finite() {
            Form::Unknown
        } else if lo <= limit && hi >= -limit {
            Form::Flat
        } else {
            shape(means)
        };
        t
    }

    /// Total log change over the span: the point value.
    pub fn total(&self) -> f64 {
        self.rate * self.span
    }

    /// Total log change over the span: its interval (the point twice for one seed).
    pub fn total_interval(&self) -> (f64, f64) {
        match self.rate_ci {
            Some((lo, hi)) => (lo * self.span, hi * self.span),
            None => (self.total(), self.total()),
        }
    }

    /// Interval of |total log change|.
    pub(crate) fn abs_interval(&self) -> (f64, f64) {
        let (lo, hi) = self.total_interval();
        if !(lo.is_finite() && hi.is_finite()) {
            return (f64::INFINITY, f64::INFINITY);
        }
        if lo <= 0.0 && hi >= 0.0 {
            (0.0, lo.abs().max(hi.abs()))
        } else {
            (lo.abs().min(hi.abs()), lo.abs().max(hi.abs()))
        }
    }

    /// Depth scale 1/|rate| in layers.
    pub fn depth_scale(&self) -> f64 {
        1.0 / self.rate.abs()
    }
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
}

/// The correlation's approach to `c*` is fitted once its distance has fallen to this share of
/// its largest over the layers (the c-map's linear regime).
const CORR_FIT_NEAR: f64 = 0.1;

/// The depth scale of `corr`'s approach to its fixed point `c_star`: `-1 / slope` of the
/// least-squares line through `ln |c^l - c*|` against `l`, over the layers from the first
/// whose distance is at most [`CORR_FIT_NEAR`] of the largest on, keeping those whose
/// distance exceeds `noise` (twice the seeds' 95% half-width there, and 1e-6). `None` below
/// three such layers or when the distance does not shrink.
pub fn corr_depth_scale(pts: &[(usize, f64, f64)], c_star: f64) -> Option<f64> {
    let d: Vec<(usize, f64, f64)> = pts
        .iter()
        .map(|&(l, c, noise)| (l, (c - c_star).abs(), noise))
        .collect();
    let top = d.iter().map(|p| p.1).fold(f64::NAN, f64::max);
    if !top.is_finite() {
        return None;
    }
    let first = d.iter().position(|p| p.1 <= CORR_FIT_NEAR * top)?;
    let fit: Vec<(f64, f64)> = d[first..]
        .iter()
        .filter(|p| p.1 > p.2.max(1e-6))
        .map(|p| (p.0 as f64, p.1.ln()))
        .collect();
    if fit.len() < 3 {
        return None;
    }
    let (slope, _) = line(&fit)?;
    (slope < 0.0).then(|| -1.0 / slope)
}

/// Each seed's series of `stat` at `site`, seeds in order of first appearance.
fn per_seed(rows: &[LayerRow], site: &str, stat: &str) -> Vec<Vec<(usize, f64)>> {
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
                .map(|r| (r.stats.layer, r.stat(stat)))
                .collect()
        })
        .collect()
}

/// A number for prose: three significant digits, scientific outside [1e-3, 1e4).
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{x:.2e}")
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// `x` to `digits` significant digits, trailing zeros dropped (`2.0000000000000004` ->
/// `2`, `1.7609553` -> `1.760955` at 7); scientific below 1e-4 and from 1e10.
pub fn fmt_sig(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    let e = x.abs().log10().floor() as i32;
    let trim = |t: String| {
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        }
    };
    if !(-4..10).contains(&e) {
        let t = format!("{:.*e}", digits - 1, x);
        match t.split_once('e') {
            Some((m, ex)) => format!("{}e{ex}", trim(m.to_string())),
            None => t,
        }
    } else {
        let decimals = (digits as i32 - 1 - e).max(0) as usize;
        trim(format!("{x:.decimals$}"))
    }
}

/// Summarize one configuration from its layer rows (all seeds) and their aggregate.
pub fn summarize(arch: &str, rows: &[LayerRow], aggs: &[AggRow], extra: Extra) -> SummaryRow {
    let site = primary_site(arch);
    let fwd_means = series(aggs, site, "preact_var");
    let bwd_means = series(aggs, site, "grad_var");
    let fwd = Trend::fit(&fwd_means, &per_seed(rows, site, "preact_var"), 1.0);
    let bwd = Trend::fit(&bwd_means, &per_seed(rows, site, "grad_var"), -1.0);
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
    };
    let (verdict, verdict_detail) = m.verdict();
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exact exponential approach `c^l = c* + a e^(-l/xi)` gives back `xi` whatever its
    /// start; noise at the seeds' level drops the layers it swamps; a series that never
    /// gets near `c*` (or too few layers) gives none.
    #[test]
    fn corr_depth_scale_recovers_an_exponential_approach() {
        for (c_star, a, xi) in [(1.0, -0.8, 3.5), (0.17, 0.7, 2.0), (0.5, 0.3, 12.0)] {
            let pts: Vec<(usize, f64, f64)> = (1..=60)
                .map(|l| (l, c_star + a * (-(l as f64) / xi).exp(), 0.0))
                .collect();
            let got = corr_depth_scale(&pts, c_star).unwrap();
            assert!((got / xi - 1.0).abs() < 1e-9, "{got} vs {xi}");
        }
        // Noise from layer 10 on: only the layers above it are fitted.
        let pts: Vec<(usize, f64, f64)> = (1..=30)
            .map(|l| {
                let d = (-(l as f64) / 2.0).exp();
                (l, 1.0 - d, if l >= 10 { 0.05 } else { 0.0 })
            })
            .collect();
        assert!((corr_depth_scale(&pts, 1.0).unwrap() / 2.0 - 1.0).abs() < 1e-9);
        // Still far from c* at the last layer: no fit.
        let far: Vec<(usize, f64, f64)> =
            (1..=20).map(|l| (l, 0.9 - 0.03 * l as f64, 0.0)).collect();
        assert_eq!(corr_depth_scale(&far, 0.1), None);
    }

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

    #[test]
    fn significant_digits_drop_float_noise() {
        assert_eq!(fmt_sig(2.0000000000000004, 7), "2");
        assert_eq!(fmt_sig(1.7609553234, 7), "1.760955");
        assert_eq!(fmt_sig(0.5000000000000001, 7), "0.5");
        assert_eq!(fmt_sig(-0.012345678, 4), "-0.01235");
        assert_eq!(fmt_sig(1.5e-7, 7), "1.5e-7");
        assert_eq!(fmt_sig(123456.7, 3), "123457");
    }

    #[test]
    fn numbers_in_prose_have_sensible_precision() {
        assert_eq!(fmt_num(2.0000000000000004), "2");
        assert_eq!(fmt_num(61.0905), "61.1");
        assert_eq!(fmt_num(2.5376), "2.538");
        assert_eq!(fmt_num(1.117e-15), "1.12e-15");
        assert_eq!(fmt_num(117.4), "117");
    }
}
