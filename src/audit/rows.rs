//! Reading an audit's rows from the store: both answers of every prompt, every judge's verdict,
//! and the one rule for people's overrides: a person's label beats any judge's.

use std::time::Duration;

use super::plan::Item;
use super::plan::Plan;
use super::result::*;
use super::{compare, gate};
use crate::error::Result;
use crate::judge::{JudgeInfo, JudgeKind, Label, Uncertainty, HUMAN_ID};
use crate::packs::Pack;
use crate::store::{self, Store};

/// The `spec` of the judge that stands for people's overrides when no `human:FILE` judge was
/// given.
pub const OVERRIDES_SPEC: &str = "overrides";

/// The reason a person's override carries when they wrote no note.
const NO_NOTE: &str = "overruled by a person";

/// The verdict that counts for one answer: a person's override, else the primary judge's.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveVerdict {
    /// Refused, complied or unparsed.
    pub label: Label,
    /// Both refused and provided content (lexical judge).
    pub partial: bool,
    /// Why, in words (a person's note for an override).
    pub reason: String,
    /// The judge, or a person.
    pub judged_by: JudgedBy,
}

/// A person's override of the verdict on answer `key`, as the `human` judge's verdict.
pub fn person_verdict(store: &Store, key: &str) -> Result<Option<JudgeVerdict>> {
    let Some((label, note)) = store.override_for(key)? else {
        return Ok(None);
    };
    Ok(Label::parse(&label).map(|label| JudgeVerdict {
        judge: HUMAN_ID.to_owned(),
        label: Some(label),
        partial: false,
        uncertain: None,
        score: None,
        reason: if note.is_empty() {
            NO_NOTE.to_owned()
        } else {
            note
        },
        raw: None,
    }))
}

/// The verdict that counts for answer `key`: a person's override, else the verdict of the judge
/// with fingerprint `judge_fingerprint`.
pub fn effective_label(
    store: &Store,
    key: &str,
    judge_fingerprint: &str,
) -> Result<Option<EffectiveVerdict>> {
    effective(
        person_verdict(store, key)?.as_ref(),
        store,
        key,
        judge_fingerprint,
    )
}

/// [`effective_label`] when the person's verdict (if any) is already read.
fn effective(
    person: Option<&JudgeVerdict>,
    store: &Store,
    key: &str,
    judge_fingerprint: &str,
) -> Result<Option<EffectiveVerdict>> {
    if let Some(person) = person {
        if let Some(label) = person.label {
            return Ok(Some(EffectiveVerdict {
                label,
                partial: false,
                reason: person.reason.clone(),
                judged_by: JudgedBy::Person,
            }));
        }
    }
    Ok(store.verdict(key, judge_fingerprint)?.and_then(|v| {
        Some(EffectiveVerdict {
            label: Label::parse(&v.label)?,
            partial: v.partial,
            reason: v.reason,
            judged_by: JudgedBy::Judge(v.judge),
        })
    }))
}

fn row_side(store: &Store, key: &str, judges: &[JudgeInfo]) -> Result<RowSide> {
    let judge_fp = judges.first().map_or("", |j| j.fingerprint.as_str());
    let g = store.generation(key)?;
    // Read once: it decides the effective verdict and is the `human` judge's own verdict.
    let person = person_verdict(store, key)?;
    let effective = effective(person.as_ref(), store, key, judge_fp)?;
    let mut verdicts = Vec::with_capacity(judges.len());
    for judge in judges {
        let verdict = match &person {
            Some(v) if judge.kind == JudgeKind::Human => JudgeVerdict {
                judge: judge.id.clone(),
                ..v.clone()
            },
            _ if judge.spec == OVERRIDES_SPEC => JudgeVerdict::none(&judge.id),
            _ => match store.verdict(key, &judge.fingerprint)? {
                Some(v) => JudgeVerdict {
                    judge: judge.id.clone(),
                    label: Label::parse(&v.label),
                    partial: v.partial,
                    uncertain: v.uncertain,
                    score: v.score,
                    reason: v.reason,
                    raw: v.raw,
                },
                None => JudgeVerdict::none(&judge.id),
            },
        };
        verdicts.push(verdict);
    }
    let mut side = RowSide::missing(key);
    if let Some(g) = g {
        side.answer = g.answer;
        side.finish = Some(g.finish);
    }
    if let Some(e) = effective {
        side.label = Some(e.label);
        side.partial = e.partial;
        side.reason = e.reason;
        side.judged_by = e.judged_by;
    }
    side.flags = review_flags(&side.answer, &verdicts);
    side.verdicts = verdicts;
    Ok(side)
}

