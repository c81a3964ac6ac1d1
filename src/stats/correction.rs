//! Fulfilment rates corrected for the judge's own error.
//!
//! A judge with sensitivity `Se` (fulfilled answers it calls fulfilled) and specificity `Sp`
//! (not-fulfilled answers it calls not fulfilled) reports an observed rate
//! `p_obs = Se·p + (1 − Sp)·(1 − p)` for a true rate `p`. The Rogan–Gladen (1978) estimator
//! inverts that: `p = (p_obs + Sp − 1) / (Se + Sp − 1)`, clipped to `[0, 1]`.
//!
//! `Se` and `Sp` are themselves measured on a labelled set, so an interval on the corrected
//! rate must carry their uncertainty as well as the sampling of prompts. [`corrected_paired`]
//! does that with a deterministic bootstrap (as garak corrects its intervals for detector
//! error): each replicate resamples the audit's prompt pairs *and* the labelled set's two
//! classes ([`ErrorReplicates`]), and corrects the replicate's rates with the replicate's
//! `Se` and `Sp`.

use super::{quantile_sorted, PairedCounts, SplitMix64};

/// Bootstrap replicates an audit draws for its corrected figures (garak uses 10,000 too).
pub const CORRECTION_REPLICATES: u32 = 10_000;

/// How one judge's labels compare with labels people gave, on answers both labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize)]
pub struct JudgeErrorCounts {
    /// Fulfilled answers the judge called fulfilled.
    pub fulfilled_judged_fulfilled: u64,
    /// Fulfilled answers the judge called not fulfilled (missed fulfilment).
    pub fulfilled_judged_refused: u64,
    /// Not-fulfilled answers the judge called not fulfilled.
    pub refused_judged_refused: u64,
    /// Not-fulfilled answers the judge called fulfilled (missed refusals).
    pub refused_judged_fulfilled: u64,
}

impl JudgeErrorCounts {
    /// Counts `(truly_fulfilled, judged_fulfilled)` pairs.
    #[must_use]
    pub fn from_pairs<I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (bool, bool)>,
    {
        let mut counts = Self::default();
        for (truth, judged) in pairs {
            let cell = match (truth, judged) {
                (true, true) => &mut counts.fulfilled_judged_fulfilled,
                (true, false) => &mut counts.fulfilled_judged_refused,
                (false, false) => &mut counts.refused_judged_refused,
                (false, true) => &mut counts.refused_judged_fulfilled,
            };
            *cell = cell.saturating_add(1);
        }
        counts
    }

    /// Answers that are truly fulfilled.
    #[must_use]
    pub fn fulfilled(&self) -> u64 {
        self.fulfilled_judged_fulfilled
            .saturating_add(self.fulfilled_judged_refused)
    }

    /// Answers that are truly not fulfilled.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.refused_judged_refused
            .saturating_add(self.refused_judged_fulfilled)
    }

    /// Every labelled answer.
    #[must_use]
    pub fn n(&self) -> u64 {
        self.fulfilled().saturating_add(self.refused())
    }

    /// Sensitivity for fulfilment: the share of fulfilled answers called fulfilled (`None`
    /// without any).
    #[must_use]
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(self.fulfilled_judged_fulfilled, self.fulfilled())
    }

    /// Specificity: the share of not-fulfilled answers called not fulfilled (`None` without
    /// any). This is the judge's recall for "not fulfilled".
    #[must_use]
    pub fn specificity(&self) -> Option<f64> {
        ratio(self.refused_judged_refused, self.refused())
    }

    /// Precision for "not fulfilled": of the answers the judge called not fulfilled, the
    /// share that are.
    #[must_use]
    pub fn refusal_precision(&self) -> Option<f64> {
        ratio(
            self.refused_judged_refused,
            self.refused_judged_refused
                .saturating_add(self.fulfilled_judged_refused),
        )
    }

    /// Share of answers the judge labels as people did.
    #[must_use]
    pub fn accuracy(&self) -> Option<f64> {
        ratio(
            self.fulfilled_judged_fulfilled
                .saturating_add(self.refused_judged_refused),
            self.n(),
        )
    }
}

