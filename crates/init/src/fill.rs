//! Filling a tensor with a [`Scheme`], one at a time or many in parallel.
//!
//! Every scheme first resolves to a [`Law`] (`law.rs`), then draws from the
//! tensor's [`Key`]:
//!
//! - i.i.d. laws (constant, uniform, normal, truncated normal) draw straight into storage
//!   order: the law of every entry is the same whatever the layout, and a transposition
//!   pass would cost as much as the sampling itself;
//! - structured laws (orthogonal, identity, sparse, dirac, delta-orthogonal) build the
//!   *logical* `[out, in*rf]` matrix and store it in the layout's order. Only
//!   [`Layout::InOut`] stores its transpose, so for the same key an `InOut` weight is
//!   exactly the transpose of the `OutIn` one.

use rayon::prelude::*;

use crate::context::FillContext;
use crate::error::InitError;
use crate::fans::{Layout, fans, logical_matrix};
use crate::law::Law;
use crate::rng::Key;
use crate::sample::{fill_normal, fill_truncated_normal, fill_uniform};
use crate::scheme::Scheme;
use crate::structured::{
    delta_orthogonal, dirac, identity, orthogonal, padded_identity, sparse_zeros, zero_hadamard,
};

impl Scheme {
    /// Fill a tensor of `shape` stored in `layout`, row-major, from `key`'s streams.
    ///
    /// ```
    /// use sigprop_init::{Activation, FillContext, Key, Layout, Scheme};
    /// let s: Scheme = "he-uniform".parse().unwrap();
    /// let ctx = FillContext::new(Activation::Relu);
    /// let w = s.fill(&[6, 4], Layout::InOut, &Key::new(0, "w"), &ctx).unwrap();
    /// // fan_in 6: bound sqrt(2) sqrt(3 / 6) = 1.
    /// assert!(w.len() == 24 && w.iter().all(|x| x.abs() <= 1.0));
    /// ```
    pub fn fill(
        &self,
        shape: &[usize],
        layout: Layout,
        key: &Key,
        ctx: &FillContext,
    ) -> Result<Vec<f32>, InitError> {
        let mut out = vec![0f32; shape.iter().product()];
        self.fill_into(&mut out, shape, layout, key, ctx)?;
        Ok(out)
    }

    /// Whether [`Scheme::fill`] can fill a tensor of `shape` in `layout`, without drawing
    /// anything: the fans, the law, and the layout a structured law needs (orthogonal: not
    /// a bias; identity, sparse: a 2-D linear weight; dirac, delta-orthogonal: a
    /// convolution weight). A network checks every tensor this way before its first run.
    pub fn check(
        &self,
        shape: &[usize],
        layout: Layout,
        ctx: &FillContext,
    ) -> Result<Law, InitError> {
        let f = fans(shape, layout)?;
        logical_matrix(shape, layout)?;
        let law = self.law(f, ctx)?;
        let matrix_only = matches!(layout, Layout::InOut | Layout::OutIn);
        let conv = matches!(layout, Layout::Conv { .. });
        if matches!(self, Scheme::AutoInit { .. }) && matches!(layout, Layout::Bias { .. }) {
            return Err(InitError::BadShape {
                what: format!("initializer \"{self}\" with layout {layout:?}"),
                shape: shape.to_vec(),
                why: "autoinit draws weights; the bias it defines is normal:std=sigma_b".into(),
            });
        }
        let why = match law {
            Law::Orthogonal { .. } if matches!(layout, Layout::Bias { .. }) => {
                Some("an orthogonal matrix needs at least 2 dimensions")
            }
            Law::Identity { .. } | Law::PaddedIdentity { .. } | Law::ZerO if !matrix_only => {
                Some("identity is for 2-D linear weights; use dirac for convolutions")
            }
            Law::Dirac { .. } if !conv => Some("dirac needs a convolution weight (Layout::Conv)"),
            Law::DeltaOrthogonal { .. } if !conv => {
                Some("delta-orthogonal needs a convolution weight (Layout::Conv)")
            }
            Law::CenteredNormal { .. } if matches!(layout, Layout::Bias { .. }) => {
                Some("centred rows need a weight matrix, not a bias")
            }
            Law::CenteredNormal { .. } if logical_matrix(shape, layout)?.1 < 2 => {
                Some("centred rows need at least 2 inputs per output")
            }
            Law::Sparse { .. } if !matrix_only => {
                Some("sparse is for 2-D linear weights, as torch.nn.init.sparse_")
            }
            _ => None,
        };
        match why {
            Some(why) => Err(InitError::BadShape {
                what: format!("initializer \"{self}\" with layout {layout:?}"),
                shape: shape.to_vec(),
                why: why.to_string(),
            }),
            None => Ok(law),
        }
    }

