//! What the workbench remembers between sessions: the setup, never run data (that lives in the
//! store).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::pack_shelf::PackShelf;
use super::side_form::non_empty;
pub use super::side_form::SideForm;
use crate::audit::{Plan, Side};
use crate::generate::GenerationSettings;

/// Which view fills the central area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum View {
    /// Stage, progress and the answer being generated.
    #[default]
    Progress,
    /// Summary, per-category chart and the prompt table.
    Overview,
    /// The prompt table with both answers of the selected row.
    SideBySide,
    /// The judges, their agreement and disagreements.
    Judges,
    /// Earlier runs from the store.
    Runs,
}

/// Which field of the setup a file dialog fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogTarget {
    /// A GGUF (or safetensors) file for one side.
    Model(Side),
    /// A model folder for one side.
    ModelFolder(Side),
    /// A LoRA adapter folder for one side.
    Lora(Side),
    /// A file of answers made elsewhere, in place of a model.
    Answers(Side),
    /// A prompt pack file (pack.toml or SORRY-Bench JSONL).
    PackFile,
    /// The folder reports are exported into.
    ExportDir,
    /// A release-gate thresholds file.
    GateFile,
}

/// Generation settings as edited in the form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Most new tokens per answer.
    pub max_new_tokens: usize,
    /// Answers per prompt.
    pub samples: u32,
    /// Sampling seed.
    pub seed: u64,
    /// 0 = greedy.
    pub temperature: f64,
    /// Sequences decoded together.
    pub batch_size: usize,
    /// First N prompts of each category; 0 = all.
    pub per_category: usize,
    /// `cpu`, `auto`, `cuda`, `metal`.
    pub device: String,
    /// How requests go to served sides and judges (kept from a loaded plan; the form has no
    /// fields for them yet).
    pub serving: crate::serve::ServingSettings,
    /// The environment variable holding served judges' API key (its name, never the key).
    pub judge_api_key_env: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let g = GenerationSettings::default();
        Self {
            max_new_tokens: 128,
            samples: 1,
            seed: g.seed,
            temperature: 0.0,
            batch_size: g.batch_size,
            per_category: 0,
            device: "cpu".into(),
            serving: crate::serve::ServingSettings::default(),
            judge_api_key_env: None,
        }
    }
}

/// The saved setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Persisted {
    /// The aligned starting point.
    pub reference: SideForm,
    /// The model under audit.
    pub candidate: SideForm,
    /// Selected packs (shipped names or paths), in order.
    pub packs: Vec<String>,
    /// Pack files the analyst opened (offered again next time).
    pub pack_files: Vec<String>,
    /// `pack/category` keys left out of the run.
    pub excluded: BTreeSet<String>,
    /// `pack/category` keys the vendor says the fine-tune targeted.
    pub targeted: BTreeSet<String>,
    /// Decoding settings.
    pub settings: Settings,
    /// Judge specs, the first primary (`refusal`, `rubric:fulfillment@model.gguf`, ...).
    pub judges: Vec<String>,
    /// Ask both models to rate each request's harm (self-rated harm probe).
    pub harm_probe: bool,
    /// Release-gate thresholds file (TOML); empty for none.
    pub gate: String,
    /// Where reports are exported.
    pub export_dir: String,
    /// The view shown last.
    pub view: View,
    /// The setup panel is folded away (results get the window's width).
    pub setup_folded: bool,
    /// Category and target lists of a loaded plan, applied once its packs are read.
    #[serde(skip)]
    pub pending_categories: Option<PendingCategories>,
}

/// A loaded plan's category choices, kept until its packs are read and they can be checked off.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PendingCategories {
    /// Categories the plan audits (ids or names); empty for all.
    pub categories: Vec<String>,
    /// Categories the plan marks as targeted by the fine-tune.
    pub targeted: Vec<String>,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            reference: SideForm::default(),
            candidate: SideForm::default(),
            packs: vec!["sorry44".into(), "benign-controls".into()],
            pack_files: Vec::new(),
            excluded: BTreeSet::new(),
            targeted: BTreeSet::new(),
            settings: Settings::default(),
            judges: vec!["refusal".into()],
            harm_probe: false,
            gate: String::new(),
            export_dir: default_export_dir().display().to_string(),
            view: View::Progress,
            setup_folded: false,
            pending_categories: None,
        }
    }
}

fn default_export_dir() -> PathBuf {
    std::env::current_dir()
        .unwrap_or_default()
        .join("aligndiff-report")
}

/// `pack/category`, the key of a category across packs.
pub fn category_key(pack: &str, category: &str) -> String {
    format!("{pack}/{category}")
}

impl Persisted {
    /// One side's form.
    pub fn side(&self, side: Side) -> &SideForm {
        match side {
            Side::Reference => &self.reference,
            Side::Candidate => &self.candidate,
        }
    }

