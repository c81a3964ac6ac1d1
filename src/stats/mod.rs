//! Statistics for paired safety comparisons of a reference and a candidate model.
//!
//! Every prompt is answered by both models, so verdicts come in pairs
//! `(reference, candidate)`, where `true` means the model *fulfilled* (complied
//! with) the harmful request and `false` means it refused. The four possible pairs
//! are counted in a [`PairedCounts`] table:
//!
//! | | candidate fulfilled | candidate refused |
//! |---|---|---|
//! | **reference fulfilled** | `both_fulfilled` | `ref_fulfilled_cand_refused` (*c*) |
//! | **reference refused** | `ref_refused_cand_fulfilled` (*b*) | `both_refused` |
//!
//! With *n* pairs, the fulfilment rates are `(both_fulfilled + c) / n` for the
//! reference and `(both_fulfilled + b) / n` for the candidate, and the change is
//! `delta = (b - c) / n = candidate rate - reference rate`: positive means the
//! candidate complies more often, i.e. it is *less* safe.
//!
//! The module provides:
//!
//! * [`wilson`]: the Wilson score interval for one rate;
//! * [`mcnemar_exact`] / [`mcnemar_exact_log10`]: the exact (binomial) McNemar test
//!   on the discordant pairs, computed in log space so tiny p-values stay accurate;
//! * [`newcombe_paired_delta`]: Newcombe's (1998) method 10 interval for `delta`;
//! * [`paired_bootstrap_delta`]: a deterministic percentile bootstrap for `delta`;
//! * [`holm`]: Holm–Bonferroni adjusted p-values for a family of tests;
//! * [`cohen_kappa`] / [`cohen_kappa_binary`]: Cohen's kappa agreement.
//!
//! All functions are pure, use only `std`, and never panic: degenerate inputs
//! (no pairs, no discordant pairs, an empty p-value list) get documented values.
//! Values are checked against SciPy, statsmodels and scikit-learn by
//! `tests/stats_fixtures.rs` (fixtures made by `scripts/fixtures/stats_fixtures.py`).

use std::f64::consts::{LN_10, LN_2, PI};

/// The standard normal quantile for a two-sided 95% interval, `Φ⁻¹(0.975)`
/// (the value SciPy's `norm.isf(0.025)` returns).
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A closed confidence interval `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower limit.
    pub low: f64,
    /// Upper limit.
    pub high: f64,
}

impl Interval {
    /// Whether `x` lies within the interval, limits included.
    #[must_use]
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }

    /// The interval's width, `high - low`.
    #[must_use]
    pub fn width(&self) -> f64 {
        self.high - self.low
    }
}

/// The 95% Wilson score interval for `successes` out of `n` trials (no continuity
/// correction), matching statsmodels' `proportion_confint(method="wilson")`.
///
/// With `p = successes / n` and `z` = [`Z_95`], the limits are
/// `(p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n)`. They are clamped to
/// `[0, 1]`, the lower limit is exactly 0 when `successes == 0` and the upper limit
/// exactly 1 when `successes == n`. `n == 0` gives `(0, 1)`. `successes` larger
/// than `n` is treated as `n`.
#[must_use]
pub fn wilson(successes: u64, n: u64) -> Interval {
    if n == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let k = successes.min(n);
    let nf = n as f64;
    let p = k as f64 / nf;
    let z2 = Z_95 * Z_95;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let dist = Z_95 * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    let low = if k == 0 {
        0.0
    } else {
        (center - dist).clamp(0.0, 1.0)
    };
    let high = if k == n {
        1.0
    } else {
        (center + dist).clamp(0.0, 1.0)
    };
    Interval { low, high }
}

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

/// Counts of paired verdicts: each prompt answered by both the reference and the
/// candidate model, each answer either fulfilled (complied) or refused.
///
/// See the [module documentation](self) for the table layout. In the notation of
/// Newcombe (1998), with the candidate as the *first* classification and the
/// reference as the *second*: `e = both_fulfilled`, `f = b`, `g = c`,
/// `h = both_refused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PairedCounts {
    /// Both models fulfilled the prompt.
    pub both_fulfilled: u64,
    /// The reference refused and the candidate fulfilled (*b*: the candidate got
    /// less safe on this prompt).
    pub ref_refused_cand_fulfilled: u64,
    /// The reference fulfilled and the candidate refused (*c*: the candidate got
    /// safer on this prompt).
    pub ref_fulfilled_cand_refused: u64,
    /// Both models refused the prompt.
    pub both_refused: u64,
}

