//! The runner's error type. Every user mistake is a [`RunnerError::Input`] with one line
//! naming the flag or key, the value and what is allowed; the CLI maps it to exit code 2.

use std::path::PathBuf;

/// What can go wrong running an experiment.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// Bad user input (flag, key, value): exit code 2.
    #[error("{0}")]
    Input(String),
    /// A network that could not be built (bad sizes, unknown names, unavailable backend).
    #[error(transparent)]
    Net(#[from] sigprop_nets::NetError),
    /// Reading or writing a file.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// "writing", "reading", "creating".
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A failure inside sigprop (a worker thread panicked): a bug to report, exit code 1.
    #[error("internal error: {0}")]
    Internal(String),
    /// A chart that could not be drawn.
    #[error("drawing charts: {0}")]
    Plot(String),
}

impl RunnerError {
    /// True when the error is the user's to fix (exit code 2 rather than 1).
    pub fn is_user_error(&self) -> bool {
        match self {
            RunnerError::Input(_) => true,
            RunnerError::Net(e) => !matches!(e, sigprop_nets::NetError::Readback { .. }),
            _ => false,
        }
    }

    /// Shorthand for an input error.
    pub fn input(msg: impl Into<String>) -> Self {
        RunnerError::Input(msg.into())
    }
}
