//! Integration tests of sigprop-plot through its public API only: every chart family writes
//! a decodable PNG of the house size and an SVG whose text (title, legend, labels) is real
//! `<text>`, bad points are skipped rather than fatal, and bad input or an unwritable path
//! is a `PlotError`, never a panic.
//!
//! Pixel-exact appearance is not tested here; `examples/gallery.rs` is for looking.

use std::path::{Path, PathBuf};

use sigprop_plot::style::{HEIGHT, WIDTH};
use sigprop_plot::{
    Band, Heatmap, Histogram, PlotError, fraction_chart, heatmap_chart, histogram_chart,
    variance_chart,
};

fn band(label: &str, mean: &[f64], theory: bool) -> Band {
    Band {
        label: label.into(),
        x: (0..mean.len()).map(|i| i as f64).collect(),
        mean: mean.to_vec(),
        lo: mean.iter().map(|m| m * 0.8).collect(),
        hi: mean.iter().map(|m| m * 1.25).collect(),
        theory: theory.then(|| mean.to_vec()),
        x_names: Vec::new(),
    }
}

/// Both files exist, are non-empty, the PNG decodes at WIDTH x HEIGHT; returns the SVG text.
fn check_outputs(paths: &[PathBuf], stem: &Path) -> String {
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    assert_eq!(paths, [svg.clone(), png.clone()]);
    let img = image::open(&png).expect("the PNG decodes");
    assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
    let text = std::fs::read_to_string(&svg).expect("the SVG is UTF-8");
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    text
}

/// Whether `s` appears as the content of an SVG `<text>` element.
fn has_text(svg: &str, s: &str) -> bool {
    svg.split("<text").skip(1).any(|t| {
        t.split_once('>')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(s))
    })
}

/// The exact contents of every SVG `<text>` element, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>').map(|(_, rest)| rest))
        .map(|rest| {
            rest.split("</text>")
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .collect()
}

/// Points in all polylines drawn in `color` at the house line width.
fn polyline_points(svg: &str, color: &str) -> usize {
    let marker = format!("stroke=\"{color}\" stroke-width=\"2\" points=\"");
    svg.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &svg[i + marker.len()..];
            rest[..rest.find('"').unwrap_or(0)]
                .split_whitespace()
                .count()
        })
        .sum()
}

/// No `.tmp` files are left next to the outputs.
fn no_temporaries(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "left behind: {name}");
    }
}

#[test]
fn variance_chart_writes_png_and_svg_with_title_legend_and_decade_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("variance");
    let bands = [
        band("he_normal / relu", &[2.0, 2.1, 1.9, 2.0], true),
        band("lecun / tanh", &[1.0, 0.5, 0.3, 0.2], false),
    ];
    let paths =
        variance_chart(&stem, "Variance vs depth", "layer", "Var[h]", &bands, true).unwrap();
    let svg = check_outputs(&paths, &stem);
    for s in [
        "Variance vs depth",
        "layer",
        "Var[h]",
        "he_normal / relu",
        "lecun / tanh",
        "theory (dashed)",
        "10⁰",
    ] {
        assert!(has_text(&svg, s), "no <text> {s:?}");
    }
    no_temporaries(dir.path());
}

/// A title wider than the figure is drawn whole on two lines, not centred off both edges.
#[test]
fn a_long_title_wraps_onto_two_lines() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("long");
    let title = "Jacobian spectrum, tanh / critical:sigma-b=0.01,distribution=orthogonal: \
                 density of log10 s, 3 seed(s), free-probability theory dashed";
    let bands = [band("layer 2", &[0.1, 0.5, 0.2], true)];
    let paths = variance_chart(&stem, title, "log10 s", "density", &bands, false).unwrap();
    let svg = check_outputs(&paths, &stem);
    let t = texts(&svg);
    let (a, b) = (&t[0], &t[1]);
    assert_eq!(format!("{a} {b}"), title, "{t:?}");
    assert!(a.len() > 30 && b.len() > 30, "{t:?}");
    // A short one stays on one line.
    let short = dir.path().join("short");
    let paths = variance_chart(&short, "Short", "x", "y", &bands, false).unwrap();
    assert!(has_text(&check_outputs(&paths, &short), "Short"));
}

