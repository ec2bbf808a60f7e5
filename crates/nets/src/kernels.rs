//! sigprop's own operations in the probed pass on flex, with their own backward passes (a
//! Burn backend extension with hand-written autodiff implementations).
//!
//! - The linear map's product `h W`. Burn's own backward of it takes `dL/dh = dL/dz W^T` with
//!   `W^T` a transposed view of `W`, and the gemm crate packs a transposed right-hand side at
//!   half its rate: on 2 cores a `[256, 512] x [512, 512]^T` product takes 1.35 ms against
//!   0.65 ms for the same product with `W^T` laid out row by row. Here the backward first
//!   writes `W^T` out (0.26 ms for 512 x 512 not in the cache) and multiplies by that. The
//!   weight's gradient `h^T dL/dz` runs at full rate from the view, as Burn's does. The gemm
//!   crate's main kernel sums each entry over `k` in the same order whatever the operands'
//!   layout, so every gradient is bit for bit Burn's. Its small-product kernels do not (an
//!   output of at most 256 entries, a single row or column, or `k <= 2`: a lane-wise sum or a
//!   matrix-vector kernel chosen by the layout), so those products keep Burn's own call
//!   ([`burns_kernel`]); they are cheap, and a seed-batched pass, which multiplies each seed
//!   by Burn's product, keeps giving each seed's solo numbers.
//! - The probe's tap: a site's `dL/dz` is read as the gradient of a probe `p` that the pass
//!   adds to `z`. Burn's way is a tensor of zeros and an addition. The tap returns `z` itself
//!   and hands the gradient that reaches it on to `p` as well: no addition, and `p` is never
//!   read (flex still zero-fills it on allocation). The one difference in value: a `z` of
//!   `-0.0` passes on as `-0.0`, where `-0.0 + 0` was `+0.0`; nothing sigprop measures tells
//!   them apart.
//!
//! Only flex tensors in f32 take these routes ([`matmul`], [`tap`]); every other device and
//! float type keeps Burn's own operations.

use burn::backend::autodiff::{
    Autodiff, NodeId,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind, binary},
};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DispatchDevice, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Device, Shape, Tensor};

