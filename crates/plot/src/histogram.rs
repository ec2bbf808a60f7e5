//! Overlaid histograms, one step outline per layer, in the style of Glorot & Bengio (2010),
//! "Understanding the difficulty of training deep feedforward neural networks", figures 6
//! and 7: the distribution of activation values or back-propagated gradients at several
//! depths on one set of axes, so narrowing or widening with depth is visible at a glance.
//!
//! Counts are drawn as densities (count / (total · bin width)) so histograms with different
//! sample sizes or binnings compare; that rescaling is the only arithmetic here. Binning
//! itself happens where the samples are.

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::axis::{self, Scale};
use crate::error::PlotError;
use crate::legend::{self, Entry, Stroke};
use crate::output::{self, DrawResult, Figure};
use crate::style::{self, AXIS_LABEL_SIZE, LINE_WIDTH, TICK_SIZE, TITLE_SIZE};

/// Binned samples of one layer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// Legend text, e.g. `"layer 3"`.
    pub label: String,
    /// Bin edges, strictly increasing: `n + 1` of them for `n` bins.
    pub edges: Vec<f64>,
    /// Samples per bin (`n` of them). A non-finite count leaves a gap in the outline.
    pub counts: Vec<f64>,
}

impl Histogram {
    /// Density of each bin (`None` for non-finite or negative counts, and for every bin
    /// when the histogram holds no samples).
    fn densities(&self) -> Vec<Option<f64>> {
        let ok = |c: f64| c.is_finite() && c >= 0.0;
        let total: f64 = self.counts.iter().copied().filter(|&c| ok(c)).sum();
        (self.counts.iter().zip(self.edges.windows(2)))
            .map(|(&c, e)| (ok(c) && total > 0.0).then(|| c / (total * (e[1] - e[0]))))
            .collect()
    }
}

/// Draws `hists` overlaid as density step outlines, one colour per histogram, to
/// `<out_stem>.svg` and `<out_stem>.png`; returns the two paths.
///
/// Errors when a histogram's edges are not `counts.len() + 1` finite, strictly increasing
/// numbers, or on any failure to draw or write, naming the file.
pub fn histogram_chart(
    out_stem: &Path,
    title: &str,
    x_label: &str,
    hists: &[Histogram],
) -> Result<Vec<PathBuf>, PlotError> {
    for h in hists {
        let (n, m) = (h.counts.len(), h.edges.len());
        if m != n + 1 || n == 0 {
            let msg = format!("histogram \"{}\" has {n} counts and {m} edges", h.label);
            return Err(PlotError::data(
                title,
                msg + "; expected at least one count and one more edge than counts",
            ));
        }
        if !h.edges.iter().all(|e| e.is_finite()) || h.edges.windows(2).any(|w| w[1] <= w[0]) {
            let msg = format!(
                "histogram \"{}\": edges must be finite and strictly increasing",
                h.label
            );
            return Err(PlotError::data(title, msg));
        }
    }
    let densities: Vec<_> = hists.iter().map(Histogram::densities).collect();
    let x_range = axis::tight_range(hists.iter().flat_map(|h| h.edges.iter().copied()));
    let top = densities
        .iter()
        .flatten()
        .flatten()
        .fold(0.0f64, |m, &d| m.max(d));
    let y_range = 0.0..if top > 0.0 { top * 1.05 } else { 1.0 };
    let chart = HistogramChart {
        title,
        x_label,
        hists,
        densities,
        x_range,
        y_range,
    };
    output::render(out_stem, &chart)
}

/// A validated histogram chart ready to draw.
struct HistogramChart<'a> {
    title: &'a str,
    x_label: &'a str,
    hists: &'a [Histogram],
    densities: Vec<Vec<Option<f64>>>,
    x_range: Range<f64>,
    y_range: Range<f64>,
}

impl Figure for HistogramChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let entries: Vec<Entry> = (self.hists.iter().enumerate())
            .map(|(i, h)| Entry {
                label: h.label.clone(),
                color: style::series_color(i),
                stroke: Stroke::Solid,
                marker: None,
                band: false,
            })
            .collect();
        let legend_w = legend::column_width(root, &entries)?;
        let titled = crate::title::titled(root, self.title, TITLE_SIZE)?;
        let (plot, legend_area) = titled.split_horizontally(root.dim_in_pixel().0 - legend_w);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(20)
            .x_label_area_size(56)
            .y_label_area_size(84)
            .build_cartesian_2d(self.x_range.clone(), self.y_range.clone())?;
        let fmt = |v: &f64| Scale::Linear.tick_label(*v);
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc("density")
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .label_style(style::text(TICK_SIZE))
            .axis_desc_style(style::text(AXIS_LABEL_SIZE))
            .bold_line_style(style::INK.mix(style::GRID_ALPHA))
            .light_line_style(TRANSPARENT)
            .axis_style(style::INK.stroke_width(1))
            .draw()?;
        for (i, (h, dens)) in self.hists.iter().zip(&self.densities).enumerate() {
            let color = style::series_color(i);
            let bins = dens
                .iter()
                .enumerate()
                .map(|(j, d)| d.map(|d| (h.edges[j], h.edges[j + 1], d)));
            for run in axis::runs(bins) {
                let outline = step_outline(&run);
                chart.draw_series(LineSeries::new(outline, color.stroke_width(LINE_WIDTH)))?;
            }
        }
        legend::draw(&legend_area, &entries, 12)
    }
}

/// The step outline of consecutive bins `(left, right, density)`, closed down to zero at
/// both ends.
fn step_outline(bins: &[(f64, f64, f64)]) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(2 * bins.len() + 2);
    if let Some(&(left, _, _)) = bins.first() {
        pts.push((left, 0.0));
    }
    for &(left, right, d) in bins {
        pts.push((left, d));
        pts.push((right, d));
    }
    if let Some(&(_, right, _)) = bins.last() {
        pts.push((right, 0.0));
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn densities_integrate_to_one_over_unequal_bins() {
        let h = Histogram {
            label: "l1".into(),
            edges: vec![0.0, 1.0, 3.0],
            counts: vec![2.0, 6.0],
        };
        let d: Vec<f64> = h.densities().into_iter().flatten().collect();
        assert_eq!(d, vec![0.25, 0.375]);
        assert!((d[0] * 1.0 + d[1] * 2.0 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_nan_count_is_a_gap_not_a_zero() {
        let h = Histogram {
            label: "l".into(),
            edges: vec![0.0, 1.0, 2.0],
            counts: vec![f64::NAN, 4.0],
        };
        assert_eq!(h.densities(), vec![None, Some(1.0)]);
    }

    #[test]
    fn step_outline_closes_to_zero() {
        let pts = step_outline(&[(0.0, 1.0, 0.5), (1.0, 2.0, 0.25)]);
        assert_eq!(
            pts,
            vec![
                (0.0, 0.0),
                (0.0, 0.5),
                (1.0, 0.5),
                (1.0, 0.25),
                (2.0, 0.25),
                (2.0, 0.0)
            ]
        );
    }
}