#[test]
fn theory_note_appears_only_when_some_band_has_theory() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("no_theory");
    let paths = variance_chart(
        &stem,
        "t",
        "layer",
        "v",
        &[band("a", &[1.0, 2.0], false)],
        false,
    )
    .unwrap();
    let svg = check_outputs(&paths, &stem);
    assert!(has_text(&svg, "a"));
    assert!(!svg.contains("theory (dashed)"));
}

#[test]
fn nan_inf_and_zero_points_are_skipped_on_a_log_axis_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let clean = [1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 16.0, 32.0];
    let broken = [1.0, 2.0, f64::NAN, 4.0, 0.0, 8.0, 16.0, f64::INFINITY];
    let count = |name: &str, mean: &[f64]| {
        let stem = dir.path().join(name);
        let paths =
            variance_chart(&stem, "t", "layer", "v", &[band("b", mean, false)], true).unwrap();
        polyline_points(&check_outputs(&paths, &stem), "#0072B2")
    };
    // Three points cannot be drawn: the line loses exactly those and breaks there.
    assert_eq!(count("clean", &clean) - count("broken", &broken), 3);
}

#[test]
fn a_band_of_only_bad_points_still_draws_axes_and_legend() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("empty");
    let b = band("nothing", &[f64::NAN, 0.0, -1.0], true);
    let paths = variance_chart(&stem, "empty", "layer", "v", &[b], true).unwrap();
    assert!(has_text(&check_outputs(&paths, &stem), "nothing"));
}

#[test]
fn fraction_chart_has_a_zero_to_one_axis() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("fraction");
    // Layers 10..13: no x tick can read "0" or "1", so those texts are the y axis's.
    let mut b = band("relu dead", &[0.5, 0.52, 0.49, 0.0], true);
    b.x = vec![10.0, 11.0, 12.0, 13.0];
    let paths = fraction_chart(&stem, "Dead units", "layer", "fraction", &[b]).unwrap();
    let svg = check_outputs(&paths, &stem);
    for s in ["Dead units", "relu dead", "fraction"] {
        assert!(has_text(&svg, s), "no <text> {s:?}");
    }
    let t = texts(&svg);
    let numbers: Vec<f64> = t.iter().filter_map(|s| s.parse().ok()).collect();
    let y_ticks: Vec<f64> = numbers.iter().copied().filter(|v| *v < 10.0).collect();
    // The y ticks run from exactly 0 to exactly 1, nothing outside.
    assert!(
        t.iter().any(|s| s == "0") && t.iter().any(|s| s == "1"),
        "{t:?}"
    );
    assert!(
        y_ticks.iter().all(|v| (0.0..=1.0).contains(v)),
        "{y_ticks:?}"
    );
    assert!(y_ticks.len() >= 3, "{y_ticks:?}");
}

#[test]
fn small_multiples_draw_every_panel_in_one_grid_figure() {
    use sigprop_plot::{Panel, small_multiples_chart};
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("grid");
    let panels: Vec<Panel> = (0..3)
        .map(|p| Panel {
            title: format!("panel {p}"),
            bands: (0..4)
                .map(|i| band(&format!("p{p} s{i}"), &[1.0, 2.0, 4.0], i == 0))
                .collect(),
        })
        .collect();
    let paths =
        small_multiples_chart(&stem, "Many", "layer", "Var(z)", &panels, true, false).unwrap();
    let img = image::open(stem.with_extension("png")).expect("the PNG decodes");
    // Two panels a row, two rows, each of the house size, under a title row.
    assert_eq!(img.width(), 2 * WIDTH);
    assert!(img.height() > 2 * HEIGHT && img.height() < 2 * HEIGHT + 100);
    let svg = std::fs::read_to_string(&paths[0]).unwrap();
    for s in ["Many", "panel 0", "panel 1", "panel 2", "p2 s3"] {
        assert!(has_text(&svg, s), "no <text> {s:?}");
    }
    // Markers sit inside the figure: each panel draws in its own coordinates (they were
    // once placed with the whole figure's offset added twice, off the bottom panels).
    let (w, h) = (img.width() as f64, img.height() as f64);
    let mut circles = 0;
    for c in svg.split("<circle").skip(1) {
        let attr = |name: &str| -> f64 {
            let at = c.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            c[at..at + c[at..].find('"').unwrap()].parse().unwrap()
        };
        let (cx, cy) = (attr("cx"), attr("cy"));
        assert!(
            cx >= 0.0 && cx <= w && cy >= 0.0 && cy <= h,
            "marker at ({cx}, {cy})"
        );
        circles += 1;
    }
    assert!(circles >= 3, "{circles} circle markers");
    // The bottom panel's markers lie in the bottom half.
    assert!(svg.split("<circle").skip(1).any(|c| {
        let at = c.find("cy=\"").unwrap() + 4;
        c[at..at + c[at..].find('"').unwrap()]
            .parse::<f64>()
            .unwrap()
            > h / 2.0
    }));
    assert!(small_multiples_chart(&stem, "None", "l", "v", &[], true, false).is_err());
}

