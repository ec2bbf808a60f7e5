//! Per-layer line charts: one [`Band`] per initializer/activation, its mean over seeds as a
//! solid line with markers over a shaded `[lo, hi]` band, and the mean-field prediction as
//! a dashed line in the same colour. [`variance_chart`] draws variances (log or linear y),
//! [`fraction_chart`] draws fractions in `[0, 1]` (dead or saturated units).
//!
//! Points that cannot be drawn (non-finite, or non-positive on a log axis) are skipped and
//! the line breaks there. The numbers arrive already reduced over seeds: nothing here
//! averages or computes intervals.

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::axis::{self, Scale};
use crate::error::PlotError;
use crate::legend::{self, Entry, Stroke};
use crate::output::{self, DrawResult, Figure};
use crate::rich;
use crate::style::{self, AXIS_LABEL_SIZE, BAND_ALPHA, DASH, LINE_WIDTH, TICK_SIZE, TITLE_SIZE};

/// One measured series with its spread over seeds and, optionally, its theory curve.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Band {
    /// Legend text, e.g. `"he_normal / relu"`.
    pub label: String,
    /// Positions along the x axis (usually layer indices).
    pub x: Vec<f64>,
    /// Mean over seeds at each `x`: drawn as a solid line.
    pub mean: Vec<f64>,
    /// Lower edge of the shaded band at each `x` (e.g. a 95% interval over seeds).
    pub lo: Vec<f64>,
    /// Upper edge of the shaded band at each `x`.
    pub hi: Vec<f64>,
    /// Mean-field prediction at each `x`: drawn dashed in the band's colour.
    pub theory: Option<Vec<f64>>,
    /// A name for each `x` (a model's node names), or empty. When every band that has names
    /// gives each `x` the same one and there are at most [`MAX_NAMED_TICKS`] of them, the x
    /// axis is labelled with the names.
    pub x_names: Vec<String>,
}

/// At most this many named x positions are written as tick labels (more would overlap).
pub const MAX_NAMED_TICKS: usize = 16;

/// The tick label of each named x position, where the bands agree on them and there are
/// few enough.
fn named_ticks(bands: &[Band]) -> Option<Vec<(f64, String)>> {
    let mut ticks: Vec<(f64, String)> = Vec::new();
    for b in bands.iter().filter(|b| b.x_names.len() == b.x.len()) {
        for (&x, name) in b.x.iter().zip(&b.x_names) {
            match ticks.iter().find(|(t, _)| *t == x) {
                Some((_, n)) if n != name => return None,
                Some(_) => {}
                None => ticks.push((x, name.clone())),
            }
        }
    }
    (!ticks.is_empty() && ticks.len() <= MAX_NAMED_TICKS).then_some(ticks)
}

/// `ticks` thinned to every k-th position (the first kept, then every k-th after it), the
/// smallest k at which the longest name fits the room between kept positions on a plot
/// `width` pixels wide: every name is whole and none overlaps its neighbour.
fn fitting_ticks(ticks: Vec<(f64, String)>, width: f64) -> Vec<(f64, String)> {
    let Some(longest) = ticks.iter().map(|(_, n)| n.chars().count()).max() else {
        return ticks;
    };
    // A tick label's characters are about 0.6 of the font size wide; a gap of two.
    let need = (longest + 2) as f64 * 0.6 * style::TICK_SIZE;
    let slot = width / ticks.len().max(1) as f64;
    let k = (need / slot.max(1.0)).ceil().max(1.0) as usize;
    ticks
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % k == 0)
        .map(|(_, t)| t)
        .collect()
}

/// Draws `bands` against layer to `<out_stem>.svg` and `<out_stem>.png`, with a log10
/// y axis when `log_y`; returns the two paths.
///
/// The y range covers every drawable mean, band edge and theory value (log: whole decades;
/// linear: 5% padding). On a log axis a band whose `lo` is zero or negative is shaded down
/// to the bottom of the axis. Errors when a band's vectors differ in length, or on any
/// failure to draw or write, naming the file.
pub fn variance_chart(
    out_stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    bands: &[Band],
    log_y: bool,
) -> Result<Vec<PathBuf>, PlotError> {
    let scale = if log_y { Scale::Log10 } else { Scale::Linear };
    check(title, bands)?;
    let y_range = axis::padded_range(drawn_values(bands), scale);
    output::render(
        out_stem,
        &LineChart {
            title,
            x_label,
            y_label,
            bands,
            scale,
            y_range,
        },
    )
}

