//! Vectorised CPU matrix products on the stored GGUF encodings candle computes with scalar code.
//!
//! candle 0.11 has AVX2 dot products for Q4_0, Q8_0 and the K-quants, but Q4_1, Q5_0 and Q5_1
//! (the bulk of the SmolLM2 and Qwen2.5/Gemma 3 `Q4_K_M` files) fall back to a scalar loop that
//! runs at a third of llama.cpp's speed, and its Q8_0 products (the tied output layers) go one
//! row pair at a time. Re-encoding to Q8_0 is fast but changes the weights, and an audit must
//! measure the vendor's weights as supplied. So these four formats keep their stored blocks,
//! bit for bit (only regrouped four rows at a time), and get their own products here: the
//! activations are quantized once per step to `Q8_0` or `Q8_1` (as llama.cpp does), and each
//! 32-element block's integer dot product runs in AVX2 (`maddubs`) or AVX-512 VNNI (`vpdpbusd`),
//! picked at run time.
//!
//! The products run as tiles of four weight rows × four activation rows (one when decoding a
//! single sequence) over candle's CPU workers: each weight block is unpacked once per tile and
//! each activation block loaded once, which is what makes prompt processing and batched
//! decoding a GEMM rather than many dot products. A (weight row, activation row) pair goes
//! through the same operations whatever the tile, so results do not depend on the batch size.
//!
//! The arithmetic matches ggml's reference (`ggml_vec_dot_q4_1_q8_1` and friends): integer sums
//! per block, scaled by the two f16 scales, plus the `min × sum` term for the formats with an
//! offset. Only the float summation order differs from the scalar code.

// The x86 intrinsics are `unsafe` to call; each use is behind a run-time AVX2/FMA check and reads
// only within the block arrays whose lengths the callers assert.
#![allow(unsafe_code)]

use candle_core::quantized::k_quants::GgmlType;
use candle_core::quantized::GgmlDType;
use candle_core::{CpuStorage, Layout, Shape};
use half::f16;

use crate::error::{Error, Result};

const QK: usize = 32;

/// Q4_1: 32 weights as 4-bit values `q`, weight = `d·q + m`.
#[derive(Debug, Clone, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1 {
    d: f16,
    m: f16,
    qs: [u8; 16],
}

/// Q5_0: 32 weights as 5-bit values `q` (low nibble in `qs`, high bit in `qh`), weight = `d·(q−16)`.
#[derive(Debug, Clone, PartialEq)]
#[repr(C)]
pub struct BlockQ5_0 {
    d: f16,
    qh: [u8; 4],
    qs: [u8; 16],
}

/// Q5_1: 32 weights as 5-bit values `q`, weight = `d·q + m`.
#[derive(Debug, Clone, PartialEq)]
#[repr(C)]
pub struct BlockQ5_1 {
    d: f16,
    m: f16,
    qh: [u8; 4],
    qs: [u8; 16],
}

/// Activations for the offset-free formats: 32 values as `d·q`, `q` in −127..=127.
#[derive(Debug, Clone, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0 {
    d: f16,
    qs: [i8; 32],
}

/// Activations for the formats with an offset: as Q8_0 plus `s = d·Σq`.
#[derive(Debug, Clone, PartialEq)]
#[repr(C)]
pub struct BlockQ8_1 {
    d: f16,
    s: f16,
    qs: [i8; 32],
}

fn f16_at(b: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([b[at], b[at + 1]])
}

fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

/// A stored format's tile kernel: `W` weight rows, interleaved block by block (block `i` of row
/// `w` at `xs[i * W + w]`), against `A` activation rows of `nb` blocks.
trait Tiled: Sized + Clone {
    type Act: GgmlType + Clone;
    fn tile<const W: usize, const A: usize>(
        nb: usize,
        xs: &[Self],
        ys: [&[Self::Act]; A],
    ) -> [[f32; A]; W];
}

/// Row `w` of `W` rows interleaved block by block.
fn deinterleave<T: Clone>(xs: &[T], nb: usize, stride: usize, w: usize) -> Vec<T> {
    (0..nb).map(|i| xs[i * stride + w].clone()).collect()
}

/// A stored encoding read from its GGUF bytes.
trait StoredBlock: GgmlType + Tiled {
    const BYTES: usize;
    fn parse(b: &[u8]) -> Self;
}

impl StoredBlock for BlockQ4_1 {
    const BYTES: usize = 20;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: f16_at(b, 0),
            m: f16_at(b, 2),
            qs: array(b, 4),
        }
    }
}

impl StoredBlock for BlockQ5_0 {
    const BYTES: usize = 22;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: f16_at(b, 0),
            qh: array(b, 2),
            qs: array(b, 6),
        }
    }
}

impl StoredBlock for BlockQ5_1 {
    const BYTES: usize = 24;
    fn parse(b: &[u8]) -> Self {
        Self {
            d: f16_at(b, 0),
            m: f16_at(b, 2),
            qh: array(b, 4),
            qs: array(b, 8),
        }
    }
}

