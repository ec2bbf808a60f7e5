//! Chart titles that fit the figure: one line where it fits, else two lines broken at the
//! space nearest the middle, and a smaller font if a line still does not fit. A centred title
//! wider than the figure would lose both its ends.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::rich::{self, Direction};
use crate::style;

/// Share of the area's width a title line may take.
const FILL: f64 = 0.96;

/// Draws `title` at the top of `area` in the house title style of `size` pixels and returns
/// the area below it.
pub(crate) fn titled<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    size: f64,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let avail = f64::from(area.dim_in_pixel().0) * FILL;
    let width = |s: &str, size: f64| -> Result<f64, DrawingAreaErrorKind<DB::ErrorType>> {
        Ok(f64::from(area.estimate_text_size(s, &style::text(size))?.0))
    };
    if width(title, size)? <= avail {
        if !rich::has_subscript(title) {
            return area.titled(title, style::text(size));
        }
        let pad = (size * 0.5).ceil() as u32;
        let line = (size * 1.2).ceil() as u32;
        let (top, rest) = area.split_vertically(pad + line + pad);
        let centre = (top.dim_in_pixel().0 / 2) as i32;
        let middle = (pad + line / 2) as i32;
        rich::draw(
            &top,
            title,
            (centre, middle),
            size,
            HPos::Center,
            Direction::Across,
        )?;
        return Ok(rest);
    }
    let lines = halves(title);
    let mut widest = 0.0f64;
    for l in &lines {
        widest = widest.max(width(l, size)?);
    }
    let size = if widest > avail {
        size * avail / widest
    } else {
        size
    };
    let line = (size * 1.2).ceil() as u32;
    let pad = (size * 0.5).ceil() as u32;
    let (top, rest) = area.split_vertically(pad + line * lines.len() as u32 + pad);
    let centre = (top.dim_in_pixel().0 / 2) as i32;
    let anchored = style::text(size).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, l) in lines.iter().enumerate() {
        let y = (pad + line * i as u32) as i32;
        if rich::has_subscript(l) {
            let middle = y + (line / 2) as i32;
            rich::draw(
                &top,
                l,
                (centre, middle),
                size,
                HPos::Center,
                Direction::Across,
            )?;
        } else {
            top.draw_text(l, &anchored, (centre, y))?;
        }
    }
    Ok(rest)
}

/// `s` in two lines, broken at the space nearest its middle (by characters); one line if it
/// has no space.
fn halves(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mid = chars.len() / 2;
    let best = chars
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == ' ')
        .map(|(i, _)| i)
        .min_by_key(|&i| i.abs_diff(mid));
    match best {
        Some(i) => vec![
            chars[..i].iter().collect::<String>().trim_end().to_string(),
            chars[i + 1..]
                .iter()
                .collect::<String>()
                .trim_start()
                .to_string(),
        ],
        None => vec![s.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::halves;

    #[test]
    fn halves_break_at_the_space_nearest_the_middle() {
        assert_eq!(halves("aaa bb cccc dd"), ["aaa bb", "cccc dd"]);
        assert_eq!(halves("nospace"), ["nospace"]);
        let s = "Jacobian spectrum, tanh / critical:sigma-b=0.01: density of log10 s";
        let h = halves(s);
        assert_eq!(format!("{} {}", h[0], h[1]), s);
    }
}
