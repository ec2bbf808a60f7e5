//! The structured initializers: Haar orthogonal matrices by QR, the identity, the Dirac and
//! delta-orthogonal convolution kernels, and the zero pattern of `sparse`.
//!
//! Everything here produces the *logical* matrix or kernel in row-major order; choosing the
//! storage order for a layout is `fill.rs`'s job. The Gaussian input of the QR comes from
//! the tensor's keyed stream exactly as a `normal` fill would draw it, so a key's
//! orthogonal matrix is reproducible bit for bit.

use faer::{Mat, Par};

use crate::error::InitError;
use crate::rng::{Key, SIDE_STREAM};
use crate::sample::fill_normal;

/// `gain Q`, `Q` a Haar-distributed `rows x cols` matrix with orthonormal columns when
/// `rows >= cols` and orthonormal rows otherwise, row-major.
///
/// As `torch.nn.init.orthogonal_`: draw `A` with i.i.d. N(0, 1) entries (in row-major order
/// from the key's streams), transpose it when `rows < cols`, take the thin QR `A = QR`
/// (blocked Householder, faer, in `f32` as PyTorch's `float` tensors; the result is
/// orthonormal to about `1e-6`), multiply column `j` of `Q` by
/// `sign(R[j, j])` (+1 when `R[j, j] = 0`) so that `Q` is Haar-distributed
/// (Mezzadri 2007), transpose back, multiply by `gain`, round to `f32`.
pub fn orthogonal(rows: usize, cols: usize, gain: f64, key: &Key) -> Vec<f32> {
    let mut g = vec![0f32; rows * cols];
    fill_normal(key, &mut g, 0.0, 1.0);
    let wide = rows < cols;
    let (m, n) = if wide { (cols, rows) } else { (rows, cols) };
    // Work matrix m x n (m >= n): A or A^T.
    let a = Mat::<f32>::from_fn(m, n, |i, j| {
        if wide {
            g[j * cols + i]
        } else {
            g[i * cols + j]
        }
    });
    drop(g);
    let (q, signs) = thin_qr(a);
    let mut out = vec![0f32; rows * cols];
    for j in 0..n {
        let scale = (gain * signs[j]) as f32;
        for i in 0..m {
            let v = scale * q[(i, j)];
            if wide {
                out[j * cols + i] = v;
            } else {
                out[i * cols + j] = v;
            }
        }
    }
    out
}

/// The parallelism degree handed to faer's QR. It is a constant, not the machine's thread
/// count: faer (and the `gemm` crate under it) partitions work by this number and splits
/// only over output blocks, so the bits depend on it and not on how many threads the rayon
/// pool really has (tested on pools of 1, 2 and 3 threads).
pub const QR_PAR_DEGREE: usize = 2;

/// Thin QR of `a` (m >= n): `Q` (m x n) and the signs of `R`'s diagonal.
fn thin_qr(a: Mat<f32>) -> (Mat<f32>, Vec<f64>) {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::householder;
    use faer::linalg::qr::no_pivoting::factor;

    let (m, n) = a.shape();
    let par = Par::rayon(QR_PAR_DEGREE);
    let mut qr = a;
    let block = factor::recommended_block_size::<f32>(m, n);
    let mut coeff = Mat::<f32>::zeros(block, n);
    factor::qr_in_place(
        qr.as_mut(),
        coeff.as_mut(),
        par,
        MemStack::new(&mut MemBuffer::new(factor::qr_in_place_scratch::<f32>(
            m,
            n,
            block,
            par,
            Default::default(),
        ))),
        Default::default(),
    );
    let signs: Vec<f64> = (0..n)
        .map(|j| if qr[(j, j)] < 0.0 { -1.0 } else { 1.0 })
        .collect();
    let mut q = Mat::<f32>::identity(m, n);
    householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
        qr.as_ref(),
        coeff.as_ref(),
        faer::Conj::No,
        q.as_mut(),
        par,
        MemStack::new(&mut MemBuffer::new(
            householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f32>(
                m, block, n,
            ),
        )),
    );
    (q, signs)
}

/// `gain` on the diagonal of a `rows x cols` matrix, row-major.
pub fn identity(rows: usize, cols: usize, gain: f64) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    for d in 0..rows.min(cols) {
        out[d * cols + d] = gain as f32;
    }
    out
}

