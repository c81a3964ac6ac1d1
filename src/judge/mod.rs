//! Judges decide whether an answer complied with or refused the request. Every verdict records
//! which judge (id and fingerprint) gave it.
//!
//! - [`RefusalJudge`]: the fast lexical refusal detector ([`refusal`]).
//! - [`model::ModelJudge`]: any chat model loaded by the engine, with a rubric template
//!   ([`template`]) or as a guard model (Llama Guard 3, Qwen3Guard-Gen, ShieldGemma), its
//!   answer read by a strict parser ([`parse`]).
//! - [`served::ServedJudge`]: the same rubric and guard judges on an OpenAI-compatible server
//!   (`rubric:fulfillment@openai:http://host:8000/v1#judge`), read by the same parsers.
//! - [`human::HumanJudge`]: labels people gave, imported from a CSV or JSONL file.
//!
//! [`spec::JudgeSpec`] names a judge (`rubric:fulfillment@model.gguf`) and [`build`] makes it.
//! [`harm_probe`] asks a model itself how harmful a request is.

pub mod accuracy;
pub mod harm_probe;
pub mod human;
pub mod model;
pub mod parse;
pub mod recipe;
pub mod refusal;
pub mod served;
pub mod spec;
pub mod template;

use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

pub use spec::JudgeSpec;

use crate::error::{Error, Result};
use crate::util::hash::hex_sha256;

/// The id of the judge that stands for people: a `human:FILE` judge, or people's overrides.
pub const HUMAN_ID: &str = "human";

/// What kind of judge gave a verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JudgeKind {
    /// The lexical refusal detector.
    #[default]
    Lexical,
    /// A chat model with a rubric template.
    Rubric,
    /// A guard model (Llama Guard, Qwen3Guard, ShieldGemma).
    Guard,
    /// People: a labels file or overrides made in the workbench.
    Human,
}

impl JudgeKind {
    /// `lexical`, `rubric`, `guard` or `human`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lexical => "lexical",
            Self::Rubric => "rubric",
            Self::Guard => "guard",
            Self::Human => "human",
        }
    }
}

impl std::fmt::Display for JudgeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A judge's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// The answer declined (or gave nothing usable).
    Refused,
    /// The answer provided what was asked.
    Complied,
    /// A model judge's output could not be read; never counted either way.
    Unparsed,
}

impl Label {
    /// `refused`, `complied` or `unparsed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Complied => "complied",
            Self::Unparsed => "unparsed",
        }
    }

    /// Whether the label says the request was fulfilled (`None` when unparsed).
    pub fn fulfilled(self) -> Option<bool> {
        match self {
            Self::Complied => Some(true),
            Self::Refused => Some(false),
            Self::Unparsed => None,
        }
    }

    /// Parse the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refused" => Some(Self::Refused),
            "complied" => Some(Self::Complied),
            "unparsed" => Some(Self::Unparsed),
            _ => None,
        }
    }
}

/// Why the text alone may not settle a verdict: a person's look is worth most here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Uncertainty {
    /// The answer was cut at the token limit before it clearly delivered or declined.
    Truncated,
    /// The answer reads like an evasion (general information, "as an AI", a lecture, a
    /// change of subject) that may or may not serve the request.
    Evasive,
    /// A refusal (or warning) and substantive content in the same answer.
    RefusalAndContent,
    /// The answer speaks to whoever evaluates it ("note to the evaluator: this is safe").
    AddressesJudge,
    /// The answer mostly repeats itself: whether the loop is the deliverable takes a reading.
    Repetitive,
}

impl Uncertainty {
    /// Every kind, in the order a reviewer should look at them.
    pub const ALL: [Self; 5] = [
        Self::AddressesJudge,
        Self::RefusalAndContent,
        Self::Evasive,
        Self::Repetitive,
        Self::Truncated,
    ];

    /// The stored form: `truncated`, `evasive`, `refusal_and_content`, `addresses_judge`,
    /// `repetitive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::Evasive => "evasive",
            Self::RefusalAndContent => "refusal_and_content",
            Self::AddressesJudge => "addresses_judge",
            Self::Repetitive => "repetitive",
        }
    }

    /// Parse the stored form (`None` for '' or anything else).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// A short phrase for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Truncated => "cut off before it committed",
            Self::Evasive => "reads like an evasion",
            Self::RefusalAndContent => "refusal mixed with content",
            Self::AddressesJudge => "speaks to the evaluator",
            Self::Repetitive => "repeats itself",
        }
    }
}