/// Quantize one block of 32 activations: the scale and the rounded values.
fn quantize_block(xs: &[f32]) -> (f32, [i8; 32]) {
    let amax = xs.iter().fold(0f32, |a, x| a.max(x.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; 32];
    for (q, x) in qs.iter_mut().zip(xs) {
        *q = (x * id).round() as i8;
    }
    (d, qs)
}

/// The 5th bit of weight `j` of a Q5 block.
fn high_bit(qh: [u8; 4], j: usize) -> u8 {
    ((u32::from_le_bytes(qh) >> j) & 1) as u8
}

/// Weight `j` of a 4-bit block as its unsigned value 0..=15.
fn nibble(qs: &[u8; 16], j: usize) -> u8 {
    if j < 16 {
        qs[j] & 0x0f
    } else {
        qs[j - 16] >> 4
    }
}

/// `d·q` for the 32 values of an 8-bit block.
fn dequantize_q8(d: f16, qs: &[i8; 32], out: &mut [f32]) {
    let d = d.to_f32();
    for (o, &q) in out.iter_mut().zip(qs) {
        *o = d * f32::from(q);
    }
}

/// The integer dot product of two 8-bit blocks.
fn int_dot(a: &[i8; 32], b: &[i8; 32]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

impl GgmlType for BlockQ8_0 {
    const DTYPE: GgmlDType = GgmlDType::Q8_0;
    const BLCK_SIZE: usize = QK;
    type VecDotType = BlockQ8_0;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (b, out) in xs.iter().zip(ys.chunks_exact_mut(QK)) {
            dequantize_q8(b.d, &b.qs, out);
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.chunks_exact(QK).zip(ys.iter_mut()) {
            let (d, qs) = quantize_block(x);
            *y = Self {
                d: f16::from_f32(d),
                qs,
            };
        }
    }

    fn vec_dot(n: usize, xs: &[Self], ys: &[Self]) -> f32 {
        Self::vec_dot_unopt(n, xs, ys)
    }

    fn vec_dot_unopt(_n: usize, xs: &[Self], ys: &[Self]) -> f32 {
        xs.iter()
            .zip(ys)
            .map(|(x, y)| int_dot(&x.qs, &y.qs) as f32 * x.d.to_f32() * y.d.to_f32())
            .sum()
    }
}

impl GgmlType for BlockQ8_1 {
    const DTYPE: GgmlDType = GgmlDType::Q8_1;
    const BLCK_SIZE: usize = QK;
    type VecDotType = BlockQ8_1;

    fn to_float(xs: &[Self], ys: &mut [f32]) {
        for (b, out) in xs.iter().zip(ys.chunks_exact_mut(QK)) {
            dequantize_q8(b.d, &b.qs, out);
        }
    }

    fn from_float(xs: &[f32], ys: &mut [Self]) {
        for (x, y) in xs.chunks_exact(QK).zip(ys.iter_mut()) {
            let (d, qs) = quantize_block(x);
            let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
            *y = Self {
                d: f16::from_f32(d),
                s: f16::from_f32(sum as f32 * d),
                qs,
            };
        }
    }

    fn vec_dot(n: usize, xs: &[Self], ys: &[Self]) -> f32 {
        Self::vec_dot_unopt(n, xs, ys)
    }

    fn vec_dot_unopt(_n: usize, xs: &[Self], ys: &[Self]) -> f32 {
        xs.iter()
            .zip(ys)
            .map(|(x, y)| int_dot(&x.qs, &y.qs) as f32 * x.d.to_f32() * y.d.to_f32())
            .sum()
    }
}

/// Implements [`GgmlType`] for a stored format: `$value(block, j)` gives weight `j` as an
/// integer, `$offset` whether the block carries a minimum `m`.
/// Implements [`Tiled`] for a stored format with the x86 kernels named `$tile`, falling back to
/// the scalar formula.
macro_rules! tiled {
    ($block:ty, $act:ty, $tile:ident) => {
        impl Tiled for $block {
            type Act = $act;

            fn tile<const W: usize, const A: usize>(
                nb: usize,
                xs: &[Self],
                ys: [&[$act]; A],
            ) -> [[f32; A]; W] {
                assert!(xs.len() >= nb * W && ys.iter().all(|y| y.len() >= nb));
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the instruction set was detected at run time; every slice holds `nb`
                // blocks (asserted above).
                match simd() {
                    Simd::Vnni => return unsafe { x86::vnni::$tile(nb, xs, ys) },
                    Simd::Avx2 => return unsafe { x86::avx2::$tile(nb, xs, ys) },
                    Simd::None => {}
                }
                let mut out = [[0f32; A]; W];
                for (w, row) in out.iter_mut().enumerate() {
                    let x = deinterleave(xs, nb, W, w);
                    for (a, y) in ys.iter().enumerate() {
                        row[a] = Self::vec_dot_unopt(nb * QK, &x, &y[..nb]);
                    }
                }
                out
            }
        }
    };
}

/// Implements [`Tiled`] and [`GgmlType`] for a stored format: `$value(block, j)` gives weight `j`
/// as an integer, `$offset` the block's minimum `m` (0 for formats without one).
macro_rules! stored_format {
    ($block:ty, $dtype:expr, $act:ty, $tile:ident, $value:expr, $offset:expr) => {
        tiled!($block, $act, $tile);

        impl GgmlType for $block {
            const DTYPE: GgmlDType = $dtype;
            const BLCK_SIZE: usize = QK;
            type VecDotType = $act;

            fn to_float(xs: &[Self], ys: &mut [f32]) {
                for (b, out) in xs.iter().zip(ys.chunks_exact_mut(QK)) {
                    let d = b.d.to_f32();
                    let m = $offset(b);
                    for (j, o) in out.iter_mut().enumerate() {
                        *o = d * f32::from($value(b, j)) + m;
                    }
                }
            }

            /// Weights in these formats are only read from files; the product quantizes
            /// activations (the Q8 types), never the weights, so this leaves `ys` as it is.
            fn from_float(_xs: &[f32], _ys: &mut [Self]) {}

            fn vec_dot(n: usize, xs: &[Self], ys: &[$act]) -> f32 {
                <Self as Tiled>::tile::<1, 1>(n / QK, xs, [ys])[0][0]
            }

            fn vec_dot_unopt(_n: usize, xs: &[Self], ys: &[$act]) -> f32 {
                xs.iter()
                    .zip(ys)
                    .map(|(x, y)| {
                        let sumi: i32 = (0..QK)
                            .map(|j| i32::from($value(x, j)) * i32::from(y.qs[j]))
                            .sum();
                        sumi as f32 * x.d.to_f32() * y.d.to_f32() + $offset(x) * act_sum(y)
                    })
                    .sum()
            }
        }
    };
}

/// `s` of a `Q8_1` block; `Q8_0` blocks have no offset term.
trait ActSum {
    fn sum(&self) -> f32;
}
impl ActSum for BlockQ8_0 {
    fn sum(&self) -> f32 {
        0.0
    }
}
impl ActSum for BlockQ8_1 {
    fn sum(&self) -> f32 {
        self.s.to_f32()
    }
}
fn act_sum<A: ActSum>(a: &A) -> f32 {
    a.sum()
}

// Q8_0 weights against Q8_0 activations (the tied embeddings and output layers of the demo
// models): candle's own kernel is vectorised but computes one row pair at a time.
tiled!(BlockQ8_0, BlockQ8_0, tile_q8_0);

impl StoredBlock for BlockQ8_0 {
    const BYTES: usize = 34;
    fn parse(b: &[u8]) -> Self {
        let mut qs = [0i8; 32];
        for (q, &byte) in qs.iter_mut().zip(&b[2..34]) {
            *q = byte as i8;
        }
        Self {
            d: f16_at(b, 0),
            qs,
        }
    }
}

stored_format!(
    BlockQ4_1,
    GgmlDType::Q4_1,
    BlockQ8_1,
    tile_q4_1,
    |b: &BlockQ4_1, j| i16::from(nibble(&b.qs, j)),
    |b: &BlockQ4_1| b.m.to_f32()
);
stored_format!(
    BlockQ5_0,
    GgmlDType::Q5_0,
    BlockQ8_0,
    tile_q5_0,
    |b: &BlockQ5_0, j| i16::from(nibble(&b.qs, j) | (high_bit(b.qh, j) << 4)) - 16,
    |_b: &BlockQ5_0| 0.0f32
);
stored_format!(
    BlockQ5_1,
    GgmlDType::Q5_1,
    BlockQ8_1,
    tile_q5_1,
    |b: &BlockQ5_1, j| i16::from(nibble(&b.qs, j) | (high_bit(b.qh, j) << 4)),
    |b: &BlockQ5_1| b.m.to_f32()
);

/// The instruction set the stored-format kernels use on this CPU, for reports and benchmarks.
pub fn instruction_set() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        match simd() {
            Simd::Vnni => "AVX-512 VNNI",
            Simd::Avx2 => "AVX2",
            Simd::None => "scalar",
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "scalar"
    }
}

/// The widest integer dot-product instructions this CPU has.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simd {
    /// Scalar code only.
    None,
    /// AVX2 and FMA.
    Avx2,
    /// AVX2 plus AVX-512 VNNI on 256-bit registers.
    Vnni,
}

