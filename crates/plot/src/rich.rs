//! Chart text with subscripts. Unicode has subscript digits (`χ₁`) but no subscript c, q,
//! w or b, so `ξ_c`, `σ_w²` and `Var(dL/dW_q)` are written with an underscore and drawn here
//! with the subscript smaller and lowered. An underscore marks a subscript only before a
//! single letter or digit that ends a word (`ξ_c`, `W_q)`, `σ_w²`); names such as
//! `jac_m1` or `preact_var` are drawn as written. Text without a subscript is drawn by
//! plotters as before, so those charts are unchanged.
//!
//! Not titles' line breaking (`title.rs`) nor the chart layouts.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::style;

/// Size of a subscript relative to its text.
const SUB_SCALE: f64 = 0.7;
/// How far a subscript's centre drops below the text's, in text sizes.
const SUB_DROP: f64 = 0.3;

/// `s` as runs of plain text (`false`) and subscripts (`true`).
pub(crate) fn runs(s: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut plain = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let after = chars.get(i + 2).copied();
        let sub = c == '_'
            && i > 0
            && next.is_some_and(|n| n.is_ascii_alphanumeric())
            && !after.is_some_and(|a| a.is_ascii_alphanumeric() || a == '_');
        if sub {
            if !plain.is_empty() {
                out.push((std::mem::take(&mut plain), false));
            }
            out.push((next.unwrap_or_default().to_string(), true));
            i += 2;
        } else {
            plain.push(c);
            i += 1;
        }
    }
    if !plain.is_empty() {
        out.push((plain, false));
    }
    out
}

/// Whether `s` has a subscript to draw.
pub(crate) fn has_subscript(s: &str) -> bool {
    runs(s).iter().any(|(_, sub)| *sub)
}

/// How the text sits on its point: reading left to right, or bottom to top (a y axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Across,
    Up,
}

/// Draw `s` with its subscripts in the house style of `size` pixels on `area`, centred on
/// `at` (along its direction) when `h` is [`HPos::Center`], else starting there; `at` is the
/// middle of the text's height.
pub(crate) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    at: (i32, i32),
    size: f64,
    h: HPos,
    direction: Direction,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let parts = runs(s);
    let mut lengths = Vec::with_capacity(parts.len());
    for (text, sub) in &parts {
        let sz = if *sub { size * SUB_SCALE } else { size };
        lengths.push(f64::from(
            area.estimate_text_size(text, &style::text(sz))?.0,
        ));
    }
    let total: f64 = lengths.iter().sum();
    let mut along = match h {
        HPos::Center => -total / 2.0,
        HPos::Right => -total,
        HPos::Left => 0.0,
    };
    for ((text, sub), len) in parts.iter().zip(lengths) {
        let (sz, drop) = if *sub {
            (size * SUB_SCALE, size * SUB_DROP)
        } else {
            (size, 0.0)
        };
        let font = style::text(sz).pos(Pos::new(HPos::Left, VPos::Center));
        let point = match direction {
            Direction::Across => (at.0 + along.round() as i32, at.1 + drop.round() as i32),
            // Read bottom to top: along is up the page and a subscript drops to the right.
            Direction::Up => (at.0 + drop.round() as i32, at.1 - along.round() as i32),
        };
        let font = match direction {
            Direction::Across => font,
            Direction::Up => font.transform(FontTransform::Rotate270),
        };
        area.draw(&Text::new(text.clone(), point, font))?;
        along += len;
    }
    Ok(())
}

/// Draws the axis descriptions that have subscripts, where plotters draws the others: the
/// x one centred under the plot at the bottom of its label area (`x_area` pixels tall), the y
/// one read upward at the left of its label area (`y_area` wide). `pixels` is the plotting
/// area's pixel range (`chart.plotting_area().get_pixel_range()`), `area` the area the
/// chart was built on. The chart gives plotters an empty description for each drawn here.
pub(crate) fn axis_descs<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    pixels: (Range<i32>, Range<i32>),
    (x, y): (&str, &str),
    (x_area, y_area): (u32, u32),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (bx, by) = area.get_base_pixel();
    let (xr, yr) = pixels;
    let size = style::AXIS_LABEL_SIZE;
    let inset = (size * 0.75).round() as i32;
    if has_subscript(x) {
        let at = (
            (xr.start + xr.end) / 2 - bx,
            yr.end - by + x_area as i32 - inset,
        );
        draw(area, x, at, size, HPos::Center, Direction::Across)?;
    }
    if has_subscript(y) {
        let at = (
            xr.start - bx - y_area as i32 + inset,
            (yr.start + yr.end) / 2 - by,
        );
        draw(area, y, at, size, HPos::Center, Direction::Up)?;
    }
    Ok(())
}

/// What plotters is given to draw of an axis description: nothing where [`axis_descs`]
/// draws it.
pub(crate) fn plain_desc(s: &str) -> &str {
    if has_subscript(s) { "" } else { s }
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn an_underscore_before_one_letter_that_ends_a_word_is_a_subscript() {
        let r = |s: &str| runs(s);
        assert_eq!(
            r("depth = 6 ξ_c (theory)"),
            [
                ("depth = 6 ξ".to_string(), false),
                ("c".to_string(), true),
                (" (theory)".to_string(), false)
            ]
        );
        assert_eq!(
            r("σ_w²"),
            [
                ("σ".to_string(), false),
                ("w".to_string(), true),
                ("²".to_string(), false)
            ]
        );
        assert_eq!(r("Var(dL/dW_q)")[1], ("q".to_string(), true));
        for plain in ["jac_m1", "preact_var", "_x", "a_", "χ₁"] {
            assert_eq!(r(plain), [(plain.to_string(), false)], "{plain}");
        }
    }
}
