//! Naming a judge on the command line or in a plan: `refusal`, `rubric:TEMPLATE@MODEL`,
//! `llama-guard:MODEL`, `qwen3guard:MODEL`, `shieldgemma:MODEL`, `human:FILE`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::template::{JudgeTemplate, RUBRIC_NAMES};
use crate::error::{Error, Result};
use crate::model::Source;
use crate::serve::public_source;

/// Which judge to use. Written and read as the strings above (plans hold them as strings).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum JudgeSpec {
    /// The lexical refusal detector.
    Refusal,
    /// A chat model with a rubric template (a shipped name or a file).
    Rubric {
        /// `fulfillment`, `strongreject`, `harm-score`, or a template file.
        template: String,
        /// The judge model's source.
        model: String,
    },
    /// Llama Guard 3 (1B, 8B): `safe`/`unsafe` and S-codes, plus P(`unsafe`).
    LlamaGuard {
        /// The guard model's source.
        model: String,
    },
    /// Qwen3Guard-Gen: Safety / Categories / Refusal lines.
    Qwen3Guard {
        /// The guard model's source.
        model: String,
    },
    /// ShieldGemma: P(`Yes`) for each policy.
    ShieldGemma {
        /// The guard model's source.
        model: String,
    },
    /// Labels people gave, from a CSV or JSONL file.
    Human {
        /// The labels file.
        file: PathBuf,
    },
}

const FORMS: &str = "refusal, rubric:TEMPLATE@MODEL, sorry-bench[:MODEL], llama-guard:MODEL, \
                     qwen3guard[:MODEL], shieldgemma:MODEL or human:FILE";

/// The model `qwen3guard` alone names: Qwen3Guard-Gen-0.6B (response refusal F1 0.93 on `XSTest`).
pub const QWEN3GUARD_DEFAULT: &str = "hf:Qwen/Qwen3Guard-Gen-0.6B";
/// The model `sorry-bench` alone names: SORRY-Bench's fine-tuned Mistral-7B judge (Cohen's
/// kappa 0.81 against human labels).
pub const SORRY_BENCH_DEFAULT: &str =
    "hf:sorry-bench/ft-mistral-7b-instruct-v0.2-sorry-bench-202406";

