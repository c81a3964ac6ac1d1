//! Background work for the workbench (dialogs, model cards, servers' model lists, recomputing,
//! exports, the runs list): each task runs on a named thread and hands its result back
//! through a `poll_promise::Promise` that the frame polls without waiting.

use std::path::{Path, PathBuf};

use poll_promise::Promise;

use super::card::Card;
use super::server_listing::{self, ServerListing};
use super::state::DialogTarget;
use crate::audit::{self, AuditResult, Side};
use crate::judge::Label;
use crate::model::{self, LoadOptions, ModelSpec};
use crate::store::{RunRecord, Store};

/// A pending dialog.
pub type Dialog = (DialogTarget, Promise<Option<PathBuf>>);

/// Where an export went and the files written, or why it failed.
pub type ExportOutcome = Result<(PathBuf, Vec<PathBuf>), String>;

/// Everything running in the background.
#[derive(Default)]
pub struct Tasks {
    dialogs: Vec<Dialog>,
    inspecting: Vec<(Side, Promise<Result<Card, String>>)>,
    listing: Vec<(Side, Promise<ServerListing>)>,
    recompare: Option<Promise<Result<AuditResult, String>>>,
    export: Option<Promise<ExportOutcome>>,
    runs: Option<Promise<Result<Vec<RunRecord>, String>>>,
}

impl Tasks {
    /// Work still in flight that the user waits on.
    pub fn busy(&self) -> bool {
        !self.dialogs.is_empty()
            || !self.inspecting.is_empty()
            || !self.listing.is_empty()
            || self.recompare.is_some()
            || self.export.is_some()
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

    /// Open a dialog on its own thread (rfd's dialogs block the calling thread), next to
    /// `start`, the field's current value.
    pub fn browse(&mut self, target: DialogTarget, start: String) {
        if self.dialogs.iter().any(|(t, _)| *t == target) {
            return;
        }
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
    pub fn inspect(&mut self, side: Side, spec: ModelSpec, device: String) {
        if self.inspecting(side) {
            return;
        }
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

    /// A side's server is being asked for its models.
    pub fn listing(&self, side: Side) -> bool {
        self.listing.iter().any(|(s, _)| *s == side)
    }

    /// Ask a server for its models in the background (`GET /v1/models`).
    pub fn list_models(&mut self, side: Side, url: String, key_env: Option<String>) {
        if self.listing(side) {
            return;
        }
        let promise = Promise::spawn_thread("aligndiff-list-models", move || {
            server_listing::list_models(&url, key_env.as_deref())
        });
        self.listing.push((side, promise));
    }

    /// Model lists that came back.
    pub fn take_listings(&mut self) -> Vec<(Side, ServerListing)> {
        let mut done = Vec::new();
        self.listing.retain_mut(|(side, p)| match p.ready() {
            Some(listing) => {
                done.push((*side, listing.clone()));
                false
            }
            None => true,
        });
        done
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
