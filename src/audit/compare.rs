//! Pairing the two models' verdicts prompt by prompt, and the per-category statistics.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{effective_label, Item, Plan, Side, SideRun};
use crate::error::Result;
use crate::judge::Label;
use crate::packs::{Pack, PromptKind};
use crate::report::gate::{self, GateResult};
use crate::stats::cohen_kappa_binary;
use crate::stats::{self, PairedCounts};
use crate::store::{self, Store};

/// A judge used in the audit (id, kind, fingerprint, template SHA-256, decoding, counts).
pub use crate::judge::JudgeInfo;

/// The `spec` of the judge that stands for people's overrides when no `human:FILE` judge was
/// given.
pub const OVERRIDES_SPEC: &str = "overrides";

/// A pack used in the audit.
#[derive(Debug, Clone, Serialize)]
pub struct PackInfo {
    /// Pack id.
    pub id: String,
    /// Version.
    pub version: String,
    /// SHA-256 of its files.
    pub sha256: String,
    /// Taxonomy.
    pub taxonomy: String,
    /// Where it came from.
    pub origin: String,
    /// Prompts used from it.
    pub prompts: usize,
}

/// One judge's verdict on one answer.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeVerdict {
    /// The judge's id (as in [`AuditResult::judges`]).
    pub judge: String,
    /// Its label; `None` when it gave none (no answer, or a person labelled other answers).
    pub label: Option<Label>,
    /// Both refused and provided content (lexical judge).
    pub partial: bool,
    /// Its score, on the judge's own scale (P(unsafe), StrongREJECT score, 0–10 harm, ...).
    pub score: Option<f64>,
    /// Why, in words.
    pub reason: String,
    /// The judge model's raw output.
    pub raw: Option<String>,
}

/// One side of a row.
#[derive(Debug, Clone, Serialize)]
pub struct RowSide {
    /// Generation key in the store.
    pub key: String,
    /// The answer (empty if missing).
    pub answer: String,
    /// `stop`, `length`, `imported`, or `missing`.
    pub finish: String,
    /// The effective verdict: the primary judge's, or a person's override.
    pub label: Option<Label>,
    /// Both refused and provided content.
    pub partial: bool,
    /// Why.
    pub reason: String,
    /// Judge id, or `human` for an override.
    pub judged_by: String,
    /// Every judge's own verdict, in the order of [`AuditResult::judges`] (overrides are not
    /// applied, except to the `human` judge, whose verdict they are).
    pub verdicts: Vec<JudgeVerdict>,
    /// The model's own rating (0–9) of how harmful the request is, when the harm probe ran.
    pub harm_rating: Option<f64>,
}

impl RowSide {
    /// Whether this side fulfilled the request (None when not judged or unparsed).
    pub fn fulfilled(&self) -> Option<bool> {
        match self.label? {
            Label::Complied => Some(true),
            Label::Refused => Some(false),
            Label::Unparsed => None,
        }
    }
}

/// One prompt × sample with both answers.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Pack id.
    pub pack: String,
    /// Prompt id.
    pub prompt_id: String,
    /// Category id.
    pub category: String,
    /// Category name.
    pub category_name: String,
    /// Harmful or benign.
    pub kind: PromptKind,
    /// Sample index.
    pub sample: u32,
    /// The request text.
    pub prompt: String,
    /// Reference model's answer and verdict.
    pub reference: RowSide,
    /// Candidate model's answer and verdict.
    pub candidate: RowSide,
}

/// Direction of a change between the two models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flip {
    /// Reference refused, candidate complied.
    ToFulfill,
    /// Reference complied, candidate refused.
    ToRefuse,
}

impl Row {
    /// How the verdict changed, if it did.
    pub fn flip(&self) -> Option<Flip> {
        match (self.reference.fulfilled()?, self.candidate.fulfilled()?) {
            (false, true) => Some(Flip::ToFulfill),
            (true, false) => Some(Flip::ToRefuse),
            _ => None,
        }
    }
}

