//! The legend panel and series markers, drawn in pixel coordinates. Legends sit in their
//! own column right of the plot instead of over it, so they never hide data however many
//! series there are; the column is as wide as the longest label needs.
//!
//! Only drawing lives here: which entries a chart has is decided by the chart family.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::output::DrawResult;
use crate::style::{self, BAND_ALPHA, DASH, LEGEND_SIZE, LINE_WIDTH, MARKER_SIZE};

/// How an entry's line sample is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stroke {
    /// A solid line (measured values, histogram outlines).
    Solid,
    /// A dashed line (theory).
    Dashed,
}

/// One legend row.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The text.
    pub label: String,
    /// Line and marker colour.
    pub color: RGBColor,
    /// Line sample style.
    pub stroke: Stroke,
    /// Marker shape index (see [`draw_marker`]), if the series has markers.
    pub marker: Option<usize>,
    /// Whether to show a shaded band swatch behind the line.
    pub band: bool,
}

/// Length of the line sample in pixels.
const SAMPLE: i32 = 36;
/// Gap between sample and text, and the panel's inner padding.
const GAP: i32 = 10;
/// Height of one row in pixels.
const ROW: i32 = 26;

/// The labels of `entries` as the legend writes them: where every label is grid values
/// joined by ` / ` and they all begin with the same values, those are written once as
/// `... / ` (a multi-grid suite names each configuration by every key of its grid, and
/// the values that tell the lines apart come last, where a narrow column would cut them).
pub(crate) fn shown_labels(entries: &[Entry]) -> Vec<String> {
    let parts: Vec<Vec<&str>> = entries
        .iter()
        .map(|e| e.label.split(" / ").collect())
        .collect();
    let shortest = parts.iter().map(Vec::len).min().unwrap_or(0);
    let common = (0..shortest.saturating_sub(1))
        .take_while(|&i| parts.iter().all(|p| p[i] == parts[0][i]))
        .count();
    if entries.len() < 2 || common == 0 {
        return entries.iter().map(|e| e.label.clone()).collect();
    }
    parts
        .iter()
        .map(|p| format!("... / {}", p[common..].join(" / ")))
        .collect()
}

/// Width in pixels of a legend column that fits every label of `entries`, at most a third
/// of `root`'s width; 0 when there are no entries.
pub(crate) fn column_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[Entry],
) -> Result<u32, DrawingAreaErrorKind<DB::ErrorType>> {
    if entries.is_empty() {
        return Ok(0);
    }
    let font = style::text(LEGEND_SIZE);
    let mut widest = 0;
    for label in shown_labels(entries) {
        widest = widest.max(root.estimate_text_size(&label, &font)?.0);
    }
    let max = root.dim_in_pixel().0 / 3;
    Ok((widest + (SAMPLE + 3 * GAP) as u32).min(max))
}

/// Draws `entries` as rows starting `top` pixels below the top of `area`.
pub(crate) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    top: i32,
) -> DrawResult<DB> {
    let font = style::text(LEGEND_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
    let labels = shown_labels(entries);
    for (row, (e, label)) in entries.iter().zip(labels).enumerate() {
        let y = top + ROW / 2 + row as i32 * ROW;
        let (x0, x1) = (GAP / 2, GAP / 2 + SAMPLE);
        if e.band {
            let fill = e.color.mix(BAND_ALPHA).filled();
            area.draw(&Rectangle::new([(x0, y - 8), (x1, y + 8)], fill))?;
        }
        let line = e.color.stroke_width(LINE_WIDTH);
        match e.stroke {
            Stroke::Solid => area.draw(&PathElement::new(vec![(x0, y), (x1, y)], line))?,
            Stroke::Dashed => {
                let (dash, gap) = (DASH.0 as i32, DASH.1 as i32);
                let mut x = x0;
                while x < x1 {
                    area.draw(&PathElement::new(
                        vec![(x, y), ((x + dash).min(x1), y)],
                        line,
                    ))?;
                    x += dash + gap;
                }
            }
        }
        if let Some(shape) = e.marker {
            draw_marker(area, shape, ((x0 + x1) / 2, y), e.color)?;
        }
        area.draw(&Text::new(label, (x1 + GAP, y), font.clone()))?;
    }
    Ok(())
}

/// Draws marker `shape` (circle, square, triangle, diamond, cross; taken modulo 5) centred
/// at pixel `c` of `area`.
pub(crate) fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    shape: usize,
    c: (i32, i32),
    color: RGBColor,
) -> DrawResult<DB> {
    let r = MARKER_SIZE as i32;
    let (x, y) = c;
    let fill = color.filled();
    match shape % style::MARKER_SHAPES {
        0 => area.draw(&Circle::new(c, r, fill)),
        1 => area.draw(&Rectangle::new(
            [(x - r + 1, y - r + 1), (x + r - 1, y + r - 1)],
            fill,
        )),
        2 => area.draw(&Polygon::new(
            vec![(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)],
            fill,
        )),
        3 => area.draw(&Polygon::new(
            vec![
                (x, y - r - 1),
                (x + r + 1, y),
                (x, y + r + 1),
                (x - r - 1, y),
            ],
            fill,
        )),
        _ => {
            let s = color.stroke_width(LINE_WIDTH + 1);
            area.draw(&PathElement::new(vec![(x - r, y - r), (x + r, y + r)], s))?;
            area.draw(&PathElement::new(vec![(x - r, y + r), (x + r, y - r)], s))
        }
    }
}

/// Indices of at most [`style::MARKERS_PER_LINE`] of `n` points, evenly spaced; series `i`
/// of `of` starts at a different offset so markers of overlapping lines do not coincide.
pub(crate) fn marker_indices(n: usize, i: usize, of: usize) -> impl Iterator<Item = usize> {
    let step = n.div_ceil(style::MARKERS_PER_LINE).max(1);
    let offset = if of == 0 {
        0
    } else {
        (i * step / of.max(1)) % step
    };
    (offset..n).step_by(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_leading_grid_values_are_written_once() {
        let entry = |label: &str| Entry {
            label: label.into(),
            color: RGBColor(0, 0, 0),
            stroke: Stroke::Solid,
            marker: None,
            band: false,
        };
        let two = [
            entry("mlp / linear / 12 / f16 / off"),
            entry("mlp / linear / 12 / f16 / dynamic"),
        ];
        assert_eq!(shown_labels(&two), ["... / off", "... / dynamic"]);
        // Nothing shared, or a single line: as they are.
        let apart = [entry("relu / he"), entry("tanh / he")];
        assert_eq!(shown_labels(&apart), ["relu / he", "tanh / he"]);
        assert_eq!(shown_labels(&two[..1]), ["mlp / linear / 12 / f16 / off"]);
        // One label a prefix of another keeps its last value.
        let nested = [entry("a / b"), entry("a / b / c")];
        assert_eq!(shown_labels(&nested), ["... / b", "... / b / c"]);
    }

    #[test]
    fn markers_are_capped_and_staggered() {
        let a: Vec<_> = marker_indices(50, 0, 4).collect();
        let b: Vec<_> = marker_indices(50, 2, 4).collect();
        assert_eq!(a.len(), 10);
        assert!(a.iter().all(|i| !b.contains(i)), "{a:?} {b:?}");
        assert_eq!(marker_indices(3, 1, 2).collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
