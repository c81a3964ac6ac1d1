//! What an audit compares and how: the same settings from command-line flags or a TOML plan.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::side::Side;
use crate::error::{Error, Result};
use crate::generate::GenerationSettings;
use crate::judge::{spec, JudgeSpec};
use crate::model::{ModelSpec, Requantize};
use crate::packs::{self, Pack, Prompt};
use crate::serve::ServingSettings;

/// One side of the comparison: a model to load, or a file of answers made elsewhere (then
/// `model` is empty and `answers` names the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidePlan {
    /// A GGUF file, a model folder, `hf:owner/name[@revision]` or a served model
    /// `openai:<base URL>#<name>`; empty for imported answers. Written out (to the store, a
    /// report) without any credentials a server URL holds.
    #[serde(default, serialize_with = "serialize_public_source")]
    pub model: String,
    /// A JSONL or CSV file of answers made elsewhere, used instead of a model (see
    /// [`crate::answers`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<PathBuf>,
    /// A LoRA adapter folder merged into a safetensors base.
    #[serde(default)]
    pub lora: Option<PathBuf>,
    /// A system prompt given with every request.
    #[serde(default)]
    pub system: Option<String>,
    /// For a served model: the environment variable holding its API key (default
    /// `OPENAI_API_KEY`). The key itself is never recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// For a served model: the SHA-256 the analyst was told the server's weights have,
    /// recorded as declared (aligndiff cannot check a server's weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_sha256: Option<String>,
}

fn serialize_public_source<S: serde::Serializer>(source: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::serve::public_source(source))
}

impl SidePlan {
    /// A side answered by a model.
    pub fn model(source: impl Into<String>) -> Self {
        Self {
            model: source.into(),
            answers: None,
            lora: None,
            system: None,
            api_key_env: None,
            declared_sha256: None,
        }
    }

    /// A side whose answers come from a file.
    pub fn answers(file: impl Into<PathBuf>) -> Self {
        Self {
            answers: Some(file.into()),
            ..Self::model("")
        }
    }

    /// Whether this side's model is on a server (`openai:`).
    pub fn is_served(&self) -> bool {
        self.answers.is_none() && crate::serve::is_served(&self.model)
    }

    /// Whether this side's answers are imported from a file rather than generated.
    pub fn is_imported(&self) -> bool {
        self.answers.is_some()
    }

    /// The model source (without credentials), or `answers:FILE` for imported answers.
    pub fn label(&self) -> String {
        match &self.answers {
            Some(file) => format!("answers:{}", file.display()),
            None => crate::serve::public_source(&self.model),
        }
    }

