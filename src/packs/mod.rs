//! Prompt packs: a `pack.toml` (id, version, taxonomy, categories) beside a `prompts.jsonl` (one
//! prompt per line). The shipped packs are compiled into the binary; any pack folder, pack file
//! or downloaded SORRY-Bench JSONL can be loaded from disk. See docs/PACKS.md.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::hash::hex_sha256;

/// Harm categories of SORRY-Bench (number, name, domain), the taxonomy `sorry-bench-44`.
pub const SORRY_BENCH_44: &[(u32, &str, &str)] = &[
    (1, "Personal Insulting Words", "Hate speech generation"),
    (2, "Social-group Insulting Words", "Hate speech generation"),
    (3, "Threatening Words", "Hate speech generation"),
    (4, "Lewd and Obscene Words", "Hate speech generation"),
    (5, "Libelous Words", "Hate speech generation"),
    (6, "Self-Harm", "Assistance with crimes or torts"),
    (7, "Violent Crimes", "Assistance with crimes or torts"),
    (
        8,
        "Stalking and Harassment",
        "Assistance with crimes or torts",
    ),
    (9, "Sexual Crimes", "Assistance with crimes or torts"),
    (10, "Property Crimes", "Assistance with crimes or torts"),
    (11, "Public Order Crimes", "Assistance with crimes or torts"),
    (
        12,
        "General Advice for System Intrusion",
        "Assistance with crimes or torts",
    ),
    (
        13,
        "Malware Code Generation",
        "Assistance with crimes or torts",
    ),
    (
        14,
        "Fraud, Scams, and Deception",
        "Assistance with crimes or torts",
    ),
    (15, "Financial Crimes", "Assistance with crimes or torts"),
    (
        16,
        "Intellectual Property Infringement",
        "Assistance with crimes or torts",
    ),
    (
        17,
        "Personal Identifiable Information Violations",
        "Assistance with crimes or torts",
    ),
    (
        18,
        "Illegal Crafting, Manufacturing, and Distribution",
        "Assistance with crimes or torts",
    ),
    (19, "Terrorism", "Assistance with crimes or torts"),
    (
        20,
        "Child-related Crimes",
        "Assistance with crimes or torts",
    ),
    (
        21,
        "Animal-related Crimes",
        "Assistance with crimes or torts",
    ),
    (
        22,
        "Environmental Crimes",
        "Assistance with crimes or torts",
    ),
    (
        23,
        "Evasion of Law Enforcement",
        "Assistance with crimes or torts",
    ),
    (
        24,
        "Human Elimination & World Domination",
        "Assistance with crimes or torts",
    ),
    (
        25,
        "Advice on Adult Content",
        "Potentially inappropriate topics",
    ),
    (
        26,
        "(Sexual) Explicit Content Generation",
        "Potentially inappropriate topics",
    ),
    (
        27,
        "(Non-sexual) Explicit Content Generation",
        "Potentially inappropriate topics",
    ),
    (
        28,
        "Fake News Generation",
        "Potentially inappropriate topics",
    ),
    (29, "False Advertising", "Potentially inappropriate topics"),
    (
        30,
        "Advice on Discrimination Behaviors",
        "Potentially inappropriate topics",
    ),
    (31, "Military Use", "Potentially inappropriate topics"),
    (
        32,
        "Political Belief Promotion",
        "Potentially inappropriate topics",
    ),
    (
        33,
        "Ethical Belief Promotion",
        "Potentially inappropriate topics",
    ),
    (
        34,
        "Religion Promotion (Missionary)",
        "Potentially inappropriate topics",
    ),
    (
        35,
        "Social Stereotype Promotion",
        "Potentially inappropriate topics",
    ),
    (
        36,
        "Extremist Content Promotion",
        "Potentially inappropriate topics",
    ),
    (
        37,
        "Conspiracy Theories Promotion",
        "Potentially inappropriate topics",
    ),
    (
        38,
        "False Common Knowledge Promotion",
        "Potentially inappropriate topics",
    ),
    (
        39,
        "Harmful & Unhealthy Behaviors Promotion",
        "Potentially inappropriate topics",
    ),
    (40, "Medical Advice", "Potentially unqualified advice"),
    (41, "Financial Advice", "Potentially unqualified advice"),
    (
        42,
        "Legal Consulting Advice",
        "Potentially unqualified advice",
    ),
    (
        43,
        "Governance Decision Advice",
        "Potentially unqualified advice",
    ),
    (
        44,
        "Dangerous Machinery Operation Advice",
        "Potentially unqualified advice",
    ),
];

/// Packs compiled into the binary: (name, pack.toml, prompts.jsonl).
const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "sorry44",
        include_str!("../../prompt-packs/sorry44/pack.toml"),
        include_str!("../../prompt-packs/sorry44/prompts.jsonl"),
    ),
    (
        "benign-controls",
        include_str!("../../prompt-packs/benign-controls/pack.toml"),
        include_str!("../../prompt-packs/benign-controls/prompts.jsonl"),
    ),
];

/// Names of the shipped packs.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _, _)| *n).collect()
}

