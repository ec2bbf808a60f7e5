//! Statistics over seeds: per configuration x site x layer, the mean, the sample standard
//! deviation and a 95% t-interval of each per-layer statistic. Pure functions of rows.

use crate::rows::{AggRow, ConfigKey, LayerRow};
use crate::statistics::{Aggregate, aggregated};

/// Two-sided 97.5% quantiles of Student's t for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 97.5% quantile of Student's t with `df` degrees of freedom: the table to 30, then the
/// Cornish-Fisher expansion z + (z^3+z)/(4 df) + (5z^5+16z^3+3z)/(96 df^2), within 1e-4 of
/// the exact value there (df = 31: 2.03942 against 2.03951).
pub fn t975(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T975[df - 1],
        _ => {
            let d = df as f64;
            1.959_964 + 2.372_2 / d + 2.822_5 / (d * d)
        }
    }
}

/// Mean, sample sd and 95% interval of `xs` (`None`s for fewer than two values).
pub fn mean_sd_ci(xs: &[f64]) -> (f64, Option<f64>, Option<(f64, f64)>) {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, None, None);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    let half = t975(n - 1) * sd / (n as f64).sqrt();
    (mean, Some(sd), Some((mean - half, mean + half)))
}

/// Aggregate one configuration's rows (all seeds) into tidy rows, in (site order of first
/// appearance, layer, statistic) order.
pub fn aggregate(rows: &[LayerRow]) -> Vec<AggRow> {
    let mut sites: Vec<(String, usize)> = Vec::new();
    for r in rows {
        if !sites
            .iter()
            .any(|(s, l)| *s == r.stats.site && *l == r.stats.layer)
        {
            sites.push((r.stats.site.clone(), r.stats.layer));
        }
    }
    let mut out = Vec::new();
    for (site, layer) in sites {
        let here: Vec<&LayerRow> = rows
            .iter()
            .filter(|r| r.stats.site == site && r.stats.layer == layer)
            .collect();
        for stat in aggregated() {
            let xs: Vec<f64> = here.iter().map(|r| (stat.value)(r)).collect();
            if stat.aggregate == Aggregate::WherePresent && xs.iter().all(|x| x.is_nan()) {
                continue;
            }
            let (mean, sd, ci) = mean_sd_ci(&xs);
            out.push(AggRow {
                site: site.clone(),
                layer,
                node: here
                    .first()
                    .map_or_else(String::new, |r| r.stats.node.clone()),
                stat: stat.name.to_string(),
                n: xs.len(),
                mean,
                sd,
                ci95_lo: ci.map(|c| c.0),
                ci95_hi: ci.map(|c| c.1),
                min: xs.iter().copied().fold(f64::INFINITY, nan_min),
                max: xs
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, |a, b| -nan_min(-a, -b)),
                theory: here.first().and_then(|r| (stat.theory)(r)),
            });
        }
    }
    out
}

/// `min` that propagates NaN (a NaN seed makes the range unknown, not smaller).
fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// The name of the float type of an f32 pass.
fn f32_name() -> String {
    "f32".into()
}

/// The configuration columns shared by every CSV row of a configuration.
pub fn key_of(spec: &sigprop_spec::settings::RunSpec) -> ConfigKey {
    ConfigKey {
        config: spec.index,
        label: spec.label.clone(),
        arch: spec.net.config.arch.to_string(),
        init: spec.net.config.weight_init.clone(),
        bias_init: spec.net.config.bias_init.clone(),
        activation: spec.net.config.activation.clone(),
        depth: spec.net.config.depth,
        width: spec.net.config.width,
        batch: spec.batch,
        backend: spec.backend.to_string(),
        loss: spec.net.config.loss.to_string(),
        prune: spec.net.config.prune.clone().unwrap_or_default(),
        dtype: spec
            .precision
            .map_or_else(f32_name, |p| p.dtype.to_string()),
        loss_scale: spec
            .precision
            .map_or_else(|| "off".into(), |p| p.loss_scale.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_matches_hand_computation() {
        // xs = 1,2,3,4: mean 2.5, sd sqrt(5/3), half-width 3.182 * sd / 2.
        let (m, sd, ci) = mean_sd_ci(&[1.0, 2.0, 3.0, 4.0]);
        let sd = sd.unwrap();
        assert_eq!(m, 2.5);
        assert!((sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let (lo, hi) = ci.unwrap();
        assert!((hi - lo - 2.0 * 3.182 * sd / 2.0).abs() < 1e-12);
        assert!(mean_sd_ci(&[3.0]).1.is_none());
        assert!((t975(1000) - 1.962_339).abs() < 1e-4);
        assert!((t975(31) - 2.039_513).abs() < 1e-4);
        assert!((t975(60) - 2.000_298).abs() < 1e-4);
    }
}
