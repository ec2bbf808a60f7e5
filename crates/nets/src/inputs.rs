//! What a pass is fed and scored by: the keyed standard normal input, and the loss of a
//! network's output (projection, MSE, or the cross-entropy head on uniform labels) with its
//! targets drawn from keys, so every backend sees the same numbers. Not the networks
//! (`arch/`) nor the statistics (`probe.rs`, `stats.rs`).

#[cfg(feature = "burn")]
use burn::tensor::activation::log_softmax;
#[cfg(feature = "burn")]
use burn::tensor::{Device, Tensor, TensorData};
use sigprop_init::{FillContext, Key, Layout, Scheme};

use crate::error::NetError;
#[cfg(feature = "burn")]
use crate::forward::{DeviceParam, DeviceParams};
#[cfg(feature = "burn")]
use crate::handles::ParamId;
#[cfg(feature = "burn")]
use crate::options::Loss;
#[cfg(feature = "burn")]
use crate::params::HEAD_CLASSES;

/// A host-side standard normal tensor from the key `(seed, name)`.
pub fn normal_input(seed: u64, name: &str, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
    let scheme = Scheme::Normal {
        mean: 0.0,
        std: 1.0,
    };
    let ctx = FillContext::new(sigprop_init::Activation::Linear);
    scheme
        .fill(&shape, Layout::InOut, &Key::new(seed, name), &ctx)
        .map_err(|source| NetError::init(name, source))
}

/// `n` uniform `U(0, 1)` draws from the key `(seed, name)`.
pub fn uniform_draws(seed: u64, name: &str, n: usize) -> Result<Vec<f32>, NetError> {
    Scheme::Uniform {
        low: 0.0,
        high: 1.0,
    }
    .fill(
        &[n],
        Layout::Bias {
            fan_in: 1,
            fan_out: 1,
        },
        &Key::new(seed, name),
        &FillContext::new(sigprop_init::Activation::Linear),
    )
    .map_err(|source| NetError::init(name, source))
}

/// `n` classes uniform on `0..classes` from the key `(seed, name)`: `floor(classes U)` of
/// [`uniform_draws`] (the cross-entropy's and the mixture task's labels, a transformer's
/// token ids).
pub fn uniform_classes(
    seed: u64,
    name: &str,
    n: usize,
    classes: usize,
) -> Result<Vec<usize>, NetError> {
    let u = uniform_draws(seed, name, n)?;
    Ok(u.iter()
        .map(|&v| ((f64::from(v) * classes as f64) as usize).min(classes - 1))
        .collect())
}

/// Token ids `shape` uniform on `0..vocab`, i.i.d., from the key `(seed, <key>.tokens)`, as
/// f32 (exact below 2^24).
pub fn token_ids(
    seed: u64,
    key: &str,
    shape: [usize; 2],
    vocab: usize,
) -> Result<Vec<f32>, NetError> {
    let ids = uniform_classes(seed, &format!("{key}.tokens"), shape[0] * shape[1], vocab)?;
    Ok(ids.into_iter().map(|i| i as f32).collect())
}

/// The keyed standard normal input `(seed, "input")`, or with `corr = Some(c)` pairs of
/// rows at an exact cosine: each pair `(2i, 2i+1)` made from two i.i.d. `N(0, I)` rows by
/// Gram-Schmidt, both scaled to length `sqrt(N_0)` (second moment exactly 1) and at cosine
/// exactly `c`: `a`, and `c a + sqrt(1 - c^2) b` with `b` orthogonal to `a`. An odd last
/// row is scaled alike.
pub fn paired_input(seed: u64, shape: [usize; 2], corr: Option<f64>) -> Result<Vec<f32>, NetError> {
    let x = normal_input(seed, "input", shape)?;
    let Some(c) = corr else {
        return Ok(x);
    };
    let [rows, n] = shape;
    let len = (n as f64).sqrt();
    let scaled = |v: Vec<f64>| {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
        v.into_iter().map(|x| x * len / norm).collect::<Vec<f64>>()
    };
    let row = |r: usize| -> Vec<f64> {
        x[r * n..(r + 1) * n]
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    };
    let mut out = Vec::with_capacity(rows * n);
    for p in 0..rows / 2 {
        let a = scaled(row(2 * p));
        let g = row(2 * p + 1);
        let along = g.iter().zip(&a).map(|(g, a)| g * a).sum::<f64>() / (len * len);
        let b = scaled(g.iter().zip(&a).map(|(g, a)| g - along * a).collect());
        let s = (1.0 - c * c).max(0.0).sqrt();
        out.extend(a.iter().map(|&v| v as f32));
        out.extend(a.iter().zip(&b).map(|(a, b)| (c * a + s * b) as f32));
    }
    if rows % 2 == 1 {
        out.extend(scaled(row(rows - 1)).iter().map(|&v| v as f32));
    }
    Ok(out)
}

#[cfg(feature = "burn")]
/// The probe's loss of `out`; its targets are drawn from the keys `<keys>.g`,
/// `<keys>.target` and `<keys>.labels` (the probe's own are under `loss`).
pub(crate) fn loss(
    kind: Loss,
    p: &DeviceParams,
    head: Option<ParamId>,
    out: Tensor<2>,
    seed: u64,
    keys: &str,
    device: &Device,
) -> Result<Tensor<1>, NetError> {
    loss_seeds(kind, p, head, out, &[seed], keys, device)
}

#[cfg(feature = "burn")]
/// [`loss`] of stacked seeds (`p` holds `seeds.len()` of them): the sum of each seed's
/// loss of its own rows of `out`, with its own targets.
pub(crate) fn loss_seeds(
    kind: Loss,
    p: &DeviceParams,
    head: Option<ParamId>,
    out: Tensor<2>,
    seeds: &[u64],
    keys: &str,
    device: &Device,
) -> Result<Tensor<1>, NetError> {
    let shape = out.dims();
    let n = seeds.len().max(1);
    let rows = shape[0] / n;
    let host = |name: &str, shape: [usize; 2]| -> Result<Tensor<2>, NetError> {
        let mut v = Vec::with_capacity(shape[0] * shape[1]);
        for &seed in seeds {
            v.extend(normal_input(seed, name, [rows, shape[1]])?);
        }
        Ok(Tensor::from_data(TensorData::new(v, shape), device))
    };
    Ok(match kind {
        Loss::Projection => (out * host(&format!("{keys}.g"), shape)?).sum(),
        Loss::Mse => (out - host(&format!("{keys}.target"), shape)?)
            .square()
            .sum()
            .mul_scalar(0.5),
        Loss::CrossEntropy => {
            let head = match head.and_then(|id| p.get(id)) {
                Some(DeviceParam::D2(w)) => w.clone(),
                _ => unreachable!("build.rs declares a head for the cross-entropy loss"),
            };
            let logits = if p.seeds() == 1 {
                out.matmul(head)
            } else {
                crate::forward::seeded_matmul(p.seeds(), out, head)
                    .reshape([shape[0], HEAD_CLASSES])
            };
            let mut onehot = vec![0f32; shape[0] * HEAD_CLASSES];
            for (k, &seed) in seeds.iter().enumerate() {
                let labels = uniform_classes(seed, &format!("{keys}.labels"), rows, HEAD_CLASSES)?;
                for (b, c) in labels.into_iter().enumerate() {
                    onehot[(k * rows + b) * HEAD_CLASSES + c] = 1.0;
                }
            }
            let onehot =
                Tensor::<2>::from_data(TensorData::new(onehot, [shape[0], HEAD_CLASSES]), device);
            (log_softmax(logits, 1) * onehot).sum().neg()
        }
    })
}
