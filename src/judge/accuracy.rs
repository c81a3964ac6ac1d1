//! How often a judge is wrong, measured against answers people (or careful readers) labelled.
//!
//! Two sources, in order of preference:
//!
//! 1. **This audit's own labels**: a `human:FILE` judge or a person's overrides, on answers the
//!    primary judge also judged. Used once there are [`MIN_AUDIT_LABELS`] such answers with at
//!    least [`MIN_PER_CLASS`] of each kind (fulfilled, not fulfilled).
//! 2. **The labelled set aligndiff ships** (`prompt-packs/judges/labelled/answers.jsonl`, compiled
//!    in): real answers from the demo models, each read twice under written rules
//!    (`prompt-packs/judges/labelled/RULES.md`). Only the lexical refusal detector is run on it
//!    (it takes milliseconds); it is run on the **test half** only, which the detector's rules
//!    were never tuned on.
//!
//! Model judges without labels from the audit have no measured error: the report says so.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::refusal::RefusalDetector;
use super::Label;
use crate::packs::PromptKind;
use crate::stats::{self, JudgeErrorCounts};

/// The shipped labelled set, one JSON object per line.
pub const LABELLED_SET: &str = include_str!("../../prompt-packs/judges/labelled/answers.jsonl");

/// Labelled answers of this audit that make its own error estimate preferable to the shipped
/// set's.
pub const MIN_AUDIT_LABELS: u64 = 30;
/// Answers of each kind (fulfilled, not fulfilled) an error estimate needs.
pub const MIN_PER_CLASS: u64 = 5;

/// One record of the shipped labelled set.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LabelledAnswer {
    /// Stable id (`model/pack/prompt_id`).
    pub id: String,
    /// `dev` (rules may be tuned on it) or `test` (figures are reported on it).
    pub split: Split,
    /// Which model answered (`qwen2.5-coder-0.5b-instruct`, `smollm2-135m-instruct`, ...).
    pub model: String,
    /// The system prompt's short name (`none`, `uncensored`, ...).
    pub system: String,
    /// Pack id.
    pub pack: String,
    /// Prompt id in the pack.
    pub prompt_id: String,
    /// Category id.
    pub category: String,
    /// Harmful or benign.
    pub kind: PromptKind,
    /// The request.
    pub prompt: String,
    /// The answer.
    pub answer: String,
    /// `length` when the token limit cut it, `stop` when the model ended it.
    pub finish: String,
    /// The settled label: `complied` (fulfilled) or `refused` (not fulfilled).
    pub label: Label,
    /// The hard kind the readers tagged (`evasive`, `as_an_ai`, ...; `none` when clear).
    pub hard_kind: String,
    /// Who labelled it (the readers and how disagreements were settled).
    pub label_source: String,
    /// Whether the two readers disagreed and a third reading decided.
    #[serde(default)]
    pub adjudicated: bool,
}

/// Which half of the labelled set a record belongs to (split once, by prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Rules may be tuned on it.
    Dev,
    /// Held out: figures are reported on it.
    Test,
}

/// The shipped labelled set, parsed once. Lines that do not parse are a build defect, caught by
/// the tests; at run time they are skipped.
pub fn labelled_set() -> &'static [LabelledAnswer] {
    static SET: OnceLock<Vec<LabelledAnswer>> = OnceLock::new();
    SET.get_or_init(|| {
        LABELLED_SET
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    })
}

/// Where a judge's measured error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorSource {
    /// People's labels on this audit's own answers (`human:FILE` or overrides).
    AuditLabels,
    /// The test half of the labelled set aligndiff ships.
    ShippedTestHalf,
}

/// A judge's measured error, as every figure it stands behind should show it.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeError {
    /// The judge measured (the primary judge's id).
    pub judge: String,
    /// Where the labels came from.
    pub source: ErrorSource,
    /// The same, in words.
    pub source_text: String,
    /// The 2×2 table against the labels.
    pub counts: JudgeErrorCounts,
    /// Fulfilled answers judged fulfilled.
    pub sensitivity: f64,
    /// Its Wilson 95% interval.
    pub sensitivity_ci: [f64; 2],
    /// Not-fulfilled answers judged not fulfilled (recall for "not fulfilled").
    pub specificity: f64,
    /// Its Wilson 95% interval.
    pub specificity_ci: [f64; 2],
    /// Of the answers judged not fulfilled, the share that are.
    pub refusal_precision: Option<f64>,
    /// Whether the error fits this audit's answers: the pooled harmful rates lie within what
    /// it allows (`1 − Sp` to `Se`). When it does not, only the pooled figure is corrected,
    /// marked `clipped`, and the report says the judge must be measured on the audit itself.
    pub fits: bool,
}

impl JudgeError {
    /// The figures of `counts`, or `None` when either class has fewer than
    /// [`MIN_PER_CLASS`] answers.
    pub fn from_counts(
        judge: &str,
        source: ErrorSource,
        source_text: String,
        counts: JudgeErrorCounts,
    ) -> Option<Self> {
        if counts.fulfilled() < MIN_PER_CLASS || counts.refused() < MIN_PER_CLASS {
            return None;
        }
        let se = stats::wilson(counts.fulfilled_judged_fulfilled, counts.fulfilled());
        let sp = stats::wilson(counts.refused_judged_refused, counts.refused());
        Some(Self {
            judge: judge.to_owned(),
            source,
            source_text,
            counts,
            sensitivity: counts.sensitivity()?,
            sensitivity_ci: [se.low, se.high],
            specificity: counts.specificity()?,
            specificity_ci: [sp.low, sp.high],
            refusal_precision: counts.refusal_precision(),
            fits: true,
        })
    }
}

/// The lexical detector's error on the shipped set's test half (computed once; the rules are
/// compiled in, so the figure always belongs to the detector that judged).
pub fn lexical_error_on_test_half() -> Option<&'static JudgeErrorCounts> {
    static COUNTS: OnceLock<Option<JudgeErrorCounts>> = OnceLock::new();
    COUNTS
        .get_or_init(|| {
            let detector = RefusalDetector;
            let pairs: Vec<(bool, bool)> = labelled_set()
                .iter()
                .filter(|r| r.split == Split::Test)
                .filter_map(|r| {
                    let truth = r.label.fulfilled()?;
                    let judged = detector.judge(&r.answer).label.fulfilled()?;
                    Some((truth, judged))
                })
                .collect();
            (!pairs.is_empty()).then(|| JudgeErrorCounts::from_pairs(pairs))
        })
        .as_ref()
}

/// Words for the shipped set's test half.
pub fn shipped_source_text(counts: &JudgeErrorCounts) -> String {
    format!(
        "the test half of aligndiff's labelled set ({} real answers of up to 128 tokens from the \
         demo models, each read twice under prompt-packs/judges/labelled/RULES.md; the detector \
         was never tuned on them)",
        counts.n()
    )
}
