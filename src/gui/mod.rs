//! The desktop workbench (feature `gui`). It drives the same engine functions as the CLI:
//! `audit::spawn` for runs, `audit::recompare` after a person overrules a verdict,
//! `report::write_all` for exports. Nothing here computes a figure the headless path cannot.
//!
//! Panels draw from `&App` state and return [`Command`]s; [`App::apply`] carries them out at the
//! end of the frame. Everything slow (loading a model, file dialogs, the audit, recomputing,
//! exporting) runs on named threads; the frame only polls.

mod judges;
mod overview;
mod progress;
mod rows;
mod runs;
mod setup;
mod state;
mod tasks;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;

use crate::audit::{self, AuditResult, JobEvent, JobHandle, Side};
use crate::judge::Label;
use crate::store::RunRecord;

pub use state::{Persisted, Settings, SideForm};
use tasks::{Card, DialogTarget, Tasks};

/// Which view fills the central area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
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

/// Something a panel asks the app to do; applied once per frame, after drawing.
#[derive(Debug, Clone)]
pub enum Command {
    /// Open a file or folder dialog for a field.
    Browse(DialogTarget),
    /// Load a model (in the background) to show its card.
    Inspect(Side),
    /// Start an audit with the current setup.
    Run,
    /// Start an audit with an earlier run's plan (answers already stored are reused).
    Resume(Box<audit::Plan>),
    /// Copy an earlier run's plan into the setup.
    LoadPlan(Box<audit::Plan>),
    /// Stop the running audit; stored answers stay stored.
    Stop,
    /// Switch view.
    Show(View),
    /// Filter the table to one category (or none).
    FilterCategory(Option<String>),
    /// Select a row of the table.
    Select(usize),
    /// Show a row side by side, clearing the filters that would hide it.
    OpenRow(usize),
    /// A person overrules (or, with `None`, restores) one side's verdict of a row.
    Overrule {
        /// Row index in the result.
        row: usize,
        /// Which answer.
        side: Side,
        /// The person's label; `None` removes the override.
        label: Option<Label>,
    },
    /// Write the reports into the export folder.
    Export,
    /// Copy text to the clipboard.
    Copy(String),
    /// Reread the list of runs.
    RefreshRuns,
}

/// A live audit.
struct Job {
    handle: JobHandle,
    started: Instant,
    /// Prompt texts by item index, to show what is being answered.
    prompts: Vec<String>,
    stage: String,
    progress: [Option<SideProgress>; 2],
    /// The answer being streamed: side, item, text so far.
    stream: Option<(Side, usize, String)>,
    /// The judge at work: id, done, total, reused, answers per minute.
    judging: Option<(String, usize, usize, usize, f64)>,
    stopping: bool,
}

/// Counts for one side of a running audit.
#[derive(Debug, Clone, Copy)]
struct SideProgress {
    done: usize,
    total: usize,
    cached: usize,
    tokens_per_s: f64,
}

/// A message that fades after a few seconds.
struct Toast {
    text: String,
    error: bool,
    until: Instant,
}

/// Filters of the prompt table; `visible` is recomputed when they or the result change.
#[derive(Default)]
struct TableState {
    category: Option<String>,
    flipped_only: bool,
    search: String,
    selected: Option<usize>,
    /// Scroll the table to the selected row on the next frame.
    scroll_to_selected: bool,
    visible: Vec<usize>,
    /// (category, flipped, search, result generation) the list was computed for.
    computed_for: Option<(Option<String>, bool, String, u64)>,
}

/// The workbench.
pub struct App {
    state: Persisted,
    store_dir: PathBuf,
    tasks: Tasks,
    cards: [Option<Result<Card, String>>; 2],
    job: Option<Job>,
    result: Option<AuditResult>,
    /// Bumped whenever `result` changes, so derived lists know to recompute.
    result_generation: u64,
    table: TableState,
    note: String,
    runs: Vec<RunRecord>,
    runs_error: Option<String>,
    toasts: Vec<Toast>,
    /// The last run's error, shown until the next run.
    failure: Option<String>,
    frame_ms: Option<f32>,
    /// `ALIGNDIFF_FRAME_STATS=1`: repaint continuously and print frame timings to stderr.
    frame_stats: Option<FrameStats>,
}

/// Frame timings for `ALIGNDIFF_FRAME_STATS=1` (measures the whole loop: the egui pass,
/// tessellation, the renderer and presenting, e.g. Mesa's software rasterizer under Xvfb).
#[derive(Default)]
struct FrameStats {
    last: Option<Instant>,
    intervals: Vec<f32>,
    cpu: Vec<f32>,
}

