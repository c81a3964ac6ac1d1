//! The audit: load each model in turn, answer every prompt (reusing stored answers), judge every
//! answer, and pair the two models' verdicts prompt by prompt.

pub mod compare;
pub mod plan;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

pub use crate::judge::JudgeInfo;
pub use compare::{
    Agreement, AuditResult, CategoryAgreement, CategoryStats, Disagreement, HarmShift,
    JudgeVerdict, Row, RowSide,
};
pub use plan::{Plan, SidePlan};

use crate::error::{Error, Result};
use crate::generate::{self, Event, FinishReason, GenerationSettings, Request};
use crate::judge::harm_probe::HarmProbe;
use crate::judge::{self, spec, JudgeInput, JudgeSettings, JudgeSpec, Label};
use crate::model::{self, Fingerprint, LoadOptions, LoadedModel, ModelInfo};
use crate::packs::{self, Pack, Prompt};
use crate::store::{self, Store, StoredGeneration, StoredHarmRating, StoredVerdict};

/// Which model of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The aligned starting point.
    Reference,
    /// The model under audit.
    Candidate,
}

impl Side {
    /// `reference` or `candidate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Candidate => "candidate",
        }
    }
}

/// What the runner reports while it works.
#[derive(Debug, Clone)]
pub enum JobEvent {
    /// A new stage began.
    Stage(String),
    /// A model finished loading.
    Loaded {
        /// Which side.
        side: Side,
        /// Summary of the model.
        info: Box<ModelInfo>,
        /// Its fingerprint.
        fingerprint: Box<Fingerprint>,
    },
    /// Answers done so far for a side.
    Progress {
        /// Which side.
        side: Side,
        /// Answers available (stored earlier or generated now).
        done: usize,
        /// Answers needed.
        total: usize,
        /// Of `done`, how many came from the store.
        cached: usize,
        /// Generated tokens per second in this run.
        tokens_per_s: f64,
    },
    /// Verdicts done so far by one judge (both models' answers together).
    Judging {
        /// The judge's id.
        judge: String,
        /// Answers with a verdict (stored earlier or given now).
        done: usize,
        /// Answers to judge.
        total: usize,
        /// Of `done`, how many came from the store.
        reused: usize,
        /// Answers judged per minute in this run.
        per_minute: f64,
    },
    /// Streamed text of an answer being generated.
    Token {
        /// Which side.
        side: Side,
        /// Index into the audit's items.
        item: usize,
        /// New text.
        delta: String,
    },
    /// The audit is complete.
    Finished(Box<AuditResult>),
    /// The audit stopped with an error (or was cancelled); stored answers stay stored.
    Failed(String),
}

/// One prompt × sample to answer.
#[derive(Debug, Clone)]
pub struct Item {
    /// Pack id.
    pub pack: String,
    /// The prompt.
    pub prompt: Prompt,
    /// Category display name.
    pub category_name: String,
    /// Sample index.
    pub sample: u32,
    /// Hash of the prompt text.
    pub text_hash: String,
}

/// Load the plan's packs (restricted to its categories) and expand prompts × samples.
pub fn plan_items(plan: &Plan) -> Result<(Vec<Pack>, Vec<Item>)> {
    let mut loaded = Vec::new();
    let mut items = Vec::new();
    for name in &plan.packs {
        let mut pack = packs::load(name)?;
        if !plan.categories.is_empty() {
            let wanted: Vec<String> = plan
                .categories
                .iter()
                .filter(|c| {
                    pack.categories
                        .iter()
                        .any(|pc| pc.id == **c || pc.name.eq_ignore_ascii_case(c))
                })
                .cloned()
                .collect();
            // A category list narrows the packs that have those categories; others stay whole.
            if !wanted.is_empty() {
                pack.retain_categories(&wanted)?;
            }
        }
        if let Some(limit) = plan.per_category {
            let mut seen: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            pack.prompts.retain(|p| {
                let n = seen.entry(p.category.clone()).or_default();
                *n += 1;
                *n <= limit
            });
        }
        for prompt in &pack.prompts {
            let category_name = pack
                .category(&prompt.category)
                .map_or_else(|| prompt.category.clone(), |c| c.name.clone());
            for sample in 0..plan.samples {
                items.push(Item {
                    pack: pack.id.clone(),
                    prompt: prompt.clone(),
                    category_name: category_name.clone(),
                    sample,
                    text_hash: prompt.text_hash(),
                });
            }
        }
        loaded.push(pack);
    }
    if !plan.categories.is_empty() {
        for c in &plan.categories {
            let known = loaded.iter().any(|p| {
                p.categories
                    .iter()
                    .any(|pc| pc.id == *c || pc.name.eq_ignore_ascii_case(c))
            });
            if !known {
                return Err(Error::Invalid(format!(
                    "no pack in this audit has a category `{c}`"
                )));
            }
        }
    }
    Ok((loaded, items))
}

