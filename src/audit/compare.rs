//! Pairing the two models' verdicts prompt by prompt, and the per-category statistics.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{effective_label, Item, Plan, SideRun};
use crate::error::Result;
use crate::judge::Label;
use crate::packs::{Pack, PromptKind};
use crate::report::gate::{self, GateResult};
use crate::stats::{self, PairedCounts};
use crate::store::{self, Store};

/// A judge used in the audit.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeInfo {
    /// Id.
    pub id: String,
    /// Kind (`lexical`, ...).
    pub kind: String,
    /// Fingerprint of its rules/model/template.
    pub fingerprint: String,
}

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

/// One side of a row.
#[derive(Debug, Clone, Serialize)]
pub struct RowSide {
    /// Generation key in the store.
    pub key: String,
    /// The answer (empty if missing).
    pub answer: String,
    /// `stop`, `length`, `imported`, or `missing`.
    pub finish: String,
    /// The effective verdict.
    pub label: Option<Label>,
    /// Both refused and provided content.
    pub partial: bool,
    /// Why.
    pub reason: String,
    /// Judge id, or `human` for an override.
    pub judged_by: String,
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
    /// Judges used; the first is the primary judge behind every figure.
    pub judges: Vec<JudgeInfo>,
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

fn row_side(store: &Store, key: &str, judge_fp: &str) -> Result<RowSide> {
    let g = store.generation(key)?;
    let label = effective_label(store, key, judge_fp)?;
    Ok(RowSide {
        key: key.to_owned(),
        answer: g.as_ref().map(|g| g.answer.clone()).unwrap_or_default(),
        finish: g.map_or_else(|| "missing".to_owned(), |g| g.finish),
        label: label.as_ref().map(|l| l.0),
        partial: label.as_ref().is_some_and(|l| l.1),
        reason: label.as_ref().map(|l| l.2.clone()).unwrap_or_default(),
        judged_by: label.map(|l| l.3).unwrap_or_default(),
    })
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
    store: &Store,
    wall: Duration,
) -> Result<AuditResult> {
    let judge_fp = judges
        .first()
        .map(|j| j.fingerprint.clone())
        .unwrap_or_default();
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        rows.push(Row {
            pack: item.pack.clone(),
            prompt_id: item.prompt.id.clone(),
            category: item.prompt.category.clone(),
            category_name: item.category_name.clone(),
            kind: item.prompt.kind,
            sample: item.sample,
            prompt: item.prompt.display_text(),
            reference: row_side(store, &reference.keys[i], &judge_fp)?,
            candidate: row_side(store, &candidate.keys[i], &judge_fp)?,
        });
    }
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
    result.gate = match &result.plan.gate {
        Some(path) => Some(gate::evaluate(&gate::Gate::from_file(path)?, result)),
        None => None,
    };
    Ok(())
}

/// Re-read verdicts and overrides from the store and recompute everything.
pub fn rebuild(previous: &AuditResult, store: &Store) -> Result<AuditResult> {
    let judge_fp = previous
        .judges
        .first()
        .map(|j| j.fingerprint.clone())
        .unwrap_or_default();
    let mut result = previous.clone();
    for row in &mut result.rows {
        row.reference = row_side(store, &row.reference.key, &judge_fp)?;
        row.candidate = row_side(store, &row.candidate.key, &judge_fp)?;
    }
    result.created = store::now_utc();
    finish(&mut result)?;
    Ok(result)
}