    /// Check the side names exactly one of a model and an answers file.
    pub fn validate(&self, name: &str) -> Result<()> {
        match (&self.answers, self.model.trim().is_empty()) {
            (Some(_), false) => Err(Error::Invalid(format!(
                "{name}: give a model or an answers file, not both"
            ))),
            (None, true) => Err(Error::Invalid(format!(
                "{name}: no model (give a model, or an answers file with `answers`)"
            ))),
            (Some(_), true) if self.lora.is_some() => Err(Error::Invalid(format!(
                "{name}: a LoRA adapter needs a model; imported answers take none"
            ))),
            _ if self.is_served() => {
                crate::serve::Endpoint::parse(&self.model)
                    .map_err(|e| Error::Invalid(format!("{name}: {e}")))?;
                if self.lora.is_some() {
                    return Err(Error::Invalid(format!(
                        "{name}: a LoRA adapter on a served model is the server's to apply \
                         (vLLM: --lora-modules NAME=PATH, then openai:URL#NAME)"
                    )));
                }
                if let Some(sha) = &self.declared_sha256 {
                    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(Error::Invalid(format!(
                            "{name}: declared_sha256 must be 64 hex digits"
                        )));
                    }
                }
                Ok(())
            }
            _ if self.api_key_env.is_some() || self.declared_sha256.is_some() => {
                Err(Error::Invalid(format!(
                    "{name}: api_key_env and declared_sha256 are for served models (openai:URL#NAME)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The model to load.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            source: self.model.clone(),
            lora: self.lora.clone(),
        }
    }

    /// The system prompt, `''` for none.
    pub fn system_prompt(&self) -> &str {
        self.system.as_deref().unwrap_or("")
    }
}

/// A whole audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The aligned model the vendor started from.
    pub reference: SidePlan,
    /// The customised model under audit.
    pub candidate: SidePlan,
    /// Pack names (`sorry44`, `benign-controls`) or paths.
    #[serde(default = "default_packs")]
    pub packs: Vec<String>,
    /// Only these categories (ids or names); empty means all.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Categories (ids or names) the vendor says the fine-tune targeted; the comparison then
    /// reports drift in targeted and untargeted categories separately.
    #[serde(default)]
    pub targeted: Vec<String>,
    /// Use only the first N prompts of each category (a quick screen); all when absent.
    #[serde(default)]
    pub per_category: Option<usize>,
    /// Answers per prompt.
    #[serde(default = "one")]
    pub samples: u32,
    /// Decoding settings.
    #[serde(default = "default_generation")]
    pub generation: GenerationSettings,
    /// Judges (`refusal`, `rubric:TEMPLATE@MODEL`, `llama-guard:MODEL`, ...); the first is the
    /// primary judge behind every figure.
    #[serde(default = "default_judges")]
    pub judges: Vec<JudgeSpec>,
    /// Ask both models how harmful each request is (the self-rated harm probe).
    #[serde(default)]
    pub harm_probe: bool,
    /// Compare the two GGUF files' weights tensor by tensor before generating.
    #[serde(default)]
    pub weight_diff: bool,
    /// `cpu`, `cuda`, `metal`, `auto`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Load-time re-encoding of slow quantization formats.
    #[serde(default)]
    pub requantize: Requantize,
    /// Gate thresholds file.
    #[serde(default)]
    pub gate: Option<PathBuf>,
    /// Where to write the gate's verdict as `JUnit` XML (needs `gate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<PathBuf>,
    /// Where reports go.
    pub out: PathBuf,
    /// Folder of the SQLite store (default: the user's data folder).
    #[serde(default)]
    pub store: Option<PathBuf>,
    /// How requests go to served models (sides and judges on a server).
    #[serde(default)]
    pub serving: ServingSettings,
    /// The environment variable holding served judges' API key (default `OPENAI_API_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_api_key_env: Option<String>,
}

fn default_packs() -> Vec<String> {
    vec!["sorry44".into(), "benign-controls".into()]
}

fn one() -> u32 {
    1
}

fn default_generation() -> GenerationSettings {
    GenerationSettings {
        max_new_tokens: 128,
        ..Default::default()
    }
}

fn default_judges() -> Vec<JudgeSpec> {
    vec![JudgeSpec::Refusal]
}

fn default_device() -> String {
    "cpu".into()
}

impl Plan {
    /// The plan of one side.
    pub fn side(&self, side: Side) -> &SidePlan {
        match side {
            Side::Reference => &self.reference,
            Side::Candidate => &self.candidate,
        }
    }

    /// A plan with the defaults for everything but the two models and the output folder.
    pub fn new(reference: SidePlan, candidate: SidePlan, out: PathBuf) -> Self {
        Self {
            reference,
            candidate,
            packs: default_packs(),
            categories: Vec::new(),
            targeted: Vec::new(),
            per_category: None,
            samples: 1,
            generation: default_generation(),
            judges: default_judges(),
            harm_probe: false,
            device: default_device(),
            requantize: Requantize::Never,
            gate: None,
            junit: None,
            weight_diff: false,
            out,
            store: None,
            serving: ServingSettings::default(),
            judge_api_key_env: None,
        }
    }

    /// Read a plan file; relative paths in it are taken relative to the file's folder.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut plan: Plan = toml::from_str(&text)
            .map_err(|e| Error::bad_file(path, format!("invalid plan: {e}")))?;
        plan.rebase(path.parent().unwrap_or(Path::new(".")));
        plan.validate()
            .map_err(|e| Error::bad_file(path, e.to_string()))?;
        Ok(plan)
    }

    /// Make relative paths (models, adapters, packs, gate, output, store) relative to `base`, so
    /// the plan recorded with a run still means the same files from another working folder.
    pub fn rebase(&mut self, base: &Path) {
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut self.out);
        if let Some(g) = self.gate.as_mut() {
            rebase(g);
        }
        if let Some(j) = self.junit.as_mut() {
            rebase(j);
        }
        if let Some(s) = self.store.as_mut() {
            rebase(s);
        }
        for side in [&mut self.reference, &mut self.candidate] {
            if !side.model.is_empty()
                && !side.model.starts_with("hf:")
                && !crate::serve::is_served(&side.model)
                && Path::new(&side.model).is_relative()
            {
                side.model = base.join(&side.model).display().to_string();
            }
            if let Some(a) = side.answers.as_mut() {
                rebase(a);
            }
            if let Some(l) = side.lora.as_mut() {
                rebase(l);
            }
        }
        for judge in &mut self.judges {
            judge.rebase(base);
        }
        for pack in &mut self.packs {
            if crate::packs::builtin_names().contains(&pack.as_str()) {
                continue;
            }
            if Path::new(pack.as_str()).is_relative() {
                *pack = base.join(&*pack).display().to_string();
            }
        }
    }