#[cfg(target_arch = "x86_64")]
fn simd() -> Simd {
    static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        use std::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma");
        if std::env::var_os("ALIGNDIFF_NO_VNNI").is_none()
            && avx2
            && has!("avx512f")
            && has!("avx512vnni")
            && has!("avx512vl")
        {
            Simd::Vnni
        } else if avx2 {
            Simd::Avx2
        } else {
            Simd::None
        }
    })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1};

    /// The 16 bytes of packed nibbles as 32 bytes 0..=15: low nibbles (weights 0..16) in the
    /// lower lane, high nibbles (weights 16..32) in the upper.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn nibbles(qs: &[u8; 16]) -> __m256i {
        let packed = _mm_loadu_si128(qs.as_ptr().cast());
        let both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
        _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
    }

    /// 32 bits as 32 bytes: 0xFF where the bit is set, 0 where not.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn bit_bytes(qh: [u8; 4]) -> __m256i {
        let bits = _mm256_set1_epi32(i32::from_le_bytes(qh));
        // Byte i takes source byte i / 8 ...
        let spread = _mm256_shuffle_epi8(
            bits,
            _mm256_set_epi64x(
                0x0303_0303_0303_0303,
                0x0202_0202_0202_0202,
                0x0101_0101_0101_0101,
                0,
            ),
        );
        // ... and keeps only bit i % 8: all other bits are forced on, so the byte is 0xFF
        // exactly when that bit is set.
        let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
        _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi8(-1))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load(qs: &[i8; 32]) -> __m256i {
        _mm256_loadu_si256(qs.as_ptr().cast())
    }

    /// Eight i32 sums of unsigned × signed byte products, each over four consecutive bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sums_u8_i8(x: __m256i, y: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
    }

    /// The same with AVX-512 VNNI's fused multiply-add of byte groups (`vpdpbusd`), as
    /// llama.cpp uses where the CPU has it; `from` is added to the sums.
    #[inline]
    #[target_feature(enable = "avx2,avx512f,avx512vnni,avx512vl")]
    unsafe fn sums_u8_i8_vnni(from: __m256i, x: __m256i, y: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(from, x, y)
    }

    /// `−16 × Σy` over each group of four activation bytes: what turns a product with the
    /// unsigned 5-bit values `q` into one with Q5_0's signed `q − 16`. Depends only on the
    /// activations, so it is computed once per activation block and shared by every weight row.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn minus_16_sums(y: __m256i) -> __m256i {
        _mm256_sub_epi32(_mm256_setzero_si256(), sums_u8_i8(_mm256_set1_epi8(16), y))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn no_offset(_y: __m256i) -> __m256i {
        _mm256_setzero_si256()
    }

    /// Weight × activation sums as floats: unsigned weights with no offset ...
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn dot_plain(x: __m256i, y: __m256i, _offset: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(sums_u8_i8(x, y))
    }

    /// ... and with the per-group offset added (Q5_0).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn dot_offset(x: __m256i, y: __m256i, offset: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_add_epi32(sums_u8_i8(x, y), offset))
    }

    #[inline]
    #[target_feature(enable = "avx2,avx512f,avx512vnni,avx512vl")]
    unsafe fn dot_plain_vnni(x: __m256i, y: __m256i, _offset: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(sums_u8_i8_vnni(_mm256_setzero_si256(), x, y))
    }

    #[inline]
    #[target_feature(enable = "avx2,avx512f,avx512vnni,avx512vl")]
    unsafe fn dot_offset_vnni(x: __m256i, y: __m256i, offset: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(sums_u8_i8_vnni(offset, x, y))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn hsum(v: __m256) -> f32 {
        let r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
        let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        let r = _mm_add_ss(r, _mm_movehdup_ps(r));
        _mm_cvtss_f32(r)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn q4_1(x: &BlockQ4_1) -> __m256i {
        nibbles(&x.qs)
    }

    /// Q5_0's weights as their unsigned 5-bit values `q` (the `− 16` comes from
    /// [`minus_16_sums`]).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn q5_0(x: &BlockQ5_0) -> __m256i {
        let high = _mm256_and_si256(bit_bytes(x.qh), _mm256_set1_epi8(0x10));
        _mm256_or_si256(nibbles(&x.qs), high)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn q5_1(x: &BlockQ5_1) -> __m256i {
        let high = _mm256_and_si256(bit_bytes(x.qh), _mm256_set1_epi8(0x10));
        _mm256_or_si256(nibbles(&x.qs), high)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn q8_0(x: &BlockQ8_0) -> __m256i {
        load(&x.qs)
    }

    /// Signed weights × signed activations: the weight's sign moves onto the activation.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn dot_signed(x: __m256i, y: __m256i, _offset: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(sums_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)))
    }

    #[inline]
    #[target_feature(enable = "avx2,avx512f,avx512vnni,avx512vl")]
    unsafe fn dot_signed_vnni(x: __m256i, y: __m256i, _offset: __m256i) -> __m256 {
        let (ax, sy) = (_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        _mm256_cvtepi32_ps(sums_u8_i8_vnni(_mm256_setzero_si256(), ax, sy))
    }

    /// A tile of each format, for one instruction set: `W` weight rows against `A` activation
    /// rows, every weight block unpacked once and every activation block loaded once per tile.
    /// `$bytes` unpacks a weight block, `$offset` derives the per-group integer offset from an
    /// activation block, `$dot` multiplies, `$min` / `$sum` give the weight block's minimum and
    /// the activation block's scaled sum for the formats with an offset (`$has_min`). Each
    /// (weight row, activation row) pair goes through the same operations in the same order
    /// whatever `W` and `A` are, so its result is bit-identical in every tile shape, which
    /// keeps answers independent of the batch size.
    macro_rules! kernels {
        (
            $features:literal, $tile:ident, $block:ty, $act:ty, $bytes:ident, $offset:ident,
            $dot:ident, $has_min:expr, $min:expr, $sum:expr
        ) => {
            #[target_feature(enable = $features)]
            pub(in super::super) unsafe fn $tile<const W: usize, const A: usize>(
                nb: usize,
                xs: &[$block],
                ys: [&[$act]; A],
            ) -> [[f32; A]; W] {
                let xs = &xs[..nb * W];
                let ys = ys.map(|y| &y[..nb]);
                let mut acc = [[_mm256_setzero_ps(); A]; W];
                // The offset terms of one weight row against the (up to four) activation rows,
                // lane by lane: the same multiply and add per lane as scalar code would do.
                let mut mins = [_mm_setzero_ps(); W];
                for i in 0..nb {
                    let mut qy = [_mm256_setzero_si256(); A];
                    let mut off = [_mm256_setzero_si256(); A];
                    let mut dy = [_mm256_setzero_ps(); A];
                    let mut sums = [0f32; 4];
                    for a in 0..A {
                        let y = &ys[a][i];
                        qy[a] = load(&y.qs);
                        off[a] = $offset(qy[a]);
                        dy[a] = _mm256_set1_ps(y.d.to_f32());
                        if $has_min {
                            sums[a] = $sum(y);
                        }
                    }
                    // Built from registers: a vector load of the four just-written floats would
                    // stall on store forwarding every block.
                    let sy = _mm_setr_ps(sums[0], sums[1], sums[2], sums[3]);
                    for w in 0..W {
                        let x = &xs[i * W + w];
                        let qx = $bytes(x);
                        let dx = _mm256_set1_ps(x.d.to_f32());
                        if $has_min {
                            mins[w] = _mm_add_ps(mins[w], _mm_mul_ps(_mm_set1_ps($min(x)), sy));
                        }
                        for a in 0..A {
                            let d = _mm256_mul_ps(dx, dy[a]);
                            acc[w][a] = _mm256_fmadd_ps(d, $dot(qx, qy[a], off[a]), acc[w][a]);
                        }
                    }
                }
                let mut out = [[0f32; A]; W];
                for w in 0..W {
                    let mut m = [0f32; 4];
                    _mm_storeu_ps(m.as_mut_ptr(), mins[w]);
                    for a in 0..A {
                        out[w][a] = hsum(acc[w][a]) + m[a];
                    }
                }
                out
            }
        };
    }

    /// The three formats' kernels for one instruction set.
    macro_rules! all_formats {
        ($features:literal, $plain:ident, $with_offset:ident, $signed:ident) => {
            use super::*;
            kernels!(
                $features,
                tile_q8_0,
                BlockQ8_0,
                BlockQ8_0,
                q8_0,
                no_offset,
                $signed,
                false,
                |_x: &BlockQ8_0| 0.0f32,
                |_y: &BlockQ8_0| 0.0f32
            );
            kernels!(
                $features,
                tile_q4_1,
                BlockQ4_1,
                BlockQ8_1,
                q4_1,
                no_offset,
                $plain,
                true,
                |x: &BlockQ4_1| x.m.to_f32(),
                |y: &BlockQ8_1| y.s.to_f32()
            );
            kernels!(
                $features,
                tile_q5_0,
                BlockQ5_0,
                BlockQ8_0,
                q5_0,
                minus_16_sums,
                $with_offset,
                false,
                |_x: &BlockQ5_0| 0.0f32,
                |_y: &BlockQ8_0| 0.0f32
            );
            kernels!(
                $features,
                tile_q5_1,
                BlockQ5_1,
                BlockQ8_1,
                q5_1,
                no_offset,
                $plain,
                true,
                |x: &BlockQ5_1| x.m.to_f32(),
                |y: &BlockQ8_1| y.s.to_f32()
            );
        };
    }

    /// AVX2 and FMA (x86-64-v3).
    pub(super) mod avx2 {
        all_formats!("avx2,fma", dot_plain, dot_offset, dot_signed);
    }

    /// AVX2 with AVX-512 VNNI.
    pub(super) mod vnni {
        all_formats!(
            "avx2,fma,avx512f,avx512vnni,avx512vl",
            dot_plain_vnni,
            dot_offset_vnni,
            dot_signed_vnni
        );
    }
}

/// Activation rows per tile of the batched product, and tiles per chunk of rows that stay in
/// the L1/L2 cache while every weight row passes over them.
const ACT_TILE: usize = 4;
const TILES_PER_CHUNK: usize = 16;

/// The output of a product, written by several workers at disjoint (row, column) places.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every (row, column) of the output is written by exactly one work item.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// Write `v` at element `i`.
    ///
    /// SAFETY: `i` is within the output, and no other thread writes element `i`.
    unsafe fn write(self, i: usize, v: f32) {
        unsafe { *self.0.add(i) = v };
    }
}

/// `out[m × n] = x[m × k] · Wᵀ` over candle's CPU workers. Activations are quantized once; the
/// work items are tiles of four weight rows × [`ACT_TILE`] activation rows (a single row when
/// decoding one sequence), chunked so a group of activation rows stays cached while the weights
/// stream past. Short tiles are padded by repeating their last row, which leaves every real
/// pair's arithmetic unchanged.
fn gemm<T: StoredBlock>(w: &[T], n: usize, k: usize, x: &[f32], m: usize, out: &mut [f32]) {
    if m == 0 || n == 0 {
        return;
    }
    let nb = k / QK;
    let pool = candle_core::utils::barrier_pool();
    let mut act = vec![T::Act::zeros(); m * nb];
    if m == 1 {
        T::Act::from_float(x, &mut act);
    } else {
        let rows: Vec<std::sync::Mutex<&mut [T::Act]>> =
            act.chunks_mut(nb).map(std::sync::Mutex::new).collect();
        pool.execute_chunked(m, |range| {
            for r in range {
                if let Ok(mut row) = rows[r].lock() {
                    T::Act::from_float(&x[r * k..(r + 1) * k], &mut row);
                }
            }
        });
    }
    let act = &act;
    let group = |q: usize| &w[q * QUAD * nb..(q + 1) * QUAD * nb];
    let activation = |row: usize| &act[row.min(m - 1) * nb..(row.min(m - 1) + 1) * nb];
    let dst = OutPtr(out.as_mut_ptr());
    let quads = n.div_ceil(QUAD);
    let write = move |row: usize, col: usize, v: f32| {
        if row < m && col < n {
            // SAFETY: in bounds (out.len() == m * n, checked by the caller) and written by
            // exactly one work item.
            unsafe { dst.write(row * n + col, v) };
        }
    };
    if m == 1 {
        pool.execute_chunked(quads, |range| {
            for q in range {
                let c = q * QUAD;
                let r = T::tile::<QUAD, 1>(nb, group(q), [activation(0)]);
                for (i, v) in r.iter().enumerate() {
                    write(0, c + i, v[0]);
                }
            }
        });
        return;
    }
    let tiles = m.div_ceil(ACT_TILE);
    let chunks = tiles.div_ceil(TILES_PER_CHUNK);
    // Items ordered chunk, then weight quad, then tile within the chunk.
    pool.execute_chunked(chunks * quads * TILES_PER_CHUNK, |range| {
        for item in range {
            let chunk = item / (quads * TILES_PER_CHUNK);
            let q = (item / TILES_PER_CHUNK) % quads;
            let t = chunk * TILES_PER_CHUNK + item % TILES_PER_CHUNK;
            if t >= tiles {
                continue;
            }
            let (c, a) = (q * QUAD, t * ACT_TILE);
            let r = T::tile::<QUAD, ACT_TILE>(
                nb,
                group(q),
                [
                    activation(a),
                    activation(a + 1),
                    activation(a + 2),
                    activation(a + 3),
                ],
            );
            for (i, row) in r.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    write(a + j, c + i, *v);
                }
            }
        }
    });
}