/// Where an imported side's answers came from and how they matched the audit's prompts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportedAnswers {
    /// The answers file.
    pub path: std::path::PathBuf,
    /// SHA-256 of its bytes (the answers' provenance in the store is `imported:<sha256>`).
    pub sha256: String,
    /// Records in the file.
    pub records: usize,
    /// Records matched to a prompt of the audit.
    pub matched: usize,
    /// Lines of records that match no prompt of the audit (by id or exact text).
    pub unmatched_lines: Vec<usize>,
    /// Prompts (`id`, or `id#sample` past the first sample) the file has no answer for; they
    /// are left out of the pairing.
    pub missing: Vec<String>,
}

/// What one side contributed.
#[derive(Debug, Clone, Serialize)]
pub struct SideRun {
    /// The plan for this side.
    pub plan: SidePlan,
    /// Fingerprint of the loaded model, or of the answers file (role `answers`) when imported.
    pub fingerprint: Fingerprint,
    /// Model summary; `None` when the answers were imported (no model was loaded).
    pub info: Option<ModelInfo>,
    /// The answers file and its matching, when the answers were imported.
    pub imported: Option<ImportedAnswers>,
    /// Answers generated in this run.
    pub generated: usize,
    /// Answers reused from the store.
    pub reused: usize,
    /// Answers that stopped at the token limit.
    pub hit_token_limit: usize,
    /// Generation keys per item.
    #[serde(skip)]
    pub keys: Vec<String>,
}

fn prompt_ids(model: &LoadedModel, system: Option<&str>, prompt: &Prompt) -> Result<Vec<u32>> {
    match model.prompt_ids(system, &prompt.turns) {
        Ok(ids) => Ok(ids),
        // Templates that insist on alternating roles refuse consecutive user turns: send the
        // turns as one message instead.
        Err(_) if prompt.turns.len() > 1 => model.prompt_ids(system, &[prompt.turns.join("\n\n")]),
        Err(e) => Err(e),
    }
}