    /// Check the settings make sense.
    pub fn validate(&self) -> Result<()> {
        self.generation.validate()?;
        self.serving.validate()?;
        if self.samples == 0 || self.samples > 100 {
            return Err(Error::Invalid("samples must be between 1 and 100".into()));
        }
        if self.samples > 1 && self.generation.temperature == 0.0 {
            return Err(Error::Invalid(
                "several samples per prompt need a temperature above 0 (greedy answers would repeat)".into(),
            ));
        }
        if self.per_category == Some(0) {
            return Err(Error::Invalid("per_category must be at least 1".into()));
        }
        if self.packs.is_empty() {
            return Err(Error::Invalid("an audit needs at least one pack".into()));
        }
        if self.junit.is_some() && self.gate.is_none() {
            return Err(Error::Invalid(
                "the JUnit report holds the gate's rules: give a gate too (--gate FILE)".into(),
            ));
        }
        self.reference.validate("reference")?;
        self.candidate.validate("candidate")?;
        // A served side is asked through its server (with logprobs); imported answers have
        // no model behind them.
        if self.harm_probe && (self.reference.is_imported() || self.candidate.is_imported()) {
            return Err(Error::Invalid(
                "the harm probe asks each model itself; a side with imported answers has no model to ask".into(),
            ));
        }
        spec::check_list(&self.judges)?;
        Ok(())
    }
}

/// One prompt × sample to answer.
#[derive(Debug, Clone)]
pub struct Item {
    /// Pack id.
    pub pack: String,
    /// The prompt.
    pub prompt: Prompt,
    /// Category display name.
    pub category_name: String,
    /// Sample index.
    pub sample: u32,
    /// Hash of the prompt text.
    pub text_hash: String,
}