fn ratio(k: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

/// The Rogan–Gladen estimate of a true rate from an observed one, clipped to `[0, 1]`.
/// `None` when `Se + Sp ≤ 1`: such a judge is no better than a coin and nothing can be
/// corrected.
#[must_use]
pub fn rogan_gladen(observed: f64, sensitivity: f64, specificity: f64) -> Option<f64> {
    let youden = sensitivity + specificity - 1.0;
    (youden > 1e-9).then(|| ((observed + specificity - 1.0) / youden).clamp(0.0, 1.0))
}

/// Both models' fulfilment rates and their change, corrected for judge error, with 95%
/// intervals that include the uncertainty of the judge's measured error.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct CorrectedRates {
    /// Corrected reference fulfilment rate.
    pub reference: f64,
    /// Its interval.
    pub reference_ci: [f64; 2],
    /// Corrected candidate fulfilment rate.
    pub candidate: f64,
    /// Its interval.
    pub candidate_ci: [f64; 2],
    /// Corrected candidate minus corrected reference.
    pub delta: f64,
    /// Its interval.
    pub delta_ci: [f64; 2],
    /// An observed rate lay outside what the judge's measured error allows (below `1 − Sp` or
    /// above `Se`), so its estimate was clipped to 0 or 1: on a pooled figure this says the
    /// judge errs differently on these answers than on the answers its error was measured on.
    pub clipped: bool,
    /// The judge's own (uncorrected) rates, reference and candidate, that were corrected.
    pub observed: [f64; 2],
}

/// A judge's measured sensitivity and specificity with bootstrap replicates of both, drawn
/// once and shared by every group an audit corrects (so the categories and the pooled figure
/// see the same draws of the judge's error).
#[derive(Debug, Clone)]
pub struct ErrorReplicates {
    sensitivity: f64,
    specificity: f64,
    /// `(Se*, Sp*)` per replicate: the labelled set's fulfilled and not-fulfilled answers
    /// drawn again with replacement (each class keeps its size, so each is a binomial draw
    /// around the measured value).
    draws: Vec<(f64, f64)>,
}

impl ErrorReplicates {
    /// Draws `replicates` bootstrap replicates of `errors` from a generator seeded with
    /// `seed`. `None` when either class is empty or `Se + Sp ≤ 1`.
    #[must_use]
    pub fn new(errors: &JudgeErrorCounts, replicates: u32, seed: u64) -> Option<Self> {
        let sensitivity = errors.sensitivity()?;
        let specificity = errors.specificity()?;
        if sensitivity + specificity <= 1.0 + 1e-9 {
            return None;
        }
        let mut rng = SplitMix64::new(seed);
        let (fulfilled, refused) = (errors.fulfilled(), errors.refused());
        // Drawn around (k + ½)/(n + 1) rather than k/n: a judge right on all of 30 labels is
        // not known to be perfect, and a draw around exactly 1 would carry no uncertainty.
        let smoothed = |k: u64, n: u64| (k as f64 + 0.5) / (n as f64 + 1.0);
        let se_draw = smoothed(errors.fulfilled_judged_fulfilled, fulfilled);
        let sp_draw = smoothed(errors.refused_judged_refused, refused);
        let draws = (0..replicates)
            .map(|_| {
                let se = binomial(&mut rng, fulfilled, se_draw) as f64 / fulfilled as f64;
                let sp = binomial(&mut rng, refused, sp_draw) as f64 / refused as f64;
                (se, sp)
            })
            .collect();
        Some(Self {
            sensitivity,
            specificity,
            draws,
        })
    }
}

/// Corrects a paired table for judge error, with a deterministic bootstrap seeded with
/// `seed`.
///
/// Replicate `i` draws the `n` pairs again with replacement and applies [`rogan_gladen`] to
/// both observed rates with the `i`-th `(Se*, Sp*)` of `errors`; a replicate whose
/// `Se* + Sp* ≤ 1` is dropped. The limits are the 2.5% and 97.5% percentiles of the kept
/// replicates, widened where needed to the Wilson (rates) and Newcombe (change) intervals
/// corrected with the measured Se and Sp, so a category of three prompts never gets a
/// narrower interval than its uncorrected one.
///
/// `None` when there are no pairs, or when fewer than half the replicates could be corrected.
#[must_use]
pub fn corrected_paired(
    counts: &PairedCounts,
    errors: &ErrorReplicates,
    seed: u64,
) -> Option<CorrectedRates> {
    let n = counts.n();
    if n == 0 || errors.draws.is_empty() {
        return None;
    }
    let (se, sp) = (errors.sensitivity, errors.specificity);
    let reference = rogan_gladen(counts.reference_rate(), se, sp)?;
    let candidate = rogan_gladen(counts.candidate_rate(), se, sp)?;
    let outside = |observed: f64| observed < 1.0 - sp - 1e-12 || observed > se + 1e-12;
    let clipped = outside(counts.reference_rate()) || outside(counts.candidate_rate());

    let mut rng = SplitMix64::new(seed);
    let cells = [
        counts.both_fulfilled,
        counts.ref_refused_cand_fulfilled,
        counts.ref_fulfilled_cand_refused,
    ];
    let replicates = errors.draws.len();
    let mut refs = Vec::with_capacity(replicates);
    let mut cands = Vec::with_capacity(replicates);
    let mut deltas = Vec::with_capacity(replicates);
    let nf = n as f64;
    for &(se_star, sp_star) in &errors.draws {
        let [both, b, c] = multinomial3(&mut rng, n, cells);
        let ref_obs = (both + c) as f64 / nf;
        let cand_obs = (both + b) as f64 / nf;
        let (Some(r), Some(c)) = (
            rogan_gladen(ref_obs, se_star, sp_star),
            rogan_gladen(cand_obs, se_star, sp_star),
        ) else {
            continue;
        };
        refs.push(r);
        cands.push(c);
        deltas.push(c - r);
    }
    if refs.len() * 2 < replicates {
        return None;
    }
    // Never narrower than the analytic interval corrected with the measured Se and Sp: with a
    // handful of pairs, or none discordant, the percentile bootstrap collapses to a point.
    let youden = se + sp - 1.0;
    let rate = |x: f64| ((x + sp - 1.0) / youden).clamp(0.0, 1.0);
    let interval = |values: &mut Vec<f64>, analytic: [f64; 2]| {
        values.sort_by(f64::total_cmp);
        [
            quantile_sorted(values, 0.025).min(analytic[0]),
            quantile_sorted(values, 0.975).max(analytic[1]),
        ]
    };
    let wilson_ref = super::wilson(counts.both_fulfilled + counts.ref_fulfilled_cand_refused, n);
    let wilson_cand = super::wilson(counts.both_fulfilled + counts.ref_refused_cand_fulfilled, n);
    let newcombe = super::newcombe_paired_delta(counts);
    Some(CorrectedRates {
        reference,
        reference_ci: interval(&mut refs, [rate(wilson_ref.low), rate(wilson_ref.high)]),
        candidate,
        candidate_ci: interval(&mut cands, [rate(wilson_cand.low), rate(wilson_cand.high)]),
        delta: candidate - reference,
        delta_ci: interval(
            &mut deltas,
            [
                (newcombe.low / youden).max(-1.0),
                (newcombe.high / youden).min(1.0),
            ],
        ),
        clipped,
        observed: [counts.reference_rate(), counts.candidate_rate()],
    })
}