/// The padded identity (IDInit): `gain` at `(i, i mod cols)` of every row when `rows >=
/// cols` (identities stacked), at `(j mod rows, j)` of every column otherwise (identities
/// side by side), 0 elsewhere; row-major `rows x cols`.
pub fn padded_identity(rows: usize, cols: usize, gain: f64) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    if rows >= cols {
        for i in 0..rows {
            out[i * cols + i % cols] = gain as f32;
        }
    } else {
        for j in 0..cols {
            out[(j % rows) * cols + j] = gain as f32;
        }
    }
    out
}

/// The sign of entry `(i, j)` of the Sylvester-Hadamard matrix: `(-1)^popcount(i & j)`.
pub(crate) fn hadamard_sign(i: usize, j: usize) -> f64 {
    if (i & j).count_ones().is_multiple_of(2) {
        1.0
    } else {
        -1.0
    }
}

/// ZerO's scale and Hadamard order for `rows` outputs: `m = ceil(log2 rows)` and `c =
/// 2^(-(m-1)/2)`, returned as `(c, 2^m)`.
pub(crate) fn hadamard_order(rows: usize) -> (f64, usize) {
    let order = rows.next_power_of_two();
    let m = order.trailing_zeros() as i32;
    (2f64.powf(-f64::from(m - 1) / 2.0), order)
}

/// ZerO (Zhao et al. 2022) on a row-major `rows x cols` (`[out, in]`) matrix: the identity
/// (partial when `rows < cols`) for `rows <= cols`; otherwise the first `rows` rows and
/// `cols` columns of `c H_m`.
pub fn zero_hadamard(rows: usize, cols: usize) -> Vec<f32> {
    if rows <= cols {
        return identity(rows, cols, 1.0);
    }
    let (c, _) = hadamard_order(rows);
    (0..rows * cols)
        .map(|k| (c * hadamard_sign(k / cols, k % cols)) as f32)
        .collect()
}

/// Offset of the kernel centre (`k / 2` in every spatial dimension) within one
/// `[k...]` kernel, row-major.
fn centre_offset(kernel: &[usize]) -> usize {
    kernel.iter().fold(0, |acc, &k| acc * k + k / 2)
}

fn conv_dims(shape: &[usize], what: &str) -> Result<(usize, usize, usize, usize), InitError> {
    if shape.len() < 3 || shape.contains(&0) {
        return Err(InitError::BadShape {
            what: what.into(),
            shape: shape.to_vec(),
            why: "needs a convolution weight [out, in/groups, k...] with every dimension > 0"
                .into(),
        });
    }
    let rf: usize = shape[2..].iter().product();
    Ok((shape[0], shape[1], rf, centre_offset(&shape[2..])))
}

/// `torch.nn.init.dirac_`: for a weight `[out, in_g, k...]` and `groups`, with
/// `o_g = out / groups`, set `W[g o_g + d, d, centre] = 1` for every group `g` and
/// `d < min(o_g, in_g)`, zeros elsewhere.
pub fn dirac(shape: &[usize], groups: usize) -> Result<Vec<f32>, InitError> {
    let (out, in_g, rf, centre) = conv_dims(shape, "dirac")?;
    if groups == 0 || !out.is_multiple_of(groups) {
        return Err(InitError::BadShape {
            what: "dirac".into(),
            shape: shape.to_vec(),
            why: format!("{out} output channels are not divisible by groups={groups}"),
        });
    }
    let o_g = out / groups;
    let mut w = vec![0f32; out * in_g * rf];
    for g in 0..groups {
        for d in 0..o_g.min(in_g) {
            w[((g * o_g + d) * in_g + d) * rf + centre] = 1.0;
        }
    }
    Ok(w)
}

