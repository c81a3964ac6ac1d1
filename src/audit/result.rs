//! What an audit found, as plain data: the result types that reports, the GUI and report.json
//! read. Nothing here touches the store; `rows` fills them and `compare` computes the figures.

use serde::Serialize;

use super::plan::{Plan, SidePlan};
use super::side::Side;
use crate::judge::accuracy::JudgeError;
use crate::judge::{JudgeInfo, Label, Uncertainty};
use crate::model::{Fingerprint, ModelInfo};
use crate::packs::{Pack, PromptKind};
use crate::store::Finish;

/// Where an imported side's answers came from and how they matched the audit's prompts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportedAnswers {
    /// The answers file.
    pub path: std::path::PathBuf,
    /// SHA-256 of its bytes (the answers' provenance in the store is `imported:<sha256>`).
    pub sha256: String,
    /// Records in the file.
    pub records: usize,
    /// Records matched to a prompt of the audit.
    pub matched: usize,
    /// Lines of records that match no prompt of the audit (by id or exact text).
    pub unmatched_lines: Vec<usize>,
    /// Prompts (`id`, or `id#sample` past the first sample) the file has no answer for; they
    /// are left out of the pairing.
    pub missing: Vec<String>,
}

/// How a side's answers were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// By aligndiff's own engine, from the model files.
    InProcess,
    /// Read from an answers file made elsewhere.
    Imported,
    /// By a model on an OpenAI-compatible server.
    Openai,
}

impl Backend {
    /// `in-process`, `imported` or `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::Imported => "imported",
            Self::Openai => "openai",
        }
    }
}

/// A side answered by a model on a server: what the server said, and what aligndiff could not
/// check (the weights).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServedSide {
    /// The base URL, without credentials.
    pub endpoint: String,
    /// The served model name requests carried.
    pub served_model: String,
    /// The server's `/v1/models` entry for it (vLLM adds `root` and `parent` for adapters).
    pub server_said: serde_json::Value,
    /// The `model` values the server's responses carried.
    pub server_models: Vec<String>,
    /// The `system_fingerprint` values the responses carried (more than one: the server
    /// changed while the answers were made).
    pub system_fingerprints: Vec<String>,
    /// The environment variable the API key was read from.
    pub api_key_env: String,
    /// Whether that variable was set (the key itself is never recorded).
    pub api_key_set: bool,
    /// Always false: aligndiff sees the API, not the weights the server loaded.
    pub weights_verified: bool,
    /// The weights' SHA-256 as the analyst was told it, if given: declared, not verified.
    pub declared_sha256: Option<String>,
    /// Requests answered in this run.
    pub requests: usize,
    /// Requests sent again after a failure (429, 5xx, timeout, broken connection).
    pub retries: usize,
    /// Answers received per minute in this run.
    pub answers_per_minute: f64,
    /// Prompt and answer tokens over every answer, as the server counted them.
    pub prompt_tokens: u64,
    /// Answer tokens, as the server counted them.
    pub completion_tokens: u64,
}

/// What one side contributed.
#[derive(Debug, Clone, Serialize)]
pub struct SideRun {
    /// The plan for this side.
    pub plan: SidePlan,
    /// How the answers were made.
    pub backend: Backend,
    /// The server and what it said, for a served side.
    pub served: Option<ServedSide>,
    /// Fingerprint of the loaded model, or of the answers file (role `answers`) when imported.
    pub fingerprint: Fingerprint,
    /// Model summary; `None` when the answers were imported (no model was loaded).
    pub info: Option<ModelInfo>,
    /// The answers file and its matching, when the answers were imported.
    pub imported: Option<ImportedAnswers>,
    /// Answers generated in this run.
    pub generated: usize,
    /// Answers reused from the store.
    pub reused: usize,
    /// Answers that stopped at the token limit.
    pub hit_token_limit: usize,
    /// Generation keys per item.
    #[serde(skip)]
    pub keys: Vec<String>,
}

/// A pack used in the audit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PackInfo {
    /// Pack id.
    pub id: String,
    /// Version.
    pub version: String,
    /// SHA-256 of its files.
    pub sha256: String,
    /// Taxonomy.
    pub taxonomy: String,
    /// Where it came from.
    pub origin: String,
    /// Prompts used from it.
    pub prompts: usize,
    /// Its categories in declaration order (the order of every per-category table).
    #[serde(skip)]
    pub categories: Vec<CategoryInfo>,
}

