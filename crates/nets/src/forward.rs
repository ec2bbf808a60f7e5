//! What every forward pass is written against: parameters on the device reached by their
//! typed handles, the [`Recorder`] that receives each site, and the two layer kinds
//! (linear, convolution). The passes themselves are the architectures' (`arch/`).
//!
//! The recorder decides what a "site" does: in the probed pass it puts a probe leaf that
//! requires grad on z and on h (Burn panics on `require_grad()` of a non-leaf, upstream issue
//! #1802; the probe's gradient is dL/dz: [`crate::kernels::tap`]) and keeps z and h for the
//! statistics; in LSUV's plain pass it only applies the activation.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use sigprop_init::Activation;

use crate::activation::apply;
use crate::error::NetError;
use crate::handles::{ConvIds, LinearIds, ParamId};
use crate::options::NORM_EPS;
use crate::options::Norm;
use crate::params::Params;

/// A parameter on the device: a 1-, 2- or 4-D leaf.
#[derive(Clone)]
pub(crate) enum DeviceParam {
    /// Linear weights `[in, out]`.
    D2(Tensor<2>),
    /// Conv weights `[out, in/groups, k, k]`.
    D4(Tensor<4>),
    /// Biases `[n]`.
    D1(Tensor<1>),
}

/// The parameters on the device, indexed by [`ParamId`] (absent: not uploaded), and the
/// number of seeds they hold (see [`DeviceParams::stack`]).
pub(crate) struct DeviceParams(pub(crate) Vec<Option<DeviceParam>>, pub(crate) usize);

impl DeviceParams {
    /// The independent networks these parameters hold (1 but for [`DeviceParams::stack`]).
    pub fn seeds(&self) -> usize {
        self.1
    }

    /// Several seeds' parameters of one network as one: each 2-D weight `[in, out]` as the
    /// seeds' matrices one under another, `[seeds * in, out]`, each bias as theirs one
    /// after another, `[seeds * n]`: the same bytes, copied on the device. A pass over rows
    /// `[seeds * batch, ...]` (each seed's batch in turn) then runs the seeds as independent
    /// networks side by side: [`linear`] multiplies each seed's rows by its own weights (a
    /// batched matrix product). Only architectures whose pass is written with [`linear`] and
    /// row-wise operations take stacked parameters (`Architecture::seed_batching`).
    pub fn stack(each: Vec<DeviceParams>) -> Result<DeviceParams, NetError> {
        let seeds = each.len();
        if seeds == 1 {
            return Ok(each
                .into_iter()
                .next()
                .unwrap_or(DeviceParams(Vec::new(), 1)));
        }
        let count = each.first().map_or(0, |p| p.0.len());
        let mut columns: Vec<Vec<Option<DeviceParam>>> =
            (0..count).map(|_| Vec::with_capacity(seeds)).collect();
        for p in each {
            if p.0.len() != count || p.1 != 1 {
                return Err(NetError::Readback {
                    what: "the stacked parameters",
                    why: "the seeds' networks differ".into(),
                });
            }
            for (c, t) in columns.iter_mut().zip(p.0) {
                c.push(t);
            }
        }
        let stacked = columns
            .into_iter()
            .map(|c| {
                if c.iter().all(Option::is_none) {
                    return Ok(None);
                }
                let mut d1 = Vec::new();
                let mut d2 = Vec::new();
                for t in c {
                    match t {
                        Some(DeviceParam::D1(t)) => d1.push(t),
                        Some(DeviceParam::D2(t)) => d2.push(t),
                        _ => {
                            return Err(NetError::Readback {
                                what: "the stacked parameters",
                                why: "only weight matrices and biases stack".into(),
                            });
                        }
                    }
                }
                Ok(Some(if d2.is_empty() {
                    DeviceParam::D1(Tensor::cat(d1, 0))
                } else if d1.is_empty() {
                    DeviceParam::D2(Tensor::cat(d2, 0))
                } else {
                    return Err(NetError::Readback {
                        what: "the stacked parameters",
                        why: "the seeds' networks differ".into(),
                    });
                }))
            })
            .collect::<Result<_, _>>()?;
        Ok(DeviceParams(stacked, seeds))
    }