impl PairedCounts {
    /// The number of pairs (saturating at `u64::MAX`).
    #[must_use]
    pub fn n(&self) -> u64 {
        self.both_fulfilled
            .saturating_add(self.ref_refused_cand_fulfilled)
            .saturating_add(self.ref_fulfilled_cand_refused)
            .saturating_add(self.both_refused)
    }

    /// Counts pairs of `(reference_fulfilled, candidate_fulfilled)` verdicts.
    #[must_use]
    pub fn from_pairs<I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (bool, bool)>,
    {
        let mut counts = Self::default();
        for (reference, candidate) in pairs {
            let cell = match (reference, candidate) {
                (true, true) => &mut counts.both_fulfilled,
                (false, true) => &mut counts.ref_refused_cand_fulfilled,
                (true, false) => &mut counts.ref_fulfilled_cand_refused,
                (false, false) => &mut counts.both_refused,
            };
            *cell = cell.saturating_add(1);
        }
        counts
    }

    /// The reference model's fulfilment rate, `(both_fulfilled + c) / n`; 0 when
    /// there are no pairs.
    #[must_use]
    pub fn reference_rate(&self) -> f64 {
        ratio_or_zero(
            self.both_fulfilled
                .saturating_add(self.ref_fulfilled_cand_refused),
            self.n(),
        )
    }

    /// The candidate model's fulfilment rate, `(both_fulfilled + b) / n`; 0 when
    /// there are no pairs.
    #[must_use]
    pub fn candidate_rate(&self) -> f64 {
        ratio_or_zero(
            self.both_fulfilled
                .saturating_add(self.ref_refused_cand_fulfilled),
            self.n(),
        )
    }

    /// The change in fulfilment rate, `delta = (b - c) / n`, which equals
    /// `candidate_rate() - reference_rate()`; 0 when there are no pairs.
    #[must_use]
    pub fn delta(&self) -> f64 {
        let n = self.n();
        if n == 0 {
            return 0.0;
        }
        (self.ref_refused_cand_fulfilled as f64 - self.ref_fulfilled_cand_refused as f64) / n as f64
    }
}

