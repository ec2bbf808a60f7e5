//! The order-to-chaos phase diagram over `(sigma_w^2, sigma_b^2)` as plain data: `chi_1`
//! and `xi_c` at every grid point and the critical line `chi_1 = 1`, the content of
//! Schoenholz et al. 2017, figure 1. Drawing it is the chart crate's job; nothing here
//! knows about colours or axes beyond their values.

use rayon::prelude::*;
use sigprop_init::Activation;

use crate::critical::{Critical, critical_sigma_w};
use crate::meanfield::MeanField;

/// `chi_1`, `xi_c` and the critical line of one activation on a `sigma_b^2 x sigma_w^2` grid.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseGrid {
    /// The activation.
    pub activation: Activation,
    /// Column axis: `sigma_w^2` values, evenly spaced.
    pub sigma_w2: Vec<f64>,
    /// Row axis: `sigma_b^2` values, evenly spaced.
    pub sigma_b2: Vec<f64>,
    /// `chi1[i][j]` = [`MeanField::chi1`] at `(sigma_b2[i], sigma_w2[j])`.
    pub chi1: Vec<Vec<f64>>,
    /// `xi_c[i][j]` = [`MeanField::xi_c`] there (infinite at criticality, NaN where `q*`
    /// diverges for a non-homogeneous `phi`).
    pub xi_c: Vec<Vec<f64>>,
    /// `(sigma_b2[i], critical sigma_w^2)` for every row: the [`Critical::Root`] of
    /// [`critical_sigma_w`], NaN where `chi_1` jumps over 1 or never reaches it.
    pub critical: Vec<(f64, f64)>,
}

/// `n` evenly spaced values from `lo` to `hi` inclusive (`[lo]` for `n = 1`, empty for 0).
fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// The phase diagram of `act` over `sigma_w2 = (lo, hi, n)` and `sigma_b2 = (lo, hi, n)`,
/// rows computed in parallel.
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::phase_grid;
/// let g = phase_grid(Activation::Tanh, (0.5, 2.5, 3), (0.0, 0.05, 2));
/// assert_eq!(g.chi1.len(), 2);
/// assert!(g.chi1[0][0] < 1.0 && g.chi1[0][2] > 1.0);
/// // The edge of chaos at sigma_b^2 = 0 is sigma_w^2 = 1.
/// assert!((g.critical[0].1 - 1.0).abs() < 1e-6);
/// ```
pub fn phase_grid(
    act: Activation,
    sigma_w2: (f64, f64, usize),
    sigma_b2: (f64, f64, usize),
) -> PhaseGrid {
    let ws = linspace(sigma_w2.0, sigma_w2.1, sigma_w2.2);
    let bs = linspace(sigma_b2.0, sigma_b2.1, sigma_b2.2);
    let rows: Vec<(Vec<f64>, Vec<f64>, f64)> = bs
        .par_iter()
        .map(|&b2| {
            let (chi1, xi_c) = ws
                .iter()
                .map(|&w2| {
                    let mf = MeanField::new(act, w2, b2);
                    (mf.chi1(), mf.xi_c())
                })
                .unzip();
            let critical = match critical_sigma_w(act, b2.max(0.0).sqrt()) {
                Critical::Root { sigma_w, .. } => sigma_w * sigma_w,
                _ => f64::NAN,
            };
            (chi1, xi_c, critical)
        })
        .collect();
    let mut grid = PhaseGrid {
        activation: act,
        sigma_w2: ws,
        sigma_b2: bs.clone(),
        chi1: Vec::with_capacity(rows.len()),
        xi_c: Vec::with_capacity(rows.len()),
        critical: Vec::with_capacity(rows.len()),
    };
    for ((chi1, xi_c, critical), b2) in rows.into_iter().zip(bs) {
        grid.chi1.push(chi1);
        grid.xi_c.push(xi_c);
        grid.critical.push((b2, critical));
    }
    grid
}

impl PhaseGrid {
    /// The `chi_1 = 1` line in the diagram's axes: `(sigma_w^2, sigma_b^2)` points (x then
    /// y, the transpose of [`PhaseGrid::critical`]), rows without a root left out.
    pub fn critical_curve(&self) -> Vec<(f64, f64)> {
        self.critical
            .iter()
            .filter(|(b2, w2)| b2.is_finite() && w2.is_finite())
            .map(|&(b2, w2)| (w2, b2))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_critical_curve_is_in_diagram_axes_and_inside_the_grid() {
        let g = phase_grid(Activation::Tanh, (0.5, 4.0, 8), (0.0, 0.3, 7));
        let c = g.critical_curve();
        assert_eq!(c.len(), 7);
        // x is sigma_w^2 (1 at sigma_b^2 = 0), y is sigma_b^2.
        assert!((c[0].0 - 1.0).abs() < 1e-6 && c[0].1 == 0.0);
        for (w2, b2) in c {
            assert!(
                (0.5..=4.0).contains(&w2) && (0.0..=0.3).contains(&b2),
                "{w2} {b2}"
            );
        }
    }

    #[test]
    fn linspace_includes_both_ends() {
        assert_eq!(linspace(1.0, 2.0, 3), [1.0, 1.5, 2.0]);
        assert_eq!(linspace(1.0, 2.0, 1), [1.0]);
        assert!(linspace(1.0, 2.0, 0).is_empty());
    }

    #[test]
    fn tanh_phase_diagram_matches_schoenholz_figure_one() {
        let g = phase_grid(Activation::Tanh, (1.0, 3.0, 5), (0.0, 0.1, 3));
        assert_eq!((g.sigma_w2.len(), g.sigma_b2.len()), (5, 3));
        for (i, row) in g.chi1.iter().enumerate() {
            // chi_1 is increasing in sigma_w2 along each row.
            assert!(row.windows(2).all(|p| p[0] < p[1]), "row {i}: {row:?}");
            // Ordered left of the critical line, chaotic right of it.
            let (b2, crit) = g.critical[i];
            assert_eq!(b2, g.sigma_b2[i]);
            for (j, &w2) in g.sigma_w2.iter().enumerate() {
                if (w2 - crit).abs() > 1e-6 {
                    assert_eq!(row[j] < 1.0, w2 < crit, "b2={b2} w2={w2} crit={crit}");
                }
            }
        }
        // The critical line rises with the bias: 1 at sigma_b2 = 0, ~1.76 at 0.05.
        assert!((g.critical[0].1 - 1.0).abs() < 1e-6);
        assert!((g.critical[1].1 - 1.76).abs() < 1e-2);
        assert!(g.critical[2].1 > g.critical[1].1);
        // xi_c is finite away from the line.
        assert!(g.xi_c[1][4].is_finite() && g.xi_c[1][4] > 0.0);
    }

    #[test]
    fn gelu_without_bias_has_no_critical_point_on_the_line() {
        let g = phase_grid(Activation::Gelu, (1.0, 2.0, 2), (0.0, 0.25, 2));
        assert!(g.critical[0].1.is_nan(), "{:?}", g.critical);
        // At sigma_b2 = 0.25 (sigma_b = 0.5) chi_1 does cross 1.
        assert!((g.critical[1].1 - 1.399_868_216_405_819_6f64.powi(2)).abs() < 1e-6);
    }
}