/// Load the plan's packs (restricted to its categories) and expand prompts × samples.
pub fn plan_items(plan: &Plan) -> Result<(Vec<Pack>, Vec<Item>)> {
    let mut loaded = Vec::new();
    let mut items = Vec::new();
    for name in &plan.packs {
        let mut pack = packs::load(name)?;
        if !plan.categories.is_empty() {
            let wanted: Vec<String> = plan
                .categories
                .iter()
                .filter(|c| {
                    pack.categories
                        .iter()
                        .any(|pc| pc.id == **c || pc.name.eq_ignore_ascii_case(c))
                })
                .cloned()
                .collect();
            // A category list narrows the packs that have those categories; others stay whole.
            if !wanted.is_empty() {
                pack.retain_categories(&wanted)?;
            }
        }
        if let Some(limit) = plan.per_category {
            let mut seen: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            pack.prompts.retain(|p| {
                let n = seen.entry(p.category.clone()).or_default();
                *n += 1;
                *n <= limit
            });
        }
        for prompt in &pack.prompts {
            let category_name = pack
                .category(&prompt.category)
                .map_or_else(|| prompt.category.clone(), |c| c.name.clone());
            for sample in 0..plan.samples {
                items.push(Item {
                    pack: pack.id.clone(),
                    prompt: prompt.clone(),
                    category_name: category_name.clone(),
                    sample,
                    text_hash: prompt.text_hash(),
                });
            }
        }
        loaded.push(pack);
    }
    if !plan.categories.is_empty() {
        for c in &plan.categories {
            let known = loaded.iter().any(|p| {
                p.categories
                    .iter()
                    .any(|pc| pc.id == *c || pc.name.eq_ignore_ascii_case(c))
            });
            if !known {
                return Err(Error::Invalid(format!(
                    "no pack in this audit has a category `{c}`"
                )));
            }
        }
    }
    Ok((loaded, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harm_probe_takes_served_sides_but_not_imported_answers() {
        let served = SidePlan::model("openai:http://127.0.0.1:8000/v1#tuned");
        let mut plan = Plan::new(
            SidePlan::model("/m/base.gguf"),
            served.clone(),
            PathBuf::from("out"),
        );
        plan.harm_probe = true;
        assert!(plan.validate().is_ok());
        plan.reference = served;
        assert!(plan.validate().is_ok());
        plan.candidate = SidePlan::answers("answers.jsonl");
        let e = plan.validate().unwrap_err().to_string();
        assert!(e.contains("imported answers has no model to ask"), "{e}");
    }

    #[test]
    fn a_plan_file_names_served_sides_and_how_to_send_and_never_writes_credentials() {
        let dir = tempfile_dir();
        let path = dir.join("plan.toml");
        std::fs::write(
            &path,
            r#"
out = "out"
judge_api_key_env = "JUDGE_KEY"
[reference]
model = "openai:http://gpu-box:8000/v1#base"
[candidate]
model = "openai:https://ana:pw123@gpu-box:8443/v1#vendor"
api_key_env = "VENDOR_KEY"
declared_sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
[serving]
concurrency = 64
request_timeout = 120
max_retries = 3
"#,
        )
        .unwrap();
        let plan = Plan::from_toml_file(&path).unwrap();
        assert_eq!(plan.serving.concurrency, 64);
        assert_eq!(plan.serving.request_timeout_s, 120.0);
        assert_eq!(plan.candidate.api_key_env.as_deref(), Some("VENDOR_KEY"));
        assert!(plan.candidate.is_served() && plan.reference.is_served());
        // Served sources are not paths: the plan's folder is not put in front of them.
        assert_eq!(plan.reference.model, "openai:http://gpu-box:8000/v1#base");
        let json = serde_json::to_string(&plan).unwrap();
        assert!(!json.contains("pw123") && !json.contains("ana:"), "{json}");
        assert!(
            json.contains("openai:https://gpu-box:8443/v1#vendor"),
            "{json}"
        );
        assert_eq!(
            plan.candidate.label(),
            "openai:https://gpu-box:8443/v1#vendor"
        );

        let mut bad = plan.clone();
        bad.candidate.declared_sha256 = Some("abc".into());
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("64 hex digits"));
        let mut bad = plan.clone();
        bad.candidate.lora = Some(PathBuf::from("adapter"));
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--lora-modules"));
        let mut bad = plan;
        bad.serving.concurrency = 0;
        assert!(bad.validate().is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "aligndiff-plan-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
