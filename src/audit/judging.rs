//! The judging stage: every stored answer of both sides, every judge of the plan, one judge
//! (and one judge model) at a time; verdicts already stored are reused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::events::JobEvent;
use super::plan::Item;
use super::plan::Plan;
use super::result::SideRun;
use super::side::Side;
use crate::error::{Error, Result};
use crate::judge::{self, spec, JudgeInfo, JudgeInput, JudgeSettings, JudgeSpec};
use crate::model;
use crate::serve;
use crate::store::{Store, StoredGeneration, StoredVerdict};

/// Judge every stored answer of both sides with every judge of the plan, one judge (and one
/// judge model) at a time, storing verdicts not stored yet. Returns the judges' descriptions
/// with this run's counts.
pub(super) fn judge_answers(
    plan: &Plan,
    items: &[Item],
    sides: [&SideRun; 2],
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<Vec<JudgeInfo>> {
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
        serving: plan.serving.clone(),
        api_key_env: plan.judge_api_key_env.clone(),
    };
    let ids = spec::unique_ids(&plan.judges);
    let mut infos = Vec::with_capacity(plan.judges.len());
    for (spec, id) in plan.judges.iter().zip(ids) {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        if let Some(source) = spec.model_source() {
            on_event(JobEvent::Stage(if serve::is_served(source) {
                format!(
                    "judge {id}: asking {} for its models",
                    serve::public_source(source)
                )
            } else {
                format!("judge {id}: loading {source}")
            }));
        }
        let mut judge = judge::build_cancellable(spec, &settings, cancel)?;
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
                    truncated: g.finish == crate::store::Finish::Length,
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
                    uncertain: v.uncertain,
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
