//! Two-parameter sweeps as a colour-mapped grid with a colour bar, in the style of
//! Schoenholz et al. (2017), "Deep Information Propagation", figure 1: a depth scale such
//! as `xi_c` over the (`sigma_w^2`, `sigma_b^2`) plane with the `chi_1 = 1` order/chaos
//! boundary drawn over it. Also for any grid of measurements, e.g. gradient growth per layer.
//!
//! Colours are viridis over the finite values (or their log10 with `log_color`); cells with
//! no colour (non-finite, or non-positive on a log colour scale) are grey. The boundary
//! curve is computed by the caller (the theory crate); this file only draws it.

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{self, Scale};
use crate::error::PlotError;
use crate::output::{self, DrawResult, Figure};
use crate::rich;
use crate::style::{self, AXIS_LABEL_SIZE, MISSING, TICK_SIZE, TITLE_SIZE};

/// Width of the colour bar column (bar, ticks, value label) in pixels.
const BAR_COLUMN: u32 = 140;
/// Number of colour steps drawn in the bar.
const BAR_STEPS: usize = 128;

/// A grid of values over two swept parameters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Heatmap {
    /// Cell centres along x, finite and strictly increasing.
    pub x: Vec<f64>,
    /// Cell centres along y, finite and strictly increasing.
    pub y: Vec<f64>,
    /// `values[iy][ix]` is the value at `(x[ix], y[iy])`.
    pub values: Vec<Vec<f64>>,
    /// x axis description, e.g. `"σ_w²"`.
    pub x_label: String,
    /// y axis description.
    pub y_label: String,
    /// What the colour means, written along the colour bar.
    pub value_label: String,
    /// Map colours by log10 of the value (its colour bar then reads in powers of ten).
    pub log_color: bool,
    /// Signed values: a diverging map (blue, white at 0, red) over a range symmetric about
    /// 0, so the sign reads at a glance. Ignored with `log_color`.
    pub diverging: bool,
    /// Legend text of the curve drawn over the grid (e.g. `χ₁ = 1`); no legend when empty.
    pub curve_label: String,
}

/// Draws `heat` as a grid of coloured cells with a colour bar, and `curve` (if any) over it
/// as a line clipped to the grid, to `<out_stem>.svg` and `<out_stem>.png`; returns the
/// two paths. Cell edges lie halfway between centres; the outer cells extend as far out.
///
/// Errors when `x` or `y` is empty, not finite or not strictly increasing, when `values`
/// is not `y.len()` rows of `x.len()` values, or on any failure to draw or write.
pub fn heatmap_chart(
    out_stem: &Path,
    title: &str,
    heat: &Heatmap,
    curve: Option<&[(f64, f64)]>,
) -> Result<Vec<PathBuf>, PlotError> {
    let x_edges = edges(&heat.x).ok_or_else(|| bad_axis(title, "x"))?;
    let y_edges = edges(&heat.y).ok_or_else(|| bad_axis(title, "y"))?;
    let (nx, ny) = (heat.x.len(), heat.y.len());
    if heat.values.len() != ny || heat.values.iter().any(|row| row.len() != nx) {
        let rows: Vec<_> = heat.values.iter().map(Vec::len).collect();
        let msg =
            format!("values must be {ny} rows of {nx} (y by x); got rows of lengths {rows:?}");
        return Err(PlotError::data(title, msg));
    }
    let scale = if heat.log_color {
        Scale::Log10
    } else {
        Scale::Linear
    };
    let mapped = heat.values.iter().flatten().filter_map(|&v| scale.map(v));
    let mut colors = axis::tight_range(mapped);
    let diverging = heat.diverging && !heat.log_color;
    if diverging {
        let m = colors.start.abs().max(colors.end.abs());
        let m = if m > 0.0 { m } else { 1.0 };
        colors = -m..m;
    }
    let chart = HeatmapChart {
        title,
        heat,
        curve,
        x_edges,
        y_edges,
        scale,
        colors,
        diverging,
    };
    output::render(out_stem, &chart)
}

fn bad_axis(title: &str, axis: &str) -> PlotError {
    PlotError::data(
        title,
        format!("{axis} cell centres must be non-empty, finite and strictly increasing"),
    )
}