impl JudgeSpec {
    /// Parse a judge spec; errors say which part is wrong and what is expected.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bad = |why: &str| Error::Invalid(format!("judge `{text}`: {why}"));
        match text {
            "refusal" => return Ok(Self::Refusal),
            // Strong judges one word away: the published models they are measured as.
            "qwen3guard" => {
                return Ok(Self::Qwen3Guard {
                    model: QWEN3GUARD_DEFAULT.to_owned(),
                })
            }
            "sorry-bench" => {
                return Ok(Self::Rubric {
                    template: "sorry-bench".to_owned(),
                    model: SORRY_BENCH_DEFAULT.to_owned(),
                })
            }
            _ => {}
        }
        let Some((kind, rest)) = text.split_once(':') else {
            return Err(bad(&format!("unknown judge; expected {FORMS}")));
        };
        let model = |what: &str| -> Result<String> {
            if rest.trim().is_empty() {
                Err(bad(&format!("needs {what} after `{kind}:`")))
            } else {
                Ok(rest.trim().to_owned())
            }
        };
        match kind {
            "rubric" => {
                // The template ends at the first `@`: a model source may hold more of them
                // (`hf:owner/name@revision`).
                let Some((template, model)) = rest.split_once('@') else {
                    return Err(bad(&format!(
                        "a rubric judge is rubric:TEMPLATE@MODEL, e.g. rubric:fulfillment@judge.gguf \
                         (TEMPLATE is {} or a template file)",
                        RUBRIC_NAMES.join(", ")
                    )));
                };
                let (template, model) = (template.trim(), model.trim());
                if template.is_empty() {
                    return Err(bad(&format!(
                        "no template before `@` ({} or a file)",
                        RUBRIC_NAMES.join(", ")
                    )));
                }
                if model.is_empty() {
                    return Err(bad("no judge model after `@`"));
                }
                Ok(Self::Rubric {
                    template: template.to_owned(),
                    model: model.to_owned(),
                })
            }
            // SORRY-Bench's judge prompt on any model (its own judge on a server, say).
            "sorry-bench" => Ok(Self::Rubric {
                template: "sorry-bench".to_owned(),
                model: model("a model")?,
            }),
            "llama-guard" => Ok(Self::LlamaGuard {
                model: model("a model")?,
            }),
            "qwen3guard" => Ok(Self::Qwen3Guard {
                model: model("a model")?,
            }),
            "shieldgemma" => Ok(Self::ShieldGemma {
                model: model("a model")?,
            }),
            "human" => Ok(Self::Human {
                file: PathBuf::from(model("a labels file (CSV or JSONL)")?),
            }),
            "hf" => Err(bad(&format!(
                "a model alone is not a judge; say how to use it, e.g. rubric:fulfillment@{text} \
                 (expected {FORMS})"
            ))),
            other => Err(bad(&format!(
                "unknown judge kind `{other}`; expected {FORMS}"
            ))),
        }
    }

    /// What kind of judge this spec makes.
    pub fn kind(&self) -> super::JudgeKind {
        use super::JudgeKind;
        match self {
            Self::Refusal => JudgeKind::Lexical,
            Self::Rubric { .. } => JudgeKind::Rubric,
            Self::LlamaGuard { .. } | Self::Qwen3Guard { .. } | Self::ShieldGemma { .. } => {
                JudgeKind::Guard
            }
            Self::Human { .. } => JudgeKind::Human,
        }
    }

    /// The judge model's source, for model judges.
    pub fn model_source(&self) -> Option<&str> {
        match self {
            Self::Rubric { model, .. }
            | Self::LlamaGuard { model }
            | Self::Qwen3Guard { model }
            | Self::ShieldGemma { model } => Some(model),
            Self::Refusal | Self::Human { .. } => None,
        }
    }

    /// A short id for reports: `refusal`, `human`, `fulfillment@MODEL-NAME`,
    /// `llama-guard@MODEL-NAME` (the model's file or folder name without extension).
    pub fn id(&self) -> String {
        let short = |source: &str| -> String {
            if crate::serve::is_served(source) {
                // `openai:http://host:8001/v1#sorry-judge` → `sorry-judge` (or the host).
                return match crate::serve::Endpoint::parse(source) {
                    Ok(e) => e.model().map_or_else(
                        || e.authority().to_owned(),
                        |m| m.rsplit('/').next().unwrap_or(m).to_owned(),
                    ),
                    Err(_) => "server".to_owned(),
                };
            }
            let last = source
                .trim_end_matches('/')
                .rsplit(['/', '\\', ':'])
                .next()
                .unwrap_or(source);
            let last = last.split('@').next().unwrap_or(last);
            last.strip_suffix(".gguf").unwrap_or(last).to_owned()
        };
        match self {
            Self::Refusal => "refusal".into(),
            Self::Human { .. } => "human".into(),
            Self::Rubric { template, model } => {
                let name = if RUBRIC_NAMES.contains(&template.as_str()) {
                    template.clone()
                } else {
                    Path::new(template)
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("rubric")
                        .to_owned()
                };
                format!("{name}@{}", short(model))
            }
            Self::LlamaGuard { model } => format!("llama-guard@{}", short(model)),
            Self::Qwen3Guard { model } => format!("qwen3guard@{}", short(model)),
            Self::ShieldGemma { model } => format!("shieldgemma@{}", short(model)),
        }
    }

    /// Check what can be checked without loading a model: the template and labels files parse
    /// and the model source exists. Run before hours of generation, not after.
    pub fn check(&self) -> Result<()> {
        if let Self::Rubric { template, .. } = self {
            JudgeTemplate::load(template)?;
        }
        if let Self::Human { file } = self {
            super::human::HumanLabels::from_file(file)?;
        }
        if let Some(model) = self.model_source() {
            if crate::serve::is_served(model) {
                crate::serve::Endpoint::parse(model)
                    .map_err(|e| Error::Invalid(format!("judge `{self}`: judge model: {e}")))?;
            } else {
                Source::parse(model)
                    .map_err(|e| Error::Invalid(format!("judge `{self}`: judge model: {e}")))?;
            }
        }
        Ok(())
    }

    /// Take relative file paths (template, labels, local model) relative to `base`.
    pub fn rebase(&mut self, base: &Path) {
        let rebase = |s: &mut String| {
            if !s.starts_with("hf:")
                && !crate::serve::is_served(s)
                && Path::new(s.as_str()).is_relative()
            {
                *s = base.join(&*s).display().to_string();
            }
        };
        match self {
            Self::Refusal => {}
            Self::Rubric { template, model } => {
                if !RUBRIC_NAMES.contains(&template.as_str()) {
                    rebase(template);
                }
                rebase(model);
            }
            Self::LlamaGuard { model }
            | Self::Qwen3Guard { model }
            | Self::ShieldGemma { model } => {
                rebase(model);
            }
            Self::Human { file } => {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
    }
}

impl fmt::Display for JudgeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refusal => write!(f, "refusal"),
            // A served judge's URL is written without credentials: specs end up in plans,
            // stores and reports.
            Self::Rubric { template, model } => {
                write!(f, "rubric:{template}@{}", public_source(model))
            }
            Self::LlamaGuard { model } => write!(f, "llama-guard:{}", public_source(model)),
            Self::Qwen3Guard { model } => write!(f, "qwen3guard:{}", public_source(model)),
            Self::ShieldGemma { model } => write!(f, "shieldgemma:{}", public_source(model)),
            Self::Human { file } => write!(f, "human:{}", file.display()),
        }
    }
}

