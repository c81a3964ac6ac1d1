//! The workbench: the saved setup, the views' own buffers and the runtime state; one frame draws
//! every panel, then applies the commands they returned.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;

use super::command::Command;
use super::frame_stats::FrameStats;
use super::job::{side_index, Job};
use super::runtime::Runtime;
use super::side_form::non_empty;
use super::state::{DialogTarget, Persisted, View};
use super::table::TableState;
use super::toasts::{self, Toast};
use super::{chrome, judges, overview, progress, runs, setup, side_by_side};
use crate::audit::{self, AuditResult, Side};

/// The workbench.
pub struct App {
    /// The saved setup; the setup panel's (and the export field's) buffer.
    state: Persisted,
    /// The prompt table's filters, selection and visible rows.
    table: TableState,
    /// The side-by-side view's note for the next override.
    note: String,
    /// Everything else, read by the views and changed only here.
    rt: Runtime,
    /// `ALIGNDIFF_FRAME_STATS=1`: repaint continuously and print frame timings to stderr.
    frame_stats: Option<FrameStats>,
}

impl App {
    /// Start with the saved state (if any) and the store in `store_dir`.
    pub fn new(cc: &eframe::CreationContext<'_>, store_dir: PathBuf) -> Self {
        Self::configure(&cc.egui_ctx);
        let state: Persisted = cc
            .storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        Self::with_state(state, store_dir)
    }