#[test]
fn mismatched_band_lengths_are_a_data_error_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("bad");
    let mut b = band("short", &[1.0, 2.0, 3.0], true);
    b.hi.pop();
    let err = variance_chart(&stem, "t", "layer", "v", &[b], true).unwrap_err();
    assert!(matches!(err, PlotError::Data { .. }), "{err}");
    assert!(err.to_string().contains("\"short\""), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn unwritable_output_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("missing_dir").join("fig");
    let err = variance_chart(
        &stem,
        "t",
        "layer",
        "v",
        &[band("a", &[1.0, 2.0], false)],
        true,
    )
    .unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("missing_dir"), "{err}");
}

fn layer_hist(layer: usize) -> Histogram {
    let edges: Vec<f64> = (0..=20).map(|k| -1.0 + k as f64 / 10.0).collect();
    let sd = 0.6 / layer as f64;
    let counts = edges
        .windows(2)
        .map(|e| (1000.0 * (-(e[0] + e[1]).powi(2) / (8.0 * sd * sd)).exp()).round())
        .collect();
    Histogram {
        label: format!("layer {layer}"),
        edges,
        counts,
    }
}

#[test]
fn histogram_chart_writes_one_outline_per_layer() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("hist");
    let mut hists: Vec<_> = (1..=3).map(layer_hist).collect();
    hists[2].counts[4] = f64::NAN;
    let paths = histogram_chart(&stem, "Activations", "activation", &hists).unwrap();
    let svg = check_outputs(&paths, &stem);
    for s in [
        "Activations",
        "activation",
        "density",
        "layer 1",
        "layer 2",
        "layer 3",
    ] {
        assert!(has_text(&svg, s), "no <text> {s:?}");
    }
    // Layer 1 in the first palette colour: 20 bins -> 40 corners + 2 ends, + 2 legend.
    assert_eq!(polyline_points(&svg, "#0072B2"), 44);
}

#[test]
fn histogram_with_wrong_edge_count_is_a_data_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = layer_hist(1);
    h.edges.pop();
    let err = histogram_chart(&dir.path().join("h"), "t", "x", &[h]).unwrap_err();
    assert!(
        matches!(err, PlotError::Data { .. }) && err.to_string().contains("layer 1"),
        "{err}"
    );
}

fn sweep(log_color: bool) -> Heatmap {
    let x: Vec<f64> = (0..10).map(|i| 1.0 + 0.3 * i as f64).collect();
    let y: Vec<f64> = (0..6).map(|i| 0.05 * i as f64).collect();
    let mut values: Vec<Vec<f64>> = y
        .iter()
        .map(|b| x.iter().map(|w| w * (1.0 + b)).collect())
        .collect();
    values[2][3] = f64::NAN;
    Heatmap {
        x,
        y,
        values,
        x_label: "σ_w²".into(),
        y_label: "σ_b²".into(),
        value_label: "growth".into(),
        log_color,
        diverging: false,
        curve_label: "χ₁ = 1".into(),
    }
}