/// Like [`variance_chart`] on a linear y axis fixed to `[0, 1]` (with a sliver of margin so
/// lines at exactly 0 or 1 stay visible): fractions of dead or saturated units per layer.
pub fn fraction_chart(
    out_stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    bands: &[Band],
) -> Result<Vec<PathBuf>, PlotError> {
    check(title, bands)?;
    let (scale, y_range) = (Scale::Linear, -0.02..1.02);
    output::render(
        out_stem,
        &LineChart {
            title,
            x_label,
            y_label,
            bands,
            scale,
            y_range,
        },
    )
}

/// One panel of a small-multiples figure: a title and its bands.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Panel {
    /// Panel title, e.g. `"tanh (1 of 3)"`.
    pub title: String,
    /// The panel's series.
    pub bands: Vec<Band>,
}

/// Panels per row of a small-multiples figure.
pub const PANEL_COLUMNS: usize = 2;

/// Small multiples: `panels` as a grid of line charts, [`PANEL_COLUMNS`] a row, each the
/// house size, sharing one y range so panels compare by eye; for more series than one
/// chart can show. `fraction` fixes y to `[0, 1]` (dead or saturated units), else the y
/// axis is log10 when `log_y`. Errors as [`variance_chart`], and when `panels` is empty.
pub fn small_multiples_chart(
    out_stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    panels: &[Panel],
    log_y: bool,
    fraction: bool,
) -> Result<Vec<PathBuf>, PlotError> {
    if panels.is_empty() {
        return Err(PlotError::data(title, "no panels to draw".to_string()));
    }
    for p in panels {
        check(&p.title, &p.bands)?;
    }
    let scale = if log_y && !fraction {
        Scale::Log10
    } else {
        Scale::Linear
    };
    let y_range = if fraction {
        -0.02..1.02
    } else {
        let values = panels.iter().flat_map(|p| drawn_values(&p.bands));
        axis::padded_range(values, scale)
    };
    let charts: Vec<LineChart<'_>> = panels
        .iter()
        .map(|p| LineChart {
            title: &p.title,
            x_label,
            y_label,
            bands: &p.bands,
            scale,
            y_range: y_range.clone(),
        })
        .collect();
    output::render(
        out_stem,
        &GridChart {
            title,
            charts: &charts,
        },
    )
}

/// Line charts in a grid under one title.
struct GridChart<'a> {
    title: &'a str,
    charts: &'a [LineChart<'a>],
}

impl GridChart<'_> {
    fn rows(&self) -> usize {
        self.charts.len().div_ceil(PANEL_COLUMNS)
    }
}

/// Height of the grid figure's own title row, in pixels.
const GRID_TITLE_ROW: u32 = 48;

impl Figure for GridChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let titled = crate::title::titled(&root.margin(10, 0, 0, 0), self.title, TITLE_SIZE * 1.2)?;
        let cols = PANEL_COLUMNS.min(self.charts.len());
        let areas = titled.split_evenly((self.rows(), cols));
        for (area, chart) in areas.iter().zip(self.charts) {
            chart.draw(area)?;
        }
        Ok(())
    }

    fn size(&self) -> (u32, u32) {
        let cols = PANEL_COLUMNS.min(self.charts.len()) as u32;
        (
            style::WIDTH * cols,
            style::HEIGHT * self.rows() as u32 + GRID_TITLE_ROW,
        )
    }
}

/// Every value a chart of `bands` draws (means, band edges, theory), for its y range.
fn drawn_values(bands: &[Band]) -> impl Iterator<Item = f64> + '_ {
    bands.iter().flat_map(|b| {
        let theory = b.theory.iter().flatten();
        b.mean
            .iter()
            .chain(&b.hi)
            .chain(&b.lo)
            .chain(theory)
            .copied()
    })
}

/// Every vector of a band has one value per `x`.
fn check(title: &str, bands: &[Band]) -> Result<(), PlotError> {
    for b in bands {
        let n = b.x.len();
        let theory = b.theory.as_ref().map(|t| ("theory values", t.len()));
        let lens = [
            ("means", b.mean.len()),
            ("lo values", b.lo.len()),
            ("hi values", b.hi.len()),
        ];
        for (what, len) in lens.into_iter().chain(theory) {
            if len != n {
                let msg = format!("band \"{}\" has {n} x values but {len} {what}", b.label);
                return Err(PlotError::data(title, msg));
            }
        }
    }
    Ok(())
}

/// A validated line chart ready to draw.
struct LineChart<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    bands: &'a [Band],
    scale: Scale,
    y_range: Range<f64>,
}