impl std::fmt::Display for Uncertainty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The decision.
    pub label: Label,
    /// The answer both refused and provided content.
    pub partial: bool,
    /// Why the text may not settle this verdict (`None`: the judge is confident).
    pub uncertain: Option<Uncertainty>,
    /// A numeric score, for judges that give one.
    pub score: Option<f64>,
    /// Why, in words a person can check.
    pub reason: String,
    /// The judge's raw output, for model judges.
    pub raw: Option<String>,
}

/// One answer to judge, with where it came from (human labels are matched by it; model judges
/// only read the request and the answer).
#[derive(Debug, Clone, Copy, Default)]
pub struct JudgeInput<'a> {
    /// Store key of the answer ('' when it has none).
    pub key: &'a str,
    /// Pack id ('' when unknown).
    pub pack: &'a str,
    /// Prompt id within the pack, or a record id.
    pub prompt_id: &'a str,
    /// Sample index.
    pub sample: u32,
    /// `reference` or `candidate` ('' outside an audit).
    pub side: &'a str,
    /// Category name ('' when unknown).
    pub category: &'a str,
    /// The request the model received.
    pub request: &'a str,
    /// The model's answer.
    pub answer: &'a str,
    /// Whether the token limit cut the answer.
    pub truncated: bool,
}

impl<'a> JudgeInput<'a> {
    /// An answer known only by its request and text.
    pub fn new(request: &'a str, answer: &'a str) -> Self {
        Self {
            request,
            answer,
            ..Self::default()
        }
    }
}

/// Who a judge is, as reports and the store record it. The counts are filled in by the audit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JudgeInfo {
    /// Short id, unique within an audit (`refusal`, `fulfillment@qwen2.5-0.5b`, `human`).
    pub id: String,
    /// What kind of judge it is.
    pub kind: JudgeKind,
    /// The spec it was built from (`rubric:fulfillment@/models/q.gguf`).
    pub spec: String,
    /// Changes whenever the judge's behaviour could change; verdicts are stored under it.
    pub fingerprint: String,
    /// Fingerprint id of the judge's model, for model judges.
    pub model: Option<String>,
    /// Where the judge's model came from.
    pub model_source: Option<String>,
    /// Where the prompt template came from (`builtin:fulfillment`, a path, or the judge
    /// model's own chat template).
    pub template: Option<String>,
    /// SHA-256 of the prompt template.
    pub template_sha256: Option<String>,
    /// How the judge's text is read (`binary`, `strongreject`, ...).
    pub parser: Option<String>,
    /// Decoding settings (`greedy;max_new_tokens=8`, plus any first-token probe).
    pub decoding: Option<String>,
    /// Answers this judge judged in this run.
    pub judged: usize,
    /// Verdicts reused from the store.
    pub reused: usize,
    /// Verdicts of this audit's answers that could not be read (counted, never scored).
    pub unparsed: usize,
    /// Seconds spent judging in this run (loading excluded).
    pub seconds: f64,
}

impl JudgeInfo {
    /// Answers judged per minute in this run.
    pub fn per_minute(&self) -> f64 {
        if self.seconds > 0.0 {
            self.judged as f64 / self.seconds * 60.0
        } else {
            0.0
        }
    }
}

/// Something that judges answers.
pub trait Judge: Send {
    /// Who this judge is.
    fn info(&self) -> &JudgeInfo;

    /// Short id, e.g. `refusal`.
    fn id(&self) -> &str {
        &self.info().id
    }

    /// What kind of judge it is.
    fn kind(&self) -> JudgeKind {
        self.info().kind
    }

    /// Changes whenever the judge's behaviour could change (rules, model, template).
    fn fingerprint(&self) -> &str {
        &self.info().fingerprint
    }

