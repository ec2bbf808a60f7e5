//! Axis arithmetic: the scale of an axis (linear or log10), ranges from finite data with
//! padding, tick label text, and cutting series into drawable pieces where points are
//! missing. This is all the "statistics" charts do: no means, no intervals, only ranges.
//!
//! Log axes are drawn as linear axes over `log10(value)` with tick labels `10^k`: one code
//! path for both scales, exact decades, and values that are zero or negative simply have no
//! position (a line breaks there).

use std::ops::Range;

/// How values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Values as they are.
    Linear,
    /// `log10(value)`; non-positive values have no position.
    Log10,
}

impl Scale {
    /// The axis coordinate of `v`, or `None` when `v` cannot be drawn on this scale.
    pub fn map(self, v: f64) -> Option<f64> {
        match self {
            Scale::Linear if v.is_finite() => Some(v),
            Scale::Log10 if v.is_finite() && v > 0.0 => Some(v.log10()),
            _ => None,
        }
    }

    /// Tick label text for the axis coordinate `c`.
    pub fn tick_label(self, c: f64) -> String {
        match self {
            Scale::Linear => compact(c),
            Scale::Log10 => power_of_ten(c),
        }
    }
}

/// Axis range (in axis coordinates) covering every drawable value, padded: a linear axis
/// gets 5% of the span on each side, a log axis is widened to whole decades. With no
/// drawable value at all the range is `0..1` (linear) or one decade around 1 (log).
pub fn padded_range(values: impl IntoIterator<Item = f64>, scale: Scale) -> Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter_map(|v| scale.map(v))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
            (lo.min(c), hi.max(c))
        });
    if lo > hi {
        return match scale {
            Scale::Linear => 0.0..1.0,
            Scale::Log10 => -0.5..0.5,
        };
    }
    match scale {
        Scale::Linear => {
            let span = hi - lo;
            let pad = if span > 0.0 {
                0.05 * span
            } else {
                0.1 * lo.abs().max(1.0)
            };
            (lo - pad)..(hi + pad)
        }
        Scale::Log10 => {
            let (lo, hi) = (lo.floor(), hi.ceil());
            if hi - lo < 1.0 {
                (lo - 0.5)..(hi + 0.5)
            } else {
                lo..hi
            }
        }
    }
}

/// Exact range of finite values (no padding); a single value `v` gives `v-0.5..v+0.5`.
pub fn tight_range(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        0.0..1.0
    } else if lo == hi {
        (lo - 0.5)..(hi + 0.5)
    } else {
        lo..hi
    }
}

/// How many tick labels to ask for on an axis spanning `range`: when the axis is whole
/// numbers (layer indices) never more than one per integer, so ticks stay integers.
pub fn tick_count(range: &Range<f64>, integer: bool) -> usize {
    let span = range.end - range.start;
    if integer && span.is_finite() {
        (span as usize + 1).clamp(2, 11)
    } else {
        10
    }
}

/// Tick positions (axis coordinates) and their labels for a free-standing axis such as a
/// colour bar: "nice" steps of 1, 2 or 5 times a power of ten on a linear scale; on a log
/// scale whole decades when the range spans three or more, else 1-2-5 multiples of each
/// power of ten (labelled as plain numbers).
pub fn ticks(range: &Range<f64>, scale: Scale) -> Vec<(f64, String)> {
    let span = range.end - range.start;
    if !(span.is_finite() && span > 0.0) {
        return vec![];
    }
    let within = |c: &f64| *c >= range.start - 1e-9 * span && *c <= range.end + 1e-9 * span;
    match scale {
        Scale::Linear => {
            let raw = span / 5.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 5.0, 10.0]
                .iter()
                .map(|m| m * mag)
                .find(|s| *s >= raw)
                .unwrap_or(10.0 * mag);
            let first = (range.start / step).ceil() as i64;
            let last = (range.end / step).floor() as i64;
            (first..=last)
                .map(|k| k as f64 * step)
                .map(|v| (v, compact(v)))
                .collect()
        }
        Scale::Log10 if span >= 3.0 => {
            let every = (span / 6.0).ceil().max(1.0) as i64;
            let (first, last) = (range.start.ceil() as i64, range.end.floor() as i64);
            let first = first + (every - first.rem_euclid(every)) % every;
            (first..=last)
                .step_by(every as usize)
                .map(|k| (k as f64, power_of_ten(k as f64)))
                .collect()
        }
        Scale::Log10 => {
            let decades = (range.start.floor() as i64)..=(range.end.ceil() as i64);
            let multiples: &[f64] = if span >= 1.0 {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0, 2.0, 3.0, 5.0, 7.0]
            };
            decades
                .flat_map(|d| multiples.iter().map(move |m| m * 10f64.powi(d as i32)))
                .map(|v| (v.log10(), compact(v)))
                .filter(|(c, _)| within(c))
                .collect()
        }
    }
}