impl FrameStats {
    fn record(&mut self, cpu_ms: Option<f32>) {
        let now = Instant::now();
        if let Some(last) = self.last {
            self.intervals
                .push(now.duration_since(last).as_secs_f32() * 1000.0);
        }
        self.last = Some(now);
        self.cpu.extend(cpu_ms);
        if self.intervals.len() >= 120 {
            let mut v = std::mem::take(&mut self.intervals);
            v.sort_by(f32::total_cmp);
            let cpu = std::mem::take(&mut self.cpu);
            let cpu_mean = cpu.iter().sum::<f32>() / cpu.len().max(1) as f32;
            let pick = |q: f32| v[((v.len() - 1) as f32 * q) as usize];
            eprintln!(
                "frames: {} · interval median {:.1} ms, p95 {:.1} ms · egui CPU mean {cpu_mean:.1} ms",
                v.len(),
                pick(0.5),
                pick(0.95)
            );
        }
    }
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
            store_dir,
            tasks: Tasks::default(),
            cards: [None, None],
            job: None,
            result: None,
            result_generation: 0,
            table: TableState::default(),
            note: String::new(),
            runs: Vec::new(),
            runs_error: None,
            toasts: Vec::new(),
            failure: None,
            frame_ms: None,
            frame_stats: std::env::var_os("ALIGNDIFF_FRAME_STATS").map(|_| FrameStats::default()),
        };
        app.tasks.load_runs(app.store_dir.clone());
        app.tasks.ensure_packs(&app.state);
        app
    }

    /// The current result, if a run finished.
    pub fn result(&self) -> Option<&AuditResult> {
        self.result.as_ref()
    }

    /// Show a finished result (the frame benchmark loads one this way).
    pub fn set_result(&mut self, result: AuditResult) {
        self.result = Some(result);
        self.result_generation += 1;
        self.state.view = View::Overview;
    }

    /// Whether an audit, a recompute or an export is still running.
    pub fn busy(&self) -> bool {
        self.job.is_some() || self.tasks.busy()
    }

    /// Select a row of the prompt table (as a click on it does).
    pub fn select_row(&mut self, row: usize) {
        self.table.selected = Some(row);
    }

    /// Why the last run stopped, if it failed.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Whether an audit is running.
    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// Messages currently shown in the corner.
    pub fn toasts(&self) -> Vec<String> {
        self.toasts.iter().map(|t| t.text.clone()).collect()
    }

    /// The persisted part of the state.
    pub fn state_mut(&mut self) -> &mut Persisted {
        &mut self.state
    }

    fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.toasts.push(Toast {
            text: text.into(),
            error,
            until: Instant::now() + Duration::from_secs(if error { 12 } else { 6 }),
        });
    }

    /// Drain the audit's events without blocking.
    fn poll_job(&mut self) {
        let Some(job) = &mut self.job else { return };
        let mut ended = None;
        while let Ok(event) = job.handle.events.try_recv() {
            match event {
                JobEvent::Stage(s) => job.stage = s,
                JobEvent::Loaded {
                    side,
                    info,
                    fingerprint,
                } => {
                    self.cards[side_index(side)] = Some(Ok(Card::new(&info, &fingerprint)));
                }
                JobEvent::Progress {
                    side,
                    done,
                    total,
                    cached,
                    tokens_per_s,
                } => {
                    job.progress[side_index(side)] = Some(SideProgress {
                        done,
                        total,
                        cached,
                        tokens_per_s,
                    });
                }
                JobEvent::Token { side, item, delta } => match &mut job.stream {
                    Some((s, i, text)) if *s == side && *i == item => text.push_str(&delta),
                    _ => job.stream = Some((side, item, delta)),
                },
                JobEvent::Judging {
                    judge,
                    done,
                    total,
                    reused,
                    per_minute,
                } => job.judging = Some((judge, done, total, reused, per_minute)),
                JobEvent::Finished(r) => ended = Some(Ok(r)),
                JobEvent::Failed(e) => ended = Some(Err(e)),
            }
        }
        let Some(outcome) = ended else { return };
        let stopping = job.stopping;
        if let Some(job) = self.job.take() {
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
                self.failure = Some(e.clone());
                self.toast(format!("The audit stopped: {e}"), true);
            }
        }
        self.tasks.load_runs(self.store_dir.clone());
    }

    fn start(&mut self, plan: audit::Plan, ctx: &egui::Context) {
        if self.job.is_some() {
            self.toast("An audit is already running.", true);
            return;
        }
        if let Err(e) = plan.validate() {
            self.failure = Some(e.to_string());
            self.toast(e.to_string(), true);
            return;
        }
        let prompts = match audit::plan_items(&plan) {
            Ok((_, items)) => items.iter().map(|i| i.prompt.display_text()).collect(),
            Err(e) => {
                self.failure = Some(e.to_string());
                self.toast(e.to_string(), true);
                return;
            }
        };
        let waker_ctx = ctx.clone();
        match audit::spawn(
            plan,
            self.store_dir.clone(),
            Box::new(move || waker_ctx.request_repaint()),
        ) {
            Ok(handle) => {
                self.failure = None;
                self.job = Some(Job {
                    handle,
                    started: Instant::now(),
                    prompts,
                    stage: "starting".into(),
                    progress: [None, None],
                    stream: None,
                    judging: None,
                    stopping: false,
                });
                self.state.view = View::Progress;
            }
            Err(e) => self.toast(e.to_string(), true),
        }
    }

    fn apply(&mut self, command: Command, ctx: &egui::Context) {
        match command {
            Command::Browse(target) => self.tasks.browse(target, &self.state),
            Command::Inspect(side) => {
                let form = self.state.side(side).clone();
                self.cards[side_index(side)] = None;
                self.tasks.inspect(side, &form, &self.state.settings);
            }
            Command::Run => match self.state.plan(&self.tasks) {
                Ok(plan) => self.start(plan, ctx),
                Err(e) => {
                    self.failure = Some(e.clone());
                    self.toast(e, true);
                }
            },
            Command::Resume(plan) => {
                // Show what is being compared: the setup follows the reopened run.
                self.state.load_plan(&plan);
                self.tasks.ensure_packs(&self.state);
                self.start(*plan, ctx);
            }
            Command::LoadPlan(plan) => {
                self.state.load_plan(&plan);
                self.tasks.ensure_packs(&self.state);
                self.toast("Setup loaded from the earlier run.", false);
            }
            Command::Stop => {
                if let Some(job) = &mut self.job {
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
                let Some(result) = &self.result else { return };
                let Some(r) = result.rows.get(row) else {
                    return;
                };
                let key = match side {
                    Side::Reference => r.reference.key.clone(),
                    Side::Candidate => r.candidate.key.clone(),
                };
                self.tasks.overrule(
                    self.store_dir.clone(),
                    result.clone(),
                    key,
                    label,
                    std::mem::take(&mut self.note),
                );
            }
            Command::Export => {
                let Some(result) = &self.result else {
                    self.toast("Nothing to export yet: run an audit first.", true);
                    return;
                };
                let dir = PathBuf::from(self.state.export_dir.trim());
                if dir.as_os_str().is_empty() {
                    self.toast("Choose an export folder first.", true);
                    return;
                }
                self.tasks.export(result.clone(), dir);
            }
            Command::Copy(text) => {
                ctx.copy_text(text);
                self.toast("Copied to the clipboard.", false);
            }
            Command::RefreshRuns => self.tasks.load_runs(self.store_dir.clone()),
        }
    }

    /// Collect finished background work.
    fn poll_tasks(&mut self) {
        for (target, picked) in self.tasks.take_dialogs() {
            if let Some(path) = picked {
                self.state.set_path(target, &path);
                if matches!(target, DialogTarget::PackFile) {
                    self.tasks.ensure_packs(&self.state);
                }
            }
        }
        for (side, card) in self.tasks.take_cards() {
            self.cards[side_index(side)] = Some(card);
        }
        if let Some(outcome) = self.tasks.take_recompare() {
            match outcome {
                Ok(result) => {
                    self.result = Some(result);
                    self.result_generation += 1;
                    self.toast("Verdict updated; statistics recomputed.", false);
                }
                Err(e) => self.toast(format!("Could not store the override: {e}"), true),
            }
        }
        if let Some(outcome) = self.tasks.take_export() {
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
        if let Some(outcome) = self.tasks.take_runs() {
            match outcome {
                Ok(runs) => {
                    self.runs = runs;
                    self.runs_error = None;
                }
                Err(e) => self.runs_error = Some(e),
            }
        }
        self.tasks.poll_packs();
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) -> Vec<Command> {
        let mut commands = Vec::new();
        ui.horizontal(|ui| {
            ui.heading("aligndiff");
            ui.separator();
            for (view, name) in [
                (View::Progress, "Run"),
                (View::Overview, "Overview"),
                (View::SideBySide, "Side by side"),
                (View::Judges, "Judges"),
                (View::Runs, "Earlier runs"),
            ] {
                if ui.selectable_label(self.state.view == view, name).clicked() {
                    commands.push(Command::Show(view));
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let export = ui.add_enabled(
                    self.result.is_some() && !self.tasks.exporting(),
                    egui::Button::new("Export report"),
                );
                if export.clicked() {
                    commands.push(Command::Export);
                }
                if ui
                    .button("…")
                    .on_hover_text("Choose the export folder")
                    .clicked()
                {
                    commands.push(Command::Browse(DialogTarget::ExportDir));
                }
                let edit = ui.add(
                    egui::TextEdit::singleline(&mut self.state.export_dir).desired_width(260.0),
                );
                let label = ui.label("Export to");
                edit.labelled_by(label.id)
                    .on_hover_text("The folder the four report files are written into");
                if self.tasks.exporting() {
                    ui.spinner();
                }
            });
        });
        commands
    }

    fn status_bar(&self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.result {
                Some(r) => ui.weak(format!(
                    "{} rows · judge: {} · {} human override(s)",
                    r.rows.len(),
                    r.judges.first().map_or("?", |j| j.id.as_str()),
                    r.overrides
                )),
                None => ui.weak("no results yet"),
            };
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if let Some(ms) = self.frame_ms {
                    ui.weak(format!("frame {ms:.1} ms"));
                }
                if let Some(job) = &self.job {
                    ui.spinner();
                    ui.label(&job.stage);
                }
            });
        });
    }

    fn toasts_ui(&mut self, ctx: &egui::Context) {
        let now = Instant::now();
        self.toasts.retain(|t| t.until > now);
        if self.toasts.is_empty() {
            return;
        }
        egui::Area::new(egui::Id::unique("aligndiff_toasts"))
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -36.0))
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                let mut dismissed = None;
                for (i, t) in self.toasts.iter().enumerate() {
                    egui::Frame::popup(ui.style()).show(ui, |ui| {
                        ui.set_max_width(480.0);
                        let text = egui::RichText::new(&t.text);
                        let label = ui.add(
                            egui::Label::new(if t.error {
                                text.color(ui.visuals().error_fg_color)
                            } else {
                                text
                            })
                            .wrap()
                            .sense(egui::Sense::click()),
                        );
                        if label.on_hover_text("Click to dismiss").clicked() {
                            dismissed = Some(i);
                        }
                    });
                }
                if let Some(i) = dismissed {
                    self.toasts.remove(i);
                }
            });
        if let Some(next) = self.toasts.iter().map(|t| t.until).min() {
            ctx.request_repaint_after(next.saturating_duration_since(now));
        }
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Reference => 0,
        Side::Candidate => 1,
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.frame_ms = frame.info().cpu_usage.map(|s| s * 1000.0);
        if let Some(stats) = &mut self.frame_stats {
            stats.record(self.frame_ms);
            ui.ctx().request_repaint();
        }
        self.poll_job();
        self.poll_tasks();
        let ctx = ui.ctx().clone();
        let mut commands = Vec::new();
        egui::Panel::top("top_bar").show(ui, |ui| {
            commands.extend(self.top_bar(ui));
        });
        egui::Panel::bottom("status_bar").show(ui, |ui| self.status_bar(ui));
        egui::Panel::left("setup")
            .resizable(true)
            .default_size(360.0)
            .size_range(280.0..=640.0)
            .show(ui, |ui| {
                commands.extend(setup::ui(self, ui));
            });
        egui::CentralPanel::default().show(ui, |ui| {
            commands.extend(match self.state.view {
                View::Progress => progress::ui(self, ui),
                View::Overview => overview::ui(self, ui),
                View::SideBySide => rows::side_by_side_ui(self, ui),
                View::Judges => judges::ui(self, ui),
                View::Runs => runs::ui(self, ui),
            });
        });
        self.toasts_ui(&ctx);
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