/// A category a pack declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CategoryInfo {
    /// Category id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Domain or group.
    pub domain: String,
}

impl PackInfo {
    /// What the result keeps of a loaded pack.
    pub fn of(pack: &Pack) -> Self {
        Self {
            id: pack.id.clone(),
            version: pack.version.clone(),
            sha256: pack.sha256.clone(),
            taxonomy: pack.taxonomy.clone(),
            origin: pack.origin.clone(),
            prompts: pack.prompts.len(),
            categories: pack
                .categories
                .iter()
                .map(|c| CategoryInfo {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    domain: c.domain.clone(),
                })
                .collect(),
        }
    }
}

/// One judge's verdict on one answer.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeVerdict {
    /// The judge's id (as in [`AuditResult::judges`]).
    pub judge: String,
    /// Its label; `None` when it gave none (no answer, or a person labelled other answers).
    pub label: Option<Label>,
    /// Both refused and provided content (lexical judge).
    pub partial: bool,
    /// Why the text may not settle it, when the judge says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncertain: Option<Uncertainty>,
    /// Its score, on the judge's own scale (P(unsafe), StrongREJECT score, 0–10 harm, ...).
    pub score: Option<f64>,
    /// Why, in words.
    pub reason: String,
    /// The judge model's raw output.
    pub raw: Option<String>,
}

impl JudgeVerdict {
    /// No verdict from `judge` (no answer, or a person labelled other answers).
    pub fn none(judge: &str) -> Self {
        Self {
            judge: judge.to_owned(),
            label: None,
            partial: false,
            uncertain: None,
            score: None,
            reason: String::new(),
            raw: None,
        }
    }
}

/// Who gave a row side's effective verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum JudgedBy {
    /// Nobody: the answer is missing or no verdict is stored.
    #[default]
    Nobody,
    /// The primary judge, by id.
    Judge(String),
    /// A person's override (written `human`).
    Person,
}

impl JudgedBy {
    /// Whether a person's override decided the verdict.
    pub fn is_person(&self) -> bool {
        *self == Self::Person
    }

    /// The judge id, `human` for a person, empty for nobody.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Nobody => "",
            Self::Judge(id) => id,
            Self::Person => crate::judge::HUMAN_ID,
        }
    }
}

impl std::fmt::Display for JudgedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JudgedBy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Whether a label says the request was fulfilled (`None` for no label or an unparsed one).
pub fn fulfilled(label: Option<Label>) -> Option<bool> {
    match label? {
        Label::Complied => Some(true),
        Label::Refused => Some(false),
        Label::Unparsed => None,
    }
}

/// One side of a row.
#[derive(Debug, Clone, Serialize)]
pub struct RowSide {
    /// Generation key in the store.
    pub key: String,
    /// The answer (empty if missing).
    pub answer: String,
    /// How the answer ended (`None`: there is no answer).
    pub finish: Option<Finish>,
    /// The effective verdict: the primary judge's, or a person's override.
    pub label: Option<Label>,
    /// Both refused and provided content.
    pub partial: bool,
    /// Why.
    pub reason: String,
    /// The primary judge, or a person for an override.
    pub judged_by: JudgedBy,
    /// Every judge's own verdict, in the order of [`AuditResult::judges`] (overrides are not
    /// applied, except to the `human` judge, whose verdict they are).
    pub verdicts: Vec<JudgeVerdict>,
    /// The model's own rating (0–9) of how harmful the request is, when the harm probe ran.
    pub harm_rating: Option<f64>,
    /// What makes this answer worth a person's look: the primary judge's doubt, and what the
    /// text itself shows (it speaks to the evaluator, or mixes a refusal with content),
    /// whoever judged it. Empty when nothing does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Uncertainty>,
}

impl RowSide {
    /// Whether this side fulfilled the request (None when not judged or unparsed).
    pub fn fulfilled(&self) -> Option<bool> {
        fulfilled(self.label)
    }

    /// A side with no answer yet, under store key `key`.
    pub fn missing(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            answer: String::new(),
            finish: None,
            label: None,
            partial: false,
            reason: String::new(),
            judged_by: JudgedBy::Nobody,
            verdicts: Vec::new(),
            harm_rating: None,
            flags: Vec::new(),
        }
    }
}

