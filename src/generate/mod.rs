//! Turning prompts into answers: continuous batching over per-sequence KV caches, greedy or
//! seeded sampling, stop tokens, a token limit, streaming and cooperative cancellation.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::Tensor;
use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{LoadedModel, SeqCache};

/// Decoding settings. Temperature 0 is greedy decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationSettings {
    /// Most tokens generated per answer.
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 means greedy.
    pub temperature: f64,
    /// Nucleus sampling mass (1 disables it).
    pub top_p: f64,
    /// Seed for sampling; each prompt and sample index derives its own stream from it.
    pub seed: u64,
    /// How many sequences decode together.
    pub batch_size: usize,
    /// Keep going past end tokens (benchmarks only: every answer gets `max_new_tokens`).
    pub ignore_eos: bool,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            batch_size: 8,
            ignore_eos: false,
        }
    }
}

impl GenerationSettings {
    /// Reject settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.max_new_tokens == 0 {
            return Err(Error::Invalid("max_new_tokens must be at least 1".into()));
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::Invalid("temperature must be 0 or positive".into()));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::Invalid("top_p must be in (0, 1]".into()));
        }
        if self.batch_size == 0 || self.batch_size > 256 {
            return Err(Error::Invalid(
                "batch size must be between 1 and 256".into(),
            ));
        }
        Ok(())
    }

    /// The settings that change answers (not the batch size, which does not), as a stable string
    /// for cache keys.
    pub fn answer_key(&self) -> String {
        if self.temperature == 0.0 {
            format!("greedy;max_new_tokens={}", self.max_new_tokens)
        } else {
            format!(
                "sample;max_new_tokens={};temperature={};top_p={};seed={}",
                self.max_new_tokens, self.temperature, self.top_p, self.seed
            )
        }
    }
}

/// One prompt to answer.
#[derive(Debug, Clone)]
pub struct Request {
    /// Prompt token ids (template already applied).
    pub prompt_ids: Vec<u32>,
    /// Mixed into the seed so every prompt and sample gets its own random stream.
    pub seed_key: u64,
}

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model emitted an end token.
    Stop,
    /// `max_new_tokens` was reached.
    Length,
}

impl FinishReason {
    /// `stop` or `length`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// Probabilities to read at the first answer token that is not whitespace: a guard's `unsafe`
/// against `safe`, ShieldGemma's `Yes` against `No`, or the ten digits of a harm rating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Token ids of each class; a class's probability is the sum over its tokens.
    pub classes: Vec<Vec<u32>>,
    /// Whitespace-only tokens the model may write first (they are skipped) before the probe is
    /// read anyway.
    pub max_skip: usize,
}

/// What a [`Probe`] read from one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReading {
    /// Probability of each class at that position (the full softmax, not renormalised).
    pub class_probs: Vec<f64>,
    /// Answer tokens before that position (skipped whitespace).
    pub position: usize,
}

/// The start that many prompts share (a judge's instructions), run through the model once;
/// each prompt that begins with it continues from a copy of its cache.
#[derive(Debug, Clone)]
pub struct PromptPrefix {
    ids: Vec<u32>,
    cache: SeqCache,
}

/// Tokens left out at the end of a shared start: the last shared tokens may join the text that
/// follows them differently from one prompt to the next.
const PREFIX_MARGIN: usize = 4;

impl PromptPrefix {
    /// Run `ids` through `model` once.
    pub fn new(model: &LoadedModel, ids: Vec<u32>) -> Result<Self> {
        let mut cache = model.transformer.new_cache();
        model.transformer.prefill(&ids, &mut cache)?;
        Ok(Self { ids, cache })
    }

    /// The start two prompts built from the same template share (less a margin), run through
    /// the model once; `None` when it is shorter than `min_len` tokens. Built from two fixed
    /// sample prompts, never from the prompts being answered, so a prompt's answer does not
    /// depend on which other prompts run with it.
    pub fn shared_by(
        model: &LoadedModel,
        a: &[u32],
        b: &[u32],
        min_len: usize,
    ) -> Result<Option<Self>> {
        let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let len = common.saturating_sub(PREFIX_MARGIN);
        if len < min_len.max(1) {
            return Ok(None);
        }
        Ok(Some(Self::new(model, a[..len].to_vec())?))
    }

    /// The chat template's header and `system` prompt, which every single-turn prompt of an
    /// audit side begins with.
    pub fn for_chat(model: &LoadedModel, system: Option<&str>) -> Result<Option<Self>> {
        let a = model.prompt_ids(system, &["Alpha".to_owned()])?;
        let b = model.prompt_ids(system, &["Zulu".to_owned()])?;
        // A few tokens of header are cheaper to recompute than to copy a cache for.
        Self::shared_by(model, &a, &b, 8)
    }