/// Open the workbench window; returns when it closes.
///
/// It draws with OpenGL (glow) by default: on machines without a GPU, Mesa's GL rasterizer
/// draws a frame of this app about five times faster than its Vulkan one (21 ms against 110 ms
/// measured under Xvfb, `ALIGNDIFF_FRAME_STATS=1`). `ALIGNDIFF_RENDERER=wgpu` picks wgpu; when
/// OpenGL cannot start, wgpu is tried.
pub fn run(store_dir: &std::path::Path) -> Result<(), String> {
    let wgpu_first = std::env::var("ALIGNDIFF_RENDERER").as_deref() == Ok("wgpu");
    let order = if wgpu_first {
        [eframe::Renderer::Wgpu, eframe::Renderer::Glow]
    } else {
        [eframe::Renderer::Glow, eframe::Renderer::Wgpu]
    };
    let mut errors = Vec::new();
    for renderer in order {
        let options = eframe::NativeOptions {
            renderer,
            viewport: egui::ViewportBuilder::default()
                .with_title("aligndiff")
                .with_inner_size([1400.0, 900.0])
                .with_min_inner_size([900.0, 600.0]),
            ..Default::default()
        };
        let dir = store_dir.to_path_buf();
        match eframe::run_native(
            "aligndiff",
            options,
            Box::new(move |cc| Ok(Box::new(App::new(cc, dir)))),
        ) {
            Ok(()) => return Ok(()),
            Err(e) => errors.push(format!("{renderer:?}: {e}")),
        }
    }
    Err(format!("cannot open the window ({})", errors.join("; ")))
}
