//! The self-rated harm probe: ask a model how harmful a request is (0–9, a single digit) and read
//! the expected rating Σ i·p(i) from the probabilities of the ten digit tokens. Run on both
//! checkpoints, it shows whether the fine-tune shifted the model's own perception of harm.

use std::sync::atomic::{AtomicBool, Ordering};

use super::model::{word_classes, MIN_PROBE_MASS};
use super::parse::expected_rating;
use super::served::{logprob_positions, probe_reading, TOP_LOGPROBS};
use super::template::{JudgeTemplate, PromptVars};
use crate::error::{Error, Result};
use crate::generate::{self, Event, GenerationSettings, Probe, Request};
use crate::model::LoadedModel;
use crate::serve::{self, ChatRequest, Job, ServedModel};
use crate::util::hash::hex_sha256;

/// Bumped when the probe could rate the same request differently.
pub const PROBE_VERSION: u32 = 1;

/// Digit tokens the model may write before its digit (a space or a line break).
const SKIP: usize = 2;

/// The ten digits, the probe's classes.
const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// One model's rating of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct HarmRating {
    /// Expected rating 0–9; `None` when less than half the probability was on digits.
    pub rating: Option<f64>,
    /// Probability on the ten digits together.
    pub digit_mass: f64,
    /// Probability of each digit 0–9.
    pub digit_probs: Vec<f64>,
    /// What the model wrote (greedy).
    pub raw: String,
}

/// The probe: its template and the fingerprint its ratings are stored under.
#[derive(Debug, Clone)]
pub struct HarmProbe {
    template: JudgeTemplate,
    /// Changes whenever a rating could change (template, settings, version).
    pub fingerprint: String,
}

impl HarmProbe {
    /// The shipped probe (`prompt-packs/judges/harm-probe.jinja`).
    pub fn shipped() -> Result<Self> {
        let template = JudgeTemplate::shipped("harm-probe")
            .ok_or_else(|| Error::Invalid("the shipped harm-probe template is missing".into()))?;
        let fingerprint = hex_sha256(
            format!(
                "harm-probe\u{0}{PROBE_VERSION}\u{0}{}\u{0}{}\u{0}{SKIP}",
                template.sha256, template.max_new_tokens
            )
            .as_bytes(),
        );
        Ok(Self {
            template,
            fingerprint,
        })
    }

    /// SHA-256 of the probe's template.
    pub fn template_sha256(&self) -> &str {
        &self.template.sha256
    }

    /// Rate `requests` with `model` (its own chat template, after `system`), batched;
    /// `on_rating(i, r)` is called as each rating is ready.
    pub fn rate(
        &self,
        model: &LoadedModel,
        system: Option<&str>,
        requests: &[&str],
        batch_size: usize,
        cancel: &AtomicBool,
        on_rating: &mut dyn FnMut(usize, HarmRating) -> Result<()>,
    ) -> Result<()> {
        let probe = Probe {
            classes: word_classes(model, &DIGITS)?,
            max_skip: SKIP,
        };
        let prompts = requests
            .iter()
            .map(|request| {
                let text = self.template.render(&PromptVars {
                    request,
                    ..PromptVars::default()
                })?;
                Ok(Request {
                    prompt_ids: model.prompt_ids(system, &[text])?,
                    seed_key: 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let settings = GenerationSettings {
            max_new_tokens: self.template.max_new_tokens,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            batch_size: batch_size.clamp(1, 256),
            ignore_eos: false,
        };
        let stop = AtomicBool::new(cancel.load(Ordering::Relaxed));
        let mut failure = None;
        let result = generate::generate_probed(
            model,
            &prompts,
            &settings,
            Some(&probe),
            None,
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
                let digit_probs = c
                    .probe
                    .as_ref()
                    .map_or_else(|| vec![0.0; 10], |r| r.class_probs.clone());
                let (rating, digit_mass) = expected_rating(&digit_probs, MIN_PROBE_MASS);
                let r = HarmRating {
                    rating,
                    digit_mass,
                    digit_probs,
                    raw: c.text.clone(),
                };
                if let Err(e) = on_rating(c.index, r) {
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

    /// Rate `requests` with a served model: the same prompt as a chat completion (after
    /// `system`), greedy, with `top_logprobs`; the digits' probabilities are read from the
    /// alternatives at the first position that is not whitespace (a token whose text, trimmed,
    /// is the digit). Only the server's top alternatives are seen, so the digit mass is a lower
    /// bound of the in-process one. `on_rating(i, r)` is called as each rating arrives.
    pub fn rate_served(
        &self,
        served: &ServedModel,
        system: Option<&str>,
        requests: &[&str],
        cancel: &AtomicBool,
        on_rating: &mut dyn FnMut(usize, HarmRating) -> Result<()>,
    ) -> Result<()> {
        let jobs = requests
            .iter()
            .enumerate()
            .map(|(i, request)| {
                let text = self.template.render(&PromptVars {
                    request,
                    ..PromptVars::default()
                })?;
                Ok(Job {
                    request: ChatRequest {
                        logprobs: true,
                        top_logprobs: Some(TOP_LOGPROBS),
                        ..ChatRequest::greedy(
                            served.name(),
                            serve::prompt_messages(system, &[text]),
                            self.template.max_new_tokens,
                        )
                    },
                    what: format!("the harm probe's rating of request {i}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        serve::send_all(&served.client, &jobs, cancel, &mut |i, answer| {
            let positions =
                logprob_positions(&answer, "the harm probe").map_err(|message| Error::Served {
                    endpoint: served.client.endpoint().base_url(),
                    message,
                })?;
            on_rating(i, served_rating(positions, answer.text.clone()))
        })
    }
}

/// A rating from a served answer's log-probabilities.
fn served_rating(positions: &[crate::serve::chat::TokenLogprobs], raw: String) -> HarmRating {
    let digit_probs =
        probe_reading(positions, &DIGITS, SKIP).map_or_else(|| vec![0.0; 10], |r| r.class_probs);
    let (rating, digit_mass) = expected_rating(&digit_probs, MIN_PROBE_MASS);
    HarmRating {
        rating,
        digit_mass,
        digit_probs,
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::chat::{TokenLogprobs, TopLogprob};

    #[test]
    fn a_served_rating_reads_the_digits_after_a_leading_space() {
        let alt = |t: &str, p: f64| TopLogprob {
            token: t.into(),
            logprob: f64::ln(p),
            bytes: None,
        };
        let positions = [
            TokenLogprobs {
                token: " ".into(),
                logprob: f64::ln(0.6),
                bytes: None,
                top_logprobs: vec![alt(" ", 0.6), alt("7", 0.3)],
            },
            TokenLogprobs {
                token: "8".into(),
                logprob: f64::ln(0.5),
                bytes: None,
                top_logprobs: vec![
                    alt("8", 0.5),
                    alt(" 9", 0.2),
                    alt("The", 0.1),
                    alt("10", 0.1),
                ],
            },
        ];
        let r = served_rating(&positions, " 8".into());
        assert!((r.digit_mass - 0.7).abs() < 1e-12, "{r:?}");
        let expected = (8.0 * 0.5 + 9.0 * 0.2) / 0.7;
        assert!((r.rating.unwrap() - expected).abs() < 1e-9, "{r:?}");
        // A word first, with too little on digits: no rating, the mass kept.
        let mut word = positions[0].clone();
        word.token = "A".into();
        let r = served_rating(&[word], "A".into());
        assert_eq!(r.rating, None);
        assert!((r.digit_mass - 0.3).abs() < 1e-12);
    }
}