    /// The same parameters in the float type `dtype`, through a cast the backward pass
    /// goes through: each leaf's gradient arrives in its own type (a low-precision pass
    /// over f32 leaves).
    pub fn cast(&self, dtype: burn::tensor::FloatDType) -> DeviceParams {
        DeviceParams(
            self.0
                .iter()
                .map(|p| {
                    p.as_ref().map(|p| match p {
                        DeviceParam::D1(t) => DeviceParam::D1(t.clone().cast(dtype)),
                        DeviceParam::D2(t) => DeviceParam::D2(t.clone().cast(dtype)),
                        DeviceParam::D4(t) => DeviceParam::D4(t.clone().cast(dtype)),
                    })
                })
                .collect(),
            self.1,
        )
    }

    /// The float type of the parameters (f32 where there are none): the type of every
    /// tensor a pass over them creates, so that no operation mixes two.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.0
            .iter()
            .flatten()
            .next()
            .map_or(burn::tensor::DType::F32, |p| match p {
                DeviceParam::D1(t) => t.dtype(),
                DeviceParam::D2(t) => t.dtype(),
                DeviceParam::D4(t) => t.dtype(),
            })
    }

    /// The parameter `id`, if it was uploaded.
    pub fn get(&self, id: ParamId) -> Option<&DeviceParam> {
        self.0.get(id.0).and_then(Option::as_ref)
    }

    fn d2(&self, id: ParamId) -> Tensor<2> {
        match self.get(id) {
            Some(DeviceParam::D2(t)) => t.clone(),
            _ => unreachable!("parameter {id:?} is declared 2-D and uploaded before use"),
        }
    }

    fn d4(&self, id: ParamId) -> Tensor<4> {
        match self.get(id) {
            Some(DeviceParam::D4(t)) => t.clone(),
            _ => unreachable!("parameter {id:?} is declared 4-D and uploaded before use"),
        }
    }

    fn d1(&self, id: ParamId) -> Tensor<1> {
        match self.get(id) {
            Some(DeviceParam::D1(t)) => t.clone(),
            _ => unreachable!("parameter {id:?} is declared 1-D and uploaded before use"),
        }
    }

    /// A weight matrix.
    pub fn matrix(&self, id: ParamId) -> Tensor<2> {
        self.d2(id)
    }

    /// A convolution kernel `[out, in/groups, k, k]`.
    pub fn kernel(&self, id: ParamId) -> Tensor<4> {
        self.d4(id)
    }

    /// A vector (a bias, a normalization's gain) of one network (not stacked seeds).
    pub fn vector(&self, id: ParamId) -> Tensor<1> {
        assert_eq!(self.1, 1, "a vector of stacked seeds: use `linear`");
        self.d1(id)
    }

    /// A scalar parameter as `[1, ..., 1]`, broadcast over a `D`-dimensional tensor.
    pub fn scalar<const D: usize>(&self, id: ParamId) -> Tensor<D> {
        assert_eq!(
            self.1, 1,
            "an architecture with learnable scalars does not take stacked seeds"
        );
        self.d1(id).unsqueeze::<D>()
    }

    /// A bias as a `[1, n]` row, broadcast over the batch.
    pub fn bias_row(&self, id: Option<ParamId>) -> Option<Tensor<2>> {
        assert_eq!(self.1, 1, "bias_row of stacked seeds: use `linear`");
        id.map(|id| self.d1(id).unsqueeze::<2>())
    }
}

/// `t` in the float type `dtype` (unchanged where it already is): a constant a pass creates
/// (a mask, a rotation table) in the type of the pass.
pub(crate) fn in_dtype<const D: usize>(t: Tensor<D>, dtype: burn::tensor::DType) -> Tensor<D> {
    if t.dtype() == dtype {
        t
    } else {
        match dtype {
            burn::tensor::DType::BF16 => t.cast(burn::tensor::FloatDType::BF16),
            burn::tensor::DType::F16 => t.cast(burn::tensor::FloatDType::F16),
            burn::tensor::DType::F64 => t.cast(burn::tensor::FloatDType::F64),
            _ => t.cast(burn::tensor::FloatDType::F32),
        }
    }
}

/// Upload every parameter; leaves require grad when `grad` (device must be autodiff).
pub(crate) fn upload(params: &Params, device: &Device, grad: bool) -> DeviceParams {
    upload_some(params, |_| true, device, grad)
}