/// Cell edges from cell centres: midpoints inside, the same half-step outside; a single
/// centre gets a cell of width 1.
fn edges(centres: &[f64]) -> Option<Vec<f64>> {
    let ok = !centres.is_empty()
        && centres.iter().all(|c| c.is_finite())
        && centres.windows(2).all(|w| w[1] > w[0]);
    if !ok {
        return None;
    }
    let n = centres.len();
    if n == 1 {
        return Some(vec![centres[0] - 0.5, centres[0] + 0.5]);
    }
    let mut e = Vec::with_capacity(n + 1);
    e.push(centres[0] - (centres[1] - centres[0]) / 2.0);
    e.extend(centres.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    e.push(centres[n - 1] + (centres[n - 1] - centres[n - 2]) / 2.0);
    Some(e)
}

/// A validated heatmap ready to draw.
struct HeatmapChart<'a> {
    title: &'a str,
    heat: &'a Heatmap,
    curve: Option<&'a [(f64, f64)]>,
    x_edges: Vec<f64>,
    y_edges: Vec<f64>,
    scale: Scale,
    /// Colour-scale range in mapped units (log10 when `log_color`).
    colors: Range<f64>,
    /// Diverging colours over a range symmetric about 0.
    diverging: bool,
}

impl HeatmapChart<'_> {
    /// The colour of value `v`: viridis, or grey when it has no colour.
    fn color(&self, v: f64) -> RGBColor {
        match self.scale.map(v) {
            Some(c) => {
                self.color_at((c - self.colors.start) / (self.colors.end - self.colors.start))
            }
            None => MISSING,
        }
    }

    /// The colour at `t` in `[0, 1]` along the colour range.
    fn color_at(&self, t: f64) -> RGBColor {
        if self.diverging {
            style::diverging_colormap(t)
        } else {
            style::colormap(t)
        }
    }
}

/// Plot margins shared by the grid and the bar so their tops and bottoms line up.
const MARGIN: u32 = 12;
const X_LABEL_AREA: u32 = 56;

impl Figure for HeatmapChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let h = self.heat;
        let titled = crate::title::titled(root, self.title, TITLE_SIZE)?;
        let (plot, bar) = titled.split_horizontally(root.dim_in_pixel().0 - BAR_COLUMN);
        let x_range = self.x_edges[0]..self.x_edges[h.x.len()];
        let y_range = self.y_edges[0]..self.y_edges[h.y.len()];
        let mut chart = ChartBuilder::on(&plot)
            .margin(MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(84)
            .build_cartesian_2d(x_range.clone(), y_range.clone())?;
        let fmt = |v: &f64| axis::compact(*v);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(rich::plain_desc(&h.x_label))
            .y_desc(rich::plain_desc(&h.y_label))
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .label_style(style::text(TICK_SIZE))
            .axis_desc_style(style::text(AXIS_LABEL_SIZE))
            .axis_style(style::INK.stroke_width(1))
            .draw()?;
        rich::axis_descs(
            &plot,
            chart.plotting_area().get_pixel_range(),
            (&h.x_label, &h.y_label),
            (X_LABEL_AREA, 84),
        )?;
        let cells = h.values.iter().enumerate().flat_map(|(iy, row)| {
            row.iter().enumerate().map(move |(ix, &v)| {
                let corners = [
                    (self.x_edges[ix], self.y_edges[iy]),
                    (self.x_edges[ix + 1], self.y_edges[iy + 1]),
                ];
                Rectangle::new(corners, self.color(v).filled())
            })
        });
        chart.draw_series(cells)?;
        if let Some(curve) = self.curve {
            if !h.curve_label.is_empty() {
                self.draw_curve_legend(&plot)?;
            }
            for (a, b) in curve.windows(2).map(|w| (w[0], w[1])) {
                let finite = [a.0, a.1, b.0, b.1].iter().all(|v| v.is_finite());
                let Some((a, b)) = axis::clip_segment(a, b, &x_range, &y_range).filter(|_| finite)
                else {
                    continue;
                };
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![a, b],
                    WHITE.stroke_width(6),
                )))?;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![a, b],
                    style::INK.stroke_width(3),
                )))?;
            }
        }
        self.draw_color_bar(&bar)
    }
}