/// Splits `points` into runs of consecutive points that are all `Some`: a line is drawn
/// per run, so it breaks at every missing point instead of jumping over it.
pub fn runs<T: Copy>(points: impl IntoIterator<Item = Option<T>>) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![];
    let mut current = vec![];
    for p in points {
        match p {
            Some(p) => current.push(p),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `v` with at most 4 significant decimals and no trailing zeros; scientific notation
/// outside `[1e-3, 1e5)`.
pub fn compact(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

/// `10^c` as text with a superscript exponent (`10⁻³`); non-integer exponents print the
/// value itself.
pub fn power_of_ten(c: f64) -> String {
    if (c - c.round()).abs() > 1e-9 {
        return compact(10f64.powf(c));
    }
    let k = c.round() as i64;
    let sup: String = k
        .to_string()
        .chars()
        .map(|ch| match ch {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            _ => '⁹',
        })
        .collect();
    format!("10{sup}")
}

/// Clips the segment `a`-`b` to the rectangle `x` × `y` (Liang–Barsky); `None` when it
/// lies entirely outside. Used so overlaid curves end exactly at the plot's edge.
pub fn clip_segment(
    a: (f64, f64),
    b: (f64, f64),
    x: &Range<f64>,
    y: &Range<f64>,
) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - x.start),
        (dx, x.end - a.0),
        (-dy, a.1 - y.start),
        (dy, y.end - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then_some({
        (
            (a.0 + t0 * dx, a.1 + t0 * dy),
            (a.0 + t1 * dx, a.1 + t1 * dy),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_scale_drops_zero_negative_and_non_finite_values() {
        assert_eq!(Scale::Log10.map(100.0), Some(2.0));
        for v in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Scale::Log10.map(v), None, "{v}");
        }
        assert_eq!(Scale::Linear.map(-1.0), Some(-1.0));
        assert_eq!(Scale::Linear.map(f64::NEG_INFINITY), None);
    }

    #[test]
    fn log_range_is_widened_to_whole_decades() {
        let r = padded_range([0.003, 2.0, f64::NAN, 0.0], Scale::Log10);
        assert_eq!(r, -3.0..1.0);
        let r = padded_range([1.0], Scale::Log10);
        assert_eq!(r, -0.5..0.5);
    }

    #[test]
    fn linear_range_is_padded_by_five_percent_of_the_span() {
        let r = padded_range([0.0, 10.0, f64::INFINITY], Scale::Linear);
        assert_eq!(r, -0.5..10.5);
        assert_eq!(padded_range([], Scale::Linear), 0.0..1.0);
    }

    #[test]
    fn runs_break_at_missing_points() {
        let r = runs([Some(1), Some(2), None, None, Some(3), None]);
        assert_eq!(r, vec![vec![1, 2], vec![3]]);
    }

    #[test]
    fn tick_labels_read_as_numbers_and_powers_of_ten() {
        assert_eq!(compact(2.0), "2");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(1.5e-5), "1.5e-5");
        assert_eq!(power_of_ten(-3.0), "10⁻³");
        assert_eq!(power_of_ten(12.0), "10¹²");
    }

    #[test]
    fn integer_axes_ask_for_at_most_one_tick_per_integer() {
        assert_eq!(tick_count(&(0.0..4.0), true), 5);
        assert_eq!(tick_count(&(0.0..100.0), true), 11);
    }

    #[test]
    fn clipping_cuts_a_segment_at_the_box_edge() {
        let (x, y) = (0.0..1.0, 0.0..1.0);
        let (a, b) = clip_segment((0.5, 0.5), (1.5, 0.5), &x, &y).unwrap();
        assert_eq!((a, b), ((0.5, 0.5), (1.0, 0.5)));
        assert!(clip_segment((2.0, 2.0), (3.0, 3.0), &x, &y).is_none());
    }
    #[test]
    fn colour_bar_ticks_are_nice_numbers() {
        let lin: Vec<String> = ticks(&(0.03..0.97), Scale::Linear)
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(lin, vec!["0.2", "0.4", "0.6", "0.8"]);
        let dec: Vec<String> = ticks(&(-6.2..0.5), Scale::Log10)
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(dec, vec!["10⁻⁶", "10⁻⁴", "10⁻²", "10⁰"]);
        let few: Vec<String> = ticks(&(0.5..1.9), Scale::Log10)
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(few, vec!["5", "10", "20", "50"]);
    }
}