    /// Fonts: the proportional font lacks arrows (↑ ↓ →), which the monospace one has.
    pub fn configure(ctx: &egui::Context) {
        let mut fonts = egui::FontDefinitions::default();
        if let Some(mono) = fonts
            .families
            .get(&egui::FontFamily::Monospace)
            .and_then(|f| f.first())
            .cloned()
        {
            if let Some(p) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
                p.push(mono);
            }
        }
        ctx.set_fonts(fonts);
    }

    /// Start from a given state (tests and the frame benchmark use this).
    pub fn with_state(state: Persisted, store_dir: PathBuf) -> Self {
        let mut app = Self {
            state,
            table: TableState::default(),
            note: String::new(),
            rt: Runtime::new(store_dir),
            frame_stats: std::env::var_os("ALIGNDIFF_FRAME_STATS").map(|_| FrameStats::default()),
        };
        app.rt.tasks.load_runs(app.rt.store_dir.clone());
        app.rt.packs.ensure(app.state.pack_names());
        app
    }

    /// The current result, if a run finished.
    pub fn result(&self) -> Option<&AuditResult> {
        self.rt.result.as_ref()
    }

    /// Show a finished result (the frame benchmark loads one this way).
    pub fn set_result(&mut self, result: AuditResult) {
        self.rt.result = Some(result);
        self.rt.result_generation += 1;
        self.state.view = View::Overview;
    }

    /// Whether an audit, a recompute, an export or another background task is still running.
    pub fn busy(&self) -> bool {
        self.rt.job.is_some() || self.rt.tasks.busy() || self.rt.packs.loading()
    }

    /// Select a row of the prompt table (as a click on it does).
    pub fn select_row(&mut self, row: usize) {
        self.table.selected = Some(row);
    }

    /// Why the last run stopped, if it failed.
    pub fn failure(&self) -> Option<&str> {
        self.rt.failure.as_deref()
    }

    /// Whether an audit is running.
    pub fn running(&self) -> bool {
        self.rt.running()
    }

    /// Messages currently shown in the corner.
    pub fn toasts(&self) -> Vec<String> {
        self.rt.toasts.iter().map(|t| t.text.clone()).collect()
    }

    /// The persisted part of the state.
    pub fn state_mut(&mut self) -> &mut Persisted {
        &mut self.state
    }

    fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.rt.toasts.push(Toast::new(text, error));
    }

    /// Drain the audit's events without blocking.
    fn poll_job(&mut self) {
        let Some(job) = &mut self.rt.job else { return };
        let update = job.drain();
        let stopping = job.stopping;
        for (side, card) in update.loaded {
            self.rt.cards[side_index(side)] = Some(Ok(card));
        }
        let Some(outcome) = update.ended else { return };
        if let Some(job) = self.rt.job.take() {
            // The audit sent its last event: its thread is ending, so this does not wait.
            job.handle.join();
        }
        match outcome {
            Ok(result) => {
                let flips = result.overall.flips_to_fulfill + result.overall.flips_to_refuse;
                self.toast(
                    format!(
                        "Audit finished: {} prompts compared, {flips} flipped.",
                        result.rows.len()
                    ),
                    false,
                );
                self.set_result(*result);
            }
            Err(e) if stopping => {
                self.toast(
                    format!(
                        "Stopped. Answers generated so far are stored; Resume continues. ({e})"
                    ),
                    false,
                );
            }
            Err(e) => {
                self.rt.failure = Some(e.clone());
                self.toast(format!("The audit stopped: {e}"), true);
            }
        }
        self.rt.tasks.load_runs(self.rt.store_dir.clone());
    }

    fn fail(&mut self, error: String) {
        self.rt.failure = Some(error.clone());
        self.toast(error, true);
    }

    fn start(&mut self, plan: audit::Plan, ctx: &egui::Context) {
        if self.rt.job.is_some() {
            self.toast("An audit is already running.", true);
            return;
        }
        if let Err(e) = plan.validate() {
            self.fail(e.to_string());
            return;
        }
        let prompts = match audit::plan_items(&plan) {
            Ok((_, items)) => items.iter().map(|i| i.prompt.display_text()).collect(),
            Err(e) => {
                self.fail(e.to_string());
                return;
            }
        };
        let waker_ctx = ctx.clone();
        match audit::spawn(
            plan,
            self.rt.store_dir.clone(),
            Box::new(move || waker_ctx.request_repaint()),
        ) {
            Ok(handle) => {
                self.rt.failure = None;
                self.rt.job = Some(Job::new(handle, prompts));
                self.state.view = View::Progress;
            }
            Err(e) => self.toast(e.to_string(), true),
        }
    }

    /// Carry out one command: the one place where a view's request changes the app.
    fn apply(&mut self, command: Command, ctx: &egui::Context) {
        match command {
            Command::Browse(target) => {
                let start = self.state.path_of(target);
                self.rt.tasks.browse(target, start);
            }
            Command::Inspect(side) => {
                let form = self.state.side(side);
                self.rt.cards[side_index(side)] = None;
                self.rt
                    .tasks
                    .inspect(side, form.model_spec(), self.state.settings.device.clone());
            }
            Command::ListModels(side) => {
                let form = self.state.side(side);
                self.rt.listings[side_index(side)] = None;
                self.rt.tasks.list_models(
                    side,
                    form.server_url.trim().to_owned(),
                    non_empty(&form.api_key_env).map(str::to_owned),
                );
            }
            Command::Run => match self.state.plan(&self.rt.packs) {
                Ok(plan) => self.start(plan, ctx),
                Err(e) => self.fail(e),
            },
            Command::Resume(plan) => {
                // Show what is being compared: the setup follows the reopened run.
                self.state.load_plan(&plan);
                self.rt.packs.ensure(self.state.pack_names());
                self.start(*plan, ctx);
            }
            Command::LoadPlan(plan) => {
                self.state.load_plan(&plan);
                self.rt.packs.ensure(self.state.pack_names());
                self.toast("Setup loaded from the earlier run.", false);
            }
            Command::Stop => {
                if let Some(job) = &mut self.rt.job {
                    job.stopping = true;
                    job.handle
                        .cancel
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Command::Show(view) => self.state.view = view,
            Command::FilterCategory(c) => {
                self.table.category = c;
                self.table.selected = None;
            }
            Command::Select(i) => {
                self.table.selected = Some(i);
                self.note.clear();
            }
            Command::Deselect => {
                self.table.selected = None;
                self.note.clear();
            }
            Command::ToggleSetup => self.state.setup_folded = !self.state.setup_folded,
            Command::OpenRow(i) => {
                self.table.category = None;
                self.table.flipped_only = false;
                self.table.search.clear();
                self.table.selected = Some(i);
                self.table.scroll_to_selected = true;
                self.note.clear();
                self.state.view = View::SideBySide;
            }
            Command::Overrule { row, side, label } => {
                let Some(result) = &self.rt.result else {
                    return;
                };
                let Some(r) = result.rows.get(row) else {
                    return;
                };
                let key = match side {
                    Side::Reference => r.reference.key.clone(),
                    Side::Candidate => r.candidate.key.clone(),
                };
                self.rt.tasks.overrule(
                    self.rt.store_dir.clone(),
                    result.clone(),
                    key,
                    label,
                    std::mem::take(&mut self.note),
                );
            }
            Command::ForgetPackFile(name) => {
                self.state.forget_pack_file(&name);
                self.rt.packs.forget(&name);
            }
            Command::Export => {
                let Some(result) = &self.rt.result else {
                    self.toast("Nothing to export yet: run an audit first.", true);
                    return;
                };
                let dir = PathBuf::from(self.state.export_dir.trim());
                if dir.as_os_str().is_empty() {
                    self.toast("Choose an export folder first.", true);
                    return;
                }
                self.rt.tasks.export(result.clone(), dir);
            }
            Command::Copy(text) => {
                ctx.copy_text(text);
                self.toast("Copied to the clipboard.", false);
            }
            Command::RefreshRuns => self.rt.tasks.load_runs(self.rt.store_dir.clone()),
            Command::DismissToast(i) => {
                if i < self.rt.toasts.len() {
                    self.rt.toasts.remove(i);
                }
            }
        }
    }

    /// Collect finished background work.
    fn poll_tasks(&mut self) {
        for (target, picked) in self.rt.tasks.take_dialogs() {
            if let Some(path) = picked {
                self.state.set_path(target, &path);
                if matches!(target, DialogTarget::PackFile) {
                    self.rt.packs.ensure(self.state.pack_names());
                }
            }
        }
        for (side, card) in self.rt.tasks.take_cards() {
            self.rt.cards[side_index(side)] = Some(card);
        }
        for (side, listing) in self.rt.tasks.take_listings() {
            // A server with one model: that is the one meant.
            let form = self.state.side_mut(side);
            if let Some([only]) = listing.models_for(form) {
                if form.served_model.trim().is_empty() {
                    form.served_model.clone_from(&only.id);
                }
            }
            self.rt.listings[side_index(side)] = Some(listing);
        }
        if let Some(outcome) = self.rt.tasks.take_recompare() {
            match outcome {
                Ok(result) => {
                    self.rt.result = Some(result);
                    self.rt.result_generation += 1;
                    self.toast("Verdict updated; statistics recomputed.", false);
                }
                Err(e) => self.toast(format!("Could not store the override: {e}"), true),
            }
        }
        if let Some(outcome) = self.rt.tasks.take_export() {
            match outcome {
                Ok((dir, files)) => self.toast(
                    format!(
                        "Report written to {} ({})",
                        dir.display(),
                        files
                            .iter()
                            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    false,
                ),
                Err(e) => self.toast(format!("Export failed: {e}"), true),
            }
        }
        if let Some(outcome) = self.rt.tasks.take_runs() {
            match outcome {
                Ok(runs) => {
                    self.rt.runs = runs;
                    self.rt.runs_error = None;
                }
                Err(e) => self.rt.runs_error = Some(e),
            }
        }
        self.rt.packs.poll();
        // A loaded plan's categories become check marks once its packs are read.
        self.state.resolve_pending_categories(&self.rt.packs);
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.rt.frame_ms = frame.info().cpu_usage.map(|s| s * 1000.0);
        if let Some(stats) = &mut self.frame_stats {
            stats.record(self.rt.frame_ms);
            ui.ctx().request_repaint();
        }
        self.poll_job();
        self.poll_tasks();
        let now = Instant::now();
        self.rt.toasts.retain(|t| t.until > now);
        let ctx = ui.ctx().clone();
        let mut commands = Vec::new();
        {
            // Views read the runtime state and edit only their own buffers.
            let Self {
                state,
                table,
                note,
                rt,
                ..
            } = self;
            let rt: &Runtime = rt;
            egui::Panel::top("top_bar").show(ui, |ui| {
                commands.extend(chrome::top_bar_ui(
                    ui,
                    rt,
                    state.view,
                    state.setup_folded,
                    &mut state.export_dir,
                ));
            });
            egui::Panel::bottom("status_bar").show(ui, |ui| {
                commands.extend(chrome::status_bar_ui(ui, rt));
            });
            // The setup can fold away while results are read; the top bar brings it back.
            if !state.setup_folded {
                egui::Panel::left("setup")
                    .resizable(true)
                    .default_size(360.0)
                    .size_range(280.0..=640.0)
                    .show(ui, |ui| {
                        commands.extend(setup::ui(ui, rt, state));
                    });
            }
            let view = state.view;
            egui::CentralPanel::default().show(ui, |ui| {
                commands.extend(match view {
                    View::Progress => progress::ui(ui, rt),
                    View::Overview => overview::ui(ui, rt, table),
                    View::SideBySide => side_by_side::ui(ui, rt, table, note),
                    View::Judges => judges::ui(ui, rt),
                    View::Runs => runs::ui(ui, rt),
                });
            });
            commands.extend(toasts::ui(&ctx, &rt.toasts));
        }
        for c in commands {
            self.apply(c, &ctx);
        }
        if self.busy() {
            // Background work reports through the waker; this is a fallback for dialogs.
            ctx.request_repaint_after(Duration::from_millis(250));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }
}
