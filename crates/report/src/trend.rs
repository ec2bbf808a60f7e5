//! How a per-layer statistic changes with depth: least-squares fits of ln(variance) against
//! the layer (exponential) and against ln(layer) (power law), each seed's rate with its 95%
//! t-interval, and the shape they decide ([`Form`]); the depth scale of the correlation's
//! approach to its fixed point. Pure functions of series; what a configuration's trends mean
//! is verdict.rs's, and its summary row is summary.rs's.

use crate::aggregate::mean_sd_ci;
use crate::labels::Form;
use crate::rows::AggRow;

/// A direction whose total change over the depth can be within this factor is `flat`.
pub const FLAT_FACTOR: f64 = 10.0;

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
pub(crate) fn shape(points: &[(usize, f64)]) -> Form {
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
}