/// `num / den` as `f64`, or 0 when `den == 0`.
fn ratio_or_zero(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// 95% interval for `delta` = candidate rate − reference rate, by Newcombe's
/// method 10 for paired proportions (Newcombe 1998, *Improved confidence intervals
/// for the difference between binomial proportions based on paired data*, Stat Med
/// 17:2635–2650).
///
/// With the candidate as Newcombe's first classification (`e = both_fulfilled`,
/// `f = b`, `g = c`, `h = both_refused`), `p₁ = (e + f)/n` (candidate rate),
/// `p₂ = (e + g)/n` (reference rate) and their Wilson intervals `(l₁, u₁)`,
/// `(l₂, u₂)` from [`wilson`]:
///
/// * `low  = delta − √((p₁ − l₁)² − 2φ(p₁ − l₁)(u₂ − p₂) + (u₂ − p₂)²)`
/// * `high = delta + √((u₁ − p₁)² − 2φ(u₁ − p₁)(p₂ − l₂) + (p₂ − l₂)²)`
///
/// where `φ = C / √((e+f)(g+h)(e+g)(f+h))` and, as in the paper's method 10,
/// `A = eh − fg` is adjusted to `C = A − n/2` if `A > n/2`, `C = 0` if
/// `0 ≤ A ≤ n/2`, and `C = A` if `A < 0`; `φ = 0` if any margin is 0. (The Wilson
/// intervals carry no continuity correction; that is method 11.) This reproduces
/// the paper's worked example `e=20, f=12, g=2, h=16`: 0.0562 to 0.3292.
///
/// The limits are clamped to `[-1, 1]`; `n == 0` gives `(-1, 1)`.
#[must_use]
pub fn newcombe_paired_delta(counts: &PairedCounts) -> Interval {
    let n = counts.n();
    if n == 0 {
        return Interval {
            low: -1.0,
            high: 1.0,
        };
    }
    let e = counts.both_fulfilled;
    let f = counts.ref_refused_cand_fulfilled;
    let g = counts.ref_fulfilled_cand_refused;
    let h = counts.both_refused;
    let nf = n as f64;

    let first = e.saturating_add(f); // candidate fulfilled
    let second = e.saturating_add(g); // reference fulfilled
    let p1 = first as f64 / nf;
    let p2 = second as f64 / nf;
    let w1 = wilson(first, n);
    let w2 = wilson(second, n);
    let phi = newcombe_phi(e, f, g, h, nf);
    let delta = counts.delta();

    let (d1, d2) = (p1 - w1.low, w2.high - p2);
    let lower = (d1 * d1 - 2.0 * phi * d1 * d2 + d2 * d2).max(0.0).sqrt();
    let (e1, e2) = (w1.high - p1, p2 - w2.low);
    let upper = (e1 * e1 - 2.0 * phi * e1 * e2 + e2 * e2).max(0.0).sqrt();
    Interval {
        low: (delta - lower).clamp(-1.0, 1.0),
        high: (delta + upper).clamp(-1.0, 1.0),
    }
}

/// Newcombe's method-10 correlation estimate for the 2x2 table `[[e, f], [g, h]]`.
fn newcombe_phi(e: u64, f: u64, g: u64, h: u64, n: f64) -> f64 {
    let margins = [
        e.saturating_add(f),
        g.saturating_add(h),
        e.saturating_add(g),
        f.saturating_add(h),
    ];
    if margins.contains(&0) {
        return 0.0;
    }
    // A = eh - fg, exact in u128 before one rounding to f64.
    let eh = u128::from(e) * u128::from(h);
    let fg = u128::from(f) * u128::from(g);
    let a = if eh >= fg {
        (eh - fg) as f64
    } else {
        -((fg - eh) as f64)
    };
    let half_n = n / 2.0;
    let adjusted = if a > half_n {
        a - half_n
    } else if a >= 0.0 {
        0.0
    } else {
        a
    };
    let [m1, m2, m3, m4] = margins.map(|m| m as f64);
    let denom = (m1 * m2).sqrt() * (m3 * m4).sqrt();
    if denom > 0.0 {
        (adjusted / denom).clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// 95% percentile-bootstrap interval for `delta`, resampling the `n` pairs with
/// replacement `replicates` times from a `SplitMix64` generator seeded with `seed`
/// (deterministic: the same inputs always give the same interval).
///
/// Each replicate draws `n` uniform indices `u = ⌊r·n / 2⁶⁴⌋` from successive
/// 64-bit outputs `r`; an index below `b` counts as a *b* pair, one in `[b, b + c)`
/// as a *c* pair, and the replicate's statistic is `(b* − c*)/n`. The limits are the
/// 2.5% and 97.5% quantiles of the sorted replicates with linear interpolation
/// (`numpy.percentile`'s default method). Cost is `O(n · replicates)`.
///
/// `n == 0` or `replicates == 0` gives `(-1, 1)`.
#[must_use]
pub fn paired_bootstrap_delta(counts: &PairedCounts, replicates: u32, seed: u64) -> Interval {
    let n = counts.n();
    if n == 0 || replicates == 0 {
        return Interval {
            low: -1.0,
            high: 1.0,
        };
    }
    let b = counts.ref_refused_cand_fulfilled;
    let bc = b.saturating_add(counts.ref_fulfilled_cand_refused);
    let nf = n as f64;
    let mut rng = SplitMix64::new(seed);
    let mut stats = Vec::with_capacity(replicates as usize);
    for _ in 0..replicates {
        let (mut nb, mut nc) = (0_u64, 0_u64);
        for _ in 0..n {
            let u = ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64;
            if u < b {
                nb += 1;
            } else if u < bc {
                nc += 1;
            }
        }
        stats.push((nb as f64 - nc as f64) / nf);
    }
    stats.sort_by(f64::total_cmp);
    Interval {
        low: quantile_sorted(&stats, 0.025),
        high: quantile_sorted(&stats, 0.975),
    }
}

/// Linear-interpolation quantile of sorted, non-empty data (`numpy.percentile`'s `linear`).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let Some(&last) = sorted.last() else {
        return f64::NAN;
    };
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor();
    let t = pos - lo;
    let i = lo as usize;
    match (sorted.get(i), sorted.get(i + 1)) {
        (Some(&a), Some(&b)) => {
            if t >= 0.5 {
                b - (b - a) * (1.0 - t)
            } else {
                a + (b - a) * t
            }
        }
        (Some(&a), None) => a,
        _ => last,
    }
}

/// The `SplitMix64` generator (Steele, Lea & Flood 2014): tiny, fast, deterministic.
#[derive(Debug, Clone)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Holm–Bonferroni step-down adjusted p-values, in the order given.
///
/// Sorting ascending, the `i`-th smallest (0-based) of `m` p-values becomes
/// `min(1, max_{j ≤ i} p₍ⱼ₎ · (m − j))`, so adjusted values are never below the
/// raw ones and are monotone in the raw ones; ties get equal adjusted values. This
/// equals statsmodels' `multipletests(p, method="holm")[1]`.
///
/// Inputs are expected in `[0, 1]`; a NaN is treated as 1 and other values are
/// clamped to `[0, 1]`, so the output never contains NaN. An empty slice gives an
/// empty vector.
#[must_use]
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let cleaned: Vec<f64> = p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| cleaned[i].total_cmp(&cleaned[j]));
    let mut adjusted = vec![1.0; m];
    let mut running = 0.0_f64;
    for (rank, &idx) in order.iter().enumerate() {
        running = running.max(cleaned[idx] * (m - rank) as f64);
        adjusted[idx] = running.min(1.0);
    }
    adjusted
}

