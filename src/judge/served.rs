//! Model judges on an OpenAI-compatible server (`rubric:fulfillment@openai:URL#judge`,
//! `llama-guard:openai:URL#guard`, ...): the same recipe as in-process ([`super::recipe`]),
//! the prompt sent over HTTP, the answer read by the same parsers.
//!
//! - A rubric template in `chat` format is the user's message of a chat completion; one in
//!   `raw` format (ShieldGemma's) is the whole prompt of a text completion (`/v1/completions`),
//!   since a chat API would wrap it in the model's chat template a second time.
//! - Guards get the conversation (the request as the user's turn, the answer as the
//!   assistant's), so the server applies the guard's own chat template.
//! - A first-token probe (Llama Guard's P(`unsafe`), ShieldGemma's P(`Yes`)) is read from the
//!   `top_logprobs` of the first word the judge writes.
//!
//! Decoding is greedy (temperature 0, seed 0). Verdicts are stored under a fingerprint that
//! names the served model's identity and says the judge was served, so they never mix with an
//! in-process judge's.

use std::borrow::Cow;
use std::sync::atomic::AtomicBool;

use super::parse::{Parser, PARSER_VERSION};
use super::recipe::{unparsed, JudgePrompt, Output, Recipe, PROBE_SKIP};
use super::spec::JudgeSpec;
use super::template::{PromptFormat, PromptVars};
use super::{Judge, JudgeInfo, JudgeInput, JudgeSettings, Verdict};
use crate::error::{Error, Result};
use crate::generate::{GenerationSettings, ProbeReading};
use crate::serve::chat::TokenLogprobs;
use crate::serve::{self, ChatAnswer, ChatRequest, CompletionRequest, Message, ServedModel};
use crate::util::hash::hex_sha256;

/// Alternatives asked for at each answer position where a probe reads probabilities (vLLM's
/// default limit, and enough for a judge that answers in the expected words).
pub const TOP_LOGPROBS: u8 = 20;

/// The assistant turn of the prefill check: a server that continues it instead of answering
/// after it writes it back at the start of its answer.
const PREFILL_MARKER: &str = "aligndiff checks that this finished assistant turn is not continued";

/// One request of a served judge.
#[derive(Debug, Clone)]
enum Wire {
    /// A chat completion (chat-format templates, guards' conversations).
    Chat(ChatRequest),
    /// A text completion (raw-format templates).
    Completion(CompletionRequest),
}

/// What came back for one request: an answer, or the server's word that the prompt is too
/// long for it (that answer's verdict is then unparsed, and the others go on).
enum Outcome {
    Answer(ChatAnswer),
    TooLong(String),
}

/// A judge whose model is on a server.
#[derive(Debug)]
pub struct ServedJudge {
    info: JudgeInfo,
    served: ServedModel,
    recipe: Recipe,
}

/// The text of a token: as the server wrote it, else from its bytes (a token that ends inside
/// a multi-byte character has no text of its own).
fn token_text<'a>(token: &'a str, bytes: Option<&'a [u8]>) -> Cow<'a, str> {
    match bytes {
        Some(b) if token.is_empty() => String::from_utf8_lossy(b),
        _ => Cow::Borrowed(token),
    }
}

/// The per-position log-probabilities of an answer, or why a probe cannot read them:
/// `feature` names what needs them (`the Llama Guard score`).
pub fn logprob_positions<'a>(
    answer: &'a ChatAnswer,
    feature: &str,
) -> std::result::Result<&'a [TokenLogprobs], String> {
    answer.logprobs.as_deref().ok_or_else(|| {
        format!(
            "{feature} needs logprobs (`logprobs: true, top_logprobs: {TOP_LOGPROBS}`), and the \
             server returned none; serve the judge with a server that returns them (vLLM, \
             SGLang, llama.cpp's llama-server)"
        )
    })
}

/// The probe at the first word of an answer: up to `max_skip` whitespace tokens are passed
/// over, then each class's probability is the sum over the position's alternatives whose text,
/// trimmed, is the class's word. `None` when the answer has no such position.
pub fn probe_reading(
    positions: &[TokenLogprobs],
    words: &[&str],
    max_skip: usize,
) -> Option<ProbeReading> {
    for (position, p) in positions.iter().enumerate() {
        let text = token_text(&p.token, p.bytes.as_deref());
        if position < max_skip && !text.is_empty() && text.trim().is_empty() {
            continue;
        }
        let mut class_probs = vec![0.0f64; words.len()];
        for alt in &p.top_logprobs {
            let alt_text = token_text(&alt.token, alt.bytes.as_deref());
            let trimmed = alt_text.trim();
            if let Some(k) = words.iter().position(|w| *w == trimmed) {
                let prob = alt.logprob.exp();
                if prob.is_finite() {
                    class_probs[k] += prob.clamp(0.0, 1.0);
                }
            }
        }
        return Some(ProbeReading {
            class_probs,
            position,
        });
    }
    None
}