/// Upload the parameters whose id `want` accepts (the rest stay absent).
pub(crate) fn upload_some(
    params: &Params,
    want: impl Fn(ParamId) -> bool,
    device: &Device,
    grad: bool,
) -> DeviceParams {
    DeviceParams(
        params
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| {
                want(ParamId(i)).then(|| {
                    let data = TensorData::new(t.data.clone(), t.shape.clone());
                    match t.shape.len() {
                        1 => DeviceParam::D1(leaf(Tensor::<1>::from_data(data, device), grad)),
                        4 => DeviceParam::D4(leaf(Tensor::<4>::from_data(data, device), grad)),
                        _ => DeviceParam::D2(leaf(Tensor::<2>::from_data(data, device), grad)),
                    }
                })
            })
            .collect(),
        1,
    )
}

impl DeviceParams {
    /// The same tensors as autodiff leaves that require grad (uploaded without autodiff,
    /// possibly on another thread ahead of the pass: see `Staged` in `measure.rs`).
    pub(crate) fn into_leaves(self) -> DeviceParams {
        DeviceParams(
            self.0
                .into_iter()
                .map(|p| {
                    p.map(|p| match p {
                        DeviceParam::D1(t) => DeviceParam::D1(t.autodiff().require_grad()),
                        DeviceParam::D2(t) => DeviceParam::D2(t.autodiff().require_grad()),
                        DeviceParam::D4(t) => DeviceParam::D4(t.autodiff().require_grad()),
                    })
                })
                .collect(),
            self.1,
        )
    }
}

fn leaf<const D: usize>(t: Tensor<D>, grad: bool) -> Tensor<D> {
    if grad { t.require_grad() } else { t }
}

/// How the weight feeding out of a site gets its gradient.
#[derive(Clone)]
pub(crate) enum WeightGrad {
    /// A parameter leaf: read `leaf.grad()`.
    Leaf(ParamId),
    /// A weight shared across time steps: the step's own contribution `h_prev^T dL/dz`.
    PerStep {
        weight: ParamId,
        h_prev: Box<Tensor<2>>,
    },
}

impl WeightGrad {
    /// The weight itself (for the host-side audit `weight_var`).
    pub fn weight(&self) -> ParamId {
        match self {
            WeightGrad::Leaf(id) | WeightGrad::PerStep { weight: id, .. } => *id,
        }
    }
}

/// What a site computes from its input `z`, which decides which statistics it defines
/// (docs/columns.md has the table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SiteKind {
    /// A pointwise activation `h = phi(z)`: every column, with `dead_frac` and
    /// `saturated_frac` counted for `phi`.
    Activation(Activation),
    /// Unit scaling's activation (u-muP): `h = phi(z) / sqrt(E phi(u)^2)` forward, and the
    /// gradient `phi'(z) / sqrt(E phi'(u)^2)` backward, `u ~ N(0, 1)`: unit output and unit
    /// gradient for a unit input (see [`UnitScales`]).
    UnitActivation(Activation, UnitScales),
    /// A residual branch's output, scaled by its multiplier, before the add: `h = z`. Its
    /// variance is the signal-propagation plot's branch variance; the dead and saturated
    /// fractions are not defined (NaN).
    Branch,
    /// A residual sum (after the normalization of a post-norm block): `h = z`. Its squared
    /// mean and variance are the signal-propagation plot's; the dead and saturated fractions
    /// are not defined (NaN).
    Sum,
    /// The output of an attention (its probabilities times the values, heads
    /// concatenated, before the output projection): `h = z`, a token mixing, not pointwise;
    /// the attention entropy is measured here.
    Attention,
    /// A gated MLP's product `phi(gate) * up` (`h = z`): not a pointwise function of one
    /// pre-activation, so the dead and saturated fractions are not defined (NaN).
    Gated,
}

impl SiteKind {
    /// The map from `z` to `h`: `phi` for an activation, the identity otherwise.
    pub fn activation(self) -> Activation {
        match self {
            SiteKind::Activation(a) | SiteKind::UnitActivation(a, _) => a,
            SiteKind::Branch | SiteKind::Sum | SiteKind::Attention | SiteKind::Gated => {
                Activation::Linear
            }
        }
    }