/// Cohen's kappa from a square confusion matrix of counts, where
/// `confusion[i][j]` counts items that the first rater put in category `i` and the
/// second in category `j`.
///
/// `kappa = (pₒ − pₑ) / (1 − pₑ)` with observed agreement `pₒ = Σᵢ confusion[i][i] / N`
/// and chance agreement `pₑ = Σᵢ rowᵢ · colᵢ / N²`. This matches scikit-learn's
/// `cohen_kappa_score` (unweighted).
///
/// Convention: when `pₒ = pₑ = 1` (both raters put every item in one and the same
/// category) kappa is defined as 1 (perfect agreement), where scikit-learn returns
/// NaN unless given `replace_undefined_by=1.0`.
///
/// Returns `None` when kappa is undefined: no items (`N = 0`), an empty or
/// non-square matrix, or counts so large that the arithmetic overflows.
#[must_use]
pub fn cohen_kappa(confusion: &[Vec<u64>]) -> Option<f64> {
    let k = confusion.len();
    if k == 0 || confusion.iter().any(|row| row.len() != k) {
        return None;
    }
    let mut rows = vec![0_u128; k];
    let mut cols = vec![0_u128; k];
    let mut total = 0_u128;
    let mut diagonal = 0_u128;
    let mut nonzero_cells = 0_usize;
    for (i, row) in confusion.iter().enumerate() {
        for (j, &count) in row.iter().enumerate() {
            let count = u128::from(count);
            rows[i] += count;
            cols[j] += count;
            total += count;
            if i == j {
                diagonal += count;
            }
            if count > 0 {
                nonzero_cells += 1;
            }
        }
    }
    if total == 0 {
        return None;
    }
    if nonzero_cells == 1 && diagonal == total {
        // Everything in one shared category: p_o = p_e = 1.
        return Some(1.0);
    }
    let n = total as f64;
    let observed = diagonal as f64 / n;
    let expected: f64 = rows
        .iter()
        .zip(&cols)
        .map(|(&r, &c)| (r as f64 / n) * (c as f64 / n))
        .sum();
    let kappa = (observed - expected) / (1.0 - expected);
    kappa.is_finite().then_some(kappa)
}

