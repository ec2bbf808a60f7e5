//! The theory crate's one error type.
//!
//! Only bad input is an error: a length that does not match, a zero width, a negative
//! variance. A prediction that overflows to infinity or a map without a fixed point is a
//! result, returned as a value (`f64::INFINITY`, `None`, `Critical::None` (critical.rs)).

/// What can go wrong asking the theory for a prediction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TheoryError {
    /// Two slices whose lengths must agree do not.
    #[error("{what} has {got} entries; expected {expected} ({rule})")]
    LengthMismatch {
        /// The slice, e.g. "widths".
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length it must have.
        expected: usize,
        /// Why, e.g. "one more than sigma_w2: N_0..N_depth".
        rule: &'static str,
    },
    /// A network without layers.
    #[error("{what} is empty; at least one layer is required")]
    Empty {
        /// The slice, e.g. "sigma_w2".
        what: &'static str,
    },
    /// A layer width or batch size of zero.
    #[error("{what} = 0; it must be at least 1")]
    Zero {
        /// The offending entry, e.g. `widths[2]` or `batch`.
        what: String,
    },
    /// A number outside its allowed range.
    #[error("{what} = {value} is not allowed; expected {allowed}")]
    BadValue {
        /// The offending parameter, e.g. `sigma_b2` or `sigma_w2[3]`.
        what: String,
        /// Its value.
        value: f64,
        /// What is allowed, e.g. "a finite number >= 0".
        allowed: &'static str,
    },
    /// An activation for which the asked quantity does not exist.
    #[error("activation \"{activation}\": {why}")]
    Degenerate {
        /// The activation spec.
        activation: String,
        /// What is missing, e.g. "E[phi(z)^2] = 0, no gain makes q = 1 a fixed point".
        why: String,
    },
}

/// `Ok(())` when `value` is finite and `>= 0`, the range of every variance the theory takes.
pub(crate) fn check_nonnegative(what: impl Into<String>, value: f64) -> Result<(), TheoryError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(TheoryError::BadValue {
            what: what.into(),
            value,
            allowed: "a finite number >= 0",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_value_and_the_rule() {
        let e = check_nonnegative("sigma_b2", -0.5).unwrap_err().to_string();
        assert_eq!(
            e,
            "sigma_b2 = -0.5 is not allowed; expected a finite number >= 0"
        );
        let e = TheoryError::Zero {
            what: "widths[2]".into(),
        }
        .to_string();
        assert_eq!(e, "widths[2] = 0; it must be at least 1");
        assert!(check_nonnegative("x", f64::NAN).is_err());
        assert!(check_nonnegative("x", 0.0).is_ok());
    }
}