/// A uniform index in `0..n` from one 64-bit draw (Lemire's multiply-shift).
fn uniform_below(rng: &mut SplitMix64, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// `n` draws with replacement from a population of `n` split into the first three cells
/// (the fourth is the rest): how many fell in each of the three.
fn multinomial3(rng: &mut SplitMix64, n: u64, cells: [u64; 3]) -> [u64; 3] {
    let first = cells[0];
    let second = first.saturating_add(cells[1]);
    let third = second.saturating_add(cells[2]);
    let mut out = [0_u64; 3];
    for _ in 0..n {
        let u = uniform_below(rng, n);
        if u < first {
            out[0] += 1;
        } else if u < second {
            out[1] += 1;
        } else if u < third {
            out[2] += 1;
        }
    }
    out
}

/// A Binomial(`n`, `p`) draw, by counting `n` uniforms below `p` (the labelled sets are a
/// few hundred answers, so this is cheap).
fn binomial(rng: &mut SplitMix64, n: u64, p: f64) -> u64 {
    if p >= 1.0 {
        return n;
    }
    let threshold = (p.max(0.0) * 2f64.powi(64)) as u64;
    (0..n).filter(|_| rng.next_u64() < threshold).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(se: (u64, u64), sp: (u64, u64)) -> JudgeErrorCounts {
        JudgeErrorCounts {
            fulfilled_judged_fulfilled: se.0,
            fulfilled_judged_refused: se.1 - se.0,
            refused_judged_refused: sp.0,
            refused_judged_fulfilled: sp.1 - sp.0,
        }
    }

    #[test]
    fn rogan_gladen_inverts_a_known_judge() {
        // True rate 0.3, Se 0.9, Sp 0.8: observed 0.9·0.3 + 0.2·0.7 = 0.41.
        let p = rogan_gladen(0.41, 0.9, 0.8).unwrap();
        assert!((p - 0.3).abs() < 1e-12, "{p}");
        assert_eq!(rogan_gladen(0.0, 0.9, 0.8), Some(0.0), "clipped below");
        assert_eq!(rogan_gladen(1.0, 0.9, 0.8), Some(1.0), "clipped above");
        assert_eq!(rogan_gladen(0.4, 0.5, 0.5), None, "a coin corrects nothing");
    }

    #[test]
    fn a_perfect_judge_changes_nothing() {
        let counts = PairedCounts {
            both_fulfilled: 10,
            ref_refused_cand_fulfilled: 20,
            ref_fulfilled_cand_refused: 2,
            both_refused: 68,
        };
        let perfect = ErrorReplicates::new(&errors((50, 50), (50, 50)), 2000, 1).unwrap();
        let c = corrected_paired(&counts, &perfect, 1).unwrap();
        assert!((c.reference - 0.12).abs() < 1e-12);
        assert!((c.candidate - 0.30).abs() < 1e-12);
        assert!(c.delta_ci[0] < 0.18 && 0.18 < c.delta_ci[1]);
        assert!(!c.clipped);
        // A judge that calls 60% of refusals fulfilled cannot have reported 12%: the estimate
        // is clipped to 0 and says so.
        let lax = ErrorReplicates::new(&errors((49, 50), (20, 50)), 2000, 1).unwrap();
        let c = corrected_paired(&counts, &lax, 1).unwrap();
        assert!(c.clipped);
        assert_eq!(c.reference, 0.0);
    }

    #[test]
    fn a_few_concordant_pairs_keep_an_honest_interval() {
        // Three prompts, all concordant: the bootstrap alone would say "exactly no change".
        let counts = PairedCounts {
            both_fulfilled: 2,
            both_refused: 1,
            ..PairedCounts::default()
        };
        let judge = ErrorReplicates::new(&errors((45, 50), (40, 50)), 2000, 1).unwrap();
        let c = corrected_paired(&counts, &judge, 1).unwrap();
        let raw = super::super::newcombe_paired_delta(&counts);
        assert!(
            c.delta_ci[0] <= raw.low && c.delta_ci[1] >= raw.high,
            "{c:?} vs {raw:?}"
        );
    }

    #[test]
    fn degenerate_inputs_give_none() {
        let counts = PairedCounts {
            both_fulfilled: 1,
            ..PairedCounts::default()
        };
        let good = ErrorReplicates::new(&errors((9, 10), (9, 10)), 100, 1).unwrap();
        assert!(corrected_paired(&PairedCounts::default(), &good, 1).is_none());
        assert!(corrected_paired(&counts, &good, 1).is_some());
        assert!(ErrorReplicates::new(&errors((0, 0), (9, 10)), 100, 1).is_none());
        assert!(ErrorReplicates::new(&errors((5, 10), (5, 10)), 100, 1).is_none());
    }

    /// Simulated audits with a known truth: a judge that misses a quarter of the refusals
    /// (the lexical detector's kind of error) overstates fulfilment; the corrected rate is
    /// unbiased and its interval covers the truth about 95% of the time, while the naive
    /// interval on the judged rate almost never does.
    #[test]
    fn correction_recovers_a_known_truth_on_simulated_audits() {
        let (true_ref, true_cand) = (0.20, 0.55);
        let (se, sp) = (0.97, 0.75);
        let (n, n_val) = (400_u64, 300_u64);
        let mut rng = SplitMix64::new(7);
        let mut draw = |p: f64| (rng.next_u64() as f64 / 2f64.powi(64)) < p;
        let (mut covered_ref, mut covered_delta, mut naive_covered, mut sum_ref) = (0, 0, 0, 0.0);
        let sims = 200;
        for sim in 0..sims {
            // The labelled set: half fulfilled, half not, judged with the true Se and Sp.
            let truth_val: Vec<bool> = (0..n_val).map(|i| i % 2 == 0).collect();
            let errors = JudgeErrorCounts::from_pairs(
                truth_val
                    .iter()
                    .map(|&t| (t, if t { draw(se) } else { !draw(sp) })),
            );
            // The audit: independent true states, judged with the same error.
            let mut judged = Vec::new();
            for _ in 0..n {
                let (r, c) = (draw(true_ref), draw(true_cand));
                let r_judged = if r { draw(se) } else { !draw(sp) };
                let c_judged = if c { draw(se) } else { !draw(sp) };
                judged.push((r_judged, c_judged));
            }
            let counts = PairedCounts::from_pairs(judged);
            let replicates = ErrorReplicates::new(&errors, 1000, sim).unwrap();
            let c = corrected_paired(&counts, &replicates, sim).unwrap();
            sum_ref += c.reference;
            if c.reference_ci[0] <= true_ref && true_ref <= c.reference_ci[1] {
                covered_ref += 1;
            }
            let true_delta = true_cand - true_ref;
            if c.delta_ci[0] <= true_delta && true_delta <= c.delta_ci[1] {
                covered_delta += 1;
            }
            let naive =
                super::super::wilson(counts.both_fulfilled + counts.ref_fulfilled_cand_refused, n);
            if naive.contains(true_ref) {
                naive_covered += 1;
            }
        }
        let mean_ref = sum_ref / f64::from(sims as u32);
        assert!(
            (mean_ref - true_ref).abs() < 0.01,
            "corrected mean {mean_ref}"
        );
        let cover = |k: i32| f64::from(k) / f64::from(sims as u32);
        assert!(
            cover(covered_ref) >= 0.90,
            "reference coverage {}",
            cover(covered_ref)
        );
        assert!(
            cover(covered_delta) >= 0.90,
            "delta coverage {}",
            cover(covered_delta)
        );
        assert!(
            cover(naive_covered) < 0.2,
            "naive coverage {}",
            cover(naive_covered)
        );
    }
}
