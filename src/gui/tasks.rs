//! Background work for the workbench: each task runs on a named thread and hands its result back
//! through a `poll_promise::Promise` that the frame polls without waiting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use poll_promise::Promise;

use super::state::{Persisted, Settings, SideForm};
use crate::audit::{self, AuditResult, Side};
use crate::judge::Label;
use crate::model::{self, Fingerprint, LoadOptions, ModelInfo, ModelSpec};
use crate::packs::{self, Pack};
use crate::store::{RunRecord, Store};

/// What a file dialog fills in.
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

/// A pending dialog.
pub type Dialog = (DialogTarget, Promise<Option<PathBuf>>);

/// What the model card shows, taken from a loaded model or a run's `Loaded` event.
#[derive(Debug, Clone)]
pub struct Card {
    /// Heading: the GGUF name or the architecture.
    pub title: String,
    /// (field, value) lines.
    pub lines: Vec<(String, String)>,
    /// Every file with its role, size and SHA-256.
    pub files: Vec<(String, u64, String, String)>,
    /// The fingerprint id answers are stored under.
    pub fingerprint: String,
    /// Everything above as plain text, for the copy button.
    pub text: String,
}

impl Card {
    /// Describe a model.
    pub fn new(info: &ModelInfo, fp: &Fingerprint) -> Self {
        let c = &info.config;
        let stored: Vec<String> = info
            .weights
            .stored_types
            .iter()
            .map(|(t, n)| format!("{n}×{t}"))
            .collect();
        let mut quant = stored.join(" ");
        for (from, to, n) in &info.weights.requantized {
            quant.push_str(&format!("; {n} {from} re-encoded as {to}"));
        }
        let mut lines = vec![
            (
                "architecture".to_owned(),
                info.architecture.name().to_owned(),
            ),
            (
                "size".to_owned(),
                format!(
                    "{:.1} M parameters, {} layers, hidden {}, vocab {}",
                    info.parameters as f64 / 1e6,
                    c.layers,
                    c.hidden_size,
                    c.vocab_size
                ),
            ),
            ("format".to_owned(), info.format.clone()),
            ("quantization".to_owned(), quant),
            ("tokenizer".to_owned(), info.tokenizer.clone()),
            (
                "template".to_owned(),
                format!("{} (sha256 {})", info.template, short(&fp.template_sha256)),
            ),
            ("device".to_owned(), info.device.clone()),
        ];
        if let Some(rev) = &fp.revision {
            lines.push(("revision".to_owned(), rev.clone()));
        }
        for t in &fp.transforms {
            lines.push(("transform".to_owned(), t.clone()));
        }
        let files: Vec<(String, u64, String, String)> = fp
            .files
            .iter()
            .map(|f| (f.role.clone(), f.bytes, f.sha256.clone(), f.path.clone()))
            .collect();
        let title = info
            .name
            .clone()
            .unwrap_or_else(|| info.architecture.name().to_owned());
        let mut text = format!("{title}\n");
        for (k, v) in &lines {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push_str(&format!("fingerprint: {}\n", fp.id));
        for (role, bytes, sha, path) in &files {
            text.push_str(&format!("{role} {bytes} bytes sha256 {sha} {path}\n"));
        }
        Self {
            title,
            lines,
            files,
            fingerprint: fp.id.clone(),
            text,
        }
    }
}

/// The first 12 hex digits of a digest.
pub fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

enum PackSlot {
    Loading(Promise<Result<Pack, String>>),
    Ready(Box<Pack>),
    Failed(String),
}

/// Where an export went and the files written, or why it failed.
pub type ExportOutcome = Result<(PathBuf, Vec<PathBuf>), String>;

/// Everything running in the background.
#[derive(Default)]
pub struct Tasks {
    dialogs: Vec<Dialog>,
    inspecting: Vec<(Side, Promise<Result<Card, String>>)>,
    packs: HashMap<String, PackSlot>,
    recompare: Option<Promise<Result<AuditResult, String>>>,
    export: Option<Promise<ExportOutcome>>,
    runs: Option<Promise<Result<Vec<RunRecord>, String>>>,
}

impl Tasks {
    /// Work still in flight that the user waits on.
    pub fn busy(&self) -> bool {
        !self.dialogs.is_empty()
            || !self.inspecting.is_empty()
            || self.recompare.is_some()
            || self.export.is_some()
            || self
                .packs
                .values()
                .any(|p| matches!(p, PackSlot::Loading(_)))
    }

