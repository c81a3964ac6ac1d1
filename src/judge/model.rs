//! Model judges: a chat model loaded by the engine reads the request and the answer and writes a
//! verdict, batched through the same generator as the answers (greedy decoding).
//!
//! - **Rubric**: a template file ([`super::template`]) renders the judge's prompt; its header
//!   names the parser.
//! - **Llama Guard 3** and **Qwen3Guard-Gen** read the conversation (the user's request, the
//!   assistant's answer) through the guard model's own chat template, as their model cards use
//!   them; the template builds the moderation prompt. Llama Guard's score is P(`unsafe`) against
//!   P(`safe`) at its first answer token.
//! - **ShieldGemma** gets one raw prompt per policy (`prompt-packs/judges/shieldgemma.jinja`);
//!   its score is the highest P(`Yes`) against P(`No`) over the policies.

use std::sync::atomic::{AtomicBool, Ordering};

use super::parse::PARSER_VERSION;
use super::recipe::{unparsed, JudgePrompt, Output, Recipe, PROBE_SKIP};
use super::spec::JudgeSpec;
use super::template::{PromptFormat, PromptVars};
use super::{Judge, JudgeInfo, JudgeInput, JudgeSettings, Verdict};
use crate::error::{Error, Result};
use crate::generate::{self, Completion, Event, GenerationSettings, Probe, PromptPrefix, Request};
use crate::model::template::conversation;
use crate::model::{self, LoadOptions, LoadedModel, ModelSpec};
use crate::util::hash::hex_sha256;

pub use super::recipe::{MIN_PROBE_MASS, SHIELDGEMMA_POLICIES};

/// A shared start shorter than this is not worth a cache.
const MIN_PREFIX: usize = 32;

/// A judge that runs a model.
#[derive(Debug)]
pub struct ModelJudge {
    info: JudgeInfo,
    model: LoadedModel,
    recipe: Recipe,
    /// The first-token probe, when the recipe has one.
    probe: Option<Probe>,
    settings: GenerationSettings,
    /// The start every judge prompt shares (instructions, chat preamble), computed once on
    /// first use (`prefix_ready`); `None` when there is none worth caching.
    prefix: Option<PromptPrefix>,
    prefix_ready: bool,
}

/// Token ids that start each word, with and without a leading space (`unsafe`, ` unsafe`).
pub fn word_classes(model: &LoadedModel, words: &[&str]) -> Result<Vec<Vec<u32>>> {
    let mut classes: Vec<Vec<u32>> = Vec::with_capacity(words.len());
    for word in words {
        let mut ids = Vec::new();
        for variant in [(*word).to_owned(), format!(" {word}")] {
            let encoded = model.tokenizer.encode(&variant, false)?;
            let Some(&first) = encoded.first() else {
                continue;
            };
            if model.tokenizer.decode(&[first])?.trim().is_empty() {
                continue;
            }
            if !ids.contains(&first) {
                ids.push(first);
            }
        }
        if ids.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: the tokenizer has no token for `{word}`",
                model.spec.label()
            )));
        }
        if let Some((other, _)) = words
            .iter()
            .zip(&classes)
            .find(|(_, c)| c.iter().any(|id| ids.contains(id)))
        {
            return Err(Error::Invalid(format!(
                "{}: `{word}` and `{other}` begin with the same token, so their probabilities \
                 cannot be told apart",
                model.spec.label()
            )));
        }
        classes.push(ids);
    }
    Ok(classes)
}

impl ModelJudge {
    /// Load the judge's model and template. `spec` must name a model judge.
    pub fn load(spec: &JudgeSpec, settings: &JudgeSettings) -> Result<Self> {
        let Some(source) = spec.model_source() else {
            return Err(Error::Invalid(format!("judge `{spec}` has no model")));
        };
        let recipe = Recipe::for_spec(spec)?;
        let model = model::load(
            &ModelSpec::new(source),
            &LoadOptions {
                device: settings.device.clone(),
                requantize: settings.requantize,
                max_positions: settings.max_positions,
                hash_cache: None,
            },
        )?;
        if matches!(recipe.prompt, JudgePrompt::Conversation) && !model.template.is_present() {
            return Err(Error::Invalid(format!(
                "judge `{spec}`: {source} has no chat template, and a {} guard reads the \
                 conversation through its own template; use rubric:FILE@MODEL with a template \
                 whose header says format = \"raw\" and parser = \"{}\"",
                spec.kind(),
                recipe.parser.name()
            )));
        }
        let probe = match &recipe.words {
            Some(words) => Some(Probe {
                classes: word_classes(&model, words)?,
                max_skip: PROBE_SKIP,
            }),
            None => None,
        };
        let generation = GenerationSettings {
            max_new_tokens: recipe.max_new_tokens,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            batch_size: settings.batch_size.clamp(1, 256),
            ignore_eos: false,
        };
        let decoding = format!("{}{}", generation.answer_key(), recipe.probe_decoding());
        let (template_origin, template_sha256) = match &recipe.prompt {
            JudgePrompt::Template(t) => (t.origin.clone(), t.sha256.clone()),
            JudgePrompt::Conversation => (
                format!(
                    "the judge model's chat template ({})",
                    model.template.origin
                ),
                model.template.sha256.clone(),
            ),
        };
        let fingerprint = hex_sha256(
            [
                "model-judge",
                &PARSER_VERSION.to_string(),
                recipe.kind_name,
                recipe.parser.name(),
                &model.fingerprint.id,
                &template_sha256,
                &recipe.format_name(),
                &decoding,
                &recipe.policy_text(),
            ]
            .join("\u{0}")
            .as_bytes(),
        );
        let info = JudgeInfo {
            id: spec.id(),
            kind: spec.kind(),
            spec: spec.to_string(),
            fingerprint,
            model: Some(model.fingerprint.id.clone()),
            model_source: Some(source.to_owned()),
            template: Some(template_origin),
            template_sha256: Some(template_sha256),
            parser: Some(recipe.parser.name().into()),
            decoding: Some(decoding),
            ..JudgeInfo::default()
        };
        Ok(Self {
            info,
            model,
            recipe,
            probe,
            settings: generation,
            prefix: None,
            prefix_ready: false,
        })
    }