    /// The prefix's token ids.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// A cache holding the prefix, and the rest of `prompt`, when `prompt` begins with the
    /// prefix and goes on past it.
    fn split<'p>(&self, prompt: &'p [u32]) -> Option<(SeqCache, &'p [u32])> {
        let rest = prompt.strip_prefix(self.ids.as_slice())?;
        (!rest.is_empty()).then(|| (self.cache.clone(), rest))
    }
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Index of the request it answers.
    pub index: usize,
    /// Decoded text, special tokens removed.
    pub text: String,
    /// Generated token ids (the end token excluded).
    pub token_ids: Vec<u32>,
    /// Why it ended.
    pub finish: FinishReason,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// The probe's reading, when a probe was given and the answer reached a token to read.
    pub probe: Option<ProbeReading>,
}

/// What the generator reports while it works.
#[derive(Debug)]
pub enum Event<'a> {
    /// New text for request `index`.
    Token {
        /// The request.
        index: usize,
        /// Text added since the last event for this request.
        delta: &'a str,
    },
    /// Request `index` is complete.
    Done(&'a Completion),
}

/// Timing of one `generate` call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GenerationStats {
    /// Prompt tokens processed.
    pub prefill_tokens: usize,
    /// Time spent in prefill.
    pub prefill_time: Duration,
    /// Tokens produced by decode steps (each sequence's token counts).
    pub decode_tokens: usize,
    /// Time spent in decode steps.
    pub decode_time: Duration,
    /// Decode steps taken.
    pub decode_steps: usize,
}

struct Active {
    index: usize,
    cache: SeqCache,
    sampler: LogitsProcessor,
    generated: Vec<u32>,
    emitted: String,
    prompt_tokens: usize,
    probe: Option<ProbeReading>,
    probe_done: bool,
}