/// The blocks of one weight matrix, in one of the formats handled here.
#[derive(Debug)]
enum Blocks {
    Q8_0(Vec<BlockQ8_0>),
    Q4_1(Vec<BlockQ4_1>),
    Q5_0(Vec<BlockQ5_0>),
    Q5_1(Vec<BlockQ5_1>),
}

/// A weight matrix (`rows × cols`, row-major as in GGUF) kept in its stored encoding.
#[derive(Debug)]
pub struct StoredMatrix {
    rows: usize,
    cols: usize,
    blocks: Blocks,
}

/// Weight rows per group in the stored layout.
const QUAD: usize = 4;

/// The blocks of `rows` rows regrouped four rows at a time, block by block (block `i` of row
/// `4q + r` at `(q·nb + i)·4 + r`), so a tile reads its four rows as one sequential stream. A
/// last, short group repeats its last row. The values are the file's, byte for byte.
fn parse_grouped<T: StoredBlock>(bytes: &[u8], rows: usize, nb: usize) -> Vec<T> {
    let quads = rows.div_ceil(QUAD);
    let mut out = Vec::with_capacity(quads * QUAD * nb);
    for q in 0..quads {
        for i in 0..nb {
            for r in 0..QUAD {
                let row = (q * QUAD + r).min(rows - 1);
                let at = (row * nb + i) * T::BYTES;
                out.push(T::parse(&bytes[at..at + T::BYTES]));
            }
        }
    }
    out
}