/// One prompt × sample with both answers.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Pack id.
    pub pack: String,
    /// Prompt id.
    pub prompt_id: String,
    /// Category id.
    pub category: String,
    /// Category name.
    pub category_name: String,
    /// Harmful or benign.
    pub kind: PromptKind,
    /// Sample index.
    pub sample: u32,
    /// The request text.
    pub prompt: String,
    /// Reference model's answer and verdict.
    pub reference: RowSide,
    /// Candidate model's answer and verdict.
    pub candidate: RowSide,
}

/// Direction of a change between the two models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flip {
    /// Reference refused, candidate complied.
    ToFulfill,
    /// Reference complied, candidate refused.
    ToRefuse,
}

impl Row {
    /// One model's answer and verdict.
    pub fn side(&self, side: Side) -> &RowSide {
        match side {
            Side::Reference => &self.reference,
            Side::Candidate => &self.candidate,
        }
    }

    /// How the verdict changed, if it did.
    pub fn flip(&self) -> Option<Flip> {
        match (self.reference.fulfilled()?, self.candidate.fulfilled()?) {
            (false, true) => Some(Flip::ToFulfill),
            (true, false) => Some(Flip::ToRefuse),
            _ => None,
        }
    }
}

/// Paired statistics for one group of prompts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CategoryStats {
    /// Category id (`overall` for all).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Domain or group.
    pub domain: String,
    /// Paired prompts (both judged).
    pub n: u64,
    /// Prompts left out of the pairing (missing or unparsed on a side).
    pub excluded: u64,
    /// Reference fulfillment rate.
    pub reference_fulfillment: f64,
    /// Its Wilson 95% interval.
    pub reference_ci: [f64; 2],
    /// Candidate fulfillment rate.
    pub candidate_fulfillment: f64,
    /// Its Wilson 95% interval.
    pub candidate_ci: [f64; 2],
    /// Candidate minus reference.
    pub delta: f64,
    /// Newcombe paired 95% interval on delta.
    pub delta_ci: [f64; 2],
    /// Reference refused, candidate complied (b).
    pub flips_to_fulfill: u64,
    /// Reference complied, candidate refused (c).
    pub flips_to_refuse: u64,
    /// Exact McNemar p.
    pub mcnemar_p: f64,
    /// Holm-adjusted p across the categories of its family.
    pub holm_p: f64,
    /// The primary judge's own labels corrected for its measured error
    /// ([`AuditResult::judge_error`]); absent when that error is not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected: Option<crate::stats::CorrectedRates>,
}

/// Safety drift split by what the vendor says the fine-tune was for: a change confined to the
/// targeted categories is expected; a change in the untargeted ones is collateral damage.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// Category ids counted as targeted.
    pub targeted_ids: Vec<String>,
    /// Pooled over the targeted harmful categories.
    pub targeted: CategoryStats,
    /// Pooled over every other harmful category.
    pub untargeted: CategoryStats,
}

/// Over-refusal on benign prompts: the same statistics, where a drop in fulfillment is a rise
/// in over-refusal.
#[derive(Debug, Clone, Serialize)]
pub struct OverRefusal {
    /// Pooled over all benign prompts.
    #[serde(flatten)]
    pub overall: CategoryStats,
    /// Reference refusal rate on benign prompts.
    pub reference_refusal_rate: f64,
    /// Candidate refusal rate on benign prompts.
    pub candidate_refusal_rate: f64,
    /// Per benign category.
    pub categories: Vec<CategoryStats>,
}

/// The tool that produced a report.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    /// `aligndiff`.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// Git commit it was built from.
    pub git_commit: String,
}

impl ToolInfo {
    /// This build.
    pub fn current() -> Self {
        Self {
            name: "aligndiff".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: option_env!("ALIGNDIFF_GIT_COMMIT")
                .unwrap_or("unknown")
                .into(),
        }
    }
}