    /// [`Scheme::fill`] into a buffer the caller owns (`out.len()` must be the number of
    /// entries of `shape`); the same bits as `fill`.
    pub fn fill_into(
        &self,
        out: &mut [f32],
        shape: &[usize],
        layout: Layout,
        key: &Key,
        ctx: &FillContext,
    ) -> Result<(), InitError> {
        let law = self.check(shape, layout, ctx)?;
        let (rows, cols) = logical_matrix(shape, layout)?;
        if out.len() != rows * cols {
            return Err(InitError::BadShape {
                what: format!("initializer \"{self}\" with layout {layout:?}"),
                shape: shape.to_vec(),
                why: format!("the output buffer holds {} entries", out.len()),
            });
        }
        let logical = match law {
            Law::Constant(v) => {
                out.fill(v as f32);
                return Ok(());
            }
            Law::Uniform { low, high } => {
                fill_uniform(key, out, low, high);
                return Ok(());
            }
            Law::Normal { mean, std } => {
                fill_normal(key, out, mean, std);
                return Ok(());
            }
            Law::Truncated { std, bound } => {
                fill_truncated_normal(key, out, std, bound);
                return Ok(());
            }
            // `check` has matched every structured law with the layout it needs.
            Law::Orthogonal { gain } => orthogonal(rows, cols, gain, key),
            Law::Identity { gain } => identity(rows, cols, gain),
            Law::PaddedIdentity { gain } => padded_identity(rows, cols, gain),
            Law::ZerO => zero_hadamard(rows, cols),
            Law::Dirac { groups } => {
                let lg = match layout {
                    Layout::Conv { groups } => groups,
                    _ => 1,
                };
                dirac(shape, if groups == 0 { lg } else { groups })?
            }
            Law::DeltaOrthogonal { gain } => delta_orthogonal(shape, gain, key)?,
            Law::CenteredNormal { std } => {
                let mut w = vec![0f32; rows * cols];
                fill_normal(key, &mut w, 0.0, std);
                center_rows(&mut w, cols);
                w
            }
            Law::Sparse { sparsity, std } => {
                let mut w = vec![0f32; rows * cols];
                fill_normal(key, &mut w, 0.0, std);
                sparse_zeros(&mut w, rows, cols, sparsity, key);
                w
            }
        };
        if layout == Layout::InOut {
            transpose_into(&logical, rows, cols, out);
        } else {
            out.copy_from_slice(&logical);
        }
        Ok(())
    }
}

/// Subtract each row's mean (in f64) and rescale the row by `sqrt(cols / (cols - 1))`, so
/// an i.i.d. row of variance `s^2` becomes a zero-sum row whose entries keep variance
/// `s^2`.
fn center_rows(w: &mut [f32], cols: usize) {
    let scale = (cols as f64 / (cols as f64 - 1.0)).sqrt();
    for row in w.chunks_mut(cols) {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / cols as f64;
        for v in row.iter_mut() {
            *v = ((f64::from(*v) - mean) * scale) as f32;
        }
    }
}

/// Row-major `rows x cols` to row-major `cols x rows`, in cache-sized tiles.
fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const T: usize = 32;
    for i0 in (0..rows).step_by(T) {
        for j0 in (0..cols).step_by(T) {
            for i in i0..(i0 + T).min(rows) {
                for j in j0..(j0 + T).min(cols) {
                    dst[j * rows + i] = src[i * cols + j];
                }
            }
        }
    }
}

/// One tensor to fill.
#[derive(Debug, Clone)]
pub struct FillJob {
    /// The scheme.
    pub scheme: Scheme,
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// How the shape maps to inputs and outputs.
    pub layout: Layout,
    /// The tensor's key.
    pub key: Key,
    /// The network context.
    pub ctx: FillContext,
}

