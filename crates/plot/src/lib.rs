//! sigprop-plot: the charts of a sigprop report, as SVG and PNG, from plain numbers.
//!
//! Every function takes data already reduced over seeds (the same columns the CSVs hold, so
//! every chart can be redrawn from the CSVs alone) and writes `<stem>.svg` and `<stem>.png`
//! through a temporary name. No Burn, no statistics beyond axis ranges.
//!
//! - [`variance_chart`], [`fraction_chart`] and [`Band`]: per-layer means over seeds with a
//!   shaded interval and a dashed theory curve (variances on log or linear y; fractions);
//!   [`small_multiples_chart`] and [`Panel`]: many series as a grid of such charts.
//! - [`histogram_chart`] and [`Histogram`]: overlaid densities of activations or gradients at
//!   several layers (Glorot & Bengio 2010, figures 6-7).
//! - [`heatmap_chart`] and [`Heatmap`]: a two-parameter sweep as a coloured grid with a
//!   colour bar and an optional overlaid curve (Schoenholz et al. 2017, figure 1).
//! - [`style`]: the house style, every size, font and colour in one place.
//! - [`PlotError`]: what went wrong, naming the file or chart.
//!
//! Text is drawn from a font embedded in the library (see [`style`]), so charts render the
//! same on a machine with no fonts installed.
//!
//! ```
//! use sigprop_plot::{Band, variance_chart};
//!
//! let dir = tempfile::tempdir()?;
//! let he = Band {
//!     label: "he_normal / relu".into(),
//!     x: vec![0.0, 1.0, 2.0, 3.0],
//!     mean: vec![2.0, 2.1, 1.9, 2.05],
//!     lo: vec![1.8, 1.8, 1.5, 1.6],
//!     hi: vec![2.2, 2.4, 2.3, 2.5],
//!     theory: Some(vec![2.0; 4]),
//!     x_names: Vec::new(),
//! };
//! let files = variance_chart(&dir.path().join("var"), "Var[h] vs depth", "layer", "Var[h]", &[he], true)?;
//! assert_eq!(files, [dir.path().join("var.svg"), dir.path().join("var.png")]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod axis;
pub mod error;
pub mod heatmap;
pub mod histogram;
mod legend;
pub mod lines;
mod output;
mod rich;
pub mod style;
mod title;

pub use error::PlotError;
pub use heatmap::{Heatmap, heatmap_chart};
pub use histogram::{Histogram, histogram_chart};
pub use lines::{Band, Panel, fraction_chart, small_multiples_chart, variance_chart};