    /// Judge many answers (model judges batch them like generation). `on_verdict(i, v)` is
    /// called as each verdict is ready, in any order; a judge may give none for an input (a
    /// person labelled only some answers). Stops with [`Error::Cancelled`] when `cancel` is
    /// set; verdicts already handed over stand.
    fn judge_batch(
        &mut self,
        inputs: &[JudgeInput<'_>],
        cancel: &AtomicBool,
        on_verdict: &mut dyn FnMut(usize, Verdict) -> Result<()>,
    ) -> Result<()>;

    /// Judge one answer to a request.
    fn judge(&mut self, request: &str, answer: &str) -> Result<Verdict> {
        let mut verdict = None;
        self.judge_batch(
            &[JudgeInput::new(request, answer)],
            &AtomicBool::new(false),
            &mut |_, v| {
                verdict = Some(v);
                Ok(())
            },
        )?;
        verdict.ok_or_else(|| {
            Error::Invalid(format!(
                "judge `{}` gave no verdict on this answer",
                self.id()
            ))
        })
    }
}

/// The fast lexical refusal detector as a [`Judge`].
#[derive(Debug, Clone)]
pub struct RefusalJudge {
    detector: refusal::RefusalDetector,
    info: JudgeInfo,
}

impl Default for RefusalJudge {
    fn default() -> Self {
        let detector = refusal::RefusalDetector;
        let fingerprint = hex_sha256(
            format!(
                "{}\u{0}{}\u{0}{}",
                refusal::RefusalDetector::ID,
                refusal::RefusalDetector::VERSION,
                detector.rules_text()
            )
            .as_bytes(),
        );
        Self {
            detector,
            info: JudgeInfo {
                id: "refusal".into(),
                kind: JudgeKind::Lexical,
                spec: "refusal".into(),
                fingerprint,
                ..JudgeInfo::default()
            },
        }
    }
}

impl Judge for RefusalJudge {
    fn info(&self) -> &JudgeInfo {
        &self.info
    }

    fn judge_batch(
        &mut self,
        inputs: &[JudgeInput<'_>],
        cancel: &AtomicBool,
        on_verdict: &mut dyn FnMut(usize, Verdict) -> Result<()>,
    ) -> Result<()> {
        for (i, input) in inputs.iter().enumerate() {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            on_verdict(i, self.detector.judge_answer(input.answer, input.truncated))?;
        }
        Ok(())
    }
}

/// How model judges are loaded and run (in-process), or reached (on a server).
#[derive(Debug, Clone)]
pub struct JudgeSettings {
    /// Where the judge model runs.
    pub device: candle_core::Device,
    /// Load-time re-encoding of slow quantization formats.
    pub requantize: crate::model::Requantize,
    /// Judge prompts decoded together.
    pub batch_size: usize,
    /// Longest judge prompt + judgement, in tokens, to load the model for.
    pub max_positions: usize,
    /// How requests go to a served judge (`openai:` models): concurrency, timeout, retries.
    pub serving: crate::serve::ServingSettings,
    /// The environment variable holding served judges' API key (default `OPENAI_API_KEY`).
    pub api_key_env: Option<String>,
}

impl Default for JudgeSettings {
    fn default() -> Self {
        Self {
            device: candle_core::Device::Cpu,
            requantize: crate::model::Requantize::Never,
            batch_size: 8,
            max_positions: 4096,
            serving: crate::serve::ServingSettings::default(),
            api_key_env: None,
        }
    }
}

/// Make the judge a spec names: model judges load their model here (so build them one at a
/// time, after generation, to keep one model resident); served judges find their model on its
/// server.
pub fn build(spec: &JudgeSpec, settings: &JudgeSettings) -> Result<Box<dyn Judge>> {
    build_cancellable(spec, settings, &AtomicBool::new(false))
}

/// [`build`], stopping with [`Error::Cancelled`] when `cancel` is set while a served judge's
/// server is being asked for its models.
pub fn build_cancellable(
    spec: &JudgeSpec,
    settings: &JudgeSettings,
    cancel: &AtomicBool,
) -> Result<Box<dyn Judge>> {
    Ok(match spec {
        JudgeSpec::Refusal => Box::new(RefusalJudge::default()),
        JudgeSpec::Human { file } => Box::new(human::HumanJudge::from_file(file)?),
        _ if spec.model_source().is_some_and(crate::serve::is_served) => {
            Box::new(served::ServedJudge::connect(spec, settings, cancel)?)
        }
        _ => Box::new(model::ModelJudge::load(spec, settings)?),
    })
}
