//! Earlier runs recorded in the store: reopen one (its stored answers are reused, so a finished
//! run reopens without generating) or resume one that did not finish.

use eframe::egui;

use super::command::Command;
use super::format::source_name;
use super::runtime::Runtime;
use crate::audit::Plan;
use crate::store::RunRecord;

fn plan_of(r: &RunRecord) -> Option<Plan> {
    serde_json::from_str(&r.plan_json).ok()
}

/// The newest run, when it did not finish (the app closed, it was stopped, or it failed).
pub fn unfinished(runs: &[RunRecord]) -> Option<Plan> {
    let newest = runs.first()?;
    (newest.status != "finished")
        .then(|| plan_of(newest))
        .flatten()
}

fn describe(plan: &Plan) -> String {
    let mut text = format!(
        "{} vs {}",
        source_name(&plan.reference.label()),
        source_name(&plan.candidate.label())
    );
    if plan.candidate.system.is_some() && plan.reference.model == plan.candidate.model {
        text.push_str(" (+ system prompt)");
    }
    text.push_str(&format!(" · {}", plan.packs.join(", ")));
    if plan.samples > 1 {
        text.push_str(&format!(" · {} samples", plan.samples));
    }
    if let Some(n) = plan.per_category {
        text.push_str(&format!(" · {n} per category"));
    }
    text.push_str(&format!(" · {} tokens", plan.generation.max_new_tokens));
    text
}

/// Draw the list of runs.
pub fn ui(ui: &mut egui::Ui, rt: &Runtime) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        ui.heading("Earlier runs");
        if ui.small_button("Refresh").clicked() {
            commands.push(Command::RefreshRuns);
        }
    });
    ui.label(format!(
        "Store: {}",
        rt.store_dir.join("aligndiff.sqlite").display()
    ));
    ui.weak("Reopening a run reuses every answer already in the store: a finished run only reloads the models to check their fingerprints.");
    if let Some(e) = &rt.runs_error {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!("⚠ cannot read the store: {e}"),
        );
    }
    if rt.runs.is_empty() {
        ui.add_space(12.0);
        ui.label("No runs in this store yet.");
        return commands;
    }
    let busy = rt.job.is_some();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            egui::Grid::new("runs")
                .striped(true)
                .num_columns(5)
                .spacing([12.0, 6.0])
                .show(ui, |ui| {
                    for h in ["run", "started (UTC)", "status", "", "what"] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    for r in &rt.runs {
                        ui.label(format!("#{}", r.id));
                        ui.label(r.started.replace('T', " ").trim_end_matches('Z').to_owned());
                        let status = if r.status == "running" && r.finished.is_none() {
                            "did not finish".to_owned()
                        } else {
                            r.status.clone()
                        };
                        if r.status == "finished" {
                            ui.label(status);
                        } else {
                            // "failed: <error>" is long: the word shows, the error on hover.
                            let short = status.split(':').next().unwrap_or_default().to_owned();
                            ui.colored_label(ui.visuals().warn_fg_color, short)
                                .on_hover_text(&status);
                        }
                        let plan = plan_of(r);
                        ui.horizontal(|ui| {
                            if let Some(p) = plan.clone() {
                                let verb = if r.status == "finished" {
                                    "Reopen"
                                } else {
                                    "Resume"
                                };
                                if ui.add_enabled(!busy, egui::Button::new(verb)).clicked() {
                                    commands.push(Command::Resume(Box::new(p.clone())));
                                }
                                if ui
                                    .add_enabled(!busy, egui::Button::new("Load setup"))
                                    .clicked()
                                {
                                    commands.push(Command::LoadPlan(Box::new(p)));
                                }
                            }
                        });
                        match &plan {
                            Some(p) => ui.label(describe(p)),
                            None => ui.weak("(plan unreadable)"),
                        };
                        ui.end_row();
                    }
                });
        });
    commands
}
