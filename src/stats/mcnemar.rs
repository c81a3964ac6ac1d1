//! The exact McNemar test on the discordant pairs, in log space so that p-values far below
//! `f64`'s range (1e-300) still come out right: Loader's saddle-point binomial terms.

use std::f64::consts::{LN_10, LN_2, PI};

/// Two-sided exact McNemar p-value for `b` and `c` discordant pairs.
///
/// `p = min(1, 2·P[X ≤ min(b, c)])` with `X ~ Binomial(b + c, 1/2)`, and `p = 1`
/// when `b + c == 0`; symmetric in `b` and `c`. This is the p-value of SciPy's
/// `binomtest(b, b + c, 0.5)` and statsmodels' `mcnemar(table, exact=True)`.
///
/// The tail is summed in log space (see [`mcnemar_exact_log10`]), so results are
/// accurate to about 1e-13 relative even for tiny p-values such as `b = 247,
/// c = 4` (≈ 9e-68). Only a p-value below the smallest positive `f64`
/// (≈ 5e-324) returns 0; use [`mcnemar_exact_log10`] to report those.
#[must_use]
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    mcnemar_exact_ln(b, c).exp()
}

/// Base-10 logarithm of the exact McNemar p-value of [`mcnemar_exact`].
///
/// Always finite and `≤ 0` (0 when `b + c == 0`), even where the p-value itself
/// underflows an `f64`, e.g. `b = 5000, c = 0` gives `log10 p ≈ -1504.86`.
/// Accurate to double precision for `b + c` up to about 10¹⁴ pairs.
#[must_use]
pub fn mcnemar_exact_log10(b: u64, c: u64) -> f64 {
    mcnemar_exact_ln(b, c) / LN_10
}

/// Natural log of the exact McNemar p-value.
fn mcnemar_exact_ln(b: u64, c: u64) -> f64 {
    if b == c {
        // P[X <= n/2] >= 1/2 for a symmetric binomial, so the doubled tail is >= 1.
        return 0.0;
    }
    let k = b.min(c);
    // u128 so that b + c cannot overflow.
    let n = u128::from(b) + u128::from(c);
    let nf = n as f64;
    let kf = k as f64;
    // ln P[X = k], then the lower tail as P[X = k] * sum_{i <= k} P[X = i] / P[X = k],
    // the ratios coming from P[X = i - 1] / P[X = i] = i / (n - i + 1) <= 1.
    let ln_pk = ln_binom_half_pmf(kf, nf);
    let mut ratio = 1.0_f64;
    let mut sum = 1.0_f64;
    let mut i = k;
    let mut steps: u64 = 0;
    while i > 0 && steps < TAIL_MAX_TERMS {
        let num = i as f64;
        let den = (n - u128::from(i) + 1) as f64;
        ratio *= num / den;
        sum += ratio;
        if ratio <= sum * (f64::EPSILON / 4.0) {
            break;
        }
        i -= 1;
        steps += 1;
    }
    let ln_tail = ln_pk + sum.ln();
    (LN_2 + ln_tail).min(0.0)
}

/// Upper bound on the terms summed for a McNemar tail; enough for full double
/// precision up to roughly 10¹⁴ discordant pairs (beyond that the terms near the
/// centre decay too slowly and the tail is slightly underestimated).
const TAIL_MAX_TERMS: u64 = 1 << 26;

/// `ln P[X = x]` for `X ~ Binomial(n, 1/2)` and integer-valued `0 <= x <= n`, via
/// Loader's saddle-point expansion (the algorithm of R's `dbinom`), which keeps full
/// relative precision for any `n`.
fn ln_binom_half_pmf(x: f64, n: f64) -> f64 {
    if x <= 0.0 || x >= n {
        return -n * LN_2;
    }
    let half = n / 2.0;
    let lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, half) - bd0(n - x, half);
    let lf = (2.0 * PI).ln() + x.ln() + (-x / n).ln_1p();
    lc - 0.5 * lf
}

/// `ln(sqrt(2π))`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Stirling's formula error for integer-valued `n >= 1`:
/// `ln n! - (n + 1/2) ln n + n - ln √(2π)`.
fn stirlerr(n: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if n <= 15.0 {
        // n! is exact in an f64 up to 18!, so ln n! is correctly rounded here and the
        // cancellation leaves an absolute error of a few 1e-15 at worst.
        let mut fact = 1.0_f64;
        let mut i = 2.0_f64;
        while i <= n {
            fact *= i;
            i += 1.0;
        }
        return fact.ln() - (n + 0.5) * n.ln() + n - LN_SQRT_2PI;
    }
    let nn = n * n;
    if n > 15_000.0 {
        return (S0 - S1 / nn) / n;
    }
    if n > 1_500.0 {
        return (S0 - (S1 - S2 / nn) / nn) / n;
    }
    if n > 80.0 {
        return (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n;
    }
    (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
}

/// Deviance term `x ln(x / np) + np - x`, computed without cancellation when `x`
/// is close to `np` (Loader 2000). Requires `x > 0` and `np > 0`.
fn bd0(x: f64, np: f64) -> f64 {
    if (x - np).abs() < 0.1 * (x + np) {
        let v = (x - np) / (x + np);
        let mut s = (x - np) * v;
        if s.abs() < f64::MIN_POSITIVE {
            return s;
        }
        let mut ej = 2.0 * x * v;
        let v2 = v * v;
        let mut j = 1.0_f64;
        while j < 1000.0 {
            ej *= v2;
            let s1 = s + ej / (2.0 * j + 1.0);
            if s1 == s {
                return s1;
            }
            s = s1;
            j += 1.0;
        }
        return s;
    }
    x * (x / np).ln() + np - x
}
