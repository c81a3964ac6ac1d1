//! One side answered by a model: load it, find the answers already stored, generate the rest
//! (batched, streamed), store each as it completes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::events::JobEvent;
use super::harm_probe;
use super::plan::Item;
use super::plan::Plan;
use super::result::SideRun;
use super::side::Side;
use crate::error::{Error, Result};
use crate::generate::{self, Event, FinishReason, GenerationSettings, PromptPrefix, Request};
use crate::model::{self, LoadOptions, LoadedModel};
use crate::packs::Prompt;
use crate::store::{Store, StoredGeneration};

fn prompt_ids(model: &LoadedModel, system: Option<&str>, prompt: &Prompt) -> Result<Vec<u32>> {
    match model.prompt_ids(system, &prompt.turns) {
        Ok(ids) => Ok(ids),
        // Templates that insist on alternating roles refuse consecutive user turns: send the
        // turns as one message instead.
        Err(_) if prompt.turns.len() > 1 => model.prompt_ids(system, &[prompt.turns.join("\n\n")]),
        Err(e) => Err(e),
    }
}

/// Answer every item with the side's model, reusing stored answers; runs the harm probe too
/// when the plan asks for it (the model is loaded then).
pub(super) fn generate_side(
    plan: &Plan,
    side: Side,
    items: &[Item],
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<SideRun> {
    let side_plan = plan.side(side);
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
        &serde_json::to_string(&loaded.fingerprint).map_err(Error::json("a model fingerprint"))?,
        &serde_json::to_string(&loaded.info).map_err(Error::json("a model summary"))?,
    )?;
    let system = side_plan.system_prompt();
    let settings_key = plan.generation.answer_key();
    let super::stored::Stored {
        keys,
        todo,
        mut hit_token_limit,
    } = super::stored::find(store, &loaded.fingerprint.id, system, &settings_key, items)?;
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
        // The template header and system prompt are the same for every prompt of the side:
        // compute them once and start each prompt from a copy of that cache.
        let prefix = PromptPrefix::for_chat(&loaded, system_opt)?;
        let result = generate::generate_probed(
            &loaded,
            &requests,
            &settings,
            None,
            prefix.as_ref(),
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
                        finish: c.finish.into(),
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
        harm_probe::rate_harm(
            plan,
            side,
            items,
            harm_probe::Rater::Loaded(&loaded),
            store,
            cancel,
            on_event,
        )?;
    }
    Ok(SideRun {
        plan: side_plan.clone(),
        backend: super::result::Backend::InProcess,
        served: None,
        fingerprint: loaded.fingerprint.clone(),
        info: Some(loaded.info.clone()),
        imported: None,
        generated,
        reused,
        hit_token_limit,
        keys,
    })
}