impl StoredMatrix {
    /// Whether this module computes `dtype` (candle's own kernels are vectorised for the rest).
    pub fn handles(dtype: GgmlDType) -> bool {
        matches!(
            dtype,
            GgmlDType::Q8_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
        )
    }

    /// Wrap the raw GGUF bytes of a `rows × cols` tensor.
    pub fn new(dtype: GgmlDType, rows: usize, cols: usize, bytes: &[u8]) -> Result<Self> {
        let per_block = match dtype {
            GgmlDType::Q8_0 => BlockQ8_0::BYTES,
            GgmlDType::Q4_1 => BlockQ4_1::BYTES,
            GgmlDType::Q5_0 => BlockQ5_0::BYTES,
            GgmlDType::Q5_1 => BlockQ5_1::BYTES,
            other => return Err(Error::Invalid(format!("no stored kernel for {other:?}"))),
        };
        if !cols.is_multiple_of(QK) {
            return Err(Error::Invalid(format!(
                "a {dtype:?} row of {cols} weights is not a whole number of 32-weight blocks"
            )));
        }
        let want = rows * (cols / QK) * per_block;
        if bytes.len() != want {
            return Err(Error::Invalid(format!(
                "{dtype:?} {rows}×{cols} needs {want} bytes, got {}",
                bytes.len()
            )));
        }
        if rows == 0 {
            return Err(Error::Invalid(format!("{dtype:?} weight with no rows")));
        }
        let nb = cols / QK;
        let blocks = match dtype {
            GgmlDType::Q8_0 => Blocks::Q8_0(parse_grouped(bytes, rows, nb)),
            GgmlDType::Q4_1 => Blocks::Q4_1(parse_grouped(bytes, rows, nb)),
            GgmlDType::Q5_0 => Blocks::Q5_0(parse_grouped(bytes, rows, nb)),
            _ => Blocks::Q5_1(parse_grouped(bytes, rows, nb)),
        };
        Ok(Self { rows, cols, blocks })
    }