    /// Whether the site applies a pointwise nonlinearity, so that `dead_frac` and
    /// `saturated_frac` are defined.
    pub fn pointwise(self) -> bool {
        matches!(self, SiteKind::Activation(_) | SiteKind::UnitActivation(..))
    }

    /// `h` from `z`: `phi` (scaled forward and backward for a unit activation), or the
    /// identity.
    pub(crate) fn apply<const D: usize>(self, z: Tensor<D>) -> Tensor<D> {
        match self {
            SiteKind::UnitActivation(a, s) => {
                scale_fwd(apply(a, scale_bwd(z, s.backward)), s.forward)
            }
            other => apply(other.activation(), z),
        }
    }
}

/// The two scales of a unit-scaled activation: `forward = E[phi(u)^2]^(-1/2)` and
/// `backward = E[phi'(u)^2]^(-1/2)`, `u ~ N(0, 1)` (Blake et al. 2023: each operation's
/// output and input gradient scaled to unit variance separately).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitScales {
    /// Multiplies `phi(z)`.
    pub forward: f64,
    /// Multiplies the gradient `phi'(z) dL/dh`.
    pub backward: f64,
}

/// `s t` forward; the gradient passes unscaled (unit scaling's `scale_fwd`).
pub(crate) fn scale_fwd<const D: usize>(t: Tensor<D>, s: f64) -> Tensor<D> {
    if s == 1.0 {
        return t;
    }
    t.clone() + t.detach().mul_scalar(s - 1.0)
}

/// `t` forward; the gradient times `s` (unit scaling's `scale_bwd`).
pub(crate) fn scale_bwd<const D: usize>(t: Tensor<D>, s: f64) -> Tensor<D> {
    if s == 1.0 {
        return t;
    }
    t.clone().mul_scalar(s) + t.detach().mul_scalar(1.0 - s)
}

/// What one site hands to the recorder.
pub(crate) struct SiteIn<'a> {
    pub site: &'a str,
    pub layer: usize,
    pub kind: SiteKind,
    pub weight: Option<WeightGrad>,
    /// A learnable multiplier applied at this site (ReZero's alpha): its gradient is read.
    pub scale: Option<ParamId>,
    /// Tokens per sequence when `z` is `[batch, tokens, features]`: the token statistics
    /// (`token_cos`, `token_rank`) are measured on `h`.
    pub tokens: Option<usize>,
    /// Attention probabilities `[batch, heads, tokens, tokens]` of the attention whose
    /// output this site is: their entropy is measured (`attn_entropy`).
    pub attention: Option<Tensor<4>>,
    /// Weights whose gradient variance is reported under a role name at this site
    /// (a transformer's `q`, `k`, `v`, `o` at its attention site).
    pub roles: Vec<(&'static str, ParamId)>,
    /// The model node this site is (a graph model's `node` column).
    pub node: Option<&'a str>,
}

