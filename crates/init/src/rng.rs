//! Reproducible, keyed random streams: the same `(seed, path)` gives the same bits on every
//! platform, at every thread count, in every fill order.
//!
//! A [`Key`] names one tensor (`seed` of the run, `path` like `layers.3.weight`). Nothing
//! below depends on the platform, the thread count or the order of work:
//!
//! 1. `h = FNV-1a-64(path bytes)` (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`);
//! 2. the key's base `b = mix64(SplitMix64(seed) ^ h)`, where `SplitMix64(x)` is one step
//!    from state `x` and `mix64` is SplitMix64's output function (a bijection of `u64`);
//! 3. stream `i` of the key is the generator Xoshiro256++ (Blackman & Vigna 2018) whose
//!    four state words are the first four SplitMix64 outputs from state
//!    `b ^ mix64(i ^ 0x6a09e667f3bcc909)`.
//!
//! A tensor is cut into chunks of [`CHUNK`] elements; chunk `c` draws from stream `c`, so
//! chunks can be filled in any order on any number of threads with identical results. Side
//! draws that are not per element (the zero pattern of `sparse`) use stream
//! [`SIDE_STREAM`]. Different keys or streams get unrelated 256-bit states.
//!
//! Why Xoshiro256++ and not ChaCha8: it is specified by eight lines of integer arithmetic
//! (so it is as portable as ChaCha), passes BigCrush and PractRand, and on this project's
//! 2-core machine drew 32 bits in 0.3-0.6 ns against ChaCha8's 1.3-2.4 ns (`rand_chacha`
//! 0.9, `next_u32`), which made ChaCha the larger half of a normal fill. It is not a
//! cryptographic generator, and nothing here needs one.
//!
//! This file knows keys and raw bits; turning bits into normals lives in `sample.rs`.

/// Elements per independently keyed chunk of a fill (fixed: results never depend on it
/// changing at run time, only on this constant).
pub const CHUNK: usize = 1 << 14;

/// Stream id for draws that are not tied to element chunks (the `sparse` zero pattern).
pub const SIDE_STREAM: u64 = u64::MAX;

/// What one tensor's random numbers are derived from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The run's seed.
    pub seed: u64,
    /// The tensor's parameter path, e.g. `layers.3.weight`.
    pub path: String,
}

impl Key {
    /// A key for `path` under `seed`.
    pub fn new(seed: u64, path: impl Into<String>) -> Key {
        Key {
            seed,
            path: path.into(),
        }
    }

    /// The key's 64-bit base `b` (see the module doc).
    pub fn base(&self) -> u64 {
        let mut state = self.seed;
        mix64(splitmix64(&mut state) ^ fnv1a64(self.path.as_bytes()))
    }

    /// The generator for stream `stream` of this key.
    pub fn stream(&self, stream: u64) -> Stream {
        Stream::new(self.base(), stream)
    }
}

/// FNV-1a, 64-bit: a fixed, documented hash of the path bytes.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One step of SplitMix64 (Steele, Lea & Flood 2014): advances `state`, returns the output.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix64(*state)
}

/// SplitMix64's output function (Stafford's variant 13): a bijection of `u64`.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One Xoshiro256++ stream of one key.
#[derive(Debug, Clone)]
pub struct Stream {
    s: [u64; 4],
}

impl Stream {
    /// Stream `stream` of the key with base `base` (see the module doc).
    pub fn new(base: u64, stream: u64) -> Stream {
        let mut state = base ^ mix64(stream ^ 0x6a09_e667_f3bc_c909);
        let s = [
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
        ];
        Stream::from_state(s)
    }

    /// A generator with the given raw state (not all zero).
    pub fn from_state(s: [u64; 4]) -> Stream {
        debug_assert!(s != [0; 4]);
        Stream { s }
    }

    /// The next 32 random bits: the upper half of [`Stream::next_u64`].
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform on `[0, 1)` with 53 random bits: `(next_u64 >> 11) * 2^-53`.
    #[inline]
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on `(0, 1]` with 53 random bits (safe to take the logarithm of).
    #[inline]
    pub fn uniform_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` by Lemire's multiply-and-reject on 64 bits (unbiased).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_and_splitmix_match_their_reference_values() {
        // FNV-1a-64 test vectors from the reference implementation.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // SplitMix64 from state 0: first output 0xe220a8397b1dcdaf.
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
        // Xoshiro256++ from state [1, 2, 3, 4]: rotl(1 + 4, 23) + 1, then the reference
        // implementation's second output.
        let mut x = Stream::from_state([1, 2, 3, 4]);
        assert_eq!(x.next_u64(), 41_943_041);
        assert_eq!(x.next_u64(), 58_720_359);
    }

    #[test]
    fn same_key_same_bits_other_path_other_bits() {
        let a: Vec<u32> = {
            let mut s = Key::new(7, "layers.0.weight").stream(3);
            (0..64).map(|_| s.next_u32()).collect()
        };
        let b: Vec<u32> = {
            let mut s = Key::new(7, "layers.0.weight").stream(3);
            (0..64).map(|_| s.next_u32()).collect()
        };
        assert_eq!(a, b);
        for other in [
            Key::new(7, "layers.1.weight").stream(3),
            Key::new(8, "layers.0.weight").stream(3),
            Key::new(7, "layers.0.weight").stream(4),
        ] {
            let mut o = other;
            let c: Vec<u32> = (0..64).map(|_| o.next_u32()).collect();
            assert_ne!(a, c);
        }
    }

    #[test]
    fn below_is_in_range_and_hits_every_value() {
        let mut s = Key::new(1, "x").stream(0);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = s.below(7) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|&x| x));
    }
}
