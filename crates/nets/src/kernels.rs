//! sigprop's own operations in the probed pass on flex, with their own backward passes (a
//! Burn backend extension with hand-written autodiff implementations).
//!
//! - The linear map's product `h W`. Burn's own backward of it takes `dL/dh = dL/dz W^T` with
//!   `W^T` a transposed view of `W`, and the gemm crate packs a transposed right-hand side at
//!   half its rate: on 2 cores a `[256, 512] x [512, 512]^T` product takes 1.35 ms against
//!   0.65 ms for the same product with `W^T` laid out row by row. Here the backward first
//!   writes `W^T` out (0.26 ms for 512 x 512 not in the cache) and multiplies by that. The
//!   weight's gradient `h^T dL/dz` runs at full rate from the view, as Burn's does. The gemm
//!   crate sums each entry over `k` in the same order whatever the operands' layout, so every
//!   gradient is bit for bit Burn's.
//! - The probe's tap: a site's `dL/dz` is read as the gradient of a probe `p` that the pass
//!   adds to `z`. Burn's way is a tensor of zeros and an addition, both a full pass over
//!   memory per site and probe. The tap returns `z` itself and hands the gradient that
//!   reaches it on to `p` as well, so `p` is never read and need not be filled.
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
        transpose_into(
            &t.storage::<f32>()[..rows * cols],
            rows,
            cols,
            out.storage_mut(),
        );
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
                    // dL/dh = dL/dz W^T, with W^T written out.
                    |grad| B::float_matmul(grad, B::transposed(w.expect("W is kept for dL/dh"))),
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

    /// The forward value and both gradients are bit for bit those of Burn's own product.
    #[test]
    fn the_product_and_its_gradients_are_burns_to_the_bit() {
        let ad = Device::flex().autodiff();
        assert!(super::on_flex(&ad), "the route under test is flex's");
        let (m, k, n) = (37, 70, 23);
        let h = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &ad);
        let w = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &ad);
        let g = Tensor::<2>::random([m, n], Distribution::Normal(0.0, 1.0), &ad);
        let run = |ours: bool| {
            let h = Tensor::<2>::from_data(h.to_data(), &ad).require_grad();
            let w = Tensor::<2>::from_data(w.to_data(), &ad).require_grad();
            let z = if ours {
                super::matmul(h.clone(), w.clone())
            } else {
                h.clone().matmul(w.clone())
            };
            let grads = (z.clone() * g.clone()).sum().backward();
            (
                values(z),
                values(h.grad(&grads).unwrap()),
                values(w.grad(&grads).unwrap()),
            )
        };
        let (ours, burns) = (run(true), run(false));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ours.0), bits(&burns.0), "z");
        assert_eq!(bits(&ours.1), bits(&burns.1), "dL/dh");
        assert_eq!(bits(&ours.2), bits(&burns.2), "dL/dW");
        // And the product is the product: one entry against its sum in f64.
        let (hv, wv) = (values(h.clone().inner()), values(w.clone().inner()));
        let exact: f64 = (0..k)
            .map(|i| hv[3 * k + i] as f64 * wv[i * n + 5] as f64)
            .sum();
        assert!((ours.0[3 * n + 5] as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()));
    }

    /// A tap's probe gets the gradient a zeros probe added to `x` gets, for a 3-D `x` read by
    /// two later operations; the value passed on is `x`, and `x`'s own gradient is unchanged.
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
            let y = values(y);
            (
                y,
                values(p.grad(&grads).unwrap()),
                values(x.grad(&grads).unwrap().reshape([3, 35])),
            )
        };
        let (ours, burns) = (run(true), run(false));
        assert_eq!(ours, burns);
        // dL/dx = g + 1 - tanh(x)^2, entry 0.
        let (x0, g0): (f32, f32) = (
            values(x.clone().reshape([3, 35]))[0],
            values(g.reshape([3, 35]))[0],
        );
        assert!((ours.1[0] - (g0 + 1.0 - x0.tanh().powi(2))).abs() < 1e-5);
    }

    /// The blocked transpose on sizes that are not whole blocks, and on a view.
    #[test]
    fn transposed_writes_the_transpose() {
        let dev = Device::flex();
        let (r, c) = (19, 35);
        let data: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
        let t = Tensor::<2>::from_data(TensorData::new(data, [r, c]), &dev);
        let tt = Tensor::<2>::from_dispatch(
            <burn::backend::Dispatch as super::PassOps>::transposed(t.clone().into_dispatch()),
        );
        assert_eq!(tt.dims(), [c, r]);
        assert_eq!(values(tt), values(t.clone().transpose()));
        // A transposed view in: the transpose of the view, the original back.
        let back =
            Tensor::<2>::from_dispatch(<burn::backend::Dispatch as super::PassOps>::transposed(
                t.clone().transpose().into_dispatch(),
            ));
        assert_eq!(values(back), values(t));
    }
}
