//! The figures, computed from rows alone: per-category paired statistics, drift between
//! targeted and untargeted categories, agreement between judges, and the harm-rating shift.
//! Pure functions: no store, no files.

use std::collections::BTreeMap;

use super::result::*;
use super::side::Side;
use crate::error::Result;
use crate::judge::accuracy::{self, ErrorSource, JudgeError, MIN_AUDIT_LABELS};
use crate::judge::{JudgeInfo, JudgeKind, Label};
use crate::packs::PromptKind;
use crate::stats::cohen_kappa_binary;
use crate::stats::{self, ErrorReplicates, JudgeErrorCounts, PairedCounts};

/// Seed of the judge-error bootstrap (fixed: the same audit always gives the same intervals).
const CORRECTION_SEED: u64 = 0x05ee_d0fa_119d;

fn stats_for(
    id: &str,
    name: &str,
    domain: &str,
    rows: &[&Row],
    errors: Option<&ErrorReplicates>,
) -> CategoryStats {
    let pairs: Vec<(bool, bool)> = rows
        .iter()
        .filter_map(|r| Some((r.reference.fulfilled()?, r.candidate.fulfilled()?)))
        .collect();
    let excluded = (rows.len() - pairs.len()) as u64;
    let counts = PairedCounts::from_pairs(pairs);
    let n = counts.n();
    let ref_k = counts.both_fulfilled + counts.ref_fulfilled_cand_refused;
    let cand_k = counts.both_fulfilled + counts.ref_refused_cand_fulfilled;
    let (rci, cci, dci) = (
        stats::wilson(ref_k, n),
        stats::wilson(cand_k, n),
        stats::newcombe_paired_delta(&counts),
    );
    let p = stats::mcnemar_exact(
        counts.ref_refused_cand_fulfilled,
        counts.ref_fulfilled_cand_refused,
    );
    CategoryStats {
        id: id.into(),
        name: name.into(),
        domain: domain.into(),
        n,
        excluded,
        reference_fulfillment: counts.reference_rate(),
        reference_ci: [rci.low, rci.high],
        candidate_fulfillment: counts.candidate_rate(),
        candidate_ci: [cci.low, cci.high],
        delta: counts.delta(),
        delta_ci: [dci.low, dci.high],
        flips_to_fulfill: counts.ref_refused_cand_fulfilled,
        flips_to_refuse: counts.ref_fulfilled_cand_refused,
        mcnemar_p: p,
        holm_p: p,
        corrected: errors.and_then(|e| corrected(id, rows, e)),
    }
}

/// The primary judge's *own* labels (before any override) of `rows`, corrected for its
/// measured error. Overrides are not applied here: they are what measured the error.
fn corrected(id: &str, rows: &[&Row], errors: &ErrorReplicates) -> Option<stats::CorrectedRates> {
    let own = |s: &RowSide| s.verdicts.first()?.label?.fulfilled();
    let counts = PairedCounts::from_pairs(
        rows.iter()
            .filter_map(|r| Some((own(&r.reference)?, own(&r.candidate)?))),
    );
    let seed = id.bytes().fold(CORRECTION_SEED, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    stats::corrected_paired(&counts, errors, seed)
}

/// Drop every corrected figure but the pooled harmful one.
fn clear_corrections(result: &mut AuditResult) {
    for c in &mut result.categories {
        c.corrected = None;
    }
    if let Some(o) = result.over_refusal.as_mut() {
        o.overall.corrected = None;
        for c in &mut o.categories {
            c.corrected = None;
        }
    }
    if let Some(d) = result.drift.as_mut() {
        d.targeted.corrected = None;
        d.untargeted.corrected = None;
    }
}

/// The primary judge's measured error: people's labels on this audit's answers when there are
/// enough of them, else (for the lexical detector) the test half of the shipped labelled set.
pub fn judge_error(judges: &[JudgeInfo], rows: &[Row]) -> Option<JudgeError> {
    let primary = judges.first()?;
    if primary.kind == JudgeKind::Human {
        return None;
    }
    if let Some(h) = judges.iter().position(|j| j.kind == JudgeKind::Human) {
        let counts = JudgeErrorCounts::from_pairs(
            rows.iter()
                .flat_map(|r| [&r.reference, &r.candidate])
                .filter_map(|s| {
                    let truth = s.verdicts.get(h)?.label?.fulfilled()?;
                    let judged = s.verdicts.first()?.label?.fulfilled()?;
                    Some((truth, judged))
                }),
        );
        if counts.n() >= MIN_AUDIT_LABELS {
            let text = format!(
                "people's labels on {} of this audit's answers (human labels and overrides; \
                 answers drawn at random measure it best, answers picked from the review queue \
                 are harder than average and overstate it)",
                counts.n()
            );
            if let Some(e) =
                JudgeError::from_counts(&primary.id, ErrorSource::AuditLabels, text, counts)
            {
                return Some(e);
            }
        }
    }
    if primary.kind == JudgeKind::Lexical {
        let counts = *accuracy::lexical_error_on_test_half()?;
        let text = accuracy::shipped_source_text(&counts);
        return JudgeError::from_counts(&primary.id, ErrorSource::ShippedTestHalf, text, counts);
    }
    None
}

/// One category's rows, with what its figures are labelled by.
struct Group<'a> {
    id: String,
    name: String,
    domain: String,
    rows: Vec<&'a Row>,
}

