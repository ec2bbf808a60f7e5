//! The free-probability eigenvalue density of `J J^T` against exact laws and the moments of
//! `predict_jacobian`.

use sigprop_init::Activation;
use sigprop_theory::{WeightSpectrum, jacobian_density, predict_jacobian};

/// One Gaussian linear layer with `sigma_w2 = 1`: the Marchenko-Pastur law of ratio 1,
/// `rho(x) = sqrt(4 / x - 1) / (2 pi)` on `(0, 4)`, pointwise.
#[test]
fn one_gaussian_layer_is_marchenko_pastur() {
    let d = jacobian_density(Activation::Linear, &[1.0], 0.0, WeightSpectrum::Iid, 3000).unwrap();
    let mut checked = 0;
    for (&x, &r) in d.lambda.iter().zip(&d.density) {
        let want = if x < 4.0 {
            (4.0 / x - 1.0).sqrt() / (2.0 * std::f64::consts::PI)
        } else {
            0.0
        };
        // Away from the edge, where the square root's slope makes the grid's x
        // imprecision visible.
        if (x - 4.0).abs() > 1e-3 && x > 1e-8 {
            assert!(
                (r - want).abs() <= 1e-6 * want.max(1.0),
                "x {x}: {r} vs {want}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// The density's mass and moments agree with the free-probability moments of
/// `predict_jacobian` (mean `m1`, variance `var`) for Gaussian linear (Fuss-Catalan) and
/// ReLU with Gaussian and orthogonal weights, at several depths and scales; ReLU puts half
/// the mass at zero.
#[test]
fn density_moments_equal_the_predicted_moments() {
    for (act, spectrum, w2, depth) in [
        (Activation::Linear, WeightSpectrum::Iid, 1.0, 3),
        (Activation::Linear, WeightSpectrum::Iid, 1.3, 8),
        (Activation::Relu, WeightSpectrum::Iid, 2.0, 1),
        (Activation::Relu, WeightSpectrum::Iid, 2.0, 8),
        (Activation::Relu, WeightSpectrum::Orthogonal, 2.0, 4),
        (Activation::Relu, WeightSpectrum::Orthogonal, 1.7, 32),
    ] {
        let w = vec![w2; depth];
        let d = jacobian_density(act, &w, 0.0, spectrum, 4000).unwrap();
        let p = &predict_jacobian(act, &w, 0.0, 1.0, spectrum).unwrap()[depth - 1];
        let mass = d.moment(0) + d.atom_at_zero;
        let (m1, m2) = (d.moment(1), d.moment(2));
        let var = m2 - m1 * m1;
        let tag = format!("{act:?} {spectrum:?} w2 {w2} depth {depth}");
        // The grid stops at 1e-16 of the top, and near 0 the density behaves like
        // lambda^(-L/(L+1)) (Fuss-Catalan), so the mass left below the grid is of order
        // 1e-16^(1/(L+1)): negligible at depth 1 to 4, a few percent at 8, a tenth at 32
        // (which the moments do not feel).
        let floor = match depth {
            0..=4 => 0.999,
            5..=8 => 0.97,
            _ => 0.85,
        };
        assert!(mass <= 1.0 + 1e-6 && mass >= floor, "{tag}: mass {mass}");
        assert!(
            (m1 - p.m1).abs() <= 1e-3 * p.m1,
            "{tag}: m1 {m1} vs {}",
            p.m1
        );
        assert!(
            (var - p.var).abs() <= 1e-3 * p.var,
            "{tag}: var {var} vs {}",
            p.var
        );
        if act == Activation::Relu {
            assert_eq!(d.atom_at_zero, 0.5);
        }
    }
}

/// Where `D^2` is not a two-point law, or the spectrum is a single point, there is no curve.
#[test]
fn density_is_refused_where_it_is_not_a_curve() {
    assert!(
        jacobian_density(
            Activation::Linear,
            &[1.0; 4],
            0.0,
            WeightSpectrum::Orthogonal,
            100
        )
        .is_none()
    );
    assert!(jacobian_density(Activation::Relu, &[], 0.0, WeightSpectrum::Iid, 100).is_none());
    // One orthogonal layer: the law of D^2 itself, here discretized.
    assert!(
        jacobian_density(
            Activation::Tanh,
            &[1.0],
            0.0,
            WeightSpectrum::Orthogonal,
            100
        )
        .is_none()
    );
    for depth in [1, 2] {
        let w = vec![2.0; depth];
        assert!(
            jacobian_density(Activation::Relu, &w, 0.0, WeightSpectrum::Orthogonal, 100).is_none()
        );
    }
    assert!(
        jacobian_density(
            Activation::Relu,
            &[2.0; 3],
            0.0,
            WeightSpectrum::Orthogonal,
            100
        )
        .is_some()
    );
}

/// Activations with a continuous law of `D^2` (tanh, at and off the edge of chaos, with a bias;
/// GELU): the density solved through the discretized laws has the mean and variance of
/// `predict_jacobian` to 2e-3 (3e-4 seen) and no atom, with Gaussian and orthogonal weights.
#[test]
fn smooth_activations_have_the_predicted_moments() {
    for (act, spectrum, w2, b2, depth) in [
        (Activation::Tanh, WeightSpectrum::Iid, 1.0, 0.0, 4),
        (Activation::Tanh, WeightSpectrum::Iid, 1.5, 0.05, 8),
        (Activation::Tanh, WeightSpectrum::Orthogonal, 1.5, 0.05, 8),
        (Activation::Tanh, WeightSpectrum::Orthogonal, 1.0, 0.0, 16),
        (Activation::Gelu, WeightSpectrum::Iid, 2.0, 0.0, 4),
    ] {
        let w = vec![w2; depth];
        let tag = format!("{act:?} {spectrum:?} w2 {w2} b2 {b2} depth {depth}");
        let d = jacobian_density(act, &w, b2, spectrum, 4000).unwrap_or_else(|| panic!("{tag}"));
        let p = &predict_jacobian(act, &w, b2, 1.0, spectrum).unwrap()[depth - 1];
        let mass = d.moment(0);
        let (m1, m2) = (d.moment(1), d.moment(2));
        let var = m2 - m1 * m1;
        assert_eq!(d.atom_at_zero, 0.0);
        // As for the linear Gaussian network, weights with independent entries leave some
        // mass below the grid's 1e-16 (up to 8% at depth 8); orthogonal ones none.
        let floor = if spectrum == WeightSpectrum::Iid {
            0.9
        } else {
            0.999
        };
        assert!(mass <= 1.0 + 1e-6 && mass >= floor, "{tag}: mass {mass}");
        assert!(
            (m1 - p.m1).abs() <= 1e-3 * p.m1,
            "{tag}: m1 {m1} vs {}",
            p.m1
        );
        assert!(
            (var - p.var).abs() <= 2e-3 * p.var,
            "{tag}: var {var} vs {}",
            p.var
        );
    }
}
