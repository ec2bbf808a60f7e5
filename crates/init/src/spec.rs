//! The `NAME[:key=value,...]` spec syntax shared by initializers and activations.
//!
//! Parsing keeps the keys in order and remembers which were read, so `finish` can reject a
//! key the scheme does not take. Printing uses [`fmt_f64`], the shortest text that parses
//! back to the same `f64`, so a spec prints back unchanged. Not a general config language.

use crate::error::InitError;

/// A parsed spec: a name and its `key=value` pairs, not yet interpreted.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Which kind of thing this spec names ("initializer", "activation"): used in errors.
    pub what: &'static str,
    /// The scheme or activation name, lower case.
    pub name: String,
    pairs: Vec<(String, String)>,
    used: Vec<bool>,
}

impl Spec {
    /// Split `NAME[:key=value,...]`; rejects empty names, pairs without `=`, repeated keys.
    pub fn parse(s: &str, what: &'static str) -> Result<Spec, InitError> {
        let s = s.trim();
        let (name, rest) = match s.split_once(':') {
            Some((n, r)) => (n.trim(), Some(r)),
            None => (s, None),
        };
        if name.is_empty() {
            return Err(InitError::Malformed {
                what,
                spec: s.to_string(),
                why: "empty name".into(),
            });
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(rest) = rest {
            for part in rest.split(',') {
                let Some((k, v)) = part.split_once('=') else {
                    return Err(InitError::Malformed {
                        what,
                        spec: s.to_string(),
                        why: format!("\"{part}\" is not key=value"),
                    });
                };
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.is_empty() || v.is_empty() {
                    return Err(InitError::Malformed {
                        what,
                        spec: s.to_string(),
                        why: format!("\"{part}\" is not key=value"),
                    });
                }
                if pairs.iter().any(|(pk, _)| *pk == k) {
                    return Err(InitError::Malformed {
                        what,
                        spec: s.to_string(),
                        why: format!("key \"{k}\" given twice"),
                    });
                }
                pairs.push((k, v));
            }
        }
        let used = vec![false; pairs.len()];
        Ok(Spec {
            what,
            name: name.to_ascii_lowercase(),
            pairs,
            used,
        })
    }

    /// The raw value of `key`, marking it as read.
    pub fn get_str(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(self.pairs[i].1.clone())
    }

    /// A finite number, or `default` when the key is absent.
    pub fn get_f64(&mut self, key: &str, default: f64) -> Result<f64, InitError> {
        self.get_f64_opt(key).map(|v| v.unwrap_or(default))
    }

    /// A finite number if the key is present.
    pub fn get_f64_opt(&mut self, key: &str) -> Result<Option<f64>, InitError> {
        let Some(v) = self.get_str(key) else {
            return Ok(None);
        };
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(self.bad(key, &v, "a finite number")),
        }
    }

    /// A number > 0, or `default`.
    pub fn get_positive(&mut self, key: &str, default: f64) -> Result<f64, InitError> {
        let x = self.get_f64(key, default)?;
        if x > 0.0 {
            Ok(x)
        } else {
            Err(self.bad(key, &x.to_string(), "a number > 0"))
        }
    }

    /// A number >= 0, or `default`.
    pub fn get_nonneg(&mut self, key: &str, default: f64) -> Result<f64, InitError> {
        let x = self.get_f64(key, default)?;
        if x >= 0.0 {
            Ok(x)
        } else {
            Err(self.bad(key, &x.to_string(), "a number >= 0"))
        }
    }

    /// A positive integer, or `default`.
    pub fn get_usize(&mut self, key: &str, default: usize) -> Result<usize, InitError> {
        let Some(v) = self.get_str(key) else {
            return Ok(default);
        };
        match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(self.bad(key, &v, "a whole number > 0")),
        }
    }

    /// `true` or `false`, or `default`.
    pub fn get_bool(&mut self, key: &str, default: bool) -> Result<bool, InitError> {
        let Some(v) = self.get_str(key) else {
            return Ok(default);
        };
        match v.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.bad(key, &v, "true or false")),
        }
    }

    /// One of `allowed` (the first is the default).
    pub fn get_choice(
        &mut self,
        key: &str,
        allowed: &[&'static str],
    ) -> Result<&'static str, InitError> {
        let Some(v) = self.get_str(key) else {
            return Ok(allowed[0]);
        };
        allowed
            .iter()
            .find(|a| **a == v)
            .copied()
            .ok_or_else(|| self.bad(key, &v, &format!("one of {}", allowed.join(", "))))
    }

    /// Error for a value that is out of range.
    pub fn bad(&self, key: &str, value: &str, allowed: &str) -> InitError {
        InitError::BadValue {
            what: self.what,
            name: self.name.clone(),
            key: key.to_string(),
            value: value.to_string(),
            allowed: allowed.to_string(),
        }
    }

    /// Reject any key that was not read.
    pub fn finish(&self) -> Result<(), InitError> {
        let unknown: Vec<&str> = self
            .pairs
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| !**u)
            .map(|((k, _), _)| k.as_str())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let known: Vec<&str> = self
            .pairs
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| **u)
            .map(|((k, _), _)| k.as_str())
            .collect();
        Err(InitError::UnknownKey {
            what: self.what,
            name: self.name.clone(),
            key: unknown[0].to_string(),
            read: known.join(", "),
        })
    }
}

/// The shortest decimal text that parses back to exactly `x` (Rust's `Display` for `f64`).
pub fn fmt_f64(x: f64) -> String {
    format!("{x}")
}