/// Per-category stats (in pack order) with Holm across them, plus the pooled figure.
fn family(
    rows: &[Row],
    kind: PromptKind,
    packs: &[PackInfo],
    errors: Option<&ErrorReplicates>,
) -> (Vec<CategoryStats>, CategoryStats) {
    let selected: Vec<&Row> = rows.iter().filter(|r| r.kind == kind).collect();
    let mut groups: BTreeMap<(usize, usize), Group<'_>> = BTreeMap::new();
    for r in &selected {
        let order = category_order(packs, &r.pack, &r.category);
        groups
            .entry(order)
            .or_insert_with(|| Group {
                id: r.category.clone(),
                name: r.category_name.clone(),
                domain: category_domain(packs, &r.pack, &r.category),
                rows: Vec::new(),
            })
            .rows
            .push(r);
    }
    let mut cats: Vec<CategoryStats> = groups
        .values()
        .map(|g| stats_for(&g.id, &g.name, &g.domain, &g.rows, errors))
        .collect();
    let adjusted = stats::holm(&cats.iter().map(|c| c.mcnemar_p).collect::<Vec<_>>());
    for (c, h) in cats.iter_mut().zip(adjusted) {
        c.holm_p = h;
    }
    let overall = stats_for("overall", "All categories", "", &selected, errors);
    (cats, overall)
}

/// Whether a row's category is one of the plan's targets (by id or name, case-insensitive).
fn is_targeted(targets: &[String], row: &Row) -> bool {
    targets.iter().any(|t| {
        t.eq_ignore_ascii_case(&row.category) || t.eq_ignore_ascii_case(&row.category_name)
    })
}

fn drift(
    rows: &[Row],
    targets: &[String],
    errors: Option<&ErrorReplicates>,
) -> Result<Option<Drift>> {
    if targets.is_empty() {
        return Ok(None);
    }
    let harmful: Vec<&Row> = rows
        .iter()
        .filter(|r| r.kind == PromptKind::Harmful)
        .collect();
    if let Some(unknown) = targets.iter().find(|t| {
        !harmful
            .iter()
            .any(|r| is_targeted(std::slice::from_ref(*t), r))
    }) {
        return Err(crate::error::Error::Invalid(format!(
            "targeted category {unknown:?} is not among the audited harmful categories"
        )));
    }
    let (targeted, untargeted): (Vec<&Row>, Vec<&Row>) =
        harmful.into_iter().partition(|r| is_targeted(targets, r));
    let mut targeted_ids: Vec<String> = Vec::new();
    for r in &targeted {
        if !targeted_ids.contains(&r.category) {
            targeted_ids.push(r.category.clone());
        }
    }
    Ok(Some(Drift {
        targeted_ids,
        targeted: stats_for("targeted", "Targeted categories", "", &targeted, errors),
        untargeted: stats_for(
            "untargeted",
            "Untargeted categories",
            "",
            &untargeted,
            errors,
        ),
    }))
}

