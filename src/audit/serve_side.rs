//! One side answered by a model on an OpenAI-compatible server: find the model on the server,
//! find the answers already stored under its identity, send the rest (a bounded number in
//! flight, with retries), store each answer and what the server said about it as it arrives;
//! then, when the plan asks, the harm probe through the same server.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::events::JobEvent;
use super::harm_probe;
use super::plan::{Item, Plan};
use super::result::{Backend, ServedSide, SideRun};
use super::side::Side;
use crate::error::{Error, Result};
use crate::serve::{self, ChatRequest, Job, ServedAnswer, ServedModel};
use crate::store::{Finish, Store, StoredGeneration};

/// The provenance of answers a server made.
pub(super) const SERVED_PROVENANCE: &str = "served:openai";

/// The seed of one request: the plan's seed, mixed with the prompt and sample like the
/// in-process sampler's streams, so every sample of every prompt has its own.
fn request_seed(plan: &Plan, item: &Item) -> u64 {
    if plan.generation.temperature == 0.0 {
        return plan.generation.seed;
    }
    let key = u64::from_str_radix(&item.text_hash[..15], 16).unwrap_or(0) ^ u64::from(item.sample);
    // Servers take seeds as signed 64-bit or smaller: keep it in 31 bits.
    (plan.generation.seed ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15)) & 0x7FFF_FFFF
}

/// What to call an item in errors: `prompt sorry44/1-3` (`#2` past the first sample).
fn item_name(item: &Item) -> String {
    if item.sample == 0 {
        format!("prompt {}/{}", item.pack, item.prompt.id)
    } else {
        format!("prompt {}/{}#{}", item.pack, item.prompt.id, item.sample)
    }
}

