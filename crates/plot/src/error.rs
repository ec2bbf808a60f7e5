//! The chart crate's one error type. Every message names the output file (or the chart)
//! and what failed, so the binary can print it as the single line a user sees.
//!
//! This is not where drawing happens: backends' own error types are turned into text here
//! because they are generic over the backend and would otherwise leak into the public API.

use std::path::PathBuf;

/// What can go wrong drawing or writing a chart.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Creating, writing or renaming an output file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// "writing" or "renaming into place".
        action: &'static str,
        /// The file the operation was on.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The drawing backend failed (for PNG this includes encoding and writing the file).
    #[error("drawing {}: {message}", path.display())]
    Render {
        /// The file being drawn.
        path: PathBuf,
        /// The backend's message.
        message: String,
    },
    /// The data handed to a chart function is inconsistent (lengths, ordering).
    #[error("chart \"{chart}\": {message}")]
    Data {
        /// The chart's title.
        chart: String,
        /// What is wrong, naming the series.
        message: String,
    },
    /// The embedded font could not be loaded (a corrupt build, never user input).
    #[error("loading the embedded font {name}: not a valid TrueType font")]
    Font {
        /// The font's file name.
        name: &'static str,
    },
}

impl PlotError {
    /// A [`PlotError::Data`] for the chart titled `chart`.
    pub(crate) fn data(chart: &str, message: impl Into<String>) -> Self {
        Self::Data {
            chart: chart.to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_names_the_path_and_the_action() {
        let err = PlotError::Io {
            action: "writing",
            path: PathBuf::from("/nope/fig.svg"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let msg = err.to_string();
        assert!(msg.starts_with("writing /nope/fig.svg: "), "{msg}");
    }

    #[test]
    fn data_error_names_the_chart() {
        let msg = PlotError::data("depth", "band \"relu\" has 3 x values but 2 means").to_string();
        assert_eq!(
            msg,
            "chart \"depth\": band \"relu\" has 3 x values but 2 means"
        );
    }
}
