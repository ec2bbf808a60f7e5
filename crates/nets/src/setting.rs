//! A setting an architecture takes beyond the common ones: its flag and suite key, its help
//! line, its kind of value and what it allows, and how a command-line value becomes the suite
//! value it stands for. Not which architecture takes which setting (`arch/`), nor the typed
//! values they are read into (`options.rs`).

use crate::error::NetError;

/// What kind of value a setting takes, on the command line (`--kernel 5`) and in a suite
/// (`kernel = 5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// A whole number.
    Whole,
    /// Whole numbers, comma-separated on the command line, a list in a suite.
    Wholes,
    /// Text (a name, a number or a spec).
    Text,
    /// A real number.
    Number,
    /// On or off: a flag without a value on the command line, `true`/`false` in a suite.
    Switch,
    /// Texts: the flag repeated on the command line, a list of strings in a suite.
    Texts,
}

/// One setting an architecture takes beyond the common ones (depth, width, initializers,
/// activation, batch, loss): its flag and suite key, help line, kind and what it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Flag without dashes, and suite key (`image-size`).
    pub key: &'static str,
    /// One line of help, with its default.
    pub help: &'static str,
    /// Its kind of value.
    pub kind: SettingKind,
    /// What it allows, for the error line.
    pub allowed: &'static str,
}

impl Setting {
    /// A command-line value as the suite value it stands for.
    pub fn parse_flag(&self, raw: &str) -> Result<toml::Value, NetError> {
        let bad = || NetError::BadConfig {
            key: self.key,
            value: raw.to_string(),
            allowed: self.allowed.to_string(),
        };
        let whole = |t: &str| -> Result<toml::Value, NetError> {
            t.trim()
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .map(toml::Value::Integer)
                .ok_or_else(bad)
        };
        match self.kind {
            SettingKind::Whole => whole(raw),
            SettingKind::Wholes => raw
                .split(',')
                .map(whole)
                .collect::<Result<Vec<_>, _>>()
                .map(toml::Value::Array),
            SettingKind::Text | SettingKind::Texts => Ok(toml::Value::String(raw.to_string())),
            SettingKind::Number => raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(toml::Value::Float)
                .ok_or_else(bad),
            SettingKind::Switch => match raw.trim() {
                "true" => Ok(toml::Value::Boolean(true)),
                "false" => Ok(toml::Value::Boolean(false)),
                _ => Err(bad()),
            },
        }
    }
}
