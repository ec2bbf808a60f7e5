//! The initializer crate's one error type: every message names the key, the value and
//! what is allowed, so the CLI can print it as the single line a user sees.

/// What can go wrong parsing a spec or filling a tensor.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InitError {
    /// A name that is not in the list.
    #[error("unknown {what} \"{name}\"; expected one of: {allowed}")]
    UnknownName {
        /// "initializer" or "activation".
        what: &'static str,
        /// What the user wrote.
        name: String,
        /// The accepted names.
        allowed: String,
    },
    /// A key the named scheme does not take.
    #[error("{what} \"{name}\" has no key \"{key}\"{}", if read.is_empty() { String::new() } else { format!(" (it took: {read})") })]
    UnknownKey {
        /// "initializer" or "activation".
        what: &'static str,
        /// Scheme name.
        name: String,
        /// The offending key.
        key: String,
        /// Keys that were accepted.
        read: String,
    },
    /// A value out of range or of the wrong type.
    #[error("{what} \"{name}\": {key}={value} is not allowed; expected {allowed}")]
    BadValue {
        /// "initializer" or "activation".
        what: &'static str,
        /// Scheme name.
        name: String,
        /// The key.
        key: String,
        /// What the user wrote.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A required key that is missing.
    #[error("{what} \"{name}\" needs {key}=")]
    MissingKey {
        /// "initializer" or "activation".
        what: &'static str,
        /// Scheme name.
        name: String,
        /// The key.
        key: String,
    },
    /// Syntax error in a spec.
    #[error("malformed {what} \"{spec}\": {why}")]
    Malformed {
        /// "initializer" or "activation".
        what: &'static str,
        /// The whole spec.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// A shape the scheme or layout cannot take.
    #[error("shape {shape:?} does not fit {what}: {why}")]
    BadShape {
        /// What was being filled.
        what: String,
        /// The shape.
        shape: Vec<usize>,
        /// Why.
        why: String,
    },
    /// A scheme that needs network context (critical, fixup) filled without it.
    #[error("initializer \"{name}\" needs {needs}")]
    NeedsContext {
        /// Scheme name.
        name: String,
        /// What context is missing.
        needs: String,
    },
}