impl std::str::FromStr for JudgeSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for JudgeSpec {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<JudgeSpec> for String {
    fn from(spec: JudgeSpec) -> Self {
        spec.to_string()
    }
}

/// Check a list of judges: not empty, no judge twice, at most one human judge; ids made unique.
pub fn check_list(specs: &[JudgeSpec]) -> Result<()> {
    if specs.is_empty() {
        return Err(Error::Invalid(
            "an audit needs at least one judge (e.g. refusal)".into(),
        ));
    }
    for (i, s) in specs.iter().enumerate() {
        if specs[..i].contains(s) {
            return Err(Error::Invalid(format!("judge `{s}` is given twice")));
        }
    }
    if specs
        .iter()
        .filter(|s| matches!(s, JudgeSpec::Human { .. }))
        .count()
        > 1
    {
        return Err(Error::Invalid(
            "only one human:FILE judge per audit; put all labels in one file".into(),
        ));
    }
    Ok(())
}

/// Ids for a list of judges, unique within it (`fulfillment@q`, `fulfillment@q#2`).
pub fn unique_ids(specs: &[JudgeSpec]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::with_capacity(specs.len());
    for s in specs {
        let base = s.id();
        let mut id = base.clone();
        let mut n = 1;
        while ids.contains(&id) {
            n += 1;
            id = format!("{base}#{n}");
        }
        ids.push(id);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_form_parses_and_prints_back() {
        for (text, id, kind) in [
            ("refusal", "refusal", "lexical"),
            (
                "rubric:fulfillment@/m/qwen2.5-0.5b-q4.gguf",
                "fulfillment@qwen2.5-0.5b-q4",
                "rubric",
            ),
            (
                "rubric:judges/my-rubric.jinja@hf:owner/Judge-7B@main:judge.Q8_0.gguf",
                "my-rubric@judge.Q8_0",
                "rubric",
            ),
            (
                "llama-guard:hf:meta-llama/Llama-Guard-3-1B@main",
                "llama-guard@Llama-Guard-3-1B",
                "guard",
            ),
            (
                "qwen3guard:/m/Qwen3Guard-Gen-0.6B/",
                "qwen3guard@Qwen3Guard-Gen-0.6B",
                "guard",
            ),
            (
                "shieldgemma:/m/shieldgemma-2b.gguf",
                "shieldgemma@shieldgemma-2b",
                "guard",
            ),
            ("human:labels.csv", "human", "human"),
        ] {
            let spec = JudgeSpec::parse(text).unwrap();
            assert_eq!(spec.to_string(), text);
            assert_eq!(spec.id(), id, "{text}");
            assert_eq!(spec.kind().as_str(), kind);
        }
        // The template ends at the first @; the rest is the model source, revision included.
        assert_eq!(
            JudgeSpec::parse("rubric:strongreject@hf:o/n@abc123").unwrap(),
            JudgeSpec::Rubric {
                template: "strongreject".into(),
                model: "hf:o/n@abc123".into()
            }
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (text, why) in [
            ("", "unknown judge; expected refusal, rubric:TEMPLATE@MODEL"),
            ("gpt4", "unknown judge; expected"),
            (
                "rubric:fulfillment",
                "a rubric judge is rubric:TEMPLATE@MODEL",
            ),
            ("rubric:@m.gguf", "no template before `@`"),
            ("rubric:fulfillment@", "no judge model after `@`"),
            ("llama-guard:", "needs a model after `llama-guard:`"),
            ("human:", "needs a labels file"),
            ("judge:x", "unknown judge kind `judge`"),
            ("hf:meta/Llama-Guard-3-1B", "a model alone is not a judge"),
        ] {
            let e = JudgeSpec::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn lists_reject_repeats_and_get_unique_ids() {
        let a = JudgeSpec::parse("rubric:fulfillment@/x/q.gguf").unwrap();
        let b = JudgeSpec::parse("rubric:fulfillment@/y/q.gguf").unwrap();
        assert_eq!(
            unique_ids(&[JudgeSpec::Refusal, a.clone(), b.clone()]),
            ["refusal", "fulfillment@q", "fulfillment@q#2"]
        );
        assert!(check_list(&[a.clone(), b]).is_ok());
        let e = check_list(&[a.clone(), a]).unwrap_err().to_string();
        assert!(e.contains("given twice"), "{e}");
        let h1 = JudgeSpec::parse("human:a.csv").unwrap();
        let h2 = JudgeSpec::parse("human:b.csv").unwrap();
        assert!(check_list(&[h1, h2]).is_err());
        assert!(check_list(&[]).is_err());
    }

    #[test]
    fn check_names_missing_files_before_any_model_loads() {
        let e = JudgeSpec::parse("rubric:fulfillment@/no/such/judge.gguf")
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such/judge.gguf"), "{e}");
        let e = JudgeSpec::parse("rubric:/no/rubric.jinja@/no/judge.gguf")
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("no judge template `/no/rubric.jinja`"), "{e}");
        let e = JudgeSpec::parse("human:/no/labels.csv")
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/labels.csv"), "{e}");
    }

    #[test]
    fn plans_hold_specs_as_strings() {
        #[derive(Serialize, Deserialize)]
        struct P {
            judges: Vec<JudgeSpec>,
        }
        let p: P = toml::from_str("judges = [\"refusal\", \"qwen3guard:g.gguf\"]").unwrap();
        assert_eq!(p.judges[1].kind(), crate::judge::JudgeKind::Guard);
        let e = toml::from_str::<P>("judges = [\"rubric:x\"]")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("rubric:TEMPLATE@MODEL"), "{e}");
        assert!(toml::to_string(&p).unwrap().contains("qwen3guard:g.gguf"));
    }
}