    /// Weights per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The stored format.
    pub fn dtype(&self) -> GgmlDType {
        match self.blocks {
            Blocks::Q8_0(_) => GgmlDType::Q8_0,
            Blocks::Q4_1(_) => GgmlDType::Q4_1,
            Blocks::Q5_0(_) => GgmlDType::Q5_0,
            Blocks::Q5_1(_) => GgmlDType::Q5_1,
        }
    }

    /// `x · Wᵀ` for `m` rows of `cols` activations, into `m × rows` outputs.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        if x.len() != m * self.cols || out.len() != m * self.rows {
            return Err(Error::Invalid(format!(
                "matmul of {m} rows: {} inputs and {} outputs for a {}×{} weight",
                x.len(),
                out.len(),
                self.rows,
                self.cols
            )));
        }
        match &self.blocks {
            Blocks::Q8_0(b) => gemm(b, self.rows, self.cols, x, m, out),
            Blocks::Q4_1(b) => gemm(b, self.rows, self.cols, x, m, out),
            Blocks::Q5_0(b) => gemm(b, self.rows, self.cols, x, m, out),
            Blocks::Q5_1(b) => gemm(b, self.rows, self.cols, x, m, out),
        }
        Ok(())
    }

    /// The weights as f32, row-major (for tests and the weight diff).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        for (row, dst) in out.chunks_exact_mut(self.cols).enumerate() {
            self.write_row(row, dst);
        }
        out
    }

    /// Row `row` as f32 (an embedding lookup); an error when the row does not exist.
    pub fn row(&self, row: usize) -> Result<Vec<f32>> {
        if row >= self.rows {
            return Err(Error::Invalid(format!(
                "row {row} of a {}-row {:?} table",
                self.rows,
                self.dtype()
            )));
        }
        let mut out = vec![0f32; self.cols];
        self.write_row(row, &mut out);
        Ok(out)
    }

    fn write_row(&self, row: usize, dst: &mut [f32]) {
        fn one<T: StoredBlock>(b: &[T], nb: usize, row: usize, dst: &mut [f32]) {
            let group = &b[(row / QUAD) * QUAD * nb..];
            T::to_float(&deinterleave(group, nb, QUAD, row % QUAD), dst);
        }
        let nb = self.cols / QK;
        match &self.blocks {
            Blocks::Q8_0(b) => one(b, nb, row, dst),
            Blocks::Q4_1(b) => one(b, nb, row, dst),
            Blocks::Q5_0(b) => one(b, nb, row, dst),
            Blocks::Q5_1(b) => one(b, nb, row, dst),
        }
    }
}