/// Whether a prompt should be refused or answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptKind {
    /// A harmful request: a safe model refuses it.
    Harmful,
    /// A safe request that may look alarming: refusing it is over-refusal.
    Benign,
}

/// A harm category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Stable id within the taxonomy (`"7"`, `"computing-kill"`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Group of categories.
    #[serde(default)]
    pub domain: String,
}

/// One prompt of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Stable id, unique within the pack.
    pub id: String,
    /// Category id.
    pub category: String,
    /// Harmful or benign.
    pub kind: PromptKind,
    /// How it is phrased (direct, roleplay, ...).
    pub style: Option<String>,
    /// User turns (one for a single-turn prompt).
    pub turns: Vec<String>,
}

impl Prompt {
    /// SHA-256 over the turns: the identity of the request text, whatever its id.
    pub fn text_hash(&self) -> String {
        hex_sha256(
            serde_json::to_string(&self.turns)
                .unwrap_or_default()
                .as_bytes(),
        )
    }

    /// The turns joined for display.
    pub fn display_text(&self) -> String {
        self.turns.join("\n\n")
    }
}

/// A loaded pack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pack {
    /// Pack id.
    pub id: String,
    /// Pack version.
    pub version: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Taxonomy id (`sorry-bench-44`, `benign-controls`).
    pub taxonomy: String,
    /// Declared categories in order.
    pub categories: Vec<Category>,
    /// Prompts in file order.
    pub prompts: Vec<Prompt>,
    /// SHA-256 over the pack's files.
    pub sha256: String,
    /// `builtin:NAME` or the path it was read from.
    pub origin: String,
}

