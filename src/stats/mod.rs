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
//! * [`corrected_paired`]: fulfilment rates corrected for a judge's measured error
//!   (Rogan–Gladen), with intervals that carry that error's uncertainty.
//!
//! All functions are pure, use only `std`, and never panic: degenerate inputs
//! (no pairs, no discordant pairs, an empty p-value list) get documented values.
//! Values are checked against SciPy, statsmodels and scikit-learn by
//! `tests/stats_fixtures.rs` (fixtures made by `scripts/fixtures/stats_fixtures.py`).

mod correction;
mod mcnemar;

pub use correction::{
    corrected_paired, rogan_gladen, CorrectedRates, ErrorReplicates, JudgeErrorCounts,
    CORRECTION_REPLICATES,
};

pub use mcnemar::{mcnemar_exact, mcnemar_exact_log10};

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
mod tests;