impl HeatmapChart<'_> {
    /// The curve's legend entry in the top-right corner of the grid: a white box with a
    /// sample of the line (drawn as the curve is) and its label.
    fn draw_curve_legend<DB: DrawingBackend>(
        &self,
        plot: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        let (w, _) = plot.dim_in_pixel();
        let label = self.heat.curve_label.as_str();
        let text_w = (label.chars().count() as f64 * style::LEGEND_SIZE * 0.6) as i32;
        let right = w as i32 - MARGIN as i32 - 8;
        let left = right - text_w - 56;
        let (top, bottom) = (MARGIN as i32 + 8, MARGIN as i32 + 36);
        plot.draw(&Rectangle::new(
            [(left, top), (right, bottom)],
            WHITE.mix(0.9).filled(),
        ))?;
        plot.draw(&Rectangle::new(
            [(left, top), (right, bottom)],
            style::INK.stroke_width(1),
        ))?;
        let y = (top + bottom) / 2;
        let sample = vec![(left + 8, y), (left + 40, y)];
        plot.draw(&PathElement::new(sample.clone(), WHITE.stroke_width(6)))?;
        plot.draw(&PathElement::new(sample, style::INK.stroke_width(3)))?;
        if rich::has_subscript(label) {
            let size = style::LEGEND_SIZE;
            rich::draw(
                plot,
                label,
                (left + 48, y),
                size,
                HPos::Left,
                rich::Direction::Across,
            )?;
        } else {
            let font = style::text(style::LEGEND_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
            plot.draw(&Text::new(label, (left + 48, y), font))?;
        }
        Ok(())
    }

    /// The colour bar in its own column: a gradient with ticks in value units, the value
    /// label read bottom to top, and a grey swatch explaining missing cells when there are
    /// any. Ticks are drawn by hand: a colour range is rarely whole decades.
    fn draw_color_bar<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let range = self.colors.clone();
        let (_, height) = area.dim_in_pixel();
        let (bar_left, bar_right) = (14, 38);
        let (top, bottom) = (
            MARGIN as i32,
            height as i32 - (MARGIN + X_LABEL_AREA) as i32,
        );
        let pixel_of = |c: f64| {
            let t = (c - range.start) / (range.end - range.start);
            bottom - (t * (bottom - top) as f64).round() as i32
        };
        for k in 0..BAR_STEPS {
            let t0 = k as f64 / BAR_STEPS as f64;
            let t1 = (k + 1) as f64 / BAR_STEPS as f64;
            let (y0, y1) = (
                bottom - (t0 * (bottom - top) as f64) as i32,
                bottom - (t1 * (bottom - top) as f64) as i32,
            );
            let color = self.color_at((t0 + t1) / 2.0);
            area.draw(&Rectangle::new(
                [(bar_left, y1), (bar_right, y0)],
                color.filled(),
            ))?;
        }
        area.draw(&Rectangle::new(
            [(bar_left, top), (bar_right, bottom)],
            style::INK.stroke_width(1),
        ))?;
        let font = style::text(TICK_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
        for (c, label) in axis::ticks(&range, self.scale) {
            let y = pixel_of(c);
            area.draw(&PathElement::new(
                vec![(bar_right, y), (bar_right + 5, y)],
                style::INK.stroke_width(1),
            ))?;
            area.draw(&Text::new(label, (bar_right + 8, y), font.clone()))?;
        }
        let desc = style::text(AXIS_LABEL_SIZE)
            .pos(Pos::new(HPos::Center, VPos::Center))
            .transform(FontTransform::Rotate270);
        let label_x = area.dim_in_pixel().0 as i32 - 22;
        let label = self.heat.value_label.as_str();
        if rich::has_subscript(label) {
            let at = (label_x, (top + bottom) / 2);
            rich::draw(
                area,
                label,
                at,
                AXIS_LABEL_SIZE,
                HPos::Center,
                rich::Direction::Up,
            )?;
        } else {
            area.draw(&Text::new(label, (label_x, (top + bottom) / 2), desc))?;
        }

        let missing = self
            .heat
            .values
            .iter()
            .flatten()
            .any(|&v| self.scale.map(v).is_none());
        if missing {
            let y = bottom + X_LABEL_AREA as i32 / 2;
            area.draw(&Rectangle::new(
                [(bar_left, y - 8), (bar_right, y + 8)],
                MISSING.filled(),
            ))?;
            let font = style::text(TICK_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
            let note = if self.heat.log_color {
                "none / ≤ 0"
            } else {
                "none"
            };
            area.draw(&Text::new(note, (bar_right + 8, y), font))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_lie_halfway_between_centres() {
        assert_eq!(edges(&[1.0, 2.0, 4.0]), Some(vec![0.5, 1.5, 3.0, 5.0]));
        assert_eq!(edges(&[3.0]), Some(vec![2.5, 3.5]));
        assert_eq!(edges(&[2.0, 1.0]), None);
        assert_eq!(edges(&[]), None);
    }
}
