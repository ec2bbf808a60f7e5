//! The per-layer predictions, the one-layer maps and the critical line tell one story.

use sigprop_init::Activation;
use sigprop_theory::{Critical, MeanField, Phase, critical_sigma_w, predict_mlp};

#[test]
fn predicted_preactivations_iterate_the_length_map() {
    let (sw2, sb2) = (1.8, 0.1);
    let mf = MeanField::new(Activation::Tanh, sw2, sb2);
    let p = predict_mlp(Activation::Tanh, &[sw2; 30], sb2, &[100; 31], 4, 1.0, 1.0).unwrap();
    let mut q = sw2 + sb2;
    for layer in &p {
        assert!(
            (layer.preact_var - q).abs() < 1e-13,
            "layer {}",
            layer.layer
        );
        q = mf.q_map(q);
    }
    // Deep enough to sit at q*, where the gradient grows by chi_1 per layer going down.
    let q_star = mf.q_star().unwrap();
    assert!((p[29].preact_var - q_star).abs() < 1e-9);
    let ratio = p[25].grad_var / p[26].grad_var;
    assert!((ratio - mf.chi1()).abs() < 1e-9, "{ratio} vs {}", mf.chi1());
}

#[test]
fn the_critical_sigma_w_is_critical_and_its_neighbours_are_not() {
    let sigma_b = 0.3;
    let Critical::Root { sigma_w, .. } = critical_sigma_w(Activation::Tanh, sigma_b) else {
        panic!("tanh has a critical line");
    };
    let phase = |s: f64| MeanField::new(Activation::Tanh, s * s, sigma_b * sigma_b).phase();
    assert_eq!(phase(sigma_w), Phase::Critical);
    assert_eq!(phase(sigma_w * 0.99), Phase::Ordered);
    assert_eq!(phase(sigma_w * 1.01), Phase::Chaotic);
    assert_eq!(Phase::Chaotic.to_string(), "chaotic");
}
