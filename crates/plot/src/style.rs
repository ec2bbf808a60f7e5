//! The house style: every size, font, colour and line width a chart uses, as constants, so
//! that all figures of a report look like one family and a change is made in one place.
//!
//! Also the embedded font. Text is drawn with `ab_glyph` from DejaVu Sans compiled into the
//! library (`assets/DejaVuSans.ttf`, Bitstream Vera license), so charts render on a bare
//! machine with no fontconfig or freetype. The font is registered under the CSS generic
//! name `sans-serif`: PNG text is rasterized from the embedded glyphs, and SVG `<text>`
//! elements say `font-family="sans-serif"`, which every SVG viewer resolves to a font it has.
//! This file draws nothing.

use std::sync::OnceLock;

use plotters::style::{FontFamily, FontStyle, RGBColor, TextStyle};

use crate::error::PlotError;

/// Width of every chart in pixels (SVG user units and PNG pixels alike).
pub const WIDTH: u32 = 900;
/// Height of every chart in pixels.
pub const HEIGHT: u32 = 600;

/// Title font size in pixels.
pub const TITLE_SIZE: f64 = 24.0;
/// Axis description (x/y label) font size in pixels.
pub const AXIS_LABEL_SIZE: f64 = 19.0;
/// Tick label font size in pixels.
pub const TICK_SIZE: f64 = 16.0;
/// Legend and colour-bar note font size in pixels.
pub const LEGEND_SIZE: f64 = 16.0;

/// Width of measured lines (solid) and theory lines (dashed), in pixels.
pub const LINE_WIDTH: u32 = 2;
/// Theory lines: dash length and gap, in pixels.
pub const DASH: (u32, u32) = (9, 5);
/// Opacity of the shaded `[lo, hi]` band under each measured line.
pub const BAND_ALPHA: f64 = 0.18;
/// Marker radius in pixels.
pub const MARKER_SIZE: u32 = 4;
/// At most this many markers per line, spread evenly, so long lines stay readable.
pub const MARKERS_PER_LINE: usize = 10;
/// Opacity of the major grid lines.
pub const GRID_ALPHA: f64 = 0.15;

/// Colour-blind-safe categorical palette: Okabe & Ito (2008), "Color Universal Design",
/// without its yellow (too light for lines on white). Series cycle through it; with
/// [`MARKER_SHAPES`] a series' colour and marker pair repeats only after 35 series.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];

/// Number of distinct marker shapes (circle, square, triangle, diamond, cross).
pub const MARKER_SHAPES: usize = 5;

/// Text and axis colour.
pub const INK: RGBColor = RGBColor(30, 30, 30);
/// Heatmap cells whose value is not finite (or not positive on a log colour scale).
pub const MISSING: RGBColor = RGBColor(190, 190, 190);

/// Viridis (van der Walt & Smith, matplotlib 2015) at 11 evenly spaced stops: perceptually
/// uniform, colour-blind safe and readable in greyscale. Used for heatmap values.
const VIRIDIS: [(u8, u8, u8); 11] = [
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
];

/// The colour of series `i` (cycles through [`PALETTE`]).
pub fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The marker shape index of series `i`, in `0..MARKER_SHAPES`.
pub fn series_marker(i: usize) -> usize {
    i % MARKER_SHAPES
}

/// Viridis at `t` in `[0, 1]` (clamped), linearly interpolated between stops.
pub fn colormap(t: f64) -> RGBColor {
    interpolate(&VIRIDIS, t)
}

/// ColorBrewer RdBu (Brewer 2003) at 11 stops, blue (negative) through white (0) to red
/// (positive): for signed values such as growth rates, centred at 0.
const RDBU: [(u8, u8, u8); 11] = [
    (5, 48, 97),
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
    (103, 0, 31),
];

/// Linear interpolation between evenly spaced colour stops at `t` in `[0, 1]` (clamped;
/// non-finite reads as 0).
fn interpolate(stops: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (stops.len() - 1) as f64;
    let i = (pos.floor() as usize).min(stops.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The diverging map at `t` in `[0, 1]`: 0.5 is white (the value 0 on a symmetric range).
pub fn diverging_colormap(t: f64) -> RGBColor {
    interpolate(&RDBU, t)
}

/// The house text style at `size` pixels.
pub fn text(size: f64) -> TextStyle<'static> {
    TextStyle::from((FontFamily::SansSerif, size, FontStyle::Normal)).color(&INK)
}

/// The embedded font file, see the module doc.
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the embedded font with plotters once per process; every chart calls this first.
pub(crate) fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font {
            name: "DejaVuSans.ttf",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormap_hits_the_viridis_end_stops_and_clamps() {
        assert_eq!(colormap(0.0), RGBColor(68, 1, 84));
        assert_eq!(colormap(1.0), RGBColor(253, 231, 37));
        assert_eq!(colormap(-3.0), colormap(0.0));
        assert_eq!(colormap(7.0), colormap(1.0));
        assert_eq!(colormap(0.05), RGBColor(70, 19, 101));
    }

    #[test]
    fn twelve_series_get_twelve_distinct_colour_marker_pairs() {
        let pairs: std::collections::HashSet<_> = (0..12)
            .map(|i| {
                (
                    series_color(i).0,
                    series_color(i).1,
                    series_color(i).2,
                    series_marker(i),
                )
            })
            .collect();
        assert_eq!(pairs.len(), 12);
    }

    #[test]
    fn embedded_font_registers() {
        assert!(ensure_font().is_ok());
    }
}
