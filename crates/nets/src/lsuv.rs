//! Layer-sequential unit-variance initialization (Mishkin & Matas 2015), the data-driven
//! half of the `lsuv` scheme.
//!
//! The initializer crate fills the orthonormal pre-initialization; here, layer by layer,
//! a batch is forwarded to the layer, the variance of its target (the pre-activation by
//! default, as in the authors' code, or the activation) is measured, and the layer's
//! weights are divided by its square root until it is within `tol` of 1 or `max-iter`
//! rescalings were made. The batch is drawn from its own key (`lsuv.input`), not the probe's.

use burn::tensor::{Device, Tensor, TensorData};
use sigprop_init::LsuvTarget;

use crate::arch::{LsuvLayer, ResolvedNet};
use crate::build::declare;
use crate::error::NetError;
use crate::forward::{conv, linear, upload_some};
use crate::inputs::normal_input;
use crate::params::Params;

/// Rescale `params` in place; returns, per layer, the rescalings made and the target's
/// variance after the last one (on the LSUV batch).
pub fn lsuv(
    net: &ResolvedNet,
    params: &mut Params,
    seed: u64,
    batch: usize,
    device: &Device,
) -> Result<Vec<(usize, f64)>, NetError> {
    let Some(lp) = net.weight_init.lsuv() else {
        return Ok(Vec::new());
    };
    let cfg = &net.config;
    let Some(layers) = declare(net).layout.lsuv_layers() else {
        return Err(NetError::BadConfig {
            key: "init",
            value: net.config.weight_init.clone(),
            allowed: format!(
                "lsuv with an architecture of plain layers (mlp, cnn), not {}",
                cfg.arch
            ),
        });
    };
    let shape = net.config.arch.input_shape(net, batch);
    let x = Tensor::<2>::from_data(
        TensorData::new(
            crate::build::net_input(net, seed, "lsuv.input", shape, || {
                normal_input(seed, "lsuv.input", shape)
            })?,
            shape,
        ),
        device,
    );
    let mut h = x;
    let mut iterations = Vec::with_capacity(layers.len());
    for layer in layers {
        let (weight, bias) = match layer {
            LsuvLayer::Linear(ids) => (ids.weight, ids.bias),
            LsuvLayer::Conv { ids, .. } => (ids.weight, ids.bias),
        };
        let mut used = 0;
        let (z, var) = loop {
            // Only this layer's tensors are uploaded again after a rescale.
            let p = upload_some(params, |id| id == weight || Some(id) == bias, device, false);
            let z = match layer {
                LsuvLayer::Conv {
                    ids,
                    kernel,
                    groups,
                    image_size: s,
                } => {
                    let (b, c) = (h.dims()[0], cfg.width);
                    let x4 = h.clone().reshape([b, c, s, s]);
                    conv(&p, ids, kernel, groups, x4).reshape([b, c * s * s])
                }
                LsuvLayer::Linear(ids) => linear(&p, ids, h.clone()),
            };
            let target = match lp.target {
                LsuvTarget::Preact => z.clone(),
                LsuvTarget::Act => crate::activation::apply(net.activation, z.clone()),
            };
            let var = population_var(target)?;
            if (var - 1.0).abs() < lp.tol || used >= lp.max_iter || !var.is_finite() || var <= 0.0 {
                break (z, var);
            }
            let scale = (1.0 / var.sqrt()) as f32;
            if let Some(w) = params.tensors.get_mut(weight.0) {
                w.data.iter_mut().for_each(|v| *v *= scale);
            }
            used += 1;
        };
        iterations.push((used, var));
        h = crate::activation::apply(net.activation, z);
    }
    Ok(iterations)
}

fn population_var(t: Tensor<2>) -> Result<f64, NetError> {
    let v = crate::stats::read_back(t, "an LSUV layer output")?;
    Ok(if v.is_empty() {
        f64::NAN
    } else {
        crate::probe::host_var(&v)
    })
}
