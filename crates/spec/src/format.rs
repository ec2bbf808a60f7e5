//! How numbers and labels are written for people: numbers in prose and tables, and labels
//! turned into file-name slugs. Pure functions, used by every layer from the settings' error
//! lines to the reports; nothing here knows a run.

/// A number for prose: three significant digits, scientific outside [1e-3, 1e4).
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{x:.2e}")
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// `x` to `digits` significant digits, trailing zeros dropped (`2.0000000000000004` ->
/// `2`, `1.7609553` -> `1.760955` at 7); scientific below 1e-4 and from 1e10.
pub fn fmt_sig(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    let e = x.abs().log10().floor() as i32;
    let trim = |t: String| {
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        }
    };
    if !(-4..10).contains(&e) {
        let t = format!("{:.*e}", digits - 1, x);
        match t.split_once('e') {
            Some((m, ex)) => format!("{}e{ex}", trim(m.to_string())),
            None => t,
        }
    } else {
        let decimals = (digits as i32 - 1 - e).max(0) as usize;
        trim(format!("{x:.decimals$}"))
    }
}

/// A file-name slug of a configuration label: lower-case ASCII letters, digits and single
/// dashes (`tanh / xavier-normal` -> `tanh-xavier-normal`).
pub fn slug(label: &str) -> String {
    let mut s = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits_drop_float_noise() {
        assert_eq!(fmt_sig(2.0000000000000004, 7), "2");
        assert_eq!(fmt_sig(1.7609553234, 7), "1.760955");
        assert_eq!(fmt_sig(0.5000000000000001, 7), "0.5");
        assert_eq!(fmt_sig(-0.012345678, 4), "-0.01235");
        assert_eq!(fmt_sig(1.5e-7, 7), "1.5e-7");
        assert_eq!(fmt_sig(123456.7, 3), "123457");
    }

    #[test]
    fn numbers_in_prose_have_sensible_precision() {
        assert_eq!(fmt_num(2.0000000000000004), "2");
        assert_eq!(fmt_num(61.0905), "61.1");
        assert_eq!(fmt_num(2.5376), "2.538");
        assert_eq!(fmt_num(1.117e-15), "1.12e-15");
        assert_eq!(fmt_num(117.4), "117");
    }
}