/// Delta-orthogonal (Xiao et al. 2018): for a weight `[out, in_g, k...]`, a Haar orthogonal
/// `[out, in_g]` matrix times `gain` (orthonormal columns, so the centre tap is an
/// isometry) at the kernel centre, zeros elsewhere. As JAX's `delta_orthogonal`, needs
/// `out >= in_g`: with fewer outputs than inputs no convolution preserves norms.
pub fn delta_orthogonal(shape: &[usize], gain: f64, key: &Key) -> Result<Vec<f32>, InitError> {
    let (out, in_g, rf, centre) = conv_dims(shape, "delta-orthogonal")?;
    if out < in_g {
        return Err(InitError::BadShape {
            what: "delta-orthogonal".into(),
            shape: shape.to_vec(),
            why: format!("needs out >= in (got out={out} < in={in_g}), as Xiao et al. 2018"),
        });
    }
    let q = orthogonal(out, in_g, gain, key);
    let mut w = vec![0f32; out * in_g * rf];
    for (oi, &v) in q.iter().enumerate() {
        w[oi * rf + centre] = v;
    }
    Ok(w)
}

/// Zero `ceil(sparsity * rows)` entries in each column of a row-major `rows x cols` matrix,
/// as `torch.nn.init.sparse_` (which computes the count the same way, in `f64`). The rows
/// of column `j` (columns in order) are the first ones of a partial Fisher-Yates shuffle
/// of `0..rows`, drawn from the key's [`SIDE_STREAM`] with unbiased bounded integers.
pub fn sparse_zeros(w: &mut [f32], rows: usize, cols: usize, sparsity: f64, key: &Key) {
    let zeros = sparse_zero_count(rows, sparsity);
    let mut s = key.stream(SIDE_STREAM);
    let mut idx: Vec<usize> = (0..rows).collect();
    for j in 0..cols {
        for t in 0..zeros {
            let r = t + s.below((rows - t) as u64) as usize;
            idx.swap(t, r);
            w[idx[t] * cols + j] = 0.0;
        }
    }
}