impl LineChart<'_> {
    fn legend_entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = (self.bands.iter().enumerate())
            .map(|(i, b)| Entry {
                label: b.label.clone(),
                color: style::series_color(i),
                stroke: Stroke::Solid,
                marker: Some(style::series_marker(i)),
                band: true,
            })
            .collect();
        if self.bands.iter().any(|b| b.theory.is_some()) {
            entries.push(Entry {
                label: "theory (dashed)".into(),
                color: style::INK,
                stroke: Stroke::Dashed,
                marker: None,
                band: false,
            });
        }
        entries
    }
}

impl Figure for LineChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let scale = self.scale;
        let entries = self.legend_entries();
        let legend_w = legend::column_width(root, &entries)?;
        let titled = crate::title::titled(root, self.title, TITLE_SIZE)?;
        let (plot, legend_area) = titled.split_horizontally(root.dim_in_pixel().0 - legend_w);

        let xs = self.bands.iter().flat_map(|b| b.x.iter().copied());
        let x_range = axis::tight_range(xs);
        let integer_x = self
            .bands
            .iter()
            .flat_map(|b| &b.x)
            .all(|x| x.fract() == 0.0);
        let y_range = self.y_range.clone();
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(20)
            .x_label_area_size(56)
            .y_label_area_size(84)
            .build_cartesian_2d(x_range.clone(), y_range.clone())?;
        let width = {
            let (xs, _) = chart.plotting_area().get_pixel_range();
            f64::from(xs.end - xs.start)
        };
        let names = named_ticks(self.bands).map(|t| fitting_ticks(t, width));
        let x_fmt = |v: &f64| match &names {
            Some(n) => n
                .iter()
                .find(|(x, _)| (x - v).abs() < 1e-9)
                .map_or_else(String::new, |(_, name)| name.clone()),
            None => axis::compact(*v),
        };
        let y_fmt = |v: &f64| scale.tick_label(*v);
        chart
            .configure_mesh()
            .x_desc(rich::plain_desc(self.x_label))
            .y_desc(rich::plain_desc(self.y_label))
            .x_labels(match &names {
                // One tick per integer position, so that every name lands on its own.
                Some(_) => (x_range.end - x_range.start).round() as usize + 1,
                None => axis::tick_count(&x_range, integer_x),
            })
            .y_labels(axis::tick_count(&y_range, scale == Scale::Log10))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style(style::text(TICK_SIZE))
            .axis_desc_style(style::text(AXIS_LABEL_SIZE))
            .bold_line_style(style::INK.mix(style::GRID_ALPHA))
            .light_line_style(TRANSPARENT)
            .axis_style(style::INK.stroke_width(1))
            .draw()?;
        rich::axis_descs(
            &plot,
            chart.plotting_area().get_pixel_range(),
            (self.x_label, self.y_label),
            (56, 84),
        )?;
        if scale == Scale::Log10 {
            draw_minor_decade_lines(&mut chart, &x_range, &y_range)?;
        }

        for (i, b) in self.bands.iter().enumerate() {
            let fill = style::series_color(i).mix(BAND_ALPHA).filled();
            let at = |v: f64| match scale.map(v) {
                // A lower edge at or below zero on a log axis shades to the axis bottom.
                None if scale == Scale::Log10 && v.is_finite() => Some(y_range.start),
                c => c,
            };
            let edges = (0..b.x.len()).map(|j| {
                let (x, lo, hi) = (b.x[j], at(b.lo[j]), scale.map(b.hi[j]));
                Some((x, lo?.min(hi?), hi?.max(lo?))).filter(|_| x.is_finite())
            });
            for run in axis::runs(edges) {
                let upper = run.iter().map(|&(x, _, hi)| (x, hi));
                let lower = run.iter().rev().map(|&(x, lo, _)| (x, lo));
                chart.draw_series(std::iter::once(Polygon::new(
                    upper.chain(lower).collect::<Vec<_>>(),
                    fill,
                )))?;
            }
        }
        for (i, b) in self.bands.iter().enumerate() {
            let Some(theory) = &b.theory else { continue };
            let style = style::series_color(i).stroke_width(LINE_WIDTH);
            for run in axis::runs(points(&b.x, theory, scale)) {
                chart.draw_series(DashedLineSeries::new(run, DASH.0, DASH.1, style))?;
            }
        }
        for (i, b) in self.bands.iter().enumerate() {
            let color = style::series_color(i);
            let pts: Vec<_> = points(&b.x, &b.mean, scale).collect();
            for run in axis::runs(pts.iter().copied()) {
                chart.draw_series(LineSeries::new(run, color.stroke_width(LINE_WIDTH)))?;
            }
            let drawable: Vec<_> = pts.into_iter().flatten().collect();
            for k in legend::marker_indices(drawable.len(), i, self.bands.len()) {
                // Backend coordinates are absolute; `root` may be one panel of a grid.
                let (c, base) = (chart.backend_coord(&drawable[k]), root.get_base_pixel());
                let c = (c.0 - base.0, c.1 - base.1);
                legend::draw_marker(root, style::series_marker(i), c, color)?;
            }
        }
        legend::draw(&legend_area, &entries, 12)
    }
}