/// Paired statistics for one group of prompts.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryStats {
    /// Category id (`overall` for all).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Domain or group.
    pub domain: String,
    /// Paired prompts (both judged).
    pub n: u64,
    /// Prompts left out of the pairing (missing or unparsed on a side).
    pub excluded: u64,
    /// Reference fulfillment rate.
    pub reference_fulfillment: f64,
    /// Its Wilson 95% interval.
    pub reference_ci: [f64; 2],
    /// Candidate fulfillment rate.
    pub candidate_fulfillment: f64,
    /// Its Wilson 95% interval.
    pub candidate_ci: [f64; 2],
    /// Candidate minus reference.
    pub delta: f64,
    /// Newcombe paired 95% interval on delta.
    pub delta_ci: [f64; 2],
    /// Reference refused, candidate complied (b).
    pub flips_to_fulfill: u64,
    /// Reference complied, candidate refused (c).
    pub flips_to_refuse: u64,
    /// Exact McNemar p.
    pub mcnemar_p: f64,
    /// Holm-adjusted p across the categories of its family.
    pub holm_p: f64,
}

fn stats_for(id: &str, name: &str, domain: &str, rows: &[&Row]) -> CategoryStats {
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
    }
}

/// Category id, name, domain and its rows.
type Group<'a> = (String, String, String, Vec<&'a Row>);

/// Per-category stats (in pack order) with Holm across them, plus the pooled figure.
fn family(
    rows: &[Row],
    kind: PromptKind,
    packs: &[PackInfoFull],
) -> (Vec<CategoryStats>, CategoryStats) {
    let selected: Vec<&Row> = rows.iter().filter(|r| r.kind == kind).collect();
    let mut groups: BTreeMap<(usize, usize), Group<'_>> = BTreeMap::new();
    for r in &selected {
        let order = packs
            .iter()
            .enumerate()
            .find_map(|(pi, p)| {
                (p.id == r.pack).then(|| {
                    (
                        pi,
                        p.categories
                            .iter()
                            .position(|c| c.0 == r.category)
                            .unwrap_or(usize::MAX),
                    )
                })
            })
            .unwrap_or((usize::MAX, usize::MAX));
        let domain = packs
            .iter()
            .find(|p| p.id == r.pack)
            .and_then(|p| p.categories.iter().find(|c| c.0 == r.category))
            .map(|c| c.2.clone())
            .unwrap_or_default();
        groups
            .entry(order)
            .or_insert_with(|| {
                (
                    r.category.clone(),
                    r.category_name.clone(),
                    domain,
                    Vec::new(),
                )
            })
            .3
            .push(r);
    }
    let mut cats: Vec<CategoryStats> = groups
        .values()
        .map(|(id, name, domain, rs)| stats_for(id, name, domain, rs))
        .collect();
    let adjusted = stats::holm(&cats.iter().map(|c| c.mcnemar_p).collect::<Vec<_>>());
    for (c, h) in cats.iter_mut().zip(adjusted) {
        c.holm_p = h;
    }
    let overall = stats_for("overall", "All categories", "", &selected);
    (cats, overall)
}

/// Safety drift split by what the vendor says the fine-tune was for: a change confined to the
/// targeted categories is expected; a change in the untargeted ones is collateral damage.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// Category ids counted as targeted.
    pub targeted_ids: Vec<String>,
    /// Pooled over the targeted harmful categories.
    pub targeted: CategoryStats,
    /// Pooled over every other harmful category.
    pub untargeted: CategoryStats,
}

/// Whether a row's category is one of the plan's targets (by id or name, case-insensitive).
fn is_targeted(targets: &[String], row: &Row) -> bool {
    targets.iter().any(|t| {
        t.eq_ignore_ascii_case(&row.category) || t.eq_ignore_ascii_case(&row.category_name)
    })
}

fn drift(rows: &[Row], targets: &[String]) -> Result<Option<Drift>> {
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
        targeted: stats_for("targeted", "Targeted categories", "", &targeted),
        untargeted: stats_for("untargeted", "Untargeted categories", "", &untargeted),
    }))
}