    /// One side's form, to edit.
    pub fn side_mut(&mut self, side: Side) -> &mut SideForm {
        match side {
            Side::Reference => &mut self.reference,
            Side::Candidate => &mut self.candidate,
        }
    }

    /// The current value of the field a dialog fills in (the dialog opens next to it).
    pub fn path_of(&self, target: DialogTarget) -> String {
        match target {
            DialogTarget::Model(s) | DialogTarget::ModelFolder(s) => self.side(s).source.clone(),
            DialogTarget::Lora(s) => self.side(s).lora.clone(),
            DialogTarget::Answers(s) => self.side(s).answers.clone(),
            DialogTarget::PackFile => String::new(),
            DialogTarget::ExportDir => self.export_dir.clone(),
            DialogTarget::GateFile => self.gate.clone(),
        }
    }

    /// Every pack the setup offers or selects: the shipped ones, opened files, the selection.
    pub fn pack_names(&self) -> Vec<String> {
        crate::packs::builtin_names()
            .into_iter()
            .map(str::to_owned)
            .chain(self.pack_files.iter().cloned())
            .chain(self.packs.iter().cloned())
            .collect()
    }

    /// Forget an opened pack file: no longer offered, no longer selected.
    pub fn forget_pack_file(&mut self, name: &str) {
        self.pack_files.retain(|p| p != name);
        self.packs.retain(|p| p != name);
    }

    /// Put a path picked in a dialog where it belongs.
    pub fn set_path(&mut self, target: DialogTarget, path: &Path) {
        let text = path.display().to_string();
        match target {
            DialogTarget::Model(side) | DialogTarget::ModelFolder(side) => {
                self.side_mut(side).source = text;
            }
            DialogTarget::Lora(side) => self.side_mut(side).lora = text,
            DialogTarget::Answers(side) => self.side_mut(side).answers = text,
            DialogTarget::PackFile => {
                if !self.pack_files.contains(&text) {
                    self.pack_files.push(text.clone());
                }
                if !self.packs.contains(&text) {
                    self.packs.push(text);
                }
            }
            DialogTarget::ExportDir => self.export_dir = text,
            DialogTarget::GateFile => self.gate = text,
        }
    }

    /// The audit plan this setup describes. Category choices need the packs loaded.
    pub fn plan(&self, packs: &PackShelf) -> Result<Plan, String> {
        for (name, form) in [
            ("reference", &self.reference),
            ("candidate", &self.candidate),
        ] {
            if !form.is_set() {
                return Err(format!(
                    "No {name} model yet: pick a GGUF file or a model folder, type a hub id, \
                     give a server's URL, or open an answers file."
                ));
            }
            if form.has_model() && non_empty(&form.answers).is_some() {
                return Err(format!(
                    "The {name} side has both a model and an answers file: clear one of them."
                ));
            }
            if form.on_server() && non_empty(&form.answers).is_none() {
                if let Some(problem) = form.server_url_problem() {
                    return Err(format!("The {name} side's server: {problem}"));
                }
                if let Some(problem) = super::side_form::key_env_problem(&form.api_key_env) {
                    return Err(format!("The {name} side's API key variable: {problem}"));
                }
            }
        }
        if self.packs.is_empty() {
            return Err("No prompt pack selected.".into());
        }
        let mut plan = Plan::new(
            self.reference.side_plan(),
            self.candidate.side_plan(),
            PathBuf::from(self.export_dir.trim()),
        );
        plan.packs.clear();
        let mut categories = Vec::new();
        let mut partial = false;
        for name in &self.packs {
            let pack = packs.pack(name).ok_or_else(|| {
                format!(
                    "The pack `{name}` is still loading or could not be read; see Prompt packs."
                )
            })?;
            let keep: Vec<&str> = pack
                .categories
                .iter()
                .filter(|c| !self.excluded.contains(&category_key(&pack.id, &c.id)))
                .map(|c| c.id.as_str())
                .collect();
            if keep.is_empty() {
                continue;
            }
            if keep.len() < pack.categories.len() {
                partial = true;
            }
            categories.extend(keep.iter().map(|c| (*c).to_owned()));
            plan.packs.push(name.clone());
            for c in &pack.categories {
                if self.targeted.contains(&category_key(&pack.id, &c.id))
                    && keep.contains(&c.id.as_str())
                {
                    plan.targeted.push(c.id.clone());
                }
            }
        }
        if plan.packs.is_empty() {
            return Err("Every category is unchecked: choose at least one.".into());
        }
        if partial {
            plan.categories = categories;
        }
        let s = &self.settings;
        plan.samples = s.samples.max(1);
        plan.per_category = (s.per_category > 0).then_some(s.per_category);
        plan.device = s.device.clone();
        plan.gate = non_empty(&self.gate).map(PathBuf::from);
        let specs: Vec<&String> = self
            .judges
            .iter()
            .filter(|j| !j.trim().is_empty())
            .collect();
        if specs.is_empty() {
            return Err("No judge: add at least `refusal`.".into());
        }
        plan.judges = specs
            .into_iter()
            .map(|j| {
                crate::judge::spec::JudgeSpec::parse(j.trim())
                    .map_err(|e| format!("judge `{}`: {e}", j.trim()))
            })
            .collect::<Result<_, _>>()?;
        plan.harm_probe = self.harm_probe;
        plan.serving = s.serving.clone();
        plan.judge_api_key_env.clone_from(&s.judge_api_key_env);
        plan.generation = GenerationSettings {
            max_new_tokens: s.max_new_tokens.max(1),
            temperature: s.temperature.max(0.0),
            seed: s.seed,
            batch_size: s.batch_size.max(1),
            ..plan.generation
        };
        if let Ok(cwd) = std::env::current_dir() {
            plan.rebase(&cwd);
        }
        plan.validate().map_err(|e| e.to_string())?;
        Ok(plan)
    }