    /// The start that every prompt of this judge shares, whatever the request and answer:
    /// where two prompts with different requests and answers stop agreeing, less a margin.
    fn shared_prefix(&self) -> Result<Option<PromptPrefix>> {
        let sample = |word: &'static str| JudgeInput {
            request: word,
            answer: word,
            category: word,
            ..JudgeInput::default()
        };
        let policy = self.recipe.policies.first().map_or("", |p| p.1);
        let a = self.prompt_ids(&sample("Alpha"), policy)?;
        let b = self.prompt_ids(&sample("Zulu"), policy)?;
        PromptPrefix::shared_by(&self.model, &a, &b, MIN_PREFIX)
    }

    /// The loaded judge model.
    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// The token ids of the judge's prompt for one input and policy.
    pub fn prompt_ids(&self, input: &JudgeInput<'_>, policy: &str) -> Result<Vec<u32>> {
        match &self.recipe.prompt {
            JudgePrompt::Template(t) => {
                let text = t.render(&PromptVars {
                    request: input.request,
                    answer: input.answer,
                    category: input.category,
                    policy,
                    bos_token: self.model.bos_token(),
                    eos_token: self.model.eos_token(),
                })?;
                match t.format {
                    PromptFormat::Chat => self.model.prompt_ids(None, &[text]),
                    PromptFormat::Raw => self.model.raw_prompt_ids(&text),
                }
            }
            JudgePrompt::Conversation => self.model.conversation_ids(&conversation(
                None,
                &[input.request.to_owned()],
                &[input.answer.to_owned()],
            )),
        }
    }
}

impl Judge for ModelJudge {
    fn info(&self) -> &JudgeInfo {
        &self.info
    }

    fn judge_batch(
        &mut self,
        inputs: &[JudgeInput<'_>],
        cancel: &AtomicBool,
        on_verdict: &mut dyn FnMut(usize, Verdict) -> Result<()>,
    ) -> Result<()> {
        let variants = self.recipe.policies.len();
        let room = self.model.transformer.max_positions();
        let mut requests = Vec::new();
        let mut owner = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let mut prompts = Vec::with_capacity(variants);
            let mut too_long = None;
            for (_, policy) in &self.recipe.policies {
                let ids = self.prompt_ids(input, policy)?;
                if ids.len() + self.settings.max_new_tokens > room {
                    too_long = Some(ids.len());
                    break;
                }
                prompts.push(ids);
            }
            if let Some(n) = too_long {
                on_verdict(
                    i,
                    unparsed(
                        &format!(
                            "the judge prompt has {n} tokens; with {} for the verdict it exceeds \
                             the {room} positions the judge model holds",
                            self.settings.max_new_tokens
                        ),
                        None,
                    ),
                )?;
                continue;
            }
            for (v, ids) in prompts.into_iter().enumerate() {
                requests.push(Request {
                    prompt_ids: ids,
                    seed_key: 0,
                });
                owner.push((i, v));
            }
        }
        if requests.is_empty() {
            return Ok(());
        }
        if !self.prefix_ready {
            self.prefix = self.shared_prefix()?;
            self.prefix_ready = true;
        }
        let mut outputs: Vec<Vec<Option<Completion>>> = vec![vec![None; variants]; inputs.len()];
        let mut remaining = vec![variants; inputs.len()];
        // The generator stops on its own flag: set by the caller's cancel, or by a failure to
        // hand a verdict over (the store refused it).
        let stop = AtomicBool::new(cancel.load(Ordering::Relaxed));
        let mut failure = None;
        let this = &*self;
        let result = generate::generate_probed(
            &this.model,
            &requests,
            &this.settings,
            this.probe.as_ref(),
            this.prefix.as_ref(),
            &stop,
            &mut |event| {
                if cancel.load(Ordering::Relaxed) {
                    stop.store(true, Ordering::Relaxed);
                }
                let Event::Done(c) = event else {
                    return;
                };
                if failure.is_some() {
                    return;
                }
                let (i, v) = owner[c.index];
                outputs[i][v] = Some(c.clone());
                remaining[i] -= 1;
                if remaining[i] > 0 {
                    return;
                }
                let done: Vec<Completion> =
                    outputs[i].iter_mut().filter_map(Option::take).collect();
                let read: Vec<Output<'_>> = done
                    .iter()
                    .map(|c| Output {
                        text: &c.text,
                        probe: c.probe.as_ref(),
                    })
                    .collect();
                if let Err(e) = on_verdict(i, this.recipe.verdict(&read)) {
                    failure = Some(e);
                    stop.store(true, Ordering::Relaxed);
                }
            },
        );
        if let Some(e) = failure {
            return Err(e);
        }
        result.map(|_| ())
    }
}