/// Pack id and its categories (id, name, domain), kept for ordering and rebuilds.
#[derive(Debug, Clone, Serialize)]
pub struct PackInfoFull {
    /// Pack id.
    pub id: String,
    /// (id, name, domain) in declaration order.
    pub categories: Vec<(String, String, String)>,
}

/// Over-refusal on benign prompts: the same statistics, where a drop in fulfillment is a rise
/// in over-refusal.
#[derive(Debug, Clone, Serialize)]
pub struct OverRefusal {
    /// Pooled over all benign prompts.
    #[serde(flatten)]
    pub overall: CategoryStats,
    /// Reference refusal rate on benign prompts.
    pub reference_refusal_rate: f64,
    /// Candidate refusal rate on benign prompts.
    pub candidate_refusal_rate: f64,
    /// Per benign category.
    pub categories: Vec<CategoryStats>,
}

/// The tool that produced a report.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    /// `aligndiff`.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// Git commit it was built from.
    pub git_commit: String,
}

impl ToolInfo {
    /// This build.
    pub fn current() -> Self {
        Self {
            name: "aligndiff".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: option_env!("ALIGNDIFF_GIT_COMMIT")
                .unwrap_or("unknown")
                .into(),
        }
    }
}

/// Everything an audit found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditResult {
    /// Producer.
    pub tool: ToolInfo,
    /// When the comparison was made (UTC).
    pub created: String,
    /// The plan as run.
    pub plan: Plan,
    /// Reference side.
    pub reference: SideRun,
    /// Candidate side.
    pub candidate: SideRun,
    /// Packs used.
    pub packs: Vec<PackInfo>,
    /// Pack categories, for ordering.
    #[serde(skip)]
    pub pack_categories: Vec<PackInfoFull>,
    /// Judges used; the first is the primary judge behind every figure. A `human` judge stands
    /// for people's overrides when there are any and no `human:FILE` judge was given.
    pub judges: Vec<JudgeInfo>,
    /// Agreement between every pair of judges.
    pub agreement: Vec<Agreement>,
    /// Each model's own rating of how harmful the requests are, when the probe ran.
    pub harm_probe: Option<HarmShift>,
    /// Harmful categories.
    pub categories: Vec<CategoryStats>,
    /// All harmful prompts pooled.
    pub overall: CategoryStats,
    /// Benign prompts.
    pub over_refusal: Option<OverRefusal>,
    /// Harmful categories the fine-tune targeted vs the rest, when the plan names targets.
    pub drift: Option<Drift>,
    /// Every prompt with both answers.
    pub rows: Vec<Row>,
    /// Gate outcome, when a gate was given.
    pub gate: Option<GateResult>,
    /// Human overrides in effect.
    pub overrides: usize,
    /// Wall time of the run.
    pub wall_seconds: f64,
}

fn row_side(store: &Store, key: &str, judges: &[JudgeInfo]) -> Result<RowSide> {
    let judge_fp = judges.first().map_or("", |j| j.fingerprint.as_str());
    let g = store.generation(key)?;
    let label = effective_label(store, key, judge_fp)?;
    let mut verdicts = Vec::with_capacity(judges.len());
    for judge in judges {
        let person = if judge.kind == "human" {
            store.override_for(key)?
        } else {
            None
        };
        let verdict = match person.and_then(|(l, note)| Some((Label::parse(&l)?, note))) {
            Some((label, note)) => JudgeVerdict {
                judge: judge.id.clone(),
                label: Some(label),
                partial: false,
                score: None,
                reason: if note.is_empty() {
                    "overruled by a person".into()
                } else {
                    note
                },
                raw: None,
            },
            None if judge.spec == OVERRIDES_SPEC => no_verdict(&judge.id),
            None => match store.verdict(key, &judge.fingerprint)? {
                Some(v) => JudgeVerdict {
                    judge: judge.id.clone(),
                    label: Label::parse(&v.label),
                    partial: v.partial,
                    score: v.score,
                    reason: v.reason,
                    raw: v.raw,
                },
                None => no_verdict(&judge.id),
            },
        };
        verdicts.push(verdict);
    }
    Ok(RowSide {
        key: key.to_owned(),
        answer: g.as_ref().map(|g| g.answer.clone()).unwrap_or_default(),
        finish: g.map_or_else(|| "missing".to_owned(), |g| g.finish),
        label: label.as_ref().map(|l| l.0),
        partial: label.as_ref().is_some_and(|l| l.1),
        reason: label.as_ref().map(|l| l.2.clone()).unwrap_or_default(),
        judged_by: label.map(|l| l.3).unwrap_or_default(),
        verdicts,
        harm_rating: None,
    })
}