/// Answer every item with the side's served model, reusing stored answers.
pub(super) fn serve_side(
    plan: &Plan,
    side: Side,
    items: &[Item],
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<SideRun> {
    let side_plan = plan.side(side);
    on_event(JobEvent::Stage(format!(
        "{}: asking {} for its models",
        side.as_str(),
        side_plan.label()
    )));
    let served = ServedModel::connect(
        &side_plan.model,
        side_plan.api_key_env.as_deref(),
        &plan.serving,
        cancel,
    )?;
    let fingerprint = served.fingerprint.clone();
    store.put_model(
        &fingerprint.id,
        &served.label(),
        &serde_json::to_string(&fingerprint).map_err(Error::json("a served model's identity"))?,
        "null",
    )?;
    on_event(JobEvent::Connected {
        side,
        label: served.label(),
        fingerprint: Box::new(fingerprint.clone()),
    });
    let system = side_plan.system_prompt();
    let settings_key = plan.generation.answer_key();
    let super::stored::Stored {
        keys,
        todo,
        mut hit_token_limit,
    } = super::stored::find(store, &fingerprint.id, system, &settings_key, items)?;
    let total = items.len();
    let reused = total - todo.len();
    on_event(JobEvent::Stage(format!(
        "{}: {} answers to ask {} for, {} reused from the store",
        side.as_str(),
        todo.len(),
        served.name(),
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
    let jobs: Vec<Job> = todo
        .iter()
        .map(|&i| Job {
            request: ChatRequest {
                model: served.name().to_owned(),
                messages: serve::prompt_messages(system_opt, &items[i].prompt.turns),
                max_tokens: plan.generation.max_new_tokens,
                temperature: plan.generation.temperature,
                top_p: plan.generation.top_p,
                seed: Some(request_seed(plan, &items[i])),
                stop: Vec::new(),
                logprobs: false,
                top_logprobs: None,
                n: 1,
                stream: false,
            },
            what: item_name(&items[i]),
        })
        .collect();
    let started = Instant::now();
    let traffic = served.client.traffic().clone();
    let retries_before = traffic.retries.load(Ordering::Relaxed);
    let mut generated = 0usize;
    let mut tokens = 0usize;
    if !jobs.is_empty() {
        on_event(JobEvent::Stage(format!(
            "{}: sending {} requests to {} ({} in flight at most)",
            side.as_str(),
            jobs.len(),
            served.label(),
            plan.serving.concurrency
        )));
    }
    let result = serve::send_all(&served.client, &jobs, cancel, &mut |job, answer| {
        let item_index = todo[job];
        let item = &items[item_index];
        let g = StoredGeneration {
            key: keys[item_index].clone(),
            model: fingerprint.id.clone(),
            system_prompt: system.to_owned(),
            text_hash: item.text_hash.clone(),
            settings: settings_key.clone(),
            sample: item.sample,
            answer: answer.text.clone(),
            finish: answer.finish,
            prompt_tokens: answer.served.prompt_tokens,
            answer_tokens: answer.served.completion_tokens,
            provenance: SERVED_PROVENANCE.into(),
        };
        let response = serde_json::to_string(&answer.served)
            .map_err(Error::json("what a server said about an answer"))?;
        store.put_served_generation(&g, &response)?;
        generated += 1;
        hit_token_limit += usize::from(answer.finish == Finish::Length);
        tokens += answer.served.completion_tokens as usize;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        on_event(JobEvent::Token {
            side,
            item: item_index,
            delta: answer.text,
        });
        on_event(JobEvent::Progress {
            side,
            done: reused + generated,
            total,
            cached: reused,
            tokens_per_s: tokens as f64 / secs,
        });
        on_event(JobEvent::Traffic {
            side,
            in_flight: traffic.in_flight.load(Ordering::Relaxed),
            retries: traffic.retries.load(Ordering::Relaxed) - retries_before,
            per_minute: generated as f64 * 60.0 / secs,
        });
        Ok(())
    });
    result.map_err(|e| match e {
        // An audit with a prompt left out would pair fewer prompts than it says: stop, and say
        // how to make room.
        Error::Served { endpoint, message } if serve::is_context_overflow_message(&message) => {
            Error::Served {
                endpoint,
                message: format!(
                    "{message}; give the server a longer context per request (llama.cpp: -c \
                     divided by -np; vLLM: --max-model-len) or lower --max-new-tokens"
                ),
            }
        }
        other => other,
    })?;
    let secs = started.elapsed().as_secs_f64();
    let mut server_models = BTreeSet::new();
    let mut fingerprints = BTreeSet::new();
    let (mut prompt_tokens, mut completion_tokens) = (0u64, 0u64);
    for key in &keys {
        let Some(json) = store.served_answer(key)? else {
            continue;
        };
        let said: ServedAnswer = serde_json::from_str(&json).map_err(|e| {
            Error::bad_file(
                store.path(),
                format!("the stored server response of answer {key} is unreadable: {e}"),
            )
        })?;
        if !said.server_model.is_empty() {
            server_models.insert(said.server_model);
        }
        if let Some(f) = said.system_fingerprint {
            fingerprints.insert(f);
        }
        prompt_tokens += u64::from(said.prompt_tokens);
        completion_tokens += u64::from(said.completion_tokens);
    }
    let endpoint = served.client.endpoint().base_url();
    let run = SideRun {
        plan: side_plan.clone(),
        backend: Backend::Openai,
        served: Some(ServedSide {
            endpoint,
            served_model: served.name().to_owned(),
            server_said: served.entry.entry.clone(),
            server_models: server_models.into_iter().collect(),
            system_fingerprints: fingerprints.into_iter().collect(),
            api_key_env: served.client.key_env().to_owned(),
            api_key_set: served.client.has_key(),
            weights_verified: false,
            declared_sha256: side_plan.declared_sha256.clone(),
            requests: generated,
            retries: traffic.retries.load(Ordering::Relaxed) - retries_before,
            answers_per_minute: if secs > 0.0 && generated > 0 {
                generated as f64 * 60.0 / secs
            } else {
                0.0
            },
            prompt_tokens,
            completion_tokens,
        }),
        fingerprint,
        info: None,
        imported: None,
        generated,
        reused,
        hit_token_limit,
        keys,
    };
    // After the side's figures, so the probe's requests are not counted as the side's.
    if plan.harm_probe {
        harm_probe::rate_harm(
            plan,
            side,
            items,
            harm_probe::Rater::Served(&served),
            store,
            cancel,
            on_event,
        )?;
    }
    Ok(run)
}