/// Receives every site of the forward pass.
pub(crate) trait Recorder {
    /// Apply `phi` at a site of pre-activation `z` and return `h`.
    fn site<const D: usize>(&mut self, s: SiteIn<'_>, z: Tensor<D>) -> Tensor<D>;
}

/// A recorder that only applies the activation (LSUV and plain forwards).
pub(crate) struct Plain;

impl Recorder for Plain {
    fn site<const D: usize>(&mut self, s: SiteIn<'_>, z: Tensor<D>) -> Tensor<D> {
        s.kind.apply(z)
    }
}

/// `h W + b`; with stacked seeds ([`DeviceParams::stack`]), each seed's rows times its own
/// `W`, plus its own `b`.
pub(crate) fn linear(p: &DeviceParams, ids: LinearIds, h: Tensor<2>) -> Tensor<2> {
    let seeds = p.seeds();
    if seeds == 1 {
        let z = crate::kernels::matmul(h, p.matrix(ids.weight));
        return match p.bias_row(ids.bias) {
            Some(b) => z + b,
            None => z,
        };
    }
    let [rows, _] = h.dims();
    let n = p.matrix(ids.weight).dims()[1];
    let z = seeded_matmul(seeds, h, p.matrix(ids.weight));
    let z = match ids.bias {
        Some(b) => z + p.d1(b).reshape([seeds, 1, n]),
        None => z,
    };
    z.reshape([rows, n])
}

/// Unit scaling's linear map (u-muP): `fan_in^(-1/2) (h W + b)` forward, the input's
/// gradient scaled by `fan_out^(-1/2)` and the weight's and bias's by `rows^(-1/2)` (rows
/// per seed) in place of the exact ones, so that for unit `h` and unit gradients every one
/// of them has unit variance, square or not (Blake et al. 2023, unconstrained).
pub(crate) fn unit_linear(p: &DeviceParams, ids: LinearIds, h: Tensor<2>) -> Tensor<2> {
    let seeds = p.seeds();
    let w = p.matrix(ids.weight);
    let ([rows, _], [k, n]) = (h.dims(), w.dims());
    let (fan_in, rows) = ((k / seeds) as f64, (rows / seeds) as f64);
    let a = fan_in.powf(-0.5);
    let h = scale_bwd(h, (n as f64).powf(-0.5) / a);
    let w = scale_bwd(w, rows.powf(-0.5) / a);
    // The bias inside the scaled product, as unit_scaling's `linear` has it (`F.linear`,
    // then the output scale): its gradient `rows^(-1/2)` in all.
    let b = ids.bias.map(|b| scale_bwd(p.d1(b), rows.powf(-0.5) / a));
    let z = if seeds == 1 {
        let z = crate::kernels::matmul(h, w);
        match b {
            Some(b) => z + b.unsqueeze::<2>(),
            None => z,
        }
    } else {
        let z = seeded_matmul(seeds, h, w);
        let z = match b {
            Some(b) => z + b.reshape([seeds, 1, n]),
            None => z,
        };
        z.reshape([rows as usize * seeds, n])
    };
    z.mul_scalar(a)
}

/// Rows `[seeds * m, k]` times stacked matrices `[seeds * k, n]`, seed by seed, as
/// `[seeds, m, n]` (one batched product).
pub(crate) fn seeded_matmul(seeds: usize, h: Tensor<2>, w: Tensor<2>) -> Tensor<3> {
    let [rows, k] = h.dims();
    let [_, n] = w.dims();
    h.reshape([seeds, rows / seeds, k])
        .matmul(w.reshape([seeds, k, n]))
}

/// The same-padded convolution with `groups` groups and an odd kernel.
pub(crate) fn conv(
    p: &DeviceParams,
    ids: ConvIds,
    kernel: usize,
    groups: usize,
    h: Tensor<4>,
) -> Tensor<4> {
    let pad = kernel / 2;
    conv2d(
        h,
        p.d4(ids.weight),
        ids.bias.map(|b| p.d1(b)),
        ConvOptions::new([1, 1], [pad, pad], [1, 1], groups),
    )
}

/// Unit scaling's same-padded convolution: `(c_in/groups k^2)^(-1/2)` forward, the
/// input's gradient by `(c_out k^2 / groups)^(-1/2)` and the kernel's and bias's by
/// `(batch pixels)^(-1/2)` (Blake et al. 2023; unit_scaling's `conv1d`, in two dimensions).
pub(crate) fn unit_conv(
    p: &DeviceParams,
    ids: ConvIds,
    kernel: usize,
    groups: usize,
    h: Tensor<4>,
) -> Tensor<4> {
    let pad = kernel / 2;
    let w = p.d4(ids.weight);
    let [c_out, c_in, _, _] = w.dims();
    let [b, _, hh, ww] = h.dims();
    let k2 = (kernel * kernel) as f64;
    let a = (c_in as f64 * k2).powf(-0.5);
    let rows = (b * hh * ww) as f64;
    let h = scale_bwd(h, (c_out as f64 * k2 / groups as f64).powf(-0.5) / a);
    let w = scale_bwd(w, rows.powf(-0.5) / a);
    // The bias inside the scaled convolution, as for `unit_linear`.
    let b = ids.bias.map(|b| scale_bwd(p.d1(b), rows.powf(-0.5) / a));
    conv2d(
        h,
        w,
        b,
        ConvOptions::new([1, 1], [pad, pad], [1, 1], groups),
    )
    .mul_scalar(a)
}

/// `norm` applied to `z` of shape `[batch, units]` or `[batch, channels, h, w]`:
/// BatchNorm standardizes each unit (channel) over the batch (and pixels) with the batch's
/// own statistics; LayerNorm each sample over all its features; RMSNorm divides each sample
/// by its features' root mean square. Gain 1, bias 0.
pub(crate) fn normalize<const D: usize>(norm: Norm, z: Tensor<D>) -> Tensor<D> {
    let dims = z.dims();
    let batch = dims[0];
    let features: usize = dims[1..].iter().product();
    match norm {
        Norm::None => z,
        Norm::Batch => {
            // [b, c, pixels] -> [c, b * pixels]: one row per unit or channel.
            let c = dims.get(1).copied().unwrap_or(1);
            let pixels = features / c.max(1);
            let rows = z
                .reshape([batch, c, pixels])
                .swap_dims(0, 1)
                .reshape([c, batch * pixels]);
            standardize(rows)
                .reshape([c, batch, pixels])
                .swap_dims(0, 1)
                .reshape(dims)
        }
        Norm::Layer => standardize(z.reshape([batch, features])).reshape(dims),
        Norm::Rms => {
            let rows = z.reshape([batch, features]);
            let ms = rows.clone().square().mean_dim(1);
            (rows / (ms + NORM_EPS).sqrt()).reshape(dims)
        }
    }
}

/// Each row minus its mean, over the square root of its population variance plus eps.
fn standardize(rows: Tensor<2>) -> Tensor<2> {
    let mean = rows.clone().mean_dim(1);
    let centred = rows - mean;
    let var = centred.clone().square().mean_dim(1);
    centred / (var + NORM_EPS).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handles::{LinearIds, ParamId};

    fn leaf2(v: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
        Tensor::<2>::from_data(TensorData::new(v, shape), device).require_grad()
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    /// Unit scaling's linear map on `x` `[3, 4]` times `W` `[4, 2]`: the output is
    /// `x W / 2`, the input's gradient `g W^T / sqrt(2)`, the weight's `x^T g / sqrt(3)`
    /// (rows); an activation's gradient is `phi'(z) g` times its backward scale alone.
    #[test]
    fn unit_scaled_operations_scale_forward_and_backward_apart() {
        let device = Device::flex().autodiff();
        let xv: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
        let wv: Vec<f32> = (0..8).map(|i| (i as f32 * 0.91).cos()).collect();
        let x = leaf2(xv.clone(), [3, 4], &device);
        let w = leaf2(wv.clone(), [4, 2], &device);
        let p = DeviceParams(vec![Some(DeviceParam::D2(w.clone()))], 1);
        let ids = LinearIds {
            weight: ParamId(0),
            bias: None,
        };
        let y = unit_linear(&p, ids, x.clone());
        let plain = values(x.clone().matmul(w.clone()));
        for (a, b) in values(y.clone()).iter().zip(&plain) {
            assert!((a - b / 2.0).abs() < 1e-6, "{a} vs {b} / 2");
        }
        // L = sum(y * g) with g = 1: dL/dx = 1 W^T / sqrt(2), dL/dW = x^T 1 / sqrt(3).
        let grads = y.sum().backward();
        let gx = values(x.grad(&grads).unwrap());
        let gw = values(w.grad(&grads).unwrap());
        for r in 0..3 {
            for i in 0..4 {
                let want = (wv[2 * i] + wv[2 * i + 1]) / 2f32.sqrt();
                assert!((gx[4 * r + i] - want).abs() < 1e-5, "dx {r} {i}");
            }
        }
        for i in 0..4 {
            let want = (0..3).map(|r| xv[4 * r + i]).sum::<f32>() / 3f32.sqrt();
            for j in 0..2 {
                assert!((gw[2 * i + j] - want).abs() < 1e-5, "dW {i} {j}");
            }
        }
        let s = UnitScales {
            forward: 2.0,
            backward: 3.0,
        };
        let z = leaf2(xv.clone(), [3, 4], &device);
        let h = SiteKind::UnitActivation(Activation::Tanh, s).apply(z.clone());
        let grads = h.clone().sum().backward();
        let gz = values(z.grad(&grads).unwrap());
        for ((&zv, hv), gv) in xv.iter().zip(values(h)).zip(gz) {
            let (zv, t) = (f64::from(zv), f64::from(zv).tanh());
            assert!((f64::from(hv) - 2.0 * t).abs() < 1e-6, "h({zv})");
            assert!(
                (f64::from(gv) - 3.0 * (1.0 - t * t)).abs() < 1e-5,
                "h'({zv})"
            );
        }
    }
}