fn mix_seed(seed: u64, key: u64) -> u64 {
    // SplitMix64 finaliser over the pair: independent streams per (seed, prompt, sample).
    let mut z = seed ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Answer every request. Sequences join the batch as others finish (continuous batching);
/// each sequence's arithmetic does not depend on its neighbours, so greedy answers are the same
/// at any batch size. `cancel` is checked between steps: on cancel, answers already reported
/// through [`Event::Done`] stand and the call returns [`Error::Cancelled`].
pub fn generate(
    model: &LoadedModel,
    requests: &[Request],
    settings: &GenerationSettings,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(Vec<Completion>, GenerationStats)> {
    generate_probed(model, requests, settings, None, None, cancel, on_event)
}

/// [`generate`], also reading `probe` from the logits of each answer's first token that is not
/// whitespace (into [`Completion::probe`]). The logits are the ones the token was sampled from,
/// so the reading is as batch-invariant as the answer. Prompts that begin with `prefix`
/// continue from its cache instead of running those tokens again: the same arithmetic for every
/// such prompt, whatever it is batched with.
pub fn generate_probed(
    model: &LoadedModel,
    requests: &[Request],
    settings: &GenerationSettings,
    probe: Option<&Probe>,
    prefix: Option<&PromptPrefix>,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(Vec<Completion>, GenerationStats)> {
    settings.validate()?;
    let mut stats = GenerationStats::default();
    let mut pending: VecDeque<usize> = (0..requests.len()).collect();
    let mut active: Vec<Active> = Vec::with_capacity(settings.batch_size);
    let mut done: Vec<Completion> = Vec::with_capacity(requests.len());
    let stop_ids: &[u32] = if settings.ignore_eos {
        &[]
    } else {
        &model.tokenizer.stop_ids
    };
    let sampling = if settings.temperature == 0.0 {
        Sampling::ArgMax
    } else if settings.top_p < 1.0 {
        Sampling::TopP {
            p: settings.top_p,
            temperature: settings.temperature,
        }
    } else {
        Sampling::All {
            temperature: settings.temperature,
        }
    };
    let room = model.transformer.max_positions();

    loop {
        // Fill free slots with new prompts.
        while active.len() < settings.batch_size {
            let Some(index) = pending.pop_front() else {
                break;
            };
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let request = &requests[index];
            if request.prompt_ids.len() + settings.max_new_tokens > room {
                return Err(Error::Invalid(format!(
                    "prompt {index} has {} tokens; with max_new_tokens {} it exceeds the {room} positions loaded",
                    request.prompt_ids.len(),
                    settings.max_new_tokens
                )));
            }
            let started = Instant::now();
            let (cache, logits, computed) = match prefix.and_then(|p| p.split(&request.prompt_ids))
            {
                Some((mut cache, rest)) => {
                    let logits = model.transformer.extend(rest, &mut cache)?;
                    (cache, logits, rest.len())
                }
                None => {
                    let mut cache = model.transformer.new_cache();
                    let logits = model.transformer.prefill(&request.prompt_ids, &mut cache)?;
                    (cache, logits, request.prompt_ids.len())
                }
            };
            stats.prefill_time += started.elapsed();
            stats.prefill_tokens += computed;
            let mut seq = Active {
                index,
                cache,
                sampler: LogitsProcessor::from_sampling(
                    mix_seed(settings.seed, request.seed_key),
                    sampling.clone(),
                ),
                generated: Vec::new(),
                emitted: String::new(),
                prompt_tokens: request.prompt_ids.len(),
                probe: None,
                probe_done: probe.is_none(),
            };
            let token = seq.sampler.sample(&logits)?;
            read_probe(model, &mut seq, &logits, token, probe, stop_ids)?;
            if let Some(c) = advance(model, &mut seq, token, stop_ids, settings, on_event)? {
                on_event(Event::Done(&c));
                done.push(c);
            } else {
                active.push(seq);
            }
        }
        if active.is_empty() {
            break;
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let tokens: Vec<u32> = active
            .iter()
            .map(|s| s.generated.last().copied().unwrap_or(0))
            .collect();
        let started = Instant::now();
        let logits = {
            let mut caches: Vec<&mut SeqCache> = active.iter_mut().map(|s| &mut s.cache).collect();
            model.transformer.decode(&tokens, &mut caches)?
        };
        stats.decode_time += started.elapsed();
        stats.decode_steps += 1;
        stats.decode_tokens += active.len();
        let mut still = Vec::with_capacity(active.len());
        for (row, mut seq) in active.into_iter().enumerate() {
            let row_logits: Tensor = logits.get(row)?;
            let token = seq.sampler.sample(&row_logits)?;
            read_probe(model, &mut seq, &row_logits, token, probe, stop_ids)?;
            match advance(model, &mut seq, token, stop_ids, settings, on_event)? {
                Some(c) => {
                    on_event(Event::Done(&c));
                    done.push(c);
                }
                None => still.push(seq),
            }
        }
        active = still;
    }
    done.sort_by_key(|c| c.index);
    Ok((done, stats))
}

/// Read the probe at this position unless the sampled token is whitespace that may be skipped.
fn read_probe(
    model: &LoadedModel,
    seq: &mut Active,
    logits: &Tensor,
    token: u32,
    probe: Option<&Probe>,
    stop_ids: &[u32],
) -> Result<()> {
    let Some(probe) = probe else {
        return Ok(());
    };
    if seq.probe_done {
        return Ok(());
    }
    let position = seq.generated.len();
    let skippable = position < probe.max_skip
        && !stop_ids.contains(&token)
        && model.tokenizer.decode(&[token])?.trim().is_empty();
    if skippable {
        return Ok(());
    }
    seq.probe = Some(ProbeReading {
        class_probs: class_probs(logits, &probe.classes)?,
        position,
    });
    seq.probe_done = true;
    Ok(())
}

/// Softmax of `logits` (summed in f64, in a fixed order) added up over each class's tokens.
/// Token ids outside the vocabulary count zero.
pub fn class_probs(logits: &Tensor, classes: &[Vec<u32>]) -> Result<Vec<f64>> {
    let logits: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    let max = logits
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return Err(Error::Invalid(
            "the model's logits hold no finite value".into(),
        ));
    }
    let max = f64::from(max);
    let total: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    Ok(classes
        .iter()
        .map(|ids| {
            ids.iter()
                .filter_map(|&id| logits.get(id as usize))
                .map(|&x| (f64::from(x) - max).exp() / total)
                .sum()
        })
        .collect())
}

/// Take a sampled token: finish the sequence or stream its new text.
fn advance(
    model: &LoadedModel,
    seq: &mut Active,
    token: u32,
    stop_ids: &[u32],
    settings: &GenerationSettings,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Option<Completion>> {
    let stopped = stop_ids.contains(&token);
    if !stopped {
        seq.generated.push(token);
        let text = model.tokenizer.decode(&seq.generated)?;
        // Hold back text that ends in an incomplete UTF-8 sequence.
        if text.len() > seq.emitted.len()
            && text.starts_with(&seq.emitted)
            && !text.ends_with('\u{FFFD}')
        {
            on_event(Event::Token {
                index: seq.index,
                delta: &text[seq.emitted.len()..],
            });
            seq.emitted = text;
        }
    }
    let finish = if stopped {
        Some(FinishReason::Stop)
    } else if seq.generated.len() >= settings.max_new_tokens {
        Some(FinishReason::Length)
    } else {
        None
    };
    finish
        .map(|finish| -> Result<Completion> {
            let text = model.tokenizer.decode(&seq.generated)?;
            // Whatever was held back (an incomplete character at the end) goes out now.
            if text.len() > seq.emitted.len() && text.starts_with(&seq.emitted) {
                on_event(Event::Token {
                    index: seq.index,
                    delta: &text[seq.emitted.len()..],
                });
            }
            Ok(Completion {
                index: seq.index,
                text,
                token_ids: std::mem::take(&mut seq.generated),
                finish,
                prompt_tokens: seq.prompt_tokens,
                probe: seq.probe.take(),
            })
        })
        .transpose()
}