#[test]
fn heatmap_chart_has_colour_bar_grey_missing_cells_and_the_curve() {
    let dir = tempfile::tempdir().unwrap();
    for log_color in [false, true] {
        let stem = dir.path().join(format!("heat_{log_color}"));
        let curve = [(1.0, 0.0), (2.0, 0.1), (5.0, 0.4)]; // leaves the grid: clipped
        let paths = heatmap_chart(&stem, "Sweep", &sweep(log_color), Some(&curve)).unwrap();
        let svg = check_outputs(&paths, &stem);
        for s in ["Sweep", "growth", "none", "χ₁ = 1"] {
            assert!(has_text(&svg, s), "no <text> {s:?}");
        }
        // σ_w² and σ_b²: the letter, its subscript and the square, no underscore.
        let t = texts(&svg);
        for s in ["σ", "w", "b", "²"] {
            assert!(t.iter().any(|x| x == s), "no <text> {s:?}: {t:?}");
        }
        assert!(t.iter().all(|x| !x.contains('_')), "{t:?}");
        assert!(svg.contains("fill=\"#BEBEBE\""), "the NaN cell is grey");
        // The curve and its legend sample: ink-coloured strokes over the cells.
        let strokes = svg.matches("stroke=\"#1E1E1E\" stroke-width=\"3\"").count();
        assert!(
            strokes >= 3,
            "curve segments and legend sample drawn: {strokes}"
        );
    }
    // Without a curve there is no legend entry.
    let stem = dir.path().join("heat_nocurve");
    let svg = check_outputs(
        &heatmap_chart(&stem, "Sweep", &sweep(false), None).unwrap(),
        &stem,
    );
    assert!(!has_text(&svg, "χ₁ = 1"));
}

/// Each `<text>` element's y, font size and content.
fn text_elements(svg: &str) -> Vec<(f64, f64, String)> {
    let attr = |t: &str, name: &str| -> f64 {
        let key = format!(" {name}=\"");
        t.find(&key)
            .and_then(|i| t[i + key.len()..].split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>'))
        .map(|(head, rest)| {
            let content = rest
                .split("</text>")
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            (attr(head, "y"), attr(head, "font-size"), content)
        })
        .collect()
}

/// `ξ_c` in a title and a legend is drawn as ξ with a smaller c below its centre line,
/// never with the underscore (Unicode has no subscript c).
#[test]
fn subscripts_are_drawn_smaller_and_lower_not_as_underscores() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("xi");
    let mut h = sweep(false);
    h.curve_label = "depth = 6 ξ_c (theory)".into();
    h.value_label = "depth scale ξ_c".into();
    let curve = [(1.0, 0.0), (2.0, 0.1)];
    let svg = check_outputs(
        &heatmap_chart(&stem, "Phase diagram: ξ_c", &h, Some(&curve)).unwrap(),
        &stem,
    );
    let t = text_elements(&svg);
    assert!(t.iter().all(|(_, _, s)| !s.contains('_')), "{t:?}");
    for base in ["Phase diagram: ξ", "depth = 6 ξ"] {
        let (y, size, _) = t.iter().find(|(_, _, s)| s == base).expect(base).clone();
        let (sy, ssize, _) = t
            .iter()
            .filter(|(ty, _, s)| s == "c" && (ty - y).abs() < size)
            .min_by(|a, b| (a.0 - y).abs().total_cmp(&(b.0 - y).abs()))
            .unwrap_or_else(|| panic!("no subscript c near {base:?}: {t:?}"))
            .clone();
        assert!(ssize < size, "{base}: subscript {ssize} vs {size}");
        assert!(sy > y, "{base}: subscript at y {sy}, text at {y}");
    }
    assert!(t.iter().any(|(_, _, s)| s == "(theory)"), "{t:?}");
}

#[test]
fn a_diverging_heatmap_is_white_at_zero_and_symmetric() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = sweep(false);
    h.diverging = true;
    h.values = vec![vec![-1.0, 0.0, 0.5]];
    h.x = vec![1.0, 2.0, 3.0];
    h.y = vec![0.0];
    let stem = dir.path().join("div");
    let svg = check_outputs(&heatmap_chart(&stem, "Growth", &h, None).unwrap(), &stem);
    // -1 is the deep blue end, 0 the white middle; 0.5 half way to the red end.
    assert!(
        svg.contains("fill=\"#053061\""),
        "deep blue for the most negative cell"
    );
    assert!(svg.contains("fill=\"#F7F7F7\""), "white for 0");
    assert!(
        !svg.contains("fill=\"#67001F\""),
        "no deep red: +0.5 is half the range"
    );
}

#[test]
fn heatmap_with_ragged_rows_is_a_data_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = sweep(false);
    h.values[1].pop();
    let err = heatmap_chart(&dir.path().join("h"), "ragged", &h, None).unwrap_err();
    assert!(
        matches!(err, PlotError::Data { .. }) && err.to_string().contains("ragged"),
        "{err}"
    );
}