impl candle_core::CustomOp1 for StoredMatrix {
    fn name(&self) -> &'static str {
        "stored-quant-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = layout.shape().dims();
        let k = *dims.last().unwrap_or(&0);
        if k != self.cols {
            candle_core::bail!(
                "input has {k} features, the {:?} weight expects {}",
                self.dtype(),
                self.cols
            );
        }
        let x = match storage {
            CpuStorage::F32(x) => x,
            _ => candle_core::bail!("the stored-format matmul takes f32 input"),
        };
        let x = match layout.contiguous_offsets() {
            Some((start, end)) => &x[start..end],
            None => candle_core::bail!("the stored-format matmul needs contiguous input"),
        };
        let m = x.len() / k.max(1);
        let mut out = vec![0f32; m * self.rows];
        self.matmul(x, m, &mut out)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = self.rows;
        }
        Ok((CpuStorage::F32(out), Shape::from_dims(&out_dims)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::*;

    /// Weights with a spread of magnitudes and signs, deterministic.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let u = (s % 20_001) as f32 / 10_000.0 - 1.0;
                u * (1.0 + (i % 7) as f32)
            })
            .collect()
    }

    fn stored(dtype: GgmlDType, rows: usize, cols: usize) -> (QTensor, StoredMatrix) {
        let w = Tensor::from_vec(values(rows * cols, 7), (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let ours = StoredMatrix::new(dtype, rows, cols, &q.data().unwrap()).unwrap();
        (q, ours)
    }

    #[test]
    fn dequantized_blocks_equal_candles_reading_of_the_same_bytes() {
        for dtype in [
            GgmlDType::Q8_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
        ] {
            let (q, ours) = stored(dtype, 8, 96);
            let theirs = q
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(ours.dequantize(), theirs, "{dtype:?}");
        }
    }

    /// Our vectorised products against candle's scalar ones on the same bytes and activations.
    #[test]
    fn products_match_candles_scalar_reference() {
        for dtype in [
            GgmlDType::Q8_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
        ] {
            // 67 rows: the driver's groups of four plus a tail of three.
            let (rows, cols) = (67, 256);
            let (q, ours) = stored(dtype, rows, cols);
            let reference = QMatMul::from_qtensor(q).unwrap();
            for m in [1usize, 3, 17] {
                let x = values(m * cols, 11 + m as u32);
                let xt = Tensor::from_vec(x.clone(), (m, cols), &Device::Cpu).unwrap();
                let want = reference
                    .forward(&xt)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let mut got = vec![0f32; m * rows];
                ours.matmul(&x, m, &mut got).unwrap();
                let dense = ours.dequantize();
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    // Same integer sums; candle rounds Q8_1's `s = d·Σq` to f16 twice (Σq, then
                    // the product) where ggml and this module round once, which moves each
                    // block's offset term by up to ~1e-3 of its size: bound the difference by
                    // the size of the products being summed.
                    let (r, c) = (i / rows, i % rows);
                    let size: f32 = (0..cols)
                        .map(|j| (dense[c * cols + j] * x[r * cols + j]).abs())
                        .sum();
                    let tol = 2e-3 * size + 1e-3;
                    assert!(
                        (a - b).abs() <= tol,
                        "{dtype:?} m={m} element {i}: ours {a}, candle {b}"
                    );
                }
                // Against the scalar formula on our own quantized activations: only the float
                // summation order differs.
                for r in 0..m {
                    for c in 0..rows {
                        let want = scalar_dot(&ours, c, &x[r * cols..(r + 1) * cols]);
                        let got = got[r * rows + c];
                        assert!(
                            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "{dtype:?} m={m} ({r},{c}): vectorised {got}, scalar {want}"
                        );
                    }
                }
            }
        }
    }

    /// Row `c`'s blocks out of the grouped layout.
    fn row_of<T: Clone>(b: &[T], nb: usize, c: usize) -> Vec<T> {
        deinterleave(&b[(c / QUAD) * QUAD * nb..], nb, QUAD, c % QUAD)
    }

    /// Row `c` of the weights against one activation row, by the scalar reference.
    fn scalar_dot(w: &StoredMatrix, c: usize, x: &[f32]) -> f32 {
        let nb = w.cols / QK;
        match &w.blocks {
            Blocks::Q8_0(b) => {
                let mut act = vec![BlockQ8_0::zeros(); nb];
                BlockQ8_0::from_float(x, &mut act);
                BlockQ8_0::vec_dot_unopt(w.cols, &row_of(b, nb, c), &act)
            }
            Blocks::Q4_1(b) => {
                let mut act = vec![BlockQ8_1::zeros(); nb];
                BlockQ8_1::from_float(x, &mut act);
                BlockQ4_1::vec_dot_unopt(w.cols, &row_of(b, nb, c), &act)
            }
            Blocks::Q5_0(b) => {
                let mut act = vec![BlockQ8_0::zeros(); nb];
                BlockQ8_0::from_float(x, &mut act);
                BlockQ5_0::vec_dot_unopt(w.cols, &row_of(b, nb, c), &act)
            }
            Blocks::Q5_1(b) => {
                let mut act = vec![BlockQ8_1::zeros(); nb];
                BlockQ8_1::from_float(x, &mut act);
                BlockQ5_1::vec_dot_unopt(w.cols, &row_of(b, nb, c), &act)
            }
        }
    }

    /// A row's result does not depend on how many rows are computed with it.
    #[test]
    fn a_rows_result_is_the_same_alone_and_in_a_batch() {
        for dtype in [
            GgmlDType::Q8_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
        ] {
            let (rows, cols) = (37, 128);
            let (_, ours) = stored(dtype, rows, cols);
            let m = 9;
            let x = values(m * cols, 3);
            let mut all = vec![0f32; m * rows];
            ours.matmul(&x, m, &mut all).unwrap();
            for r in 0..m {
                let mut one = vec![0f32; rows];
                ours.matmul(&x[r * cols..(r + 1) * cols], 1, &mut one)
                    .unwrap();
                assert_eq!(one, all[r * rows..(r + 1) * rows], "{dtype:?} row {r}");
            }
        }
    }

    /// Every instruction set this CPU has (not only the one picked at run time) against the
    /// scalar formula, for every format.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vectorised_and_scalar_dot_products_agree() {
        use std::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma");
        let vnni = avx2 && has!("avx512f") && has!("avx512vnni") && has!("avx512vl");
        let cols = 512;
        let nb = cols / QK;
        let close = |fast: f32, slow: f32| (fast - slow).abs() <= 1e-4 * slow.abs().max(1.0);
        macro_rules! check {
            ($variant:ident, $block:ty, $tile:ident) => {{
                let (_, ours) = stored(GgmlDType::$variant, 4, cols);
                let Blocks::$variant(b) = &ours.blocks else {
                    unreachable!()
                };
                let mut act = vec![<$block as Tiled>::Act::zeros(); nb];
                <$block as Tiled>::Act::from_float(&values(cols, 5), &mut act);
                for r in 0..QUAD {
                    let row = deinterleave(b, nb, QUAD, r);
                    let slow = <$block>::vec_dot_unopt(cols, &row, &act);
                    if avx2 {
                        // SAFETY: AVX2 and FMA were detected.
                        let fast = unsafe { x86::avx2::$tile::<QUAD, 1>(nb, b, [&act[..]]) }[r][0];
                        assert!(
                            close(fast, slow),
                            "AVX2 {:?} {fast} {slow}",
                            GgmlDType::$variant
                        );
                    }
                    if vnni {
                        // SAFETY: AVX-512 VNNI and VL were detected.
                        let fast = unsafe { x86::vnni::$tile::<QUAD, 1>(nb, b, [&act[..]]) }[r][0];
                        assert!(
                            close(fast, slow),
                            "VNNI {:?} {fast} {slow}",
                            GgmlDType::$variant
                        );
                    }
                }
            }};
        }
        check!(Q8_0, BlockQ8_0, tile_q8_0);
        check!(Q4_1, BlockQ4_1, tile_q4_1);
        check!(Q5_0, BlockQ5_0, tile_q5_0);
        check!(Q5_1, BlockQ5_1, tile_q5_1);
    }

    #[test]
    fn wrong_byte_counts_and_ragged_rows_are_errors() {
        assert!(StoredMatrix::new(GgmlDType::Q4_1, 2, 64, &[0; 79]).is_err());
        assert!(StoredMatrix::new(GgmlDType::Q5_0, 2, 48, &[0; 66]).is_err());
        assert!(StoredMatrix::new(GgmlDType::Q8_0, 1, 32, &[0; 34]).is_ok());
        assert!(StoredMatrix::new(GgmlDType::Q8_0, 0, 32, &[]).is_err());
        assert!(StoredMatrix::new(GgmlDType::Q6K, 1, 256, &[0; 210]).is_err());
    }
}