/// `ceil(sparsity * rows)`, capped at `rows`.
pub fn sparse_zero_count(rows: usize, sparsity: f64) -> usize {
    ((sparsity * rows as f64).ceil() as usize).min(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// max |Q^T Q - I| over the smaller Gram matrix, accumulated in f64.
    pub(crate) fn orthogonality_error(q: &[f32], rows: usize, cols: usize, gain: f64) -> f64 {
        let (n, by_cols) = if rows >= cols {
            (cols, true)
        } else {
            (rows, false)
        };
        let at = |i: usize, k: usize| {
            f64::from(if by_cols {
                q[k * cols + i]
            } else {
                q[i * cols + k]
            })
        };
        let len = if by_cols { rows } else { cols };
        let mut worst: f64 = 0.0;
        for a in 0..n {
            for b in a..n {
                let dot: f64 = (0..len).map(|k| at(a, k) * at(b, k)).sum::<f64>() / (gain * gain);
                worst = worst.max((dot - if a == b { 1.0 } else { 0.0 }).abs());
            }
        }
        worst
    }

    /// IDInit's padded identity: the identity when square; stacked identities (one `gain` a
    /// row, at the row index modulo the columns) when tall; side by side (one a column)
    /// when wide. A tall one copies its input into every block of rows, a wide one sums
    /// the input's blocks.
    #[test]
    fn padded_identity_is_the_identity_stacked_or_tiled() {
        assert_eq!(padded_identity(3, 3, 1.0), identity(3, 3, 1.0));
        let tall = padded_identity(5, 2, 2.0);
        assert_eq!(tall, vec![2., 0., 0., 2., 2., 0., 0., 2., 2., 0.]);
        let wide = padded_identity(2, 5, 1.0);
        assert_eq!(wide, vec![1., 0., 1., 0., 1., 0., 1., 0., 1., 0.]);
        // Every row of a tall, every column of a wide one holds exactly one entry.
        let (r, c) = (12, 5);
        let t = padded_identity(r, c, 1.0);
        assert!((0..r).all(|i| t[i * c..(i + 1) * c].iter().sum::<f32>() == 1.0));
        let w = padded_identity(c, r, 1.0);
        assert!((0..r).all(|j| (0..c).map(|i| w[i * r + j]).sum::<f32>() == 1.0));
    }

    /// ZerO: the identity when square, the partial identity when wide; when tall, the
    /// Hadamard block scaled by `2^(-(m-1)/2)`, whose columns are orthogonal with squared
    /// norm `c^2 2^m = 2` when the rows are a power of two.
    #[test]
    fn zero_hadamard_is_identity_or_a_scaled_hadamard_block() {
        assert_eq!(zero_hadamard(4, 4), identity(4, 4, 1.0));
        assert_eq!(zero_hadamard(2, 5), identity(2, 5, 1.0));
        let (rows, cols) = (8, 3);
        let w = zero_hadamard(rows, cols);
        for a in 0..cols {
            for b in 0..cols {
                let dot: f64 = (0..rows)
                    .map(|i| f64::from(w[i * cols + a]) * f64::from(w[i * cols + b]))
                    .sum();
                let want = if a == b { 2.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-6, "({a}, {b}): {dot}");
            }
        }
        // 5 rows: m = 3, c = 1/2; the first column is all +c.
        let w = zero_hadamard(5, 2);
        assert_eq!(w, vec![0.5, 0.5, 0.5, -0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0.5]);
    }

    #[test]
    fn orthogonal_is_orthonormal_square_tall_and_wide() {
        for (r, c) in [(300, 100), (100, 300), (257, 257), (1, 50)] {
            let q = orthogonal(r, c, 2.0, &Key::new(3, "q"));
            let e = orthogonality_error(&q, r, c, 2.0);
            assert!(e < 1e-5, "{r}x{c}: {e}");
        }
    }

    #[test]
    fn orthogonal_is_haar_not_biased_to_positive_diagonal() {
        // Without the sign fix Q's diagonal is biased positive; with it, E[Q_ii] = 0.
        // For n = 200, sum of the diagonal has mean 0 and variance 1 (sum of n entries of
        // variance 1/n, nearly uncorrelated): |trace| < 5 is a 5-sigma bound.
        let q = orthogonal(200, 200, 1.0, &Key::new(5, "haar"));
        let trace: f64 = (0..200).map(|i| f64::from(q[i * 200 + i])).sum();
        assert!(trace.abs() < 5.0, "trace {trace}");
    }

    #[test]
    fn dirac_puts_ones_at_the_centre_per_group() {
        // [4, 2, 3] with 2 groups: o_g = 2, in_g = 2.
        let w = dirac(&[4, 2, 3], 2).unwrap();
        let ones: Vec<usize> = w
            .iter()
            .enumerate()
            .filter(|(_, v)| **v == 1.0)
            .map(|(i, _)| i)
            .collect();
        // (o, i, k): (0,0,1), (1,1,1), (2,0,1), (3,1,1).
        assert_eq!(ones, vec![1, 6 + 3 + 1, 2 * 6 + 1, 3 * 6 + 3 + 1]);
        assert!(dirac(&[5, 2, 3], 2).is_err());
        // 2-D kernel: centre of a 3x5 kernel is (1, 2) = offset 7.
        let w = dirac(&[2, 2, 3, 5], 1).unwrap();
        assert_eq!(w[7], 1.0);
        assert_eq!(w[15 + 7], 0.0);
        assert_eq!(w[3 * 15 + 7], 1.0);
        assert_eq!(w.iter().sum::<f32>(), 2.0);
    }

    #[test]
    fn delta_orthogonal_is_orthogonal_at_the_centre_only() {
        let shape = [16, 8, 3, 3];
        let w = delta_orthogonal(&shape, 1.0, &Key::new(1, "d")).unwrap();
        let centre: Vec<f32> = (0..16 * 8).map(|oi| w[oi * 9 + 4]).collect();
        assert!(orthogonality_error(&centre, 16, 8, 1.0) < 1e-5);
        let off: f32 = (0..w.len())
            .filter(|i| i % 9 != 4)
            .map(|i| w[i].abs())
            .sum();
        assert_eq!(off, 0.0);
        let e = delta_orthogonal(&[4, 8, 3], 1.0, &Key::new(1, "d"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("out=4") && e.contains("in=8"), "{e}");
    }

    #[test]
    fn sparse_zeroes_exactly_ceil_sparsity_rows_per_column() {
        let (rows, cols) = (50, 40);
        let mut w = vec![1f32; rows * cols];
        sparse_zeros(&mut w, rows, cols, 0.3, &Key::new(2, "s"));
        for j in 0..cols {
            let z = (0..rows).filter(|&i| w[i * cols + j] == 0.0).count();
            assert_eq!(z, 15);
        }
        // The pattern differs between columns.
        let col = |j: usize| (0..rows).map(|i| w[i * cols + j]).collect::<Vec<_>>();
        assert_ne!(col(0), col(1));
    }
}
