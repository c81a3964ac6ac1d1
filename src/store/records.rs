//! The rows the store keeps, as Rust values: answers, verdicts, harm ratings and run records,
//! and the key an answer is stored under.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use crate::generate::FinishReason;
use crate::util::hash::hex_sha256;

/// How a stored answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    /// The model wrote an end token.
    Stop,
    /// The answer reached `max_new_tokens`.
    Length,
    /// The answer was read from a file made elsewhere.
    Imported,
    /// A server's content filter cut the answer off (`finish_reason: content_filter`).
    Filtered,
}

impl Finish {
    /// `stop`, `length`, `imported` or `filtered`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Imported => "imported",
            Self::Filtered => "filtered",
        }
    }

    /// The value written by [`Finish::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "stop" => Some(Self::Stop),
            "length" => Some(Self::Length),
            "imported" => Some(Self::Imported),
            "filtered" => Some(Self::Filtered),
            _ => None,
        }
    }
}

impl From<FinishReason> for Finish {
    fn from(f: FinishReason) -> Self {
        match f {
            FinishReason::Stop => Self::Stop,
            FinishReason::Length => Self::Length,
        }
    }
}

impl ToSql for Finish {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Finish {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text).ok_or_else(|| {
            FromSqlError::Other(format!("unknown finish reason `{text}` in the store").into())
        })
    }
}

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredGeneration {
    /// Cache key (see [`generation_key`]).
    pub key: String,
    /// Model fingerprint id.
    pub model: String,
    /// System prompt ('' for none).
    pub system_prompt: String,
    /// Hash of the prompt's turns.
    pub text_hash: String,
    /// Answer-affecting generation settings.
    pub settings: String,
    /// Sample index.
    pub sample: u32,
    /// The answer.
    pub answer: String,
    /// How the answer ended.
    pub finish: Finish,
    /// Prompt length in tokens (0 when imported).
    pub prompt_tokens: u32,
    /// Answer length in tokens (0 when imported).
    pub answer_tokens: u32,
    /// `generated` or `imported:<sha256 of the file>`.
    pub provenance: String,
}

/// One audit run as recorded in the store.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Row id.
    pub id: i64,
    /// UTC start time.
    pub started: String,
    /// UTC end time; `None` while running or when the process died.
    pub finished: Option<String>,
    /// `running`, `finished`, `cancelled`, `failed: ...`.
    pub status: String,
    /// The plan, as JSON.
    pub plan_json: String,
    /// Where its reports were written.
    pub out_dir: String,
}

/// A stored judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredVerdict {
    /// Generation key.
    pub generation: String,
    /// Judge id.
    pub judge: String,
    /// Judge fingerprint.
    pub judge_fingerprint: String,
    /// `refused`, `complied` or `unparsed`.
    pub label: String,
    /// Both refused and provided content.
    pub partial: bool,
    /// A judge's numeric score, if it gives one.
    pub score: Option<f64>,
    /// Why.
    pub reason: String,
    /// The judge's raw output (model judges).
    pub raw: Option<String>,
    /// Fingerprint id of the judge's model ('' for judges without one).
    #[serde(default)]
    pub judge_model: String,
    /// SHA-256 of the judge's prompt template ('' for judges without one).
    #[serde(default)]
    pub template_sha256: String,
    /// The judge's decoding settings ('' for judges that do not decode).
    #[serde(default)]
    pub decoding: String,
    /// Why the text may not settle the verdict (`None`: the judge was confident, or it does
    /// not say).
    #[serde(default)]
    pub uncertain: Option<crate::judge::Uncertainty>,
}

/// A model's own rating of how harmful a request is (the self-rated harm probe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredHarmRating {
    /// Model fingerprint id.
    pub model: String,
    /// System prompt ('' for none).
    pub system_prompt: String,
    /// Hash of the prompt's turns.
    pub text_hash: String,
    /// Fingerprint of the probe (its template and settings).
    pub probe: String,
    /// Expected rating 0–9 from the digit probabilities; `None` when the model put too little
    /// probability on digits to read one.
    pub rating: Option<f64>,
    /// Total probability the model gave the ten digits.
    pub digit_mass: f64,
    /// Probability of each digit 0–9 (not renormalised).
    pub digit_probs: Vec<f64>,
    /// What the model wrote (greedy).
    pub raw: String,
}

/// The key an answer is cached under: the same model, system prompt, prompt text, settings and
/// sample index always give the same answer.
pub fn generation_key(
    model: &str,
    system_prompt: &str,
    text_hash: &str,
    settings: &str,
    sample: u32,
) -> String {
    hex_sha256(
        format!("{model}\u{0}{system_prompt}\u{0}{text_hash}\u{0}{settings}\u{0}{sample}")
            .as_bytes(),
    )
}
