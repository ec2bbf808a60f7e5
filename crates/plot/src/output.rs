//! Turning one drawing into files: the same figure is drawn once onto an SVG backend and
//! once onto a PNG bitmap, each written under a temporary name in the target directory and
//! renamed into place, so a reader never sees half a file.
//!
//! Chart families implement [`Figure`] (draw onto any backend); they never touch files.
//! The output directory must exist: creating it is the caller's decision.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::PlotError;
use crate::style::{self, HEIGHT, WIDTH};

/// Result of drawing onto backend `DB`.
pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart that can draw itself onto the whole area of any backend.
pub(crate) trait Figure {
    /// Draws the chart; `root` is blank and [`Figure::size`].
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;

    /// Size in pixels: the house `WIDTH` x `HEIGHT` unless the figure is a grid of charts.
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }
}

/// Draws `figure` to `<stem>.svg` and `<stem>.png` and returns both paths.
pub(crate) fn render(stem: &Path, figure: &impl Figure) -> Result<Vec<PathBuf>, PlotError> {
    style::ensure_font()?;
    let svg_path = with_suffix(stem, "svg");
    let png_path = with_suffix(stem, "png");

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area();
        draw_on(&root, figure).map_err(|message| PlotError::Render {
            path: svg_path.clone(),
            message,
        })?;
    }
    let tmp = temp_name(&svg_path);
    std::fs::write(&tmp, svg.as_bytes()).map_err(|source| PlotError::Io {
        action: "writing",
        path: tmp.clone(),
        source,
    })?;
    move_into_place(&tmp, &svg_path)?;

    // The bitmap backend picks its encoder from the extension, so the temporary name
    // keeps `.png` at its end.
    let tmp = temp_name(&png_path);
    let drawn = {
        let root = BitMapBackend::new(&tmp, figure.size()).into_drawing_area();
        draw_on(&root, figure)
    };
    if let Err(message) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(PlotError::Render {
            path: png_path,
            message,
        });
    }
    move_into_place(&tmp, &png_path)?;
    Ok(vec![svg_path, png_path])
}

/// White background, the figure, then flush the backend; errors as text.
fn draw_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &impl Figure,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    figure.draw(root).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// `<stem>.<ext>`, keeping dots already in the stem's file name (`fig.depth10` stays).
fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// A hidden sibling of `path` that keeps its extension: `dir/.name.tmp<pid>.ext`.
fn temp_name(path: &Path) -> PathBuf {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (base, ext) = file.rsplit_once('.').unwrap_or((file.as_str(), ""));
    path.with_file_name(format!(".{base}.tmp{}.{ext}", std::process::id()))
}

/// Renames `tmp` onto `path`, removing `tmp` if that fails.
fn move_into_place(tmp: &Path, path: &Path) -> Result<(), PlotError> {
    std::fs::rename(tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(tmp);
        PlotError::Io {
            action: "renaming into place",
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_appended_not_substituted() {
        let p = with_suffix(Path::new("out/fig.depth10"), "svg");
        assert_eq!(p, PathBuf::from("out/fig.depth10.svg"));
    }

    #[test]
    fn temp_name_is_a_hidden_sibling_with_the_same_extension() {
        let t = temp_name(Path::new("out/fig.png"));
        assert_eq!(t.parent(), Some(Path::new("out")));
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".fig.tmp") && name.ends_with(".png"),
            "{name}"
        );
    }
}