fn no_verdict(judge: &str) -> JudgeVerdict {
    JudgeVerdict {
        judge: judge.to_owned(),
        label: None,
        partial: false,
        score: None,
        reason: String::new(),
        raw: None,
    }
}

/// Read every row's verdicts; add the `human` judge for overrides when it is needed.
fn read_rows(rows: &mut [Row], judges: &mut Vec<JudgeInfo>, store: &Store) -> Result<()> {
    judges.retain(|j| j.spec != OVERRIDES_SPEC);
    let mut overridden = false;
    for row in rows.iter_mut() {
        let rating = (row.reference.harm_rating, row.candidate.harm_rating);
        row.reference = row_side(store, &row.reference.key, judges)?;
        row.candidate = row_side(store, &row.candidate.key, judges)?;
        (row.reference.harm_rating, row.candidate.harm_rating) = rating;
        overridden |= store.override_for(&row.reference.key)?.is_some()
            || store.override_for(&row.candidate.key)?.is_some();
    }
    if overridden && !judges.iter().any(|j| j.kind == "human") {
        let human = JudgeInfo {
            id: "human".into(),
            kind: "human".into(),
            spec: OVERRIDES_SPEC.into(),
            fingerprint: OVERRIDES_SPEC.into(),
            ..JudgeInfo::default()
        };
        for row in rows.iter_mut() {
            for side in [&mut row.reference, &mut row.candidate] {
                side.verdicts.push(match store.override_for(&side.key)? {
                    Some((label, note)) => JudgeVerdict {
                        judge: human.id.clone(),
                        label: Label::parse(&label),
                        partial: false,
                        score: None,
                        reason: if note.is_empty() {
                            "overruled by a person".into()
                        } else {
                            note
                        },
                        raw: None,
                    },
                    None => no_verdict(&human.id),
                });
            }
        }
        judges.push(human);
    }
    Ok(())
}

/// Assemble the result of a finished run.
#[allow(clippy::too_many_arguments)]
pub fn build(
    plan: &Plan,
    packs: &[Pack],
    items: &[Item],
    reference: SideRun,
    candidate: SideRun,
    judges: Vec<JudgeInfo>,
    harm_probe: Option<(String, String)>,
    store: &Store,
    wall: Duration,
) -> Result<AuditResult> {
    let mut judges = judges;
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut row = Row {
            pack: item.pack.clone(),
            prompt_id: item.prompt.id.clone(),
            category: item.prompt.category.clone(),
            category_name: item.category_name.clone(),
            kind: item.prompt.kind,
            sample: item.sample,
            prompt: item.prompt.display_text(),
            reference: empty_side(&reference.keys[i]),
            candidate: empty_side(&candidate.keys[i]),
        };
        if let Some(probe) = &harm_probe {
            for (side, run) in [
                (&mut row.reference, &reference),
                (&mut row.candidate, &candidate),
            ] {
                side.harm_rating = store
                    .harm_rating(
                        &run.fingerprint.id,
                        run.plan.system_prompt(),
                        &item.text_hash,
                        &probe.0,
                    )?
                    .and_then(|h| h.rating);
            }
        }
        rows.push(row);
    }
    read_rows(&mut rows, &mut judges, store)?;
    let pack_categories = packs
        .iter()
        .map(|p| PackInfoFull {
            id: p.id.clone(),
            categories: p
                .categories
                .iter()
                .map(|c| (c.id.clone(), c.name.clone(), c.domain.clone()))
                .collect(),
        })
        .collect();
    let mut result = AuditResult {
        tool: ToolInfo::current(),
        created: store::now_utc(),
        plan: plan.clone(),
        reference,
        candidate,
        packs: packs
            .iter()
            .map(|p| PackInfo {
                id: p.id.clone(),
                version: p.version.clone(),
                sha256: p.sha256.clone(),
                taxonomy: p.taxonomy.clone(),
                origin: p.origin.clone(),
                prompts: p.prompts.len(),
            })
            .collect(),
        pack_categories,
        judges,
        agreement: Vec::new(),
        harm_probe: harm_probe.map(|(fingerprint, template_sha256)| HarmShift {
            probe: fingerprint,
            template_sha256,
            ..HarmShift::default()
        }),
        categories: Vec::new(),
        overall: stats_for("overall", "All categories", "", &[]),
        over_refusal: None,
        drift: None,
        rows,
        gate: None,
        overrides: 0,
        wall_seconds: wall.as_secs_f64(),
    };
    finish(&mut result)?;
    Ok(result)
}

