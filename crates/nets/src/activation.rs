//! `sigprop_init::Activation` applied to Burn tensors.
//!
//! The scalar definitions in the initializer crate are the reference; this file maps each
//! variant onto Burn's differentiable ops and is tested against them point by point.

use burn::tensor::Tensor;
use burn::tensor::activation as act;
use sigprop_init::Activation;

/// `phi(x)` elementwise, differentiable through Burn's autodiff.
pub fn apply<const D: usize>(a: Activation, x: Tensor<D>) -> Tensor<D> {
    match a {
        Activation::Linear => x,
        Activation::Relu => act::relu(x),
        Activation::LeakyRelu { slope } => act::leaky_relu(x, slope),
        Activation::Elu { alpha } => act::elu(x, alpha),
        Activation::Selu => act::selu(x),
        // Composed from erf rather than Burn's `gelu`: the generic backward of that op (the
        // ndarray and wgpu backends) differentiates the tanh approximation while the
        // forward is the exact erf form, so their gradients were off by about 5e-4
        // relative; erf's own backward is exact on every backend.
        Activation::Gelu => {
            let cdf = x
                .clone()
                .div_scalar(std::f64::consts::SQRT_2)
                .erf()
                .add_scalar(1.0)
                .mul_scalar(0.5);
            x * cdf
        }
        Activation::Silu => act::silu(x),
        Activation::Mish => act::mish(x),
        Activation::Softplus => act::softplus(x, 1.0),
        Activation::Softsign => act::softsign(x),
        Activation::Tanh => act::tanh(x),
        Activation::Sigmoid => act::sigmoid(x),
        Activation::HardTanh => act::hardtanh(x, -1.0, 1.0),
        Activation::Sin => x.sin(),
        Activation::TatLeakyRelu { slope, .. } => {
            let a = slope.unwrap_or(f64::NAN);
            act::leaky_relu(x, a).mul_scalar((2.0 / (1.0 + a * a)).sqrt())
        }
        Activation::Dks { base, shape, .. } => {
            let nan = f64::NAN;
            let s = shape.unwrap_or(sigprop_init::DksShape {
                alpha: nan,
                beta: nan,
                gamma: nan,
                delta: nan,
            });
            let u = x.mul_scalar(s.alpha).add_scalar(s.beta);
            apply(base.activation(), u)
                .add_scalar(s.delta)
                .mul_scalar(s.gamma)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn tensor_activations_match_the_scalar_reference_and_its_derivative() {
        let device = Device::flex().autodiff();
        let xs: Vec<f32> = (0..81).map(|i| -4.0 + 0.1 * i as f32 + 0.013).collect();
        for a in Activation::all() {
            let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device)
                .require_grad();
            let y = apply(a, x.clone());
            let grads = y.clone().sum().backward();
            let ys: Vec<f32> = y.into_data().try_to_vec().unwrap();
            let gs: Vec<f32> = x.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
            for ((&xv, &yv), &gv) in xs.iter().zip(&ys).zip(&gs) {
                let want = a.phi(xv as f64);
                assert!(
                    (yv as f64 - want).abs() < 2e-6 * (1.0 + want.abs()),
                    "{a} phi({xv}) = {yv}, want {want}"
                );
                let dwant = a.dphi(xv as f64);
                assert!(
                    (gv as f64 - dwant).abs() < 1e-5 * (1.0 + dwant.abs()),
                    "{a} phi'({xv}) = {gv}, want {dwant}"
                );
            }
        }
    }
}