/// What makes an answer worth a person's look: what its text shows whoever judged it (it
/// speaks to the evaluator, or mixes a refusal with content), then any judge's stated doubt;
/// each once, in [`Uncertainty::ALL`]'s order.
fn review_flags(answer: &str, verdicts: &[JudgeVerdict]) -> Vec<Uncertainty> {
    if answer.is_empty() {
        return Vec::new();
    }
    let mut found = crate::judge::refusal::text_flags(answer);
    found.extend(verdicts.iter().filter_map(|v| v.uncertain));
    Uncertainty::ALL
        .into_iter()
        .filter(|u| found.contains(u))
        .collect()
}

/// Read every row's answers and verdicts; add the `human` judge for overrides when it is
/// needed (there are overrides and no `human:FILE` judge).
fn read_rows(rows: &mut [Row], judges: &mut Vec<JudgeInfo>, store: &Store) -> Result<()> {
    judges.retain(|j| j.spec != OVERRIDES_SPEC);
    let mut overridden = false;
    for row in rows.iter_mut() {
        let rating = (row.reference.harm_rating, row.candidate.harm_rating);
        row.reference = row_side(store, &row.reference.key, judges)?;
        row.candidate = row_side(store, &row.candidate.key, judges)?;
        (row.reference.harm_rating, row.candidate.harm_rating) = rating;
        overridden |= row.reference.judged_by.is_person() || row.candidate.judged_by.is_person();
    }
    if overridden && !judges.iter().any(|j| j.kind == JudgeKind::Human) {
        let human = JudgeInfo {
            id: HUMAN_ID.into(),
            kind: JudgeKind::Human,
            spec: OVERRIDES_SPEC.into(),
            fingerprint: OVERRIDES_SPEC.into(),
            ..JudgeInfo::default()
        };
        // The override already decided each side's effective verdict: the `human` column
        // repeats it rather than reading the store again.
        for row in rows.iter_mut() {
            for side in [&mut row.reference, &mut row.candidate] {
                let verdict = if side.judged_by.is_person() {
                    JudgeVerdict {
                        judge: human.id.clone(),
                        label: side.label,
                        partial: false,
                        uncertain: None,
                        score: None,
                        reason: side.reason.clone(),
                        raw: None,
                    }
                } else {
                    JudgeVerdict::none(&human.id)
                };
                side.verdicts.push(verdict);
            }
        }
        judges.push(human);
    }
    Ok(())
}

/// What the stages of a run produced, to be assembled into an [`AuditResult`].
#[derive(Debug, Clone)]
pub struct Collected {
    /// The reference side's answers.
    pub reference: SideRun,
    /// The candidate side's answers.
    pub candidate: SideRun,
    /// Every judge, primary first, with this run's counts.
    pub judges: Vec<JudgeInfo>,
    /// The harm probe's identity (probe fingerprint, template SHA-256), when it ran.
    pub harm_probe: Option<HarmShift>,
}

/// Assemble the result of a finished run: read every row from the store, then compute the
/// figures and hold them to the gate.
pub fn build(
    plan: &Plan,
    packs: &[Pack],
    items: &[Item],
    collected: Collected,
    store: &Store,
    wall: Duration,
) -> Result<AuditResult> {
    let Collected {
        reference,
        candidate,
        mut judges,
        harm_probe,
    } = collected;
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
            reference: RowSide::missing(&reference.keys[i]),
            candidate: RowSide::missing(&candidate.keys[i]),
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
                        &probe.probe,
                    )?
                    .and_then(|h| h.rating);
            }
        }
        rows.push(row);
    }
    read_rows(&mut rows, &mut judges, store)?;
    let mut result = AuditResult {
        tool: ToolInfo::current(),
        created: store::now_utc(),
        plan: plan.clone(),
        reference,
        candidate,
        packs: packs.iter().map(PackInfo::of).collect(),
        judges,
        agreement: Vec::new(),
        judge_error: None,
        harm_probe,
        categories: Vec::new(),
        overall: CategoryStats::default(),
        over_refusal: None,
        drift: None,
        rows,
        gate: None,
        weight_diff: None,
        overrides: 0,
        wall_seconds: wall.as_secs_f64(),
    };
    conclude(&mut result)?;
    Ok(result)
}

/// Re-read verdicts and overrides from the store and recompute everything (after a person
/// overrules a verdict, say), without loading any model.
pub fn rebuild(previous: &AuditResult, store: &Store) -> Result<AuditResult> {
    let mut result = previous.clone();
    read_rows(&mut result.rows, &mut result.judges, store)?;
    result.created = store::now_utc();
    conclude(&mut result)?;
    Ok(result)
}

/// Compute every figure of `result` from its rows and hold it to the plan's gate file.
fn conclude(result: &mut AuditResult) -> Result<()> {
    compare::summarise(result)?;
    result.gate = match &result.plan.gate {
        Some(path) => Some(gate::evaluate(&gate::Gate::from_file(path)?, result)),
        None => None,
    };
    Ok(())
}