/// Cohen's kappa for two raters' binary labels, given as `(first, second)` pairs,
/// plus the 2x2 confusion counts `confusion[first as usize][second as usize]`
/// (index 0 = `false`, 1 = `true`; rows are the first rater).
///
/// Kappa follows [`cohen_kappa`]: `None` for no pairs, and 1 when both raters gave
/// every item the same single label.
#[must_use]
pub fn cohen_kappa_binary<I>(pairs: I) -> (Option<f64>, [[u64; 2]; 2])
where
    I: IntoIterator<Item = (bool, bool)>,
{
    let mut confusion = [[0_u64; 2]; 2];
    for (first, second) in pairs {
        let cell = &mut confusion[usize::from(first)][usize::from(second)];
        *cell = cell.saturating_add(1);
    }
    let matrix: Vec<Vec<u64>> = confusion.iter().map(|row| row.to_vec()).collect();
    (cohen_kappa(&matrix), confusion)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()) || (a - b).abs() <= 1e-15
    }

    #[test]
    fn wilson_contains_estimate_and_stays_in_unit_interval() {
        for n in 0..=60_u64 {
            for k in 0..=n {
                let w = wilson(k, n);
                assert!(
                    0.0 <= w.low && w.low <= w.high && w.high <= 1.0,
                    "{k}/{n}: {w:?}"
                );
                if n > 0 {
                    let p = k as f64 / n as f64;
                    assert!(w.contains(p), "{k}/{n}: {w:?}");
                    // Symmetry: k of n mirrors n - k of n.
                    let m = wilson(n - k, n);
                    assert!(
                        close(w.low, 1.0 - m.high, 1e-12) || (w.low - (1.0 - m.high)).abs() < 1e-15
                    );
                }
            }
        }
        assert_eq!(
            wilson(0, 0),
            Interval {
                low: 0.0,
                high: 1.0
            }
        );
        assert_eq!(wilson(7, 3), wilson(3, 3));
        for &n in &[1_000_u64, 123_457, u64::MAX] {
            for &k in &[0, 1, n / 3, n - 1, n] {
                let w = wilson(k, n);
                assert!(0.0 <= w.low && w.low <= w.high && w.high <= 1.0);
            }
        }
    }

    #[test]
    fn wilson_known_value() {
        // statsmodels proportion_confint(15, 148, method="wilson").
        let w = wilson(15, 148);
        assert!(
            (w.low - 0.062_4).abs() < 5e-5 && (w.high - 0.160_5).abs() < 5e-5,
            "{w:?}"
        );
    }

    #[test]
    fn mcnemar_symmetric_bounded_and_edge_cases() {
        for b in 0..40_u64 {
            for c in 0..40_u64 {
                let p = mcnemar_exact(b, c);
                assert_eq!(p, mcnemar_exact(c, b));
                assert!((0.0..=1.0).contains(&p));
                if b == c {
                    assert_eq!(p, 1.0);
                }
            }
        }
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact_log10(0, 0), 0.0);
        // P = 2 * 0.5^n for c = 0.
        assert!(close(mcnemar_exact(0, 30), 2.0 * 0.5_f64.powi(30), 1e-13));
        assert!(close(mcnemar_exact(1, 0), 1.0, 1e-15));
        // No underflow for representable tiny values; log10 for unrepresentable ones.
        let p = mcnemar_exact(247, 4);
        assert!(p > 0.0 && p < 1e-60);
        let l = mcnemar_exact_log10(5000, 0);
        assert!(
            close(l, (2.0_f64).log10() - 5000.0 * 2.0_f64.log10(), 1e-13),
            "{l}"
        );
        assert!(mcnemar_exact(1000, 0) > 0.0);
        // Huge inputs do not panic or overflow.
        let l = mcnemar_exact_log10(u64::MAX, 0);
        assert!(l.is_finite() && l < 0.0);
        let p = mcnemar_exact(u64::MAX, u64::MAX - 1);
        assert!((0.0..=1.0).contains(&p));
    }

    #[test]
    fn mcnemar_matches_direct_sum_for_small_n() {
        for n in 1..=60_u32 {
            for k in 0..=n / 2 {
                let mut tail = 0.0_f64;
                let mut coef = 1.0_f64; // C(n, i)
                for i in 0..=k {
                    if i > 0 {
                        coef = coef * f64::from(n - i + 1) / f64::from(i);
                    }
                    tail += coef;
                }
                let want = (2.0 * tail * 0.5_f64.powi(n as i32)).min(1.0);
                let got = mcnemar_exact(u64::from(k), u64::from(n - k));
                assert!(close(got, want, 1e-12), "k={k} n={n}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn paired_counts_from_pairs_and_rates() {
        let pairs = [
            (true, true),
            (false, true),
            (false, true),
            (true, false),
            (false, false),
        ];
        let c = PairedCounts::from_pairs(pairs);
        assert_eq!(
            c,
            PairedCounts {
                both_fulfilled: 1,
                ref_refused_cand_fulfilled: 2,
                ref_fulfilled_cand_refused: 1,
                both_refused: 1
            }
        );
        assert_eq!(c.n(), 5);
        assert!(close(c.reference_rate(), 0.4, 1e-15));
        assert!(close(c.candidate_rate(), 0.6, 1e-15));
        assert!(close(c.delta(), 0.2, 1e-15));
        let empty = PairedCounts::default();
        assert_eq!(
            (
                empty.n(),
                empty.reference_rate(),
                empty.candidate_rate(),
                empty.delta()
            ),
            (0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn newcombe_reproduces_published_examples() {
        // (e, f, g, h, low, high, decimals) with e..h in Newcombe's notation.
        let cases: [(u64, u64, u64, u64, f64, f64, i32); 4] = [
            (20, 12, 2, 16, 0.0562, 0.3292, 4),   // Newcombe 1998, method 10
            (59, 6, 16, 80, -0.1186, -0.0046, 4), // Fagerland et al., Cavo 2012 data
            (1, 1, 7, 12, -0.507, -0.026, 3),     // Fagerland et al. 2014, Bentur data
            (8, 3, 1, 2, -0.1574, 0.4136, 4),     // Tang et al. 2010
        ];
        for (e, f, g, h, low, high, dp) in cases {
            let counts = PairedCounts {
                both_fulfilled: e,
                ref_refused_cand_fulfilled: f,
                ref_fulfilled_cand_refused: g,
                both_refused: h,
            };
            let ci = newcombe_paired_delta(&counts);
            let tol = 0.5 * 10_f64.powi(-dp) + 1e-12;
            assert!(
                (ci.low - low).abs() <= tol && (ci.high - high).abs() <= tol,
                "{counts:?}: {ci:?}"
            );
        }
    }

    #[test]
    fn newcombe_contains_delta_and_bounds() {
        for e in 0..6_u64 {
            for f in 0..6_u64 {
                for g in 0..6_u64 {
                    for h in 0..6_u64 {
                        let counts = PairedCounts {
                            both_fulfilled: e,
                            ref_refused_cand_fulfilled: f,
                            ref_fulfilled_cand_refused: g,
                            both_refused: h,
                        };
                        let ci = newcombe_paired_delta(&counts);
                        assert!(
                            -1.0 <= ci.low && ci.low <= ci.high && ci.high <= 1.0,
                            "{counts:?}"
                        );
                        if counts.n() > 0 {
                            assert!(ci.contains(counts.delta()), "{counts:?}: {ci:?}");
                        }
                        // Swapping the models mirrors the interval.
                        let swapped = PairedCounts {
                            ref_refused_cand_fulfilled: g,
                            ref_fulfilled_cand_refused: f,
                            ..counts
                        };
                        let m = newcombe_paired_delta(&swapped);
                        assert!((ci.low + m.high).abs() < 1e-12 && (ci.high + m.low).abs() < 1e-12);
                    }
                }
            }
        }
        let empty = newcombe_paired_delta(&PairedCounts::default());
        assert_eq!(
            empty,
            Interval {
                low: -1.0,
                high: 1.0
            }
        );
        let huge = PairedCounts {
            both_fulfilled: u64::MAX,
            ref_refused_cand_fulfilled: u64::MAX,
            ref_fulfilled_cand_refused: 3,
            both_refused: u64::MAX,
        };
        let ci = newcombe_paired_delta(&huge);
        assert!(ci.low.is_finite() && ci.high.is_finite());
    }

    #[test]
    fn holm_properties() {
        assert!(holm(&[]).is_empty());
        let raw = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9, 0.0, 1.0];
        let adj = holm(&raw);
        assert_eq!(adj.len(), raw.len());
        for (i, (&r, &a)) in raw.iter().zip(&adj).enumerate() {
            assert!(a >= r && a <= 1.0, "{i}");
            for (&r2, &a2) in raw.iter().zip(&adj) {
                if r <= r2 {
                    assert!(a <= a2);
                }
                if r == r2 {
                    assert_eq!(a, a2);
                }
            }
        }
        // Hand-computed: sorted 0.01, 0.02, 0.03 -> 0.03, 0.04, 0.04.
        assert_eq!(holm(&[0.03, 0.01, 0.02]), vec![0.04, 0.03, 0.04]);
        assert_eq!(holm(&[f64::NAN, 0.01]), vec![1.0, 0.02]);
        assert!(holm(&[f64::NAN, -1.0, 2.0, f64::INFINITY])
            .iter()
            .all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn kappa_cases() {
        assert_eq!(cohen_kappa(&[]), None);
        assert_eq!(cohen_kappa(&[vec![0, 0], vec![0, 0]]), None);
        assert_eq!(cohen_kappa(&[vec![1, 2], vec![3]]), None);
        assert_eq!(cohen_kappa(&[vec![5, 0], vec![0, 0]]), Some(1.0));
        assert_eq!(cohen_kappa(&[vec![0, 0], vec![0, 5]]), Some(1.0));
        assert_eq!(cohen_kappa(&[vec![3, 0], vec![0, 4]]), Some(1.0));
        // Classic example: po = 0.7, pe = 0.5 -> 0.4.
        let k = cohen_kappa(&[vec![20, 5], vec![10, 15]]).unwrap();
        assert!(close(k, 0.4, 1e-12), "{k}");
        // One rater constant, the other not: pe = po -> 0.
        let k = cohen_kappa(&[vec![0, 0], vec![3, 7]]).unwrap();
        assert!(k.abs() < 1e-15, "{k}");
        let (k, m) =
            cohen_kappa_binary([(true, true), (true, false), (false, false), (false, false)]);
        assert_eq!(m, [[2, 0], [1, 1]]);
        assert!(close(k.unwrap(), 0.5, 1e-12));
        assert_eq!(
            cohen_kappa_binary(std::iter::empty()),
            (None, [[0, 0], [0, 0]])
        );
        assert_eq!(cohen_kappa_binary([(true, true); 3]).0, Some(1.0));
        let big = cohen_kappa(&[vec![u64::MAX, u64::MAX], vec![u64::MAX, u64::MAX]]);
        assert!(big.is_none_or(|k| k.is_finite()));
    }

    #[test]
    fn bootstrap_is_deterministic_and_sane() {
        let counts = PairedCounts {
            both_fulfilled: 30,
            ref_refused_cand_fulfilled: 25,
            ref_fulfilled_cand_refused: 5,
            both_refused: 140,
        };
        let a = paired_bootstrap_delta(&counts, 500, 42);
        assert_eq!(a, paired_bootstrap_delta(&counts, 500, 42));
        assert!(a.contains(counts.delta()), "{a:?}");
        let nc = newcombe_paired_delta(&counts);
        assert!(
            (a.low - nc.low).abs() < 0.03 && (a.high - nc.high).abs() < 0.03,
            "{a:?} {nc:?}"
        );
        assert_eq!(
            paired_bootstrap_delta(&PairedCounts::default(), 100, 1),
            Interval {
                low: -1.0,
                high: 1.0
            }
        );
        assert_eq!(
            paired_bootstrap_delta(&counts, 0, 1),
            Interval {
                low: -1.0,
                high: 1.0
            }
        );
        let mut rng = SplitMix64::new(0);
        // Reference output of SplitMix64 seeded with 0.
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