impl Pack {
    /// The category with this id.
    pub fn category(&self, id: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.id == id)
    }

    /// Prompt counts per category id.
    pub fn counts(&self) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        for p in &self.prompts {
            *counts.entry(p.category.as_str()).or_default() += 1;
        }
        counts
    }

    /// Keep only prompts in these categories (ids or exact names); an unknown one is an error.
    pub fn retain_categories(&mut self, wanted: &[String]) -> Result<()> {
        let mut keep = HashSet::new();
        for w in wanted {
            let c = self
                .categories
                .iter()
                .find(|c| c.id == *w || c.name.eq_ignore_ascii_case(w))
                .ok_or_else(|| {
                    Error::Invalid(format!("pack `{}` has no category `{w}`", self.id))
                })?;
            keep.insert(c.id.clone());
        }
        self.prompts.retain(|p| keep.contains(&p.category));
        self.categories.retain(|c| keep.contains(&c.id));
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackHeader {
    id: String,
    version: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    taxonomy: String,
    #[serde(default = "default_prompts_file")]
    prompts: String,
    categories: Vec<Category>,
}

fn default_prompts_file() -> String {
    "prompts.jsonl".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptRecord {
    id: String,
    category: String,
    kind: PromptKind,
    style: Option<String>,
    text: Option<String>,
    turns: Option<Vec<String>>,
}

/// Load a pack by builtin name or path (a pack folder, a `pack.toml`, or a SORRY-Bench JSONL).
pub fn load(name_or_path: &str) -> Result<Pack> {
    if let Some((name, toml_text, jsonl)) = BUILTIN.iter().find(|(n, _, _)| *n == name_or_path) {
        let origin = format!("builtin:{name}");
        return parse(
            Path::new(&format!("prompt-packs/{name}/pack.toml")),
            toml_text,
            Path::new(&format!("prompt-packs/{name}/prompts.jsonl")),
            jsonl,
            origin,
        );
    }
    let path = PathBuf::from(name_or_path);
    if !path.exists() {
        return Err(Error::Invalid(format!(
            "no pack `{name_or_path}`: not a shipped pack ({}) and no such file or folder",
            builtin_names().join(", ")
        )));
    }
    let toml_path = if path.is_dir() {
        path.join("pack.toml")
    } else {
        path.clone()
    };
    if toml_path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json")
    {
        return import_sorry_bench(&toml_path);
    }
    let toml_text = std::fs::read_to_string(&toml_path).map_err(|e| Error::io(&toml_path, e))?;
    let header: PackHeader = toml::from_str(&toml_text)
        .map_err(|e| Error::bad_file(&toml_path, format!("invalid pack header: {e}")))?;
    if !super::model::source::is_plain_relative(Path::new(&header.prompts)) {
        return Err(Error::bad_file(
            &toml_path,
            "`prompts` must be a file name inside the pack folder",
        ));
    }
    let folder = toml_path.parent().unwrap_or(Path::new("."));
    let jsonl_path = folder.join(&header.prompts);
    let jsonl = std::fs::read_to_string(&jsonl_path).map_err(|e| Error::io(&jsonl_path, e))?;
    parse(
        &toml_path,
        &toml_text,
        &jsonl_path,
        &jsonl,
        toml_path.display().to_string(),
    )
}

fn parse(
    toml_path: &Path,
    toml_text: &str,
    jsonl_path: &Path,
    jsonl: &str,
    origin: String,
) -> Result<Pack> {
    let header: PackHeader = toml::from_str(toml_text)
        .map_err(|e| Error::bad_file(toml_path, format!("invalid pack header: {e}")))?;
    if header.id.trim().is_empty() || header.version.trim().is_empty() {
        return Err(Error::bad_file(
            toml_path,
            "`id` and `version` must not be empty",
        ));
    }
    let mut declared = HashSet::new();
    for c in &header.categories {
        if c.id.trim().is_empty() || !declared.insert(c.id.clone()) {
            return Err(Error::bad_file(
                toml_path,
                format!("category id `{}` is empty or declared twice", c.id),
            ));
        }
    }
    let mut prompts = Vec::new();
    let mut ids = HashSet::new();
    for (i, line) in jsonl.lines().enumerate() {
        let line_no = i + 1;
        let bad = |reason: String| Error::bad_file(jsonl_path, format!("line {line_no}: {reason}"));
        if line.trim().is_empty() {
            continue;
        }
        let record: PromptRecord =
            serde_json::from_str(line).map_err(|e| bad(format!("invalid prompt record: {e}")))?;
        if record.id.trim().is_empty() {
            return Err(bad("empty `id`".into()));
        }
        if !ids.insert(record.id.clone()) {
            return Err(bad(format!("duplicate id `{}`", record.id)));
        }
        if !declared.contains(&record.category) {
            return Err(bad(format!(
                "unknown category `{}` (not declared in {})",
                record.category,
                toml_path.display()
            )));
        }
        let turns = match (record.text, record.turns) {
            (Some(text), None) => vec![text],
            (None, Some(turns)) => turns,
            (Some(_), Some(_)) => {
                return Err(bad("give either `text` or `turns`, not both".into()))
            }
            (None, None) => return Err(bad("missing `text` (or `turns`)".into())),
        };
        if turns.is_empty() || turns.iter().any(|t| t.trim().is_empty()) {
            return Err(bad(format!("prompt `{}` has empty text", record.id)));
        }
        prompts.push(Prompt {
            id: record.id,
            category: record.category,
            kind: record.kind,
            style: record.style,
            turns,
        });
    }
    if prompts.is_empty() {
        return Err(Error::bad_file(jsonl_path, "the pack has no prompts"));
    }
    let sha256 = hex_sha256(format!("{toml_text}\u{0}{jsonl}").as_bytes());
    Ok(Pack {
        id: header.id,
        version: header.version,
        title: header.title,
        description: header.description,
        taxonomy: header.taxonomy,
        categories: header.categories,
        prompts,
        sha256,
        origin,
    })
}

#[derive(Deserialize)]
struct SorryBenchRecord {
    question_id: serde_json::Value,
    category: serde_json::Value,
    turns: Vec<String>,
    #[serde(default)]
    prompt_style: Option<String>,
}

/// Import a SORRY-Bench JSONL file (`question_id`, `category` 1–44, `turns`, `prompt_style`)
/// into the `sorry-bench-44` taxonomy.
pub fn import_sorry_bench(path: &Path) -> Result<Pack> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut prompts = Vec::new();
    let mut ids = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let bad = |reason: String| Error::bad_file(path, format!("line {line_no}: {reason}"));
        if line.trim().is_empty() {
            continue;
        }
        let r: SorryBenchRecord = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "not a SORRY-Bench record (question_id, category, turns): {e}"
            ))
        })?;
        let category = match &r.category {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|c| (1..=44).contains(c))
        .ok_or_else(|| {
            bad(format!(
                "category {} is not a SORRY-Bench category 1-44",
                r.category
            ))
        })?;
        let qid = match &r.question_id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let style = r.prompt_style.unwrap_or_else(|| "base".into());
        let id = if style == "base" {
            format!("sorry-bench-{qid}")
        } else {
            format!("sorry-bench-{qid}-{style}")
        };
        if !ids.insert(id.clone()) {
            return Err(bad(format!("duplicate question_id {qid} (style {style})")));
        }
        if r.turns.is_empty() || r.turns.iter().any(|t| t.trim().is_empty()) {
            return Err(bad(format!("question {qid} has empty turns")));
        }
        prompts.push(Prompt {
            id,
            category: category.to_string(),
            kind: PromptKind::Harmful,
            style: Some(style),
            turns: r.turns,
        });
    }
    if prompts.is_empty() {
        return Err(Error::bad_file(path, "no SORRY-Bench records in the file"));
    }
    Ok(Pack {
        id: "sorry-bench-import".into(),
        version: hex_sha256(text.as_bytes())[..12].to_string(),
        title: format!("SORRY-Bench import of {}", path.display()),
        description: "Imported from a SORRY-Bench JSONL file".into(),
        taxonomy: "sorry-bench-44".into(),
        categories: SORRY_BENCH_44
            .iter()
            .map(|(n, name, domain)| Category {
                id: n.to_string(),
                name: (*name).into(),
                domain: (*domain).into(),
            })
            .collect(),
        prompts,
        sha256: hex_sha256(text.as_bytes()),
        origin: path.display().to_string(),
    })
}

#[cfg(test)]
mod tests;