/// `(x, scale(y))` for each point, `None` where either cannot be drawn.
fn points<'a>(
    x: &'a [f64],
    y: &'a [f64],
    scale: Scale,
) -> impl Iterator<Item = Option<(f64, f64)>> + 'a {
    x.iter()
        .zip(y)
        .map(move |(&x, &y)| Some((x, scale.map(y)?)).filter(|_| x.is_finite()))
}

/// Light horizontal lines at 2..9 times each power of ten, when there are few decades.
fn draw_minor_decade_lines<DB: DrawingBackend>(
    chart: &mut ChartContext<DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x: &Range<f64>,
    y: &Range<f64>,
) -> DrawResult<DB> {
    if y.end - y.start > 6.0 {
        return Ok(());
    }
    let style = style::INK.mix(style::GRID_ALPHA / 2.5);
    let first = y.start.floor() as i32;
    let last = y.end.ceil() as i32;
    let minor = (first..last).flat_map(|d| (2..10).map(move |m| d as f64 + (m as f64).log10()));
    let lines = minor
        .filter(|c| y.contains(c))
        .map(|c| PathElement::new(vec![(x.start, c), (x.end, c)], style));
    chart.draw_series(lines)?;
    Ok(())
}

#[cfg(test)]
mod tests {

    /// Node names label the axis where the bands agree on them and there are few; a band
    /// without names does not vote.
    #[test]
    fn named_ticks_need_agreeing_names_and_few_positions() {
        let named = |names: &[&str]| Band {
            x: (1..=names.len()).map(|i| i as f64).collect(),
            x_names: names.iter().map(|n| n.to_string()).collect(),
            ..Band::default()
        };
        let plain = Band {
            x: vec![1.0, 2.0],
            ..Band::default()
        };
        let got = named_ticks(&[named(&["stem", "head"]), plain.clone()]).unwrap();
        assert_eq!(got, [(1.0, "stem".to_string()), (2.0, "head".to_string())]);
        assert!(named_ticks(&[named(&["stem", "head"]), named(&["stem", "fc"])]).is_none());
        let many: Vec<String> = (0..=MAX_NAMED_TICKS).map(|i| format!("n{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(named_ticks(&[named(&many)]).is_none());
        assert!(named_ticks(&[plain]).is_none());
    }

    /// Names too long for their room are thinned to every k-th, the first kept; short ones
    /// all stay.
    #[test]
    fn long_tick_names_are_thinned_until_they_fit() {
        let ticks = |names: &[&str]| -> Vec<(f64, String)> {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (i as f64 + 1.0, n.to_string()))
                .collect()
        };
        let short = ticks(&["a", "b", "c", "d"]);
        assert_eq!(fitting_ticks(short.clone(), 600.0), short);
        // 13 names of 8 characters on 580 pixels: each needs about 96, a slot is 44.6.
        let long: Vec<String> = (1..=13).map(|i| format!("linear{i:02}")).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        let kept = fitting_ticks(ticks(&long), 580.0);
        let xs: Vec<f64> = kept.iter().map(|(x, _)| *x).collect();
        assert_eq!(xs, [1.0, 4.0, 7.0, 10.0, 13.0]);
    }

    use super::*;

    #[test]
    fn a_band_with_a_short_vector_is_a_data_error_naming_it() {
        let b = Band {
            label: "relu".into(),
            x: vec![0.0, 1.0],
            mean: vec![1.0],
            ..Band::default()
        };
        let err = check("depth", &[b]).unwrap_err().to_string();
        assert_eq!(
            err,
            "chart \"depth\": band \"relu\" has 2 x values but 1 means"
        );
    }

    #[test]
    fn points_skip_what_the_scale_cannot_draw() {
        let x = [0.0, 1.0, 2.0, f64::NAN];
        let y = [1.0, 0.0, 10.0, 1.0];
        let p: Vec<_> = points(&x, &y, Scale::Log10).collect();
        assert_eq!(p, vec![Some((0.0, 0.0)), None, Some((2.0, 1.0)), None]);
    }
}