/// The operations of this module (see there).
#[backend_extension(Flex, Autodiff)]
pub trait PassOps: Backend {
    /// `h w` for `h` `[m, k]` and `w` `[k, n]`.
    fn linear_product(h: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `t^T` of a 2-D `t`, written out row by row.
    fn transposed(t: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x`, with `dL/dx` also the gradient of `p` (same shape as `x`, never read).
    fn tap(x: FloatTensor<Self>, p: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl PassOps for Flex {
    fn tap(x: FloatTensor<Self>, _p: FloatTensor<Self>) -> FloatTensor<Self> {
        x
    }

    fn linear_product(h: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        Flex::float_matmul(h, w)
    }

    fn transposed(t: FloatTensor<Self>) -> FloatTensor<Self> {
        if t.dtype() != DType::F32 || t.shape().num_dims() != 2 {
            return Flex::float_transpose(t);
        }
        let t = if t.is_contiguous() && t.layout().start_offset() == 0 {
            t
        } else {
            t.to_contiguous()
        };
        let shape = t.shape();
        let (rows, cols) = (shape[0], shape[1]);
        let mut out = FlexTensor::empty(Shape::from(vec![cols, rows]), DType::F32);
        if rows > 0 && cols > 0 {
            transpose_into(
                &t.storage::<f32>()[..rows * cols],
                rows,
                cols,
                out.storage_mut(),
            );
        }
        out
    }
}

/// `dst` (`[cols, rows]`) = `src^T` (`src` `[rows, cols]`, both row by row), on the rayon
/// pool, each task 16 rows of `dst`. Each row of a 16 x 16 tile of `dst` is written whole
/// before the next: writing `dst` down its columns instead (stores 2 KiB apart at width 512,
/// which fall in two sets of the L1 cache) was 3x slower on a `W` not in the cache.
fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    use rayon::prelude::*;
    const BLOCK: usize = 16;
    dst.par_chunks_mut(BLOCK * rows)
        .enumerate()
        .for_each(|(b, out)| {
            let j0 = b * BLOCK;
            let width = out.len() / rows;
            for i0 in (0..rows).step_by(BLOCK) {
                let i1 = (i0 + BLOCK).min(rows);
                for j in 0..width {
                    let line = &mut out[j * rows + i0..j * rows + i1];
                    for (d, i) in line.iter_mut().zip(i0..i1) {
                        *d = src[i * cols + j0 + j];
                    }
                }
            }
        });
}

impl<B: Backend + PassOps, C: CheckpointStrategy> PassOps for Autodiff<B, C> {
    fn linear_product(h: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LinearProduct;

        impl<B: Backend + PassOps> Backward<B, 2> for LinearProduct {
            type State = (Option<NodeId>, Option<NodeId>);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let (h, w) = ops.state;
                let h = h.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
                let w = w.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
                binary::<B, _, _>(
                    ops.parents,
                    ops.node,
                    grads,
                    // dL/dh = dL/dz W^T, with W^T written out where gemm's main kernel
                    // takes the product.
                    |grad| {
                        let w = w.expect("W is kept for dL/dh");
                        let (rows, fan_in, fan_out) = (grad.shape()[0], w.shape()[0], w.shape()[1]);
                        if burns_kernel(rows, fan_in, fan_out) {
                            B::float_matmul(grad, B::float_transpose(w))
                        } else {
                            B::float_matmul(grad, B::transposed(w))
                        }
                    },
                    // dL/dW = h^T dL/dz, from the transposed view.
                    |grad| {
                        B::float_matmul(B::float_transpose(h.expect("h is kept for dL/dW")), grad)
                    },
                );
            }
        }

        let (h_tracked, w_tracked) = (h.is_tracked(), w.is_tracked());
        match LinearProduct
            .prepare::<C>([h.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                // Each gradient needs the other operand.
                let h_state = w_tracked.then(|| prep.checkpoint(&h));
                let w_state = h_tracked.then(|| prep.checkpoint(&w));
                prep.finish(
                    (h_state, w_state),
                    B::linear_product(h.into_primitive(), w.into_primitive()),
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::linear_product(h.into_primitive(), w.into_primitive()))
            }
        }
    }

    fn transposed(t: FloatTensor<Self>) -> FloatTensor<Self> {
        // Only the backward pass above asks for it, on the inner backend; a view is the same
        // values.
        Self::float_transpose(t)
    }

    fn tap(x: FloatTensor<Self>, p: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Tap;

        impl<B: Backend> Backward<B, 2> for Tap {
            type State = ();

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                // The gradient of `x + p` for both, as Burn's addition hands it on.
                binary::<B, _, _>(ops.parents, ops.node, grads, |g| g, |g| g);
            }
        }

        let output = x.primitive().clone();
        Tap.prepare::<C>([x.node(), p.node()])
            .compute_bound()
            .stateless(output)
    }
}

/// Whether the product `[rows, k] x [k, cols]` goes to one of gemm 0.19's small-product
/// kernels (`gemm-common`'s `gemm_basic_generic`: an output of at most 16 x 16 entries takes
/// the lane-wise "horizontal" kernel, `k <= 2` the outer-product one, a single row or column
/// a matrix-vector one), whose sums depend on the operands' layout: `dL/dh` then keeps Burn's
/// own call. Held by the test below on each of those shapes.
fn burns_kernel(rows: usize, cols: usize, k: usize) -> bool {
    rows * cols <= 16 * 16 || rows <= 1 || cols <= 1 || k <= 2
}

/// Whether `device` (with or without autodiff) is flex.
fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// A probe on `x`: `x` itself, and a tensor `[rows, cols]` (rows the first dimension, cols
/// the rest) whose gradient after the backward pass is `dL/dx`. On flex in f32 through
/// [`PassOps::tap`]; elsewhere the probe is zeros added to `x`.
pub(crate) fn tap<const D: usize>(x: Tensor<D>, device: &Device) -> (Tensor<D>, Tensor<2>) {
    let dims = x.dims();
    let (rows, cols) = (dims[0], dims[1..].iter().product::<usize>());
    let dtype = x.dtype();
    if on_flex(device) && dtype == DType::F32 {
        let p = Tensor::<2>::empty([rows, cols], (device, dtype)).require_grad();
        let y = <burn::backend::Dispatch as PassOps>::tap(
            x.into_dispatch(),
            p.clone().reshape(dims).into_dispatch(),
        );
        (Tensor::from_dispatch(y), p)
    } else {
        let p = Tensor::<2>::zeros([rows, cols], (device, dtype)).require_grad();
        (x + p.clone().reshape(dims), p)
    }
}

/// `h w` (2-D): through [`PassOps`] for f32 on flex (with or without autodiff), Burn's own
/// product everywhere else.
pub(crate) fn matmul(h: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    if on_flex(&h.device()) && h.dtype() == DType::F32 && w.dtype() == DType::F32 {
        let z = <burn::backend::Dispatch as PassOps>::linear_product(
            h.into_dispatch(),
            w.into_dispatch(),
        );
        Tensor::from_dispatch(z)
    } else {
        h.matmul(w)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor, TensorData};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The forward value and both gradients are bit for bit those of Burn's own product, on
    /// gemm's main kernel (both routes) and on each of its small-product kernels (where
    /// `dL/dh` keeps Burn's call), with either operand alone taking gradients.
    #[test]
    fn the_product_and_its_gradients_are_burns_to_the_bit() {
        let ad = Device::flex().autodiff();
        assert!(super::on_flex(&ad), "the route under test is flex's");
        // (rows, fan_in, fan_out): the main kernel; outputs of 240 and 256 entries; one row;
        // one column (fan_in 1); k = 2; one past the lane-wise kernel's bound.
        let shapes = [
            (37, 70, 23),
            (6, 40, 40),
            (16, 16, 7),
            (1, 300, 64),
            (300, 1, 9),
            (9, 33, 2),
            (17, 16, 5),
        ];
        for (m, k, n) in shapes {
            let h = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &ad);
            let w = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &ad);
            let g = Tensor::<2>::random([m, n], Distribution::Normal(0.0, 1.0), &ad);
            for (h_grad, w_grad) in [(true, true), (true, false), (false, true)] {
                let run = |ours: bool| {
                    let mut h = Tensor::<2>::from_data(h.to_data(), &ad);
                    let mut w = Tensor::<2>::from_data(w.to_data(), &ad);
                    if h_grad {
                        h = h.require_grad();
                    }
                    if w_grad {
                        w = w.require_grad();
                    }
                    let z = if ours {
                        super::matmul(h.clone(), w.clone())
                    } else {
                        h.clone().matmul(w.clone())
                    };
                    let grads = (z.clone() * g.clone()).sum().backward();
                    (
                        bits(&values(z)),
                        h.grad(&grads).map(|t| bits(&values(t))),
                        w.grad(&grads).map(|t| bits(&values(t))),
                    )
                };
                let (ours, burns) = (run(true), run(false));
                let case = format!("[{m}, {k}] x [{k}, {n}], grads of h {h_grad}, of W {w_grad}");
                assert_eq!(ours.0, burns.0, "z of {case}");
                assert_eq!(ours.1, burns.1, "dL/dh of {case}");
                assert_eq!(ours.2, burns.2, "dL/dW of {case}");
                assert_eq!(ours.1.is_some(), h_grad, "{case}");
                assert_eq!(ours.2.is_some(), w_grad, "{case}");
            }
            // And the product is the product: one entry against its sum in f64.
            let z = values(super::matmul(h.clone(), w.clone()));
            let (hv, wv) = (values(h), values(w));
            let (i, j) = (m / 2, n / 2);
            let exact: f64 = (0..k)
                .map(|l| hv[i * k + l] as f64 * wv[l * n + j] as f64)
                .sum();
            assert!((z[i * n + j] as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()));
        }
    }

    /// A tap's probe gets the gradient a zeros probe added to `x` gets, for a 3-D `x` read by
    /// two later operations; the value passed on is `x`, and `x`'s own gradient is unchanged.
    /// On a 4-D `x` that takes no gradient itself, the probe still reads `dL/dx`.
    #[test]
    fn a_tap_reads_the_gradient_of_an_added_zeros_probe() {
        let ad = Device::flex().autodiff();
        assert!(super::on_flex(&ad), "the route under test is flex's");
        let dims = [3, 5, 7];
        let x = Tensor::<3>::random(dims, Distribution::Normal(0.0, 1.0), &ad);
        let g = Tensor::<3>::random(dims, Distribution::Normal(0.0, 1.0), &ad);
        let run = |ours: bool| {
            let x = Tensor::<3>::from_data(x.to_data(), &ad).require_grad();
            let (y, p) = if ours {
                super::tap(x.clone(), &ad)
            } else {
                let p = Tensor::<2>::zeros([3, 35], &ad).require_grad();
                (x.clone() + p.clone().reshape(dims), p)
            };
            let loss = (y.clone() * g.clone()).sum() + y.clone().tanh().sum();
            let grads = loss.backward();
            (
                bits(&values(y)),
                bits(&values(p.grad(&grads).unwrap())),
                bits(&values(x.grad(&grads).unwrap().reshape([3, 35]))),
            )
        };
        let (ours, burns) = (run(true), run(false));
        assert_eq!(ours, burns);
        // dL/dx = g + 1 - tanh(x)^2, entry 0.
        let x0 = values(x.clone())[0];
        let g0 = values(g)[0];
        let p0 = f32::from_bits(ours.1[0]);
        assert!((p0 - (g0 + 1.0 - x0.tanh().powi(2))).abs() < 1e-5);

        let x4 = Tensor::<4>::random([2, 3, 4, 5], Distribution::Normal(0.0, 1.0), &ad);
        let (y4, p4) = super::tap(x4.clone(), &ad);
        let grads = (y4 * x4.clone()).sum().backward();
        assert_eq!(p4.dims(), [2, 60]);
        assert_eq!(
            bits(&values(p4.grad(&grads).unwrap())),
            bits(&values(x4.reshape([2, 60])))
        );
    }

    /// The blocked transpose on sizes that are not whole blocks, on a view, and on an empty
    /// matrix.
    #[test]
    fn transposed_writes_the_transpose() {
        let dev = Device::flex();
        let transposed = |t: Tensor<2>| {
            Tensor::<2>::from_dispatch(<burn::backend::Dispatch as super::PassOps>::transposed(
                t.into_dispatch(),
            ))
        };
        let (r, c) = (19, 35);
        let data: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
        let t = Tensor::<2>::from_data(TensorData::new(data, [r, c]), &dev);
        let tt = transposed(t.clone());
        assert_eq!(tt.dims(), [c, r]);
        assert_eq!(values(tt), values(t.clone().transpose()));
        // A transposed view in: the transpose of the view, the original back.
        assert_eq!(values(transposed(t.clone().transpose())), values(t.clone()));
        // A slice (an offset view) in.
        let s = t.clone().slice([2..19, 3..20]);
        assert_eq!(values(transposed(s.clone())), values(s.transpose()));
        let empty = Tensor::<2>::zeros([0, 4], &dev);
        assert_eq!(transposed(empty).dims(), [4, 0]);
    }
}
