//! Judges decide whether an answer complied with or refused the request. Every verdict records
//! which judge (id and fingerprint) gave it.

pub mod refusal;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::template::hex_sha256;

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

/// One judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The decision.
    pub label: Label,
    /// The answer both refused and provided content.
    pub partial: bool,
    /// A numeric score, for judges that give one.
    pub score: Option<f64>,
    /// Why, in words a person can check.
    pub reason: String,
    /// The judge's raw output, for model judges.
    pub raw: Option<String>,
}

/// Something that judges answers.
pub trait Judge: Send {
    /// Short id, e.g. `refusal`.
    fn id(&self) -> &str;
    /// What kind of judge (`lexical`, `rubric`, `guard`, `human`).
    fn kind(&self) -> &str;
    /// Changes whenever the judge's behaviour could change (rules, model, template).
    fn fingerprint(&self) -> &str;
    /// Judge one answer to a request.
    fn judge(&mut self, request: &str, answer: &str) -> Result<Verdict>;
}

/// The fast lexical refusal detector as a [`Judge`].
#[derive(Debug, Clone)]
pub struct RefusalJudge {
    detector: refusal::RefusalDetector,
    fingerprint: String,
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
            fingerprint,
        }
    }
}

impl Judge for RefusalJudge {
    fn id(&self) -> &str {
        "refusal"
    }

    fn kind(&self) -> &str {
        "lexical"
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn judge(&mut self, _request: &str, answer: &str) -> Result<Verdict> {
        let v = self.detector.judge(answer);
        Ok(Verdict {
            label: match v.label {
                refusal::RefusalLabel::Refused => Label::Refused,
                refusal::RefusalLabel::Complied => Label::Complied,
            },
            partial: v.partial,
            score: None,
            reason: v.reason,
            raw: None,
        })
    }
}