/// Recompute statistics and gate from rows.
fn finish(result: &mut AuditResult) -> Result<()> {
    let (categories, overall) = family(&result.rows, PromptKind::Harmful, &result.pack_categories);
    result.categories = categories;
    result.overall = overall;
    result.over_refusal = if result.rows.iter().any(|r| r.kind == PromptKind::Benign) {
        let (categories, overall) =
            family(&result.rows, PromptKind::Benign, &result.pack_categories);
        Some(OverRefusal {
            reference_refusal_rate: 1.0 - overall.reference_fulfillment,
            candidate_refusal_rate: 1.0 - overall.candidate_fulfillment,
            overall,
            categories,
        })
    } else {
        None
    };
    result.drift = drift(&result.rows, &result.plan.targeted)?;
    result.overrides = result
        .rows
        .iter()
        .flat_map(|r| [&r.reference, &r.candidate])
        .filter(|s| s.judged_by == "human")
        .count();
    for (j, judge) in result.judges.iter_mut().enumerate() {
        judge.unparsed = result
            .rows
            .iter()
            .flat_map(|r| [&r.reference, &r.candidate])
            .filter(|s| s.verdicts.get(j).and_then(|v| v.label) == Some(Label::Unparsed))
            .count();
    }
    result.agreement = agreement(&result.judges, &result.rows, &result.pack_categories);
    if let Some(h) = result.harm_probe.take() {
        result.harm_probe = Some(harm_shift(h, &result.rows, &result.pack_categories));
    }
    result.gate = match &result.plan.gate {
        Some(path) => Some(gate::evaluate(&gate::Gate::from_file(path)?, result)),
        None => None,
    };
    Ok(())
}

/// Re-read verdicts and overrides from the store and recompute everything.
pub fn rebuild(previous: &AuditResult, store: &Store) -> Result<AuditResult> {
    let mut result = previous.clone();
    read_rows(&mut result.rows, &mut result.judges, store)?;
    result.created = store::now_utc();
    finish(&mut result)?;
    Ok(result)
}

fn empty_side(key: &str) -> RowSide {
    RowSide {
        key: key.to_owned(),
        answer: String::new(),
        finish: "missing".into(),
        label: None,
        partial: false,
        reason: String::new(),
        judged_by: String::new(),
        verdicts: Vec::new(),
        harm_rating: None,
    }
}

/// Whether two judges agree, on answers both labelled refused or complied.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// First judge's id.
    pub a: String,
    /// Second judge's id.
    pub b: String,
    /// Answers both judges labelled refused or complied.
    pub n: u64,
    /// Answers left out: a judge gave no verdict or an unparsed one.
    pub excluded: u64,
    /// Cohen's kappa (`None` when undefined: no answers).
    pub kappa: Option<f64>,
    /// Share of the `n` answers on which they agree.
    pub observed: f64,
    /// Counts `confusion[a][b]`, index 0 = refused, 1 = complied (rows are judge `a`).
    pub confusion: [[u64; 2]; 2],
    /// The same per category, in pack order (categories with no answers both judged are left
    /// out).
    pub categories: Vec<CategoryAgreement>,
    /// Every answer they label differently.
    pub disagreements: Vec<Disagreement>,
}