    /// An export is being written.
    pub fn exporting(&self) -> bool {
        self.export.is_some()
    }

    /// A verdict change is being stored and the statistics recomputed.
    pub fn recomputing(&self) -> bool {
        self.recompare.is_some()
    }

    /// A side's model is being loaded for its card.
    pub fn inspecting(&self, side: Side) -> bool {
        self.inspecting.iter().any(|(s, _)| *s == side)
    }

    /// Open a dialog on its own thread (rfd's dialogs block the calling thread).
    pub fn browse(&mut self, target: DialogTarget, state: &Persisted) {
        if self.dialogs.iter().any(|(t, _)| *t == target) {
            return;
        }
        let start = match target {
            DialogTarget::Model(s) | DialogTarget::ModelFolder(s) => state.side(s).source.clone(),
            DialogTarget::Lora(s) => state.side(s).lora.clone(),
            DialogTarget::Answers(s) => state.side(s).answers.clone(),
            DialogTarget::PackFile => String::new(),
            DialogTarget::ExportDir => state.export_dir.clone(),
            DialogTarget::GateFile => state.gate.clone(),
        };
        let promise = Promise::spawn_thread("aligndiff-dialog", move || {
            let mut dialog = rfd::FileDialog::new();
            if let Some(dir) = start_dir(&start) {
                dialog = dialog.set_directory(dir);
            }
            match target {
                DialogTarget::Model(_) => dialog
                    .add_filter("Model weights", &["gguf", "safetensors"])
                    .add_filter("All files", &["*"])
                    .pick_file(),
                DialogTarget::PackFile => dialog
                    .add_filter("Prompt packs", &["toml", "jsonl"])
                    .pick_file(),
                DialogTarget::GateFile => dialog.add_filter("Gate", &["toml"]).pick_file(),
                DialogTarget::Answers(_) => {
                    dialog.add_filter("Answers", &["jsonl", "csv"]).pick_file()
                }
                DialogTarget::ModelFolder(_) | DialogTarget::Lora(_) | DialogTarget::ExportDir => {
                    dialog.pick_folder()
                }
            }
        });
        self.dialogs.push((target, promise));
    }

    /// Dialogs that closed, with what was picked.
    pub fn take_dialogs(&mut self) -> Vec<(DialogTarget, Option<PathBuf>)> {
        let mut done = Vec::new();
        self.dialogs.retain_mut(|(target, p)| match p.ready_mut() {
            Some(picked) => {
                done.push((*target, picked.take()));
                false
            }
            None => true,
        });
        done
    }

    /// Load a model in the background to describe it.
    pub fn inspect(&mut self, side: Side, form: &SideForm, settings: &Settings) {
        if self.inspecting(side) {
            return;
        }
        let spec = ModelSpec {
            source: form.spec_source(),
            lora: (!form.lora.trim().is_empty()).then(|| PathBuf::from(form.lora.trim())),
        };
        let device = settings.device.clone();
        let promise = Promise::spawn_thread("aligndiff-inspect", move || {
            if spec.source.is_empty() {
                return Err("No model chosen yet.".to_owned());
            }
            let options = LoadOptions {
                device: model::select_device(&device).map_err(|e| e.to_string())?,
                max_positions: 256,
                ..LoadOptions::default()
            };
            let loaded = model::load(&spec, &options).map_err(|e| e.to_string())?;
            Ok(Card::new(&loaded.info, &loaded.fingerprint))
        });
        self.inspecting.push((side, promise));
    }

    /// Model cards that finished loading.
    pub fn take_cards(&mut self) -> Vec<(Side, Result<Card, String>)> {
        let mut done = Vec::new();
        self.inspecting.retain_mut(|(side, p)| match p.ready() {
            Some(card) => {
                done.push((*side, card.clone()));
                false
            }
            None => true,
        });
        done
    }