fn answer_side(
    plan: &Plan,
    side: Side,
    items: &[Item],
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<SideRun> {
    let side_plan = match side {
        Side::Reference => &plan.reference,
        Side::Candidate => &plan.candidate,
    };
    if let Some(file) = &side_plan.answers {
        return import_side(side_plan, file, side, items, store, on_event);
    }
    on_event(JobEvent::Stage(format!(
        "loading {} model {}",
        side.as_str(),
        side_plan.spec().label()
    )));
    let longest_prompt = items
        .iter()
        .map(|i| i.prompt.turns.iter().map(String::len).sum::<usize>())
        .max()
        .unwrap_or(0);
    let options = LoadOptions {
        device: model::select_device(&plan.device)?,
        requantize: plan.requantize,
        // Room for the longest prompt (a token is at least one byte) plus template and answer.
        max_positions: (longest_prompt + plan.generation.max_new_tokens + 512).min(32_768),
        hash_cache: None,
    };
    let loaded = model::load(&side_plan.spec(), &options)?;
    on_event(JobEvent::Loaded {
        side,
        info: Box::new(loaded.info.clone()),
        fingerprint: Box::new(loaded.fingerprint.clone()),
    });
    store.put_model(
        &loaded.fingerprint.id,
        &loaded.spec.label(),
        &serde_json::to_string(&loaded.fingerprint).unwrap_or_default(),
        &serde_json::to_string(&loaded.info).unwrap_or_default(),
    )?;
    let system = side_plan.system_prompt();
    let settings_key = plan.generation.answer_key();
    let keys: Vec<String> = items
        .iter()
        .map(|i| {
            store::generation_key(
                &loaded.fingerprint.id,
                system,
                &i.text_hash,
                &settings_key,
                i.sample,
            )
        })
        .collect();
    let mut todo = Vec::new();
    // Token-limit stops are counted as answers are found or made, not by a second read.
    let mut hit_token_limit = 0;
    for (index, item) in items.iter().enumerate() {
        store.put_prompt(&item.text_hash, &item.prompt.turns)?;
        match store.generation(&keys[index])? {
            Some(g) => hit_token_limit += usize::from(g.finish == "length"),
            None => todo.push(index),
        }
    }
    let total = items.len();
    let reused = total - todo.len();
    on_event(JobEvent::Stage(format!(
        "{}: {} answers to generate, {} reused from the store",
        side.as_str(),
        todo.len(),
        reused
    )));
    on_event(JobEvent::Progress {
        side,
        done: reused,
        total,
        cached: reused,
        tokens_per_s: 0.0,
    });
    let system_opt = side_plan.system.as_deref().filter(|s| !s.is_empty());
    let requests = todo
        .iter()
        .map(|&i| {
            Ok(Request {
                prompt_ids: prompt_ids(&loaded, system_opt, &items[i].prompt)?,
                seed_key: u64::from_str_radix(&items[i].text_hash[..15], 16).unwrap_or(0)
                    ^ u64::from(items[i].sample),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let mut generated = 0usize;
    let mut tokens = 0usize;
    let mut store_error: Option<Error> = None;
    let settings = GenerationSettings {
        ignore_eos: false,
        ..plan.generation.clone()
    };
    if !requests.is_empty() {
        on_event(JobEvent::Stage(format!("{}: generating", side.as_str())));
        let result =
            generate::generate(
                &loaded,
                &requests,
                &settings,
                cancel,
                &mut |event| match event {
                    Event::Token { index, delta } => on_event(JobEvent::Token {
                        side,
                        item: todo[index],
                        delta: delta.to_owned(),
                    }),
                    Event::Done(c) => {
                        if store_error.is_some() {
                            return;
                        }
                        let item_index = todo[c.index];
                        let item = &items[item_index];
                        let g = StoredGeneration {
                            key: keys[item_index].clone(),
                            model: loaded.fingerprint.id.clone(),
                            system_prompt: system.to_owned(),
                            text_hash: item.text_hash.clone(),
                            settings: settings_key.clone(),
                            sample: item.sample,
                            answer: c.text.clone(),
                            finish: c.finish.as_str().to_owned(),
                            prompt_tokens: c.prompt_tokens as u32,
                            answer_tokens: c.token_ids.len() as u32,
                            provenance: "generated".into(),
                        };
                        match store.put_generation(&g) {
                            Ok(_) => {
                                generated += 1;
                                hit_token_limit += usize::from(c.finish == FinishReason::Length);
                                tokens += c.token_ids.len();
                                let secs = started.elapsed().as_secs_f64();
                                on_event(JobEvent::Progress {
                                    side,
                                    done: reused + generated,
                                    total,
                                    cached: reused,
                                    tokens_per_s: if secs > 0.0 {
                                        tokens as f64 / secs
                                    } else {
                                        0.0
                                    },
                                });
                            }
                            Err(e) => {
                                store_error = Some(e);
                                cancel.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                },
            );
        if let Some(e) = store_error {
            return Err(e);
        }
        result?;
    }
    if plan.harm_probe {
        rate_harm(plan, side, items, &loaded, store, cancel, on_event)?;
    }
    Ok(SideRun {
        plan: side_plan.clone(),
        fingerprint: loaded.fingerprint.clone(),
        info: Some(loaded.info.clone()),
        imported: None,
        generated,
        reused,
        hit_token_limit,
        keys,
    })
}

/// The settings part of an imported answer's store key: our decoding settings did not make it.
const IMPORTED_SETTINGS: &str = "imported";

/// Read a side's answers from a file instead of a model: match each record to the audit's
/// prompts (by prompt id, else by exact prompt text) and store the matched answers under the
/// file's fingerprint, so they are judged, compared and reused like generated ones.
fn import_side(
    side_plan: &SidePlan,
    path: &std::path::Path,
    side: Side,
    items: &[Item],
    store: &Store,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<SideRun> {
    on_event(JobEvent::Stage(format!(
        "{}: reading answers from {}",
        side.as_str(),
        path.display()
    )));
    let file = crate::answers::AnswersFile::from_file(path)?;
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let fingerprint = Fingerprint::new(
        vec![model::fingerprint::FileDigest {
            role: "answers".into(),
            path: absolute.display().to_string(),
            bytes: file.bytes,
            sha256: file.sha256.clone(),
        }],
        None,
        String::new(),
        vec!["imported answers".into()],
    );
    store.put_model(
        &fingerprint.id,
        &side_plan.label(),
        &serde_json::to_string(&fingerprint).unwrap_or_default(),
        "null",
    )?;
    let system = side_plan.system_prompt();
    let keys: Vec<String> = items
        .iter()
        .map(|i| {
            store::generation_key(
                &fingerprint.id,
                system,
                &i.text_hash,
                IMPORTED_SETTINGS,
                i.sample,
            )
        })
        .collect();
    let mut by_id: std::collections::HashMap<(&str, u32), Vec<usize>> =
        std::collections::HashMap::new();
    let mut by_text: std::collections::HashMap<(String, u32), Vec<usize>> =
        std::collections::HashMap::new();
    for (index, item) in items.iter().enumerate() {
        by_id
            .entry((item.prompt.id.as_str(), item.sample))
            .or_default()
            .push(index);
        by_text
            .entry((item.prompt.display_text(), item.sample))
            .or_default()
            .push(index);
    }
    let bad = |line: usize, field: &str, why: String| {
        Error::bad_file(path, format!("line {line}: field `{field}`: {why}"))
    };
    // Item index -> the record answering it.
    let mut answer_of: Vec<Option<&crate::answers::AnswerRecord>> = vec![None; items.len()];
    let mut unmatched_lines = Vec::new();
    let mut matched = 0usize;
    for record in &file.records {
        let pack_ok = |&&i: &&usize| record.pack.as_deref().is_none_or(|p| p == items[i].pack);
        let by_record_id: Vec<usize> = record
            .id
            .as_deref()
            .and_then(|id| by_id.get(&(id, record.sample)))
            .map(|v| v.iter().filter(pack_ok).copied().collect())
            .unwrap_or_default();
        let (field, found) = if by_record_id.is_empty() {
            let by_prompt: Vec<usize> = record
                .prompt
                .as_ref()
                .and_then(|t| by_text.get(&(t.clone(), record.sample)))
                .map(|v| v.iter().filter(pack_ok).copied().collect())
                .unwrap_or_default();
            ("prompt", by_prompt)
        } else {
            ("id", by_record_id)
        };
        let index = match found.as_slice() {
            [] => {
                unmatched_lines.push(record.line);
                continue;
            }
            [one] => *one,
            [first, second, ..] => {
                return Err(bad(
                    record.line,
                    field,
                    format!(
                        "matches prompts of packs `{}` and `{}`; add a `pack` field",
                        items[*first].pack, items[*second].pack
                    ),
                ))
            }
        };
        if let Some(earlier) = answer_of[index] {
            return Err(bad(
                record.line,
                field,
                format!(
                    "answers prompt `{}` (sample {}) again; line {} already does",
                    items[index].prompt.id, items[index].sample, earlier.line
                ),
            ));
        }
        answer_of[index] = Some(record);
        matched += 1;
    }
    let provenance = format!("imported:{}", file.sha256);
    let mut missing = Vec::new();
    let mut reused = 0usize;
    let mut stored = 0usize;
    for (index, item) in items.iter().enumerate() {
        store.put_prompt(&item.text_hash, &item.prompt.turns)?;
        let Some(record) = answer_of[index] else {
            missing.push(if item.sample == 0 {
                item.prompt.id.clone()
            } else {
                format!("{}#{}", item.prompt.id, item.sample)
            });
            continue;
        };
        let fresh = store.put_generation(&StoredGeneration {
            key: keys[index].clone(),
            model: fingerprint.id.clone(),
            system_prompt: system.to_owned(),
            text_hash: item.text_hash.clone(),
            settings: IMPORTED_SETTINGS.into(),
            sample: item.sample,
            answer: record.answer.clone(),
            finish: "imported".into(),
            prompt_tokens: 0,
            answer_tokens: 0,
            provenance: provenance.clone(),
        })?;
        if fresh {
            stored += 1;
        } else {
            reused += 1;
        }
    }
    on_event(JobEvent::Stage(format!(
        "{}: {matched} of {} answers matched ({stored} stored now, {reused} already stored); {} prompts without an answer, {} records matching no prompt",
        side.as_str(),
        file.records.len(),
        missing.len(),
        unmatched_lines.len()
    )));
    on_event(JobEvent::Progress {
        side,
        done: matched,
        total: items.len(),
        cached: reused,
        tokens_per_s: 0.0,
    });
    Ok(SideRun {
        plan: side_plan.clone(),
        fingerprint,
        info: None,
        imported: Some(ImportedAnswers {
            path: path.to_path_buf(),
            sha256: file.sha256,
            records: file.records.len(),
            matched,
            unmatched_lines,
            missing,
        }),
        generated: 0,
        reused,
        hit_token_limit: 0,
        keys,
    })
}

/// Ask the loaded model how harmful each distinct request is (the self-rated harm probe),
/// storing ratings not stored yet.
fn rate_harm(
    plan: &Plan,
    side: Side,
    items: &[Item],
    model: &LoadedModel,
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<()> {
    let probe = HarmProbe::shipped()?;
    let side_plan = match side {
        Side::Reference => &plan.reference,
        Side::Candidate => &plan.candidate,
    };
    let system = side_plan.system_prompt();
    let mut todo: Vec<&Item> = Vec::new();
    for item in items {
        if todo.iter().any(|t| t.text_hash == item.text_hash) {
            continue;
        }
        if store
            .harm_rating(
                &model.fingerprint.id,
                system,
                &item.text_hash,
                &probe.fingerprint,
            )?
            .is_none()
        {
            todo.push(item);
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    on_event(JobEvent::Stage(format!(
        "{}: rating how harmful {} requests are (harm probe)",
        side.as_str(),
        todo.len()
    )));
    let texts: Vec<String> = todo.iter().map(|i| i.prompt.display_text()).collect();
    let requests: Vec<&str> = texts.iter().map(String::as_str).collect();
    probe.rate(
        model,
        side_plan.system.as_deref().filter(|s| !s.is_empty()),
        &requests,
        plan.generation.batch_size,
        cancel,
        &mut |i, r| {
            store.put_harm_rating(&StoredHarmRating {
                model: model.fingerprint.id.clone(),
                system_prompt: system.to_owned(),
                text_hash: todo[i].text_hash.clone(),
                probe: probe.fingerprint.clone(),
                rating: r.rating,
                digit_mass: r.digit_mass,
                digit_probs: r.digit_probs,
                raw: r.raw,
            })
        },
    )
}

/// Judge every stored answer of both sides with every judge of the plan, one judge (and one
/// judge model) at a time, storing verdicts not stored yet. Returns the judges' descriptions
/// with this run's counts.
fn judge_answers(
    plan: &Plan,
    items: &[Item],
    sides: [&SideRun; 2],
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<Vec<compare::JudgeInfo>> {
    let requests: Vec<String> = items.iter().map(|i| i.prompt.display_text()).collect();
    let mut answers: Vec<[Option<StoredGeneration>; 2]> = Vec::with_capacity(items.len());
    for (i, _) in items.iter().enumerate() {
        answers.push([
            store.generation(&sides[0].keys[i])?,
            store.generation(&sides[1].keys[i])?,
        ]);
    }
    let longest = |texts: &mut dyn Iterator<Item = usize>| texts.max().unwrap_or(0);
    let longest_request = longest(&mut requests.iter().map(String::len));
    let longest_answer = longest(&mut answers.iter().flatten().flatten().map(|g| g.answer.len()));
    let settings = JudgeSettings {
        device: model::select_device(&plan.device)?,
        requantize: plan.requantize,
        batch_size: plan.generation.batch_size,
        // A token is at least one byte; the rest is room for the template and the verdict.
        max_positions: (longest_request + longest_answer + 4096).min(32_768),
    };
    let ids = spec::unique_ids(&plan.judges);
    let mut infos = Vec::with_capacity(plan.judges.len());
    for (spec, id) in plan.judges.iter().zip(ids) {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        if let Some(source) = spec.model_source() {
            on_event(JobEvent::Stage(format!("judge {id}: loading {source}")));
        }
        let mut judge = judge::build(spec, &settings)?;
        let mut info = judge.info().clone();
        info.id = id;
        let mut inputs = Vec::new();
        let mut reused = 0usize;
        for (s, side) in [Side::Reference, Side::Candidate].into_iter().enumerate() {
            for (i, item) in items.iter().enumerate() {
                let key = &sides[s].keys[i];
                let Some(g) = &answers[i][s] else {
                    continue;
                };
                if store.verdict(key, &info.fingerprint)?.is_some() {
                    reused += 1;
                    continue;
                }
                inputs.push(JudgeInput {
                    key,
                    pack: &item.pack,
                    prompt_id: &item.prompt.id,
                    sample: item.sample,
                    side: side.as_str(),
                    category: &item.category_name,
                    request: &requests[i],
                    answer: &g.answer,
                });
            }
        }
        if let JudgeSpec::Human { file } = spec {
            let labels = judge::human::HumanLabels::from_file(file)?;
            let unmatched = labels.unmatched(&inputs);
            if unmatched > 0 && reused == 0 {
                on_event(JobEvent::Stage(format!(
                    "warning: {unmatched} of {} labels in {} name no answer of this audit",
                    labels.records.len(),
                    file.display()
                )));
            }
        }
        let total = reused + inputs.len();
        on_event(JobEvent::Stage(format!(
            "judge {}: {} answers to judge, {reused} verdicts reused from the store",
            info.id,
            inputs.len()
        )));
        on_event(JobEvent::Judging {
            judge: info.id.clone(),
            done: reused,
            total,
            reused,
            per_minute: 0.0,
        });
        let started = Instant::now();
        let mut judged = 0usize;
        if !inputs.is_empty() {
            judge.judge_batch(&inputs, cancel, &mut |j, v| {
                let input = &inputs[j];
                store.put_verdict(&StoredVerdict {
                    generation: input.key.to_owned(),
                    judge: info.id.clone(),
                    judge_fingerprint: info.fingerprint.clone(),
                    label: v.label.as_str().to_owned(),
                    partial: v.partial,
                    score: v.score,
                    reason: v.reason,
                    raw: v.raw,
                    judge_model: info.model.clone().unwrap_or_default(),
                    template_sha256: info.template_sha256.clone().unwrap_or_default(),
                    decoding: info.decoding.clone().unwrap_or_default(),
                })?;
                judged += 1;
                let secs = started.elapsed().as_secs_f64();
                on_event(JobEvent::Judging {
                    judge: info.id.clone(),
                    done: reused + judged,
                    total,
                    reused,
                    per_minute: if secs > 0.0 {
                        judged as f64 / secs * 60.0
                    } else {
                        0.0
                    },
                });
                Ok(())
            })?;
        }
        info.judged = judged;
        info.reused = reused;
        info.seconds = started.elapsed().as_secs_f64();
        if judged > 0 {
            on_event(JobEvent::Stage(format!(
                "judge {}: {judged} verdicts in {:.1} s ({:.1} answers/min)",
                info.id,
                info.seconds,
                info.per_minute()
            )));
        }
        // The judge (and its model) is dropped here, before the next one loads.
        drop(judge);
        infos.push(info);
    }
    Ok(infos)
}

/// Run a whole audit synchronously. Answers are stored as they complete; on cancel or error the
/// stored work remains and a rerun of the same plan resumes from it.
pub fn run(
    plan: &Plan,
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<AuditResult> {
    plan.validate()?;
    if let Some(gate) = &plan.gate {
        // A missing or broken gate file should stop the audit before generation, not after.
        crate::report::gate::Gate::from_file(gate)?;
    }
    let started = Instant::now();
    let (packs, items) = plan_items(plan)?;
    if items.is_empty() {
        return Err(Error::Invalid(
            "the selected packs and categories hold no prompts".into(),
        ));
    }
    // A missing judge model or a broken template or labels file is reported before hours of
    // generation, not after.
    for judge in &plan.judges {
        judge.check()?;
    }
    // Likewise a broken answers file is reported before the other side's generation.
    for side in [&plan.reference, &plan.candidate] {
        if let Some(file) = &side.answers {
            crate::answers::AnswersFile::from_file(file)?;
        }
    }
    let plan_json = serde_json::to_string(plan).unwrap_or_default();
    let run_id = store.begin_run(&plan_json, &plan.out.display().to_string())?;
    let outcome = (|| -> Result<AuditResult> {
        let reference = answer_side(plan, Side::Reference, &items, store, cancel, on_event)?;
        let candidate = answer_side(plan, Side::Candidate, &items, store, cancel, on_event)?;
        on_event(JobEvent::Stage("judging answers".into()));
        let judges = judge_answers(
            plan,
            &items,
            [&reference, &candidate],
            store,
            cancel,
            on_event,
        )?;
        on_event(JobEvent::Stage("comparing".into()));
        let harm_probe = if plan.harm_probe {
            let probe = HarmProbe::shipped()?;
            Some((
                probe.fingerprint.clone(),
                probe.template_sha256().to_owned(),
            ))
        } else {
            None
        };
        compare::build(
            plan,
            &packs,
            &items,
            reference,
            candidate,
            judges,
            harm_probe,
            store,
            started.elapsed(),
        )
    })();
    let status = match &outcome {
        Ok(_) => "finished".to_owned(),
        Err(Error::Cancelled) => "cancelled".to_owned(),
        Err(e) => format!("failed: {e}"),
    };
    store.end_run(run_id, &status)?;
    outcome
}

/// Recompute the comparison from the store for an audit whose answers are all stored (after a
/// person overrules a verdict, say), without loading any model.
pub fn recompare(result: &AuditResult, store: &Store) -> Result<AuditResult> {
    compare::rebuild(result, store)
}

/// A running audit on its own thread.
pub struct JobHandle {
    /// Events, in order; ends with `Finished` or `Failed`.
    pub events: mpsc::Receiver<JobEvent>,
    /// Set to stop between generation steps.
    pub cancel: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JobHandle {
    /// Wait for the worker thread to end.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Start an audit on a named worker thread. `waker` is called after each event (the GUI passes
/// a repaint request). The store is opened on the worker.
pub fn spawn(
    plan: Plan,
    store_dir: std::path::PathBuf,
    waker: Box<dyn Fn() + Send>,
) -> Result<JobHandle> {
    let (tx, rx) = mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let worker_cancel = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("aligndiff-audit".into())
        .spawn(move || {
            let send = |e: JobEvent| {
                let _ = tx.send(e);
                waker();
            };
            let result = Store::open_dir(&store_dir).and_then(|store| {
                // Coalesce streamed tokens: deltas are buffered and flushed at most every 50 ms.
                let mut pending: Vec<(Side, usize, String)> = Vec::new();
                let mut last_flush = Instant::now();
                run(&plan, &store, &worker_cancel, &mut |e| match e {
                    JobEvent::Token { side, item, delta } => {
                        match pending
                            .iter_mut()
                            .find(|(s, i, _)| *s == side && *i == item)
                        {
                            Some((_, _, text)) => text.push_str(&delta),
                            None => pending.push((side, item, delta)),
                        }
                        if last_flush.elapsed().as_millis() >= 50 {
                            last_flush = Instant::now();
                            for (side, item, delta) in pending.drain(..) {
                                send(JobEvent::Token { side, item, delta });
                            }
                        }
                    }
                    other => {
                        // Buffered text goes out before the event that follows it.
                        for (side, item, delta) in pending.drain(..) {
                            send(JobEvent::Token { side, item, delta });
                        }
                        send(other);
                    }
                })
            });
            match result {
                Ok(r) => send(JobEvent::Finished(Box::new(r))),
                Err(e) => send(JobEvent::Failed(e.to_string())),
            }
        })
        .map_err(|e| Error::Invalid(format!("cannot start the audit thread: {e}")))?;
    Ok(JobHandle {
        events: rx,
        cancel,
        thread: Some(thread),
    })
}

/// The effective label of a generation: a person's override, else the judge's verdict.
pub fn effective_label(
    store: &Store,
    key: &str,
    judge_fingerprint: &str,
) -> Result<Option<(Label, bool, String, String)>> {
    if let Some((label, note)) = store.override_for(key)? {
        if let Some(l) = Label::parse(&label) {
            return Ok(Some((
                l,
                false,
                if note.is_empty() {
                    "overruled by a person".into()
                } else {
                    note
                },
                "human".into(),
            )));
        }
    }
    Ok(store
        .verdict(key, judge_fingerprint)?
        .and_then(|v| Label::parse(&v.label).map(|l| (l, v.partial, v.reason, v.judge))))
}