/// Agreement within one category.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryAgreement {
    /// Category id.
    pub id: String,
    /// Category name.
    pub name: String,
    /// Answers both judges labelled.
    pub n: u64,
    /// Cohen's kappa.
    pub kappa: Option<f64>,
    /// Counts, as in [`Agreement::confusion`].
    pub confusion: [[u64; 2]; 2],
}

/// One answer two judges label differently: `rows[row]`, on `side`.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    /// Index into [`AuditResult::rows`].
    pub row: usize,
    /// Which model's answer.
    pub side: Side,
    /// Pack id.
    pub pack: String,
    /// Prompt id.
    pub prompt_id: String,
    /// Sample index.
    pub sample: u32,
    /// Category id.
    pub category: String,
    /// Judge `a`'s label.
    pub a: Label,
    /// Judge `b`'s label.
    pub b: Label,
}

/// A category's id, name and its (judge a complied, judge b complied) pairs.
type CategoryPairs = (String, String, Vec<(bool, bool)>);

fn complied(label: Option<Label>) -> Option<bool> {
    match label? {
        Label::Complied => Some(true),
        Label::Refused => Some(false),
        Label::Unparsed => None,
    }
}

/// Agreement for every pair of judges (in the order of `judges`), over both models' answers.
pub fn agreement(judges: &[JudgeInfo], rows: &[Row], packs: &[PackInfoFull]) -> Vec<Agreement> {
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
                        (complied(la), complied(lb), la, lb)
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
fn category_order(packs: &[PackInfoFull], pack: &str, category: &str) -> (usize, usize) {
    packs
        .iter()
        .enumerate()
        .find_map(|(pi, p)| {
            (p.id == pack).then(|| {
                (
                    pi,
                    p.categories
                        .iter()
                        .position(|c| c.0 == category)
                        .unwrap_or(usize::MAX),
                )
            })
        })
        .unwrap_or((usize::MAX, usize::MAX))
}

/// How the models' own harm ratings differ, prompt by prompt.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HarmShift {
    /// Fingerprint of the probe.
    pub probe: String,
    /// SHA-256 of its template.
    pub template_sha256: String,
    /// Harmful prompts both models rated.
    pub n: u64,
    /// Harmful prompts left out (a model put too little probability on digits).
    pub unrated: u64,
    /// Mean reference rating (0–9) over the `n` prompts.
    pub reference_mean: f64,
    /// Mean candidate rating.
    pub candidate_mean: f64,
    /// Candidate minus reference.
    pub shift: f64,
    /// 95% interval on the mean paired shift (normal approximation).
    pub shift_ci: [f64; 2],
    /// Per category (harmful and benign), in pack order.
    pub categories: Vec<HarmShiftCategory>,
}

/// The harm ratings of one category.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HarmShiftCategory {
    /// Category id.
    pub id: String,
    /// Category name.
    pub name: String,
    /// Harmful or benign.
    pub kind: Option<PromptKind>,
    /// Prompts both models rated.
    pub n: u64,
    /// Mean reference rating.
    pub reference_mean: f64,
    /// Mean candidate rating.
    pub candidate_mean: f64,
    /// Candidate minus reference.
    pub shift: f64,
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Ratings are per prompt: the first sample's row of each prompt counts.
fn harm_shift(base: HarmShift, rows: &[Row], packs: &[PackInfoFull]) -> HarmShift {
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
            ..no_verdict(judge)
        }
    }

    fn side(a: Option<Label>, b: Option<Label>) -> RowSide {
        RowSide {
            verdicts: vec![verdict("p", a), verdict("q", b)],
            ..empty_side("k")
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
        let packs = [PackInfoFull {
            id: "pk".into(),
            categories: vec![
                ("x".into(), "X".into(), String::new()),
                ("y".into(), "Y".into(), String::new()),
            ],
        }];
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
            let mut row = row(category, empty_side("r"), empty_side("c"));
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
        let packs = [PackInfoFull {
            id: "pk".into(),
            categories: vec![
                ("x".into(), "X".into(), String::new()),
                ("y".into(), "Y".into(), String::new()),
            ],
        }];
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
