//! The self-rated harm probe: ask a model how harmful a request is (0–9, a single digit) and read
//! the expected rating Σ i·p(i) from the probabilities of the ten digit tokens. Run on both
//! checkpoints, it shows whether the fine-tune shifted the model's own perception of harm.

use std::sync::atomic::{AtomicBool, Ordering};

use super::model::{word_classes, MIN_PROBE_MASS};
use super::parse::expected_rating;
use super::template::{JudgeTemplate, PromptVars};
use crate::error::{Error, Result};
use crate::generate::{self, Event, GenerationSettings, Probe, Request};
use crate::model::LoadedModel;
use crate::util::hash::hex_sha256;

/// Bumped when the probe could rate the same request differently.
pub const PROBE_VERSION: u32 = 1;

/// Digit tokens the model may write before its digit (a space or a line break).
const SKIP: usize = 2;

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
        let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
        let words: Vec<&str> = digits.iter().map(String::as_str).collect();
        let probe = Probe {
            classes: word_classes(model, &words)?,
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
}