/// What to call input `i` in errors: `answer tiny/a-1#2 (candidate)`, else `answer 3`.
fn input_name(i: usize, input: &JudgeInput<'_>) -> String {
    if input.prompt_id.is_empty() {
        return format!("answer {i}");
    }
    let mut name = if input.pack.is_empty() {
        format!("answer {}", input.prompt_id)
    } else {
        format!("answer {}/{}", input.pack, input.prompt_id)
    };
    if input.sample > 0 {
        name.push_str(&format!("#{}", input.sample));
    }
    if !input.side.is_empty() {
        name.push_str(&format!(" ({})", input.side));
    }
    name
}

impl ServedJudge {
    /// Find the judge's model on its server (`settings.serving`, key from
    /// `settings.api_key_env`). A guard's server must judge a conversation's last assistant
    /// turn rather than continue it: that is checked here, with one short request.
    pub fn connect(
        spec: &JudgeSpec,
        settings: &JudgeSettings,
        cancel: &AtomicBool,
    ) -> Result<Self> {
        let Some(source) = spec.model_source() else {
            return Err(Error::Invalid(format!("judge `{spec}` has no model")));
        };
        let recipe = Recipe::for_spec(spec)?;
        let served = ServedModel::connect(
            source,
            settings.api_key_env.as_deref(),
            &settings.serving,
            cancel,
        )?;
        if matches!(recipe.prompt, JudgePrompt::Conversation) {
            check_turns_are_judged(spec, &served, cancel)?;
        }
        let generation = GenerationSettings {
            max_new_tokens: recipe.max_new_tokens,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            ..GenerationSettings::default()
        };
        let mut decoding = format!("{}{}", generation.answer_key(), recipe.probe_decoding());
        if recipe.words.is_some() {
            decoding.push_str(&format!(";top_logprobs={TOP_LOGPROBS}"));
        }
        decoding.push_str(";served");
        let (template, template_sha256) = match &recipe.prompt {
            JudgePrompt::Template(t) => (t.origin.clone(), Some(t.sha256.clone())),
            // The guard's chat template is the server's: its identity is the served model's.
            JudgePrompt::Conversation => (
                format!("the served model's own chat template ({})", served.name()),
                None,
            ),
        };
        let wire = match &recipe.prompt {
            JudgePrompt::Template(t) if t.format == PromptFormat::Raw => "completions",
            _ => "chat",
        };
        let fingerprint = hex_sha256(
            [
                "served-judge",
                &PARSER_VERSION.to_string(),
                recipe.kind_name,
                recipe.parser.name(),
                &served.fingerprint.id,
                template_sha256.as_deref().unwrap_or(""),
                &recipe.format_name(),
                wire,
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
            model: Some(served.fingerprint.id.clone()),
            model_source: Some(served.label()),
            template: Some(template),
            template_sha256,
            parser: Some(recipe.parser.name().into()),
            decoding: Some(decoding),
            ..JudgeInfo::default()
        };
        Ok(Self {
            info,
            served,
            recipe,
        })
    }

    /// The served model.
    pub fn served(&self) -> &ServedModel {
        &self.served
    }

    /// What needs the logprobs, in errors.
    fn feature(&self) -> String {
        match (self.recipe.parser, self.recipe.kind_name) {
            (Parser::LlamaGuard, "llama-guard") => "the Llama Guard score".into(),
            (Parser::YesNo, "shieldgemma") => "the ShieldGemma score".into(),
            _ => match &self.recipe.words {
                Some(w) => format!("the judge's score P({})", w[0]),
                None => "the judge's score".into(),
            },
        }
    }

    /// The request for one input and policy.
    fn request(&self, input: &JudgeInput<'_>, policy: &str) -> Result<Wire> {
        let probed = self.recipe.words.is_some();
        let model = self.served.name().to_owned();
        let max_tokens = self.recipe.max_new_tokens;
        let chat = |messages: Vec<Message>| {
            Wire::Chat(ChatRequest {
                logprobs: probed,
                top_logprobs: probed.then_some(TOP_LOGPROBS),
                ..ChatRequest::greedy(model.clone(), messages, max_tokens)
            })
        };
        Ok(match &self.recipe.prompt {
            JudgePrompt::Template(t) => {
                // The server adds the beginning-of-text token where the model wants one, and
                // the tokenizer's special tokens are its own: the template gets none.
                let text = t.render(&PromptVars {
                    request: input.request,
                    answer: input.answer,
                    category: input.category,
                    policy,
                    bos_token: "",
                    eos_token: "",
                })?;
                match t.format {
                    PromptFormat::Chat => chat(vec![Message::new("user", text)]),
                    PromptFormat::Raw => Wire::Completion(CompletionRequest {
                        model: model.clone(),
                        prompt: text,
                        max_tokens,
                        temperature: 0.0,
                        top_p: 1.0,
                        seed: Some(0),
                        stop: Vec::new(),
                        logprobs: probed.then_some(TOP_LOGPROBS),
                        n: 1,
                        stream: false,
                    }),
                }
            }
            JudgePrompt::Conversation => chat(vec![
                Message::new("user", input.request),
                Message::new("assistant", input.answer),
            ]),
        })
    }

    /// The verdict from one answer per policy; an error when a probe's logprobs are missing.
    fn verdict(&self, answers: &[ChatAnswer]) -> Result<Verdict> {
        let feature = self.feature();
        let readings = match &self.recipe.words {
            Some(words) => answers
                .iter()
                .map(|a| {
                    let positions =
                        logprob_positions(a, &feature).map_err(|why| Error::Served {
                            endpoint: self.served.client.endpoint().base_url(),
                            message: why,
                        })?;
                    Ok(probe_reading(positions, words, PROBE_SKIP))
                })
                .collect::<Result<Vec<_>>>()?,
            None => vec![None; answers.len()],
        };
        let outputs: Vec<Output<'_>> = answers
            .iter()
            .zip(&readings)
            .map(|(a, r)| Output {
                text: &a.text,
                probe: r.as_ref(),
            })
            .collect();
        Ok(self.recipe.verdict(&outputs))
    }
}

/// Refuse a server that continues a conversation's last assistant message instead of
/// answering after it (llama.cpp's llama-server does, unless started with
/// `--no-prefill-assistant`): a guard would read the answer as unfinished and go on writing it.
fn check_turns_are_judged(
    spec: &JudgeSpec,
    served: &ServedModel,
    cancel: &AtomicBool,
) -> Result<()> {
    let request = ChatRequest::greedy(
        served.name(),
        vec![
            Message::new("user", "Say OK."),
            Message::new("assistant", PREFILL_MARKER),
        ],
        1,
    );
    let answer = served.client.chat(
        &request,
        &format!(
            "judge {}: checking that the server judges a finished answer",
            spec.id()
        ),
        cancel,
    )?;
    if answer.text.trim_start().starts_with(PREFILL_MARKER) {
        return Err(Error::Invalid(format!(
            "judge `{spec}`: {} continues the conversation's last assistant message instead of \
             answering after it, so the guard would never see the answer as a finished turn; \
             llama.cpp's llama-server does this unless started with --no-prefill-assistant",
            served.label()
        )));
    }
    Ok(())
}

impl Judge for ServedJudge {
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
        let mut jobs: Vec<(Wire, String)> = Vec::with_capacity(inputs.len() * variants);
        let mut owner = Vec::with_capacity(inputs.len() * variants);
        for (i, input) in inputs.iter().enumerate() {
            for (v, (name, policy)) in self.recipe.policies.iter().enumerate() {
                let mut what = format!("judge {} on {}", self.info.id, input_name(i, input));
                if !name.is_empty() {
                    what.push_str(&format!(", policy {name}"));
                }
                jobs.push((self.request(input, policy)?, what));
                owner.push((i, v));
            }
        }
        let this = &*self;
        let client = &this.served.client;
        let send = |j: usize| -> Result<Outcome> {
            let Some((wire, what)) = jobs.get(j) else {
                return Err(Error::Invalid(format!("no judge request {j}")));
            };
            let sent = match wire {
                Wire::Chat(r) => client.chat(r, what, cancel),
                Wire::Completion(r) => client.complete(r, what, cancel),
            };
            match sent {
                Ok(a) => Ok(Outcome::Answer(a)),
                Err(e) if serve::is_context_overflow(&e) => Ok(Outcome::TooLong(e.to_string())),
                Err(e) => Err(e),
            }
        };
        let mut answers: Vec<Vec<Option<ChatAnswer>>> = vec![vec![None; variants]; inputs.len()];
        let mut remaining = vec![variants; inputs.len()];
        serve::send_each(
            client.settings().concurrency,
            jobs.len(),
            &send,
            cancel,
            &mut |j, outcome| {
                let Some(&(i, v)) = owner.get(j) else {
                    return Ok(());
                };
                if remaining[i] == 0 {
                    // Another policy of this input was too long: its verdict is given.
                    return Ok(());
                }
                match outcome {
                    Outcome::TooLong(why) => {
                        remaining[i] = 0;
                        on_verdict(
                            i,
                            unparsed(
                                &format!(
                                    "the judge prompt does not fit the server's context ({why})"
                                ),
                                None,
                            ),
                        )
                    }
                    Outcome::Answer(a) => {
                        answers[i][v] = Some(a);
                        remaining[i] -= 1;
                        if remaining[i] > 0 {
                            return Ok(());
                        }
                        let done: Vec<ChatAnswer> =
                            answers[i].iter_mut().filter_map(Option::take).collect();
                        on_verdict(i, this.verdict(&done)?)
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::chat::TopLogprob;
    use crate::store::Finish;

    fn position(token: &str, alternatives: &[(&str, f64)]) -> TokenLogprobs {
        TokenLogprobs {
            token: token.into(),
            logprob: alternatives.first().map_or(0.0, |a| a.1.ln()),
            bytes: Some(token.as_bytes().to_vec()),
            top_logprobs: alternatives
                .iter()
                .map(|(t, p)| TopLogprob {
                    token: (*t).into(),
                    logprob: p.ln(),
                    bytes: Some(t.as_bytes().to_vec()),
                })
                .collect(),
        }
    }

    fn answer(logprobs: Option<Vec<TokenLogprobs>>) -> ChatAnswer {
        ChatAnswer {
            text: "safe".into(),
            finish: Finish::Stop,
            served: crate::serve::ServedAnswer::default(),
            logprobs,
            server_time: None,
            latency: std::time::Duration::ZERO,
            client_time: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn the_probe_sums_alternatives_spelling_each_word_after_leading_whitespace() {
        let positions = [
            position("\n\n", &[("\n\n", 0.9), ("\n", 0.1)]),
            position(
                "unsafe",
                &[
                    ("unsafe", 0.5),
                    (" unsafe", 0.2),
                    ("safe", 0.1),
                    ("Safe", 0.05),
                ],
            ),
        ];
        let r = probe_reading(&positions, &["unsafe", "safe"], PROBE_SKIP).unwrap();
        assert_eq!(r.position, 1);
        assert!((r.class_probs[0] - 0.7).abs() < 1e-12, "{r:?}");
        // Case counts: `Safe` is not `safe`.
        assert!((r.class_probs[1] - 0.1).abs() < 1e-12, "{r:?}");
    }

    #[test]
    fn the_probe_stops_skipping_after_max_skip_and_reads_nothing_of_an_empty_answer() {
        let blank = position(" ", &[(" ", 0.8), ("Yes", 0.1)]);
        let r = probe_reading(&[blank.clone(), blank.clone(), blank], &["Yes", "No"], 2).unwrap();
        assert_eq!(r.position, 2);
        assert!((r.class_probs[0] - 0.1).abs() < 1e-12);
        assert!(probe_reading(&[], &["Yes", "No"], 2).is_none());
    }

    #[test]
    fn a_token_inside_a_character_is_read_by_its_bytes_not_skipped_as_blank() {
        // `token: ""` with the bytes of half a character: not whitespace, so it is read here.
        let mut p = position("", &[("No", 0.3)]);
        p.bytes = Some(vec![0xE2, 0x80]);
        let r = probe_reading(&[p], &["Yes", "No"], 2).unwrap();
        assert_eq!(r.position, 0);
        assert_eq!(token_text("", Some(b" Yes")), " Yes");
    }

    #[test]
    fn missing_logprobs_are_an_error_naming_what_needs_them() {
        let e = logprob_positions(&answer(None), "the Llama Guard score").unwrap_err();
        assert!(e.starts_with("the Llama Guard score needs logprobs"), "{e}");
        assert!(e.contains("top_logprobs: 20"), "{e}");
        let ok = answer(Some(vec![position("safe", &[("safe", 0.9)])]));
        assert_eq!(logprob_positions(&ok, "x").unwrap().len(), 1);
    }

    #[test]
    fn a_served_probe_below_the_minimum_mass_leaves_the_score_unreadable() {
        let recipe =
            Recipe::for_spec(&JudgeSpec::parse("llama-guard:openai:http://h/v1#g").unwrap())
                .unwrap();
        let positions = [position(
            "I",
            &[("I", 0.6), ("safe", 0.1), ("unsafe", 0.05)],
        )];
        let reading = probe_reading(&positions, &["unsafe", "safe"], PROBE_SKIP);
        let v = recipe.verdict(&[Output {
            text: "safe",
            probe: reading.as_ref(),
        }]);
        assert_eq!(v.score, None);
        assert!(
            v.reason
                .contains("P(unsafe) unreadable: only 0.15 of the judge's probability"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn inputs_are_named_by_pack_prompt_sample_and_side() {
        let input = JudgeInput {
            pack: "tiny",
            prompt_id: "a-1",
            sample: 2,
            side: "candidate",
            ..JudgeInput::default()
        };
        assert_eq!(input_name(0, &input), "answer tiny/a-1#2 (candidate)");
        assert_eq!(input_name(3, &JudgeInput::new("q", "a")), "answer 3");
    }
}