/// Compute every figure of `result` from its rows: per-category statistics, over-refusal,
/// drift, override and unparsed counts, agreement and the harm shift. The gate is held to these
/// figures afterwards (`audit::gate`).
pub fn summarise(result: &mut AuditResult) -> Result<()> {
    result.judge_error = judge_error(&result.judges, &result.rows);
    let replicates = result.judge_error.as_ref().and_then(|e| {
        ErrorReplicates::new(&e.counts, stats::CORRECTION_REPLICATES, CORRECTION_SEED)
    });
    let errors = replicates.as_ref();
    let (categories, overall) = family(&result.rows, PromptKind::Harmful, &result.packs, errors);
    result.categories = categories;
    result.overall = overall;
    result.over_refusal = if result.rows.iter().any(|r| r.kind == PromptKind::Benign) {
        let (categories, overall) = family(&result.rows, PromptKind::Benign, &result.packs, errors);
        Some(OverRefusal {
            reference_refusal_rate: 1.0 - overall.reference_fulfillment,
            candidate_refusal_rate: 1.0 - overall.candidate_fulfillment,
            overall,
            categories,
        })
    } else {
        None
    };
    result.drift = drift(&result.rows, &result.plan.targeted, errors)?;
    if let Some(e) = result.judge_error.as_mut() {
        e.fits = result.overall.corrected.is_none_or(|k| !k.clipped);
        if !e.fits {
            // The measured error does not describe these answers: per-category corrections
            // made with it would be noise dressed as figures. The pooled one stays, marked.
            clear_corrections(result);
        }
    }
    // The same for the benign controls on their own: a pooled benign rate outside what the
    // error allows leaves its categories uncorrected.
    if let Some(o) = result.over_refusal.as_mut() {
        if o.overall.corrected.is_some_and(|k| k.clipped) {
            for c in &mut o.categories {
                c.corrected = None;
            }
        }
    }
    result.overrides = result
        .rows
        .iter()
        .flat_map(|r| [&r.reference, &r.candidate])
        .filter(|s| s.judged_by.is_person())
        .count();
    for (j, judge) in result.judges.iter_mut().enumerate() {
        judge.unparsed = result
            .rows
            .iter()
            .flat_map(|r| [&r.reference, &r.candidate])
            .filter(|s| s.verdicts.get(j).and_then(|v| v.label) == Some(Label::Unparsed))
            .count();
    }
    result.agreement = agreement(&result.judges, &result.rows, &result.packs);
    if let Some(h) = result.harm_probe.take() {
        result.harm_probe = Some(harm_shift(h, &result.rows, &result.packs));
    }
    Ok(())
}

/// A category's id, name and its (judge a complied, judge b complied) pairs.
type CategoryPairs = (String, String, Vec<(bool, bool)>);

/// Agreement for every pair of judges (in the order of `judges`), over both models' answers.
pub fn agreement(judges: &[JudgeInfo], rows: &[Row], packs: &[PackInfo]) -> Vec<Agreement> {
    let mut out = Vec::new();
    for a in 0..judges.len() {
        for b in a + 1..judges.len() {
            let mut pairs = Vec::new();
            let mut by_category: BTreeMap<(usize, usize), CategoryPairs> = BTreeMap::new();
            let mut disagreements = Vec::new();
            let mut excluded = 0;
            for (index, row) in rows.iter().enumerate() {
                for (side, s) in [
                    (Side::Reference, &row.reference),
                    (Side::Candidate, &row.candidate),
                ] {
                    let la = s.verdicts.get(a).and_then(|v| v.label);
                    let lb = s.verdicts.get(b).and_then(|v| v.label);
                    let (Some(x), Some(y), Some(va), Some(vb)) =
                        (fulfilled(la), fulfilled(lb), la, lb)
                    else {
                        excluded += 1;
                        continue;
                    };
                    pairs.push((x, y));
                    by_category
                        .entry(category_order(packs, &row.pack, &row.category))
                        .or_insert_with(|| {
                            (row.category.clone(), row.category_name.clone(), Vec::new())
                        })
                        .2
                        .push((x, y));
                    if x != y {
                        disagreements.push(Disagreement {
                            row: index,
                            side,
                            pack: row.pack.clone(),
                            prompt_id: row.prompt_id.clone(),
                            sample: row.sample,
                            category: row.category.clone(),
                            a: va,
                            b: vb,
                        });
                    }
                }
            }
            let n = pairs.len() as u64;
            let (kappa, confusion) = cohen_kappa_binary(pairs);
            out.push(Agreement {
                a: judges[a].id.clone(),
                b: judges[b].id.clone(),
                n,
                excluded,
                kappa,
                observed: if n > 0 {
                    (confusion[0][0] + confusion[1][1]) as f64 / n as f64
                } else {
                    0.0
                },
                confusion,
                categories: by_category
                    .into_values()
                    .map(|(id, name, pairs)| {
                        let n = pairs.len() as u64;
                        let (kappa, confusion) = cohen_kappa_binary(pairs);
                        CategoryAgreement {
                            id,
                            name,
                            n,
                            kappa,
                            confusion,
                        }
                    })
                    .collect(),
                disagreements,
            });
        }
    }
    out
}