/// Everything an audit found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditResult {
    /// Producer.
    pub tool: ToolInfo,
    /// When the comparison was made (UTC).
    pub created: String,
    /// The plan as run.
    pub plan: Plan,
    /// Reference side.
    pub reference: SideRun,
    /// Candidate side.
    pub candidate: SideRun,
    /// Packs used.
    pub packs: Vec<PackInfo>,
    /// Judges used; the first is the primary judge behind every figure. A `human` judge stands
    /// for people's overrides when there are any and no `human:FILE` judge was given.
    pub judges: Vec<JudgeInfo>,
    /// Agreement between every pair of judges.
    pub agreement: Vec<Agreement>,
    /// The primary judge's measured error (from this audit's human labels, or from the
    /// labelled set aligndiff ships); `None` when nothing measures it.
    pub judge_error: Option<JudgeError>,
    /// Each model's own rating of how harmful the requests are, when the probe ran.
    pub harm_probe: Option<HarmShift>,
    /// Harmful categories.
    pub categories: Vec<CategoryStats>,
    /// All harmful prompts pooled.
    pub overall: CategoryStats,
    /// Benign prompts.
    pub over_refusal: Option<OverRefusal>,
    /// Harmful categories the fine-tune targeted vs the rest, when the plan names targets.
    pub drift: Option<Drift>,
    /// Every prompt with both answers.
    pub rows: Vec<Row>,
    /// Gate outcome, when a gate was given.
    pub gate: Option<GateResult>,
    /// The two files' weights compared tensor by tensor (`--weight-diff`).
    pub weight_diff: Option<crate::model::weight_diff::WeightDiff>,
    /// Human overrides in effect.
    pub overrides: usize,
    /// Wall time of the run.
    pub wall_seconds: f64,
}

/// Whether two judges agree, on answers both labelled refused or complied.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// First judge's id.
    pub a: String,
    /// Second judge's id.
    pub b: String,
    /// Answers both judges labelled refused or complied.
    pub n: u64,
    /// Answers left out: a judge gave no verdict or an unparsed one.
    pub excluded: u64,
    /// Cohen's kappa (`None` when undefined: no answers).
    pub kappa: Option<f64>,
    /// Share of the `n` answers on which they agree.
    pub observed: f64,
    /// Counts `confusion[a][b]`, index 0 = refused, 1 = complied (rows are judge `a`).
    pub confusion: [[u64; 2]; 2],
    /// The same per category, in pack order (categories with no answers both judged are left
    /// out).
    pub categories: Vec<CategoryAgreement>,
    /// Every answer they label differently.
    pub disagreements: Vec<Disagreement>,
}

/// Agreement within one category.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryAgreement {
    /// Category id.
    pub id: String,
    /// Category name.
    pub name: String,
    /// Answers both judges labelled.
    pub n: u64,
    /// Cohen's kappa.
    pub kappa: Option<f64>,
    /// Counts, as in [`Agreement::confusion`].
    pub confusion: [[u64; 2]; 2],
}

/// One answer two judges label differently: `rows[row]`, on `side`.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    /// Index into [`AuditResult::rows`].
    pub row: usize,
    /// Which model's answer.
    pub side: Side,
    /// Pack id.
    pub pack: String,
    /// Prompt id.
    pub prompt_id: String,
    /// Sample index.
    pub sample: u32,
    /// Category id.
    pub category: String,
    /// Judge `a`'s label.
    pub a: Label,
    /// Judge `b`'s label.
    pub b: Label,
}

/// How the models' own harm ratings differ, prompt by prompt.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HarmShift {
    /// Fingerprint of the probe.
    pub probe: String,
    /// SHA-256 of its template.
    pub template_sha256: String,
    /// Harmful prompts both models rated.
    pub n: u64,
    /// Harmful prompts left out (a model put too little probability on digits).
    pub unrated: u64,
    /// Mean reference rating (0–9) over the `n` prompts.
    pub reference_mean: f64,
    /// Mean candidate rating.
    pub candidate_mean: f64,
    /// Candidate minus reference.
    pub shift: f64,
    /// 95% interval on the mean paired shift (normal approximation).
    pub shift_ci: [f64; 2],
    /// Per category (harmful and benign), in pack order.
    pub categories: Vec<HarmShiftCategory>,
}

/// The harm ratings of one category.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HarmShiftCategory {
    /// Category id.
    pub id: String,
    /// Category name.
    pub name: String,
    /// Harmful or benign.
    pub kind: Option<PromptKind>,
    /// Prompts both models rated.
    pub n: u64,
    /// Mean reference rating.
    pub reference_mean: f64,
    /// Mean candidate rating.
    pub candidate_mean: f64,
    /// Candidate minus reference.
    pub shift: f64,
}

/// One checked rule.
#[derive(Debug, Clone, Serialize)]
pub struct GateRule {
    /// What was checked.
    pub rule: String,
    /// The measured value.
    pub value: f64,
    /// The threshold it was held to.
    pub threshold: f64,
    /// Whether it held.
    pub passed: bool,
    /// Which categories broke it, for category rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offenders: Vec<String>,
}

/// The gate's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    /// All rules passed.
    pub passed: bool,
    /// Each rule.
    pub rules: Vec<GateRule>,
}