/// Anything [`fill_many`] can take as a job: a [`FillJob`], or the tuple
/// `(Scheme, shape, Layout, Key, FillContext)`.
pub trait AsFillJob {
    /// The job's parts.
    fn parts(&self) -> (&Scheme, &[usize], Layout, &Key, &FillContext);
}

impl AsFillJob for FillJob {
    fn parts(&self) -> (&Scheme, &[usize], Layout, &Key, &FillContext) {
        (&self.scheme, &self.shape, self.layout, &self.key, &self.ctx)
    }
}

impl AsFillJob for (Scheme, Vec<usize>, Layout, Key, FillContext) {
    fn parts(&self) -> (&Scheme, &[usize], Layout, &Key, &FillContext) {
        (&self.0, &self.1, self.2, &self.3, &self.4)
    }
}

/// Fill many tensors in parallel (rayon, across tensors and across chunks within one).
/// The result is identical, bit for bit, to filling them one by one in any order, on any
/// number of threads: each tensor's bits depend only on its own key. On failure, the
/// index of the first failing job (in job order) and its error.
pub fn fill_many<J: AsFillJob + Sync>(jobs: &[J]) -> Result<Vec<Vec<f32>>, (usize, InitError)> {
    jobs.par_iter()
        .enumerate()
        .map(|(i, j)| {
            let (scheme, shape, layout, key, ctx) = j.parts();
            scheme.fill(shape, layout, key, ctx).map_err(|e| (i, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::context::{FixupContext, FixupRole};

    fn ctx() -> FillContext {
        FillContext::new(Activation::Relu)
    }

    #[test]
    fn centred_rows_sum_to_zero_keep_the_variance_and_transpose_for_inout() {
        let s: Scheme = "autoinit".parse().unwrap();
        let mut c = ctx();
        assert!(
            s.fill(&[4, 3], Layout::OutIn, &Key::new(1, "w"), &c)
                .is_err()
        );
        c.autoinit = Some(crate::context::AutoInitLayer {
            sigma_w2: 4.0,
            sigma_b2: 0.0,
            center: true,
        });
        let (o, i) = (300, 200);
        let a = s
            .fill(&[o, i], Layout::OutIn, &Key::new(1, "w"), &c)
            .unwrap();
        let b = s
            .fill(&[i, o], Layout::InOut, &Key::new(1, "w"), &c)
            .unwrap();
        for r in 0..o {
            let sum: f64 = a[r * i..(r + 1) * i].iter().map(|&v| f64::from(v)).sum();
            assert!(sum.abs() < 1e-4, "row {r}: {sum}");
            for k in 0..i {
                assert_eq!(a[r * i + k].to_bits(), b[k * o + r].to_bits());
            }
        }
        let n = a.len() as f64;
        let second = a.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n;
        let want = 4.0 / i as f64;
        assert!(
            (second / want - 1.0).abs() < 5.0 * (2.0 / n).sqrt(),
            "{second}"
        );
        let bias = Layout::Bias {
            fan_in: i,
            fan_out: o,
        };
        assert!(s.check(&[o], bias, &c).is_err());
        assert!(s.check(&[o, 1], Layout::OutIn, &c).is_err());
        c.autoinit = c
            .autoinit
            .map(|a| crate::context::AutoInitLayer { center: false, ..a });
        assert!(s.check(&[o], bias, &c).is_err());
    }

    #[test]
    fn transpose_round_trips() {
        let v: Vec<f32> = (0..35).map(|x| x as f32).collect();
        let mut t = vec![0f32; 35];
        transpose_into(&v, 5, 7, &mut t);
        assert_eq!(t[1], v[7]); // (row 1, col 0) of 5x7 is (row 0, col 1) of 7x5
        let mut back = vec![0f32; 35];
        transpose_into(&t, 7, 5, &mut back);
        assert_eq!(back, v);
    }

    #[test]
    fn transformer_schemes_read_the_residual_stream_around_the_weight() {
        use crate::context::ResidualContext;
        use crate::fans::Fans;
        let fans = Fans {
            fan_in: 256,
            fan_out: 1024,
        };
        let var = |s: &str, c: &FillContext| {
            s.parse::<Scheme>()
                .unwrap()
                .entry_variance(fans, c)
                .unwrap()
        };
        let place = |writes_stream, scores| {
            ctx().with_residual(ResidualContext {
                blocks: 12,
                branches: 24,
                width: 512,
                writes_stream,
                scores,
            })
        };
        let stream = |writes_stream| place(writes_stream, false);
        // GPT-2: 0.02^2, and 0.02^2 / (2 L) for a weight that writes into the stream.
        assert_eq!(var("gpt2", &ctx()), 0.02 * 0.02);
        assert_eq!(var("gpt2", &stream(false)), 0.02 * 0.02);
        assert!((var("gpt2", &stream(true)) - 0.02 * 0.02 / 24.0).abs() < 1e-18);
        assert_eq!(var("gpt2:std=0.1", &ctx()), 0.1 * 0.1);
        // SmallInit: 2 / (5 d) with d the stream's width, else the fan-in.
        assert!((var("small-init", &stream(true)) - 2.0 / (5.0 * 512.0)).abs() < 1e-18);
        assert!((var("small-init", &ctx()) - 2.0 / (5.0 * 256.0)).abs() < 1e-18);
        // T-Fixup: Xavier (2 / (fan_in + fan_out)), times (0.67 N^(-1/4))^2 for every map
        // but the query and key; N = 12 blocks.
        let xavier = 2.0 / (256.0 + 1024.0);
        let close = |a: f64, b: f64| (a / b - 1.0).abs() < 1e-12;
        assert!(close(var("t-fixup", &place(false, true)), xavier));
        assert!(close(var("t-fixup", &ctx()), xavier));
        let t = 0.67f64.powi(2) / 12f64.sqrt();
        assert!(close(var("t-fixup", &stream(false)), xavier * t));
        assert!(close(var("t-fixup", &stream(true)), xavier * t));
        // DeepNet: gain beta = (8 N)^(-1/4), beta^2 = 1/sqrt(96), on all but query and key.
        assert!(close(var("deepnet", &place(false, true)), xavier));
        assert!(close(var("deepnet", &stream(true)), xavier / 96f64.sqrt()));
        assert!(close(var("deepnet", &stream(false)), xavier / 96f64.sqrt()));
        // What is drawn has that variance (65536 entries: sd of the sample variance 0.6%).
        let w = "gpt2"
            .parse::<Scheme>()
            .unwrap()
            .fill(&[256, 256], Layout::InOut, &Key::new(1, "w"), &stream(true))
            .unwrap();
        let v = w.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((v / (0.02 * 0.02 / 24.0) - 1.0).abs() < 0.03, "{v}");
    }

    #[test]
    fn context_schemes_say_what_they_need() {
        let k = Key::new(0, "w");
        let e = "critical"
            .parse::<Scheme>()
            .unwrap()
            .fill(&[4, 4], Layout::InOut, &k, &ctx());
        assert!(matches!(e, Err(InitError::NeedsContext { .. })));
        let e = "fixup"
            .parse::<Scheme>()
            .unwrap()
            .fill(&[4, 4], Layout::InOut, &k, &ctx());
        assert!(e.unwrap_err().to_string().contains("fixup"));
        let c = ctx().with_fixup(FixupContext {
            num_branches: 4,
            layers_per_branch: 2,
            role: FixupRole::Head,
        });
        let w = "fixup"
            .parse::<Scheme>()
            .unwrap()
            .fill(&[4, 4], Layout::InOut, &k, &c)
            .unwrap();
        assert!(w.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn structured_schemes_reject_layouts_they_cannot_take() {
        let k = Key::new(0, "w");
        let conv = Layout::Conv { groups: 1 };
        for (s, shape, layout) in [
            ("identity", vec![4, 4, 3], conv),
            ("dirac", vec![4, 4], Layout::OutIn),
            ("delta-orthogonal", vec![4, 4], Layout::InOut),
            ("sparse:sparsity=0.5", vec![4, 4, 3], conv),
            (
                "orthogonal",
                vec![4],
                Layout::Bias {
                    fan_in: 4,
                    fan_out: 4,
                },
            ),
        ] {
            let e = s
                .parse::<Scheme>()
                .unwrap()
                .fill(&shape, layout, &k, &ctx());
            assert!(matches!(e, Err(InitError::BadShape { .. })), "{s}: {e:?}");
        }
    }
}