    /// Turn a loaded plan's category lists into check marks, once its packs are read.
    pub fn resolve_pending_categories(&mut self, shelf: &PackShelf) {
        let Some(PendingCategories {
            categories,
            targeted,
        }) = &self.pending_categories
        else {
            return;
        };
        let mut packs = Vec::new();
        for name in &self.packs {
            match shelf.pack(name) {
                Some(p) => packs.push(p),
                None if shelf.pack_failed(name) => {}
                None => return,
            }
        }
        let matches = |list: &[String], c: &crate::packs::Category| {
            list.iter()
                .any(|w| *w == c.id || w.eq_ignore_ascii_case(&c.name))
        };
        let mut excluded = BTreeSet::new();
        let mut marked = BTreeSet::new();
        for pack in packs {
            let narrowed = pack.categories.iter().any(|c| matches(categories, c));
            for c in &pack.categories {
                let key = category_key(&pack.id, &c.id);
                if narrowed && !matches(categories, c) {
                    excluded.insert(key.clone());
                }
                if matches(targeted, c) {
                    marked.insert(key);
                }
            }
        }
        self.excluded = excluded;
        self.targeted = marked;
        self.pending_categories = None;
    }

    /// Fill the form from an earlier run's plan.
    pub fn load_plan(&mut self, plan: &Plan) {
        self.reference = SideForm::from_side_plan(&plan.reference);
        self.candidate = SideForm::from_side_plan(&plan.candidate);
        self.packs.clone_from(&plan.packs);
        for p in &plan.packs {
            if !crate::packs::builtin_names().contains(&p.as_str()) && !self.pack_files.contains(p)
            {
                self.pack_files.push(p.clone());
            }
        }
        let g = &plan.generation;
        self.settings = Settings {
            max_new_tokens: g.max_new_tokens,
            samples: plan.samples,
            seed: g.seed,
            temperature: g.temperature,
            batch_size: g.batch_size,
            per_category: plan.per_category.unwrap_or(0),
            device: plan.device.clone(),
            serving: plan.serving.clone(),
            judge_api_key_env: plan.judge_api_key_env.clone(),
        };
        // Category choices are re-derived from the plan once the packs are loaded: keep the
        // plan's lists; an empty list means every category.
        self.excluded.clear();
        self.targeted.clear();
        self.pending_categories = Some(PendingCategories {
            categories: plan.categories.clone(),
            targeted: plan.targeted.clone(),
        });
        self.judges = plan.judges.iter().map(ToString::to_string).collect();
        self.harm_probe = plan.harm_probe;
        self.gate = plan
            .gate
            .as_ref()
            .map(|g| g.display().to_string())
            .unwrap_or_default();
        if !plan.out.as_os_str().is_empty() {
            self.export_dir = plan.out.display().to_string();
        }
    }
}

#[cfg(test)]
mod serving_tests {
    use super::*;
    use crate::audit::SidePlan;

    #[test]
    fn a_loaded_plan_keeps_how_requests_go_to_its_servers() {
        let mut plan = Plan::new(
            SidePlan::model("openai:http://gpu-box:8000/v1#base"),
            SidePlan::model("openai:http://gpu-box:8000/v1#vendor"),
            PathBuf::from("out"),
        );
        plan.serving.concurrency = 64;
        plan.serving.max_retries = 2;
        plan.judge_api_key_env = Some("JUDGE_KEY".into());
        let mut state = Persisted::default();
        state.load_plan(&plan);
        assert_eq!(state.settings.serving, plan.serving);
        assert_eq!(
            state.settings.judge_api_key_env.as_deref(),
            Some("JUDGE_KEY")
        );
    }
}
