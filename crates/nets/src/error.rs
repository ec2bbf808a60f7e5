//! The network crate's error type: bad configurations and unavailable backends, named so
//! the CLI can print one line.

use sigprop_init::InitError;

/// What can go wrong building or probing a network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetError {
    /// `--backend` names no backend.
    #[error("unknown backend \"{name}\"; expected one of: {allowed}")]
    UnknownBackend {
        /// What the user wrote.
        name: String,
        /// Accepted names.
        allowed: String,
    },
    /// The backend exists but cannot run here.
    #[error("backend {backend} is unavailable: {why}")]
    BackendUnavailable {
        /// Backend name.
        backend: &'static str,
        /// Why.
        why: String,
    },
    /// `--arch` names no architecture.
    #[error("unknown architecture \"{name}\"; expected one of: {allowed}")]
    UnknownArch {
        /// What the user wrote.
        name: String,
        /// Accepted names.
        allowed: String,
    },
    /// A setting that the chosen architecture does not take (another architecture does).
    #[error("{key} is not a setting of arch {arch}; its own settings are: {takes}")]
    NotASetting {
        /// The flag or key.
        key: String,
        /// The chosen architecture.
        arch: &'static str,
        /// Its own settings.
        takes: String,
    },
    /// A key that is no setting at all.
    #[error("unknown key {key}; expected one of: {allowed}")]
    UnknownKey {
        /// The flag or key.
        key: String,
        /// Every key.
        allowed: String,
    },
    /// `--loss` names no loss.
    #[error("unknown loss \"{name}\"; expected one of: projection, mse, cross-entropy")]
    UnknownLoss {
        /// What the user wrote.
        name: String,
    },
    /// A size or parameter out of range.
    #[error("{key}={value} is not allowed; expected {allowed}")]
    BadConfig {
        /// The flag or key.
        key: &'static str,
        /// The value.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A `critical:` initializer whose activation has no critical sigma_w at its sigma_b.
    #[error("--init {spec}: {why}")]
    NoCritical {
        /// The initializer spec.
        spec: String,
        /// What the theory found instead of a root.
        why: String,
    },
    /// A tensor could not be read back from the device (a driver or transfer failure):
    /// not the user's input, so the run stops instead of recording made-up values.
    #[error("reading {what} back from the device failed: {why}")]
    Readback {
        /// Which tensor.
        what: &'static str,
        /// The backend's error.
        why: String,
    },
    /// A model file (`--model`) that cannot be read, compiled or run as asked.
    #[error("--model {path}: {why}")]
    Model {
        /// The file, as given.
        path: String,
        /// What is wrong, and where.
        why: String,
    },
    /// An initializer could not fill a tensor.
    #[error("{path}: {source}")]
    Init {
        /// Tensor path, e.g. `layers.3.weight`.
        path: String,
        /// The initializer's error.
        source: Box<InitError>,
    },
}

impl NetError {
    /// An initializer error at tensor `path`.
    pub fn init(path: impl Into<String>, e: InitError) -> Self {
        NetError::Init {
            path: path.into(),
            source: Box::new(e),
        }
    }
}