    /// Start reading every selected or offered pack not read yet.
    pub fn ensure_packs(&mut self, state: &Persisted) {
        let names = packs::builtin_names()
            .into_iter()
            .map(str::to_owned)
            .chain(state.pack_files.iter().cloned())
            .chain(state.packs.iter().cloned());
        for name in names {
            if self.packs.contains_key(&name) {
                continue;
            }
            let n = name.clone();
            let promise = Promise::spawn_thread("aligndiff-pack", move || {
                packs::load(&n).map_err(|e| e.to_string())
            });
            self.packs.insert(name, PackSlot::Loading(promise));
        }
    }

    /// Move finished pack reads into place.
    pub fn poll_packs(&mut self) {
        for slot in self.packs.values_mut() {
            let PackSlot::Loading(p) = slot else { continue };
            let Some(outcome) = p.ready() else { continue };
            *slot = match outcome {
                Ok(pack) => PackSlot::Ready(Box::new(pack.clone())),
                Err(e) => PackSlot::Failed(e.clone()),
            };
        }
    }

    /// A pack, once read.
    pub fn pack(&self, name: &str) -> Option<&Pack> {
        match self.packs.get(name) {
            Some(PackSlot::Ready(p)) => Some(p),
            _ => None,
        }
    }

    /// Why a pack could not be read.
    pub fn pack_error(&self, name: &str) -> Option<&str> {
        match self.packs.get(name) {
            Some(PackSlot::Failed(e)) => Some(e),
            _ => None,
        }
    }

    /// The pack could not be read.
    pub fn pack_failed(&self, name: &str) -> bool {
        self.pack_error(name).is_some()
    }

    /// Forget a pack (before reading it again, or when it is removed).
    pub fn forget_pack(&mut self, name: &str) {
        self.packs.remove(name);
    }

    /// Store a person's verdict (or remove it) and recompute the comparison.
    pub fn overrule(
        &mut self,
        store_dir: PathBuf,
        result: AuditResult,
        key: String,
        label: Option<Label>,
        note: String,
    ) {
        if self.recompare.is_some() {
            return;
        }
        self.recompare = Some(Promise::spawn_thread("aligndiff-recompare", move || {
            let store = Store::open_dir(&store_dir).map_err(|e| e.to_string())?;
            match label {
                Some(l) => store.put_override(&key, l.as_str(), note.trim()),
                None => store.clear_override(&key),
            }
            .map_err(|e| e.to_string())?;
            audit::recompare(&result, &store).map_err(|e| e.to_string())
        }));
    }

    /// The recomputed result, once ready.
    pub fn take_recompare(&mut self) -> Option<Result<AuditResult, String>> {
        take_ready(&mut self.recompare)
    }

    /// Write the four report files.
    pub fn export(&mut self, result: AuditResult, dir: PathBuf) {
        if self.export.is_some() {
            return;
        }
        self.export = Some(Promise::spawn_thread("aligndiff-export", move || {
            crate::report::write_all(&result, &dir)
                .map(|files| (dir, files))
                .map_err(|e| e.to_string())
        }));
    }

    /// The export's outcome, once done.
    pub fn take_export(&mut self) -> Option<ExportOutcome> {
        take_ready(&mut self.export)
    }

    /// Reread the runs recorded in the store.
    pub fn load_runs(&mut self, store_dir: PathBuf) {
        self.runs = Some(Promise::spawn_thread("aligndiff-runs", move || {
            Store::open_dir(&store_dir)
                .and_then(|s| s.run_records())
                .map_err(|e| e.to_string())
        }));
    }

    /// The list of runs, once read.
    pub fn take_runs(&mut self) -> Option<Result<Vec<RunRecord>, String>> {
        take_ready(&mut self.runs)
    }
}

fn take_ready<T: Send + Clone + 'static>(slot: &mut Option<Promise<T>>) -> Option<T> {
    let value = slot.as_ref()?.ready()?.clone();
    *slot = None;
    Some(value)
}

/// The folder a dialog starts in: the current value's folder, when it exists.
fn start_dir(current: &str) -> Option<PathBuf> {
    let p = Path::new(current.trim());
    if p.is_dir() {
        return Some(p.to_path_buf());
    }
    p.parent().filter(|d| d.is_dir()).map(Path::to_path_buf)
}
