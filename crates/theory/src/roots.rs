//! Bracketed scalar root finding (Brent's method), shared by the fixed-point searches.
//!
//! Every fixed point in this crate (`q*`, `c*`, the critical `sigma_w`) is found by first
//! bracketing a sign change and then refining it here; no Newton steps outside a bracket,
//! so a root that is reported lies between two points where the function has opposite signs.

/// A root of `f` in `[a, b]`, given `fa = f(a)` and `fb = f(b)` of opposite signs (or one of
/// them zero), to absolute tolerance about `xtol + 4 eps |x|`.
///
/// Brent's method (Brent 1973, "Algorithms for Minimization without Derivatives", ch. 4):
/// inverse quadratic interpolation or secant steps, falling back to bisection whenever they
/// do not shrink the bracket fast enough, so it never does worse than bisection.
pub(crate) fn brent(
    mut f: impl FnMut(f64) -> f64,
    a: f64,
    b: f64,
    fa: f64,
    fb: f64,
    xtol: f64,
) -> f64 {
    let (mut a, mut b, mut fa, mut fb) = (a, b, fa, fb);
    let (mut c, mut fc) = (b, fb);
    let mut d = b - a;
    let mut e = d;
    for _ in 0..200 {
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            c = a;
            fc = fa;
            d = b - a;
            e = d;
        }
        if fc.abs() < fb.abs() {
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol = 2.0 * f64::EPSILON * b.abs() + 0.5 * xtol;
        let xm = 0.5 * (c - b);
        if xm.abs() <= tol || fb == 0.0 {
            return b;
        }
        if e.abs() >= tol && fa.abs() > fb.abs() {
            let s = fb / fa;
            let (mut p, mut q);
            if a == c {
                p = 2.0 * xm * s;
                q = 1.0 - s;
            } else {
                let qa = fa / fc;
                let r = fb / fc;
                p = s * (2.0 * xm * qa * (qa - r) - (b - a) * (r - 1.0));
                q = (qa - 1.0) * (r - 1.0) * (s - 1.0);
            }
            if p > 0.0 {
                q = -q;
            }
            p = p.abs();
            let min1 = 3.0 * xm * q - (tol * q).abs();
            let min2 = (e * q).abs();
            if 2.0 * p < min1.min(min2) {
                e = d;
                d = p / q;
            } else {
                d = xm;
                e = d;
            }
        } else {
            d = xm;
            e = d;
        }
        a = b;
        fa = fb;
        b += if d.abs() > tol { d } else { tol.copysign(xm) };
        fb = f(b);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brent_finds_smooth_roots_to_machine_precision() {
        let r = brent(|x| x * x - 2.0, 0.0, 2.0, -2.0, 2.0, 1e-15);
        assert!((r - 2f64.sqrt()).abs() < 1e-14, "{r}");
        let r = brent(|x: f64| x.cos() - x, 0.0, 1.0, 1.0, 1f64.cos() - 1.0, 1e-15);
        assert!((r.cos() - r).abs() < 1e-15, "{r}");
    }

    #[test]
    fn brent_closes_in_on_a_jump_instead_of_inventing_a_root() {
        // No root, only a sign change at 0.3: the bracket collapses onto the jump.
        let f = |x: f64| if x < 0.3 { -1.0 } else { 1.0 };
        let r = brent(f, 0.0, 1.0, -1.0, 1.0, 1e-12);
        assert!((r - 0.3).abs() < 1e-11, "{r}");
    }
}