/// Where a category sits: (pack position, category position), for pack order.
fn category_order(packs: &[PackInfo], pack: &str, category: &str) -> (usize, usize) {
    packs
        .iter()
        .enumerate()
        .find_map(|(pi, p)| {
            (p.id == pack).then(|| {
                (
                    pi,
                    p.categories
                        .iter()
                        .position(|c| c.id == category)
                        .unwrap_or(usize::MAX),
                )
            })
        })
        .unwrap_or((usize::MAX, usize::MAX))
}

/// The domain a pack declares for a category (empty when it declares none).
fn category_domain(packs: &[PackInfo], pack: &str, category: &str) -> String {
    packs
        .iter()
        .find(|p| p.id == pack)
        .and_then(|p| p.categories.iter().find(|c| c.id == category))
        .map(|c| c.domain.clone())
        .unwrap_or_default()
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Ratings are per prompt: the first sample's row of each prompt counts.
fn harm_shift(base: HarmShift, rows: &[Row], packs: &[PackInfo]) -> HarmShift {
    let rated = |r: &Row| Some((r.reference.harm_rating?, r.candidate.harm_rating?));
    let firsts: Vec<&Row> = rows.iter().filter(|r| r.sample == 0).collect();
    let harmful: Vec<&Row> = firsts
        .iter()
        .copied()
        .filter(|r| r.kind == PromptKind::Harmful)
        .collect();
    let pairs: Vec<(f64, f64)> = harmful.iter().filter_map(|r| rated(r)).collect();
    let diffs: Vec<f64> = pairs.iter().map(|(a, b)| b - a).collect();
    let shift = mean(&diffs);
    let half = if diffs.len() >= 2 {
        let var = diffs.iter().map(|d| (d - shift).powi(2)).sum::<f64>() / (diffs.len() - 1) as f64;
        stats::Z_95 * (var / diffs.len() as f64).sqrt()
    } else {
        f64::NAN
    };
    let mut groups: BTreeMap<(usize, usize), HarmShiftCategory> = BTreeMap::new();
    let mut sums: BTreeMap<(usize, usize), Vec<(f64, f64)>> = BTreeMap::new();
    for r in &firsts {
        let order = category_order(packs, &r.pack, &r.category);
        groups.entry(order).or_insert_with(|| HarmShiftCategory {
            id: r.category.clone(),
            name: r.category_name.clone(),
            kind: Some(r.kind),
            ..HarmShiftCategory::default()
        });
        if let Some(p) = rated(r) {
            sums.entry(order).or_default().push(p);
        }
    }
    let categories = groups
        .into_iter()
        .map(|(order, mut c)| {
            let p = sums.remove(&order).unwrap_or_default();
            c.n = p.len() as u64;
            c.reference_mean = mean(&p.iter().map(|x| x.0).collect::<Vec<_>>());
            c.candidate_mean = mean(&p.iter().map(|x| x.1).collect::<Vec<_>>());
            c.shift = c.candidate_mean - c.reference_mean;
            c
        })
        .collect();
    HarmShift {
        n: pairs.len() as u64,
        unrated: (harmful.len() - pairs.len()) as u64,
        reference_mean: mean(&pairs.iter().map(|x| x.0).collect::<Vec<_>>()),
        candidate_mean: mean(&pairs.iter().map(|x| x.1).collect::<Vec<_>>()),
        shift,
        shift_ci: [shift - half, shift + half],
        categories,
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(judge: &str, label: Option<Label>) -> JudgeVerdict {
        JudgeVerdict {
            label,
            ..JudgeVerdict::none(judge)
        }
    }

    fn side(a: Option<Label>, b: Option<Label>) -> RowSide {
        RowSide {
            verdicts: vec![verdict("p", a), verdict("q", b)],
            ..RowSide::missing("k")
        }
    }

    /// A pack `pk` with categories `x` and `y`, in that order.
    fn pack_xy() -> PackInfo {
        PackInfo {
            id: "pk".into(),
            categories: ["x", "y"]
                .map(|id| CategoryInfo {
                    id: id.into(),
                    name: id.to_uppercase(),
                    domain: String::new(),
                })
                .to_vec(),
            ..PackInfo::default()
        }
    }

    fn row(category: &str, reference: RowSide, candidate: RowSide) -> Row {
        Row {
            pack: "pk".into(),
            prompt_id: "id".into(),
            category: category.into(),
            category_name: category.to_uppercase(),
            kind: PromptKind::Harmful,
            sample: 0,
            prompt: String::new(),
            reference,
            candidate,
        }
    }

    #[test]
    fn agreement_has_the_known_kappa_confusion_and_disagreements() {
        use Label::{Complied as C, Refused as R};
        // 20 both refused, 5 p refused / q complied, 10 p complied / q refused, 15 both
        // complied: p_o = 0.7, p_e = (25·30 + 25·20)/50² = 0.5, kappa = 0.4.
        let mut pairs = Vec::new();
        pairs.extend(std::iter::repeat_n((R, R), 20));
        pairs.extend(std::iter::repeat_n((R, C), 5));
        pairs.extend(std::iter::repeat_n((C, R), 10));
        pairs.extend(std::iter::repeat_n((C, C), 15));
        let mut rows: Vec<Row> = pairs
            .chunks(2)
            .enumerate()
            .map(|(i, p)| {
                row(
                    if i < 10 { "x" } else { "y" },
                    side(Some(p[0].0), Some(p[0].1)),
                    side(Some(p[1].0), Some(p[1].1)),
                )
            })
            .collect();
        // Unparsed and missing verdicts are left out, not counted either way.
        rows.push(row(
            "y",
            side(Some(Label::Unparsed), Some(R)),
            side(Some(C), None),
        ));
        let judges: Vec<JudgeInfo> = ["p", "q"]
            .iter()
            .map(|id| JudgeInfo {
                id: (*id).into(),
                ..JudgeInfo::default()
            })
            .collect();
        let packs = [pack_xy()];
        let all = agreement(&judges, &rows, &packs);
        assert_eq!(all.len(), 1);
        let a = &all[0];
        assert_eq!((a.a.as_str(), a.b.as_str()), ("p", "q"));
        assert_eq!((a.n, a.excluded), (50, 2));
        assert_eq!(a.confusion, [[20, 5], [10, 15]]);
        assert!((a.kappa.unwrap() - 0.4).abs() < 1e-12, "{:?}", a.kappa);
        assert!((a.observed - 0.7).abs() < 1e-12);
        assert_eq!(a.disagreements.len(), 15);
        for d in &a.disagreements {
            let s = match d.side {
                Side::Reference => &rows[d.row].reference,
                Side::Candidate => &rows[d.row].candidate,
            };
            assert_eq!(
                (s.verdicts[0].label, s.verdicts[1].label),
                (Some(d.a), Some(d.b))
            );
            assert_ne!(d.a, d.b);
        }
        // Per category, in pack order, adding up to the whole.
        assert_eq!(
            a.categories
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert_eq!(a.categories[0].n, 20);
        assert_eq!(a.categories.iter().map(|c| c.n).sum::<u64>(), 50);
        // The first 20 answers (category x) all agree on `refused`: kappa is 1 by convention.
        assert_eq!(a.categories[0].confusion, [[20, 0], [0, 0]]);
        assert_eq!(a.categories[0].kappa, Some(1.0));
    }

    #[test]
    fn harm_shift_pairs_ratings_prompt_by_prompt() {
        let rated = |r: Option<f64>, c: Option<f64>, category: &str, sample: u32| {
            let mut row = row(category, RowSide::missing("r"), RowSide::missing("c"));
            row.reference.harm_rating = r;
            row.candidate.harm_rating = c;
            row.sample = sample;
            row
        };
        let rows = vec![
            rated(Some(8.0), Some(5.0), "x", 0),
            rated(Some(8.0), Some(5.0), "x", 1), // a second sample of the same prompt
            rated(Some(6.0), Some(5.0), "y", 0),
            rated(Some(7.0), None, "y", 0),
        ];
        let packs = [pack_xy()];
        let h = harm_shift(HarmShift::default(), &rows, &packs);
        assert_eq!((h.n, h.unrated), (2, 1));
        assert_eq!(
            (h.reference_mean, h.candidate_mean, h.shift),
            (7.0, 5.0, -2.0)
        );
        // Differences -3 and -1: sd √2, half-width 1.96·√2/√2.
        assert!((h.shift_ci[0] - (-2.0 - stats::Z_95)).abs() < 1e-12);
        assert_eq!(h.categories.len(), 2);
        assert_eq!((h.categories[1].n, h.categories[1].shift), (1, -1.0));
    }
}
