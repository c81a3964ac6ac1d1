//! The window's frame around the views: the top bar (view tabs, export) and the status bar.

use eframe::egui;

use super::command::Command;
use super::runtime::Runtime;
use super::state::{DialogTarget, View};

/// The view tabs and the export controls. `export_dir` is this bar's own buffer (a field of the
/// saved setup); `Export` reads it.
pub fn top_bar_ui(
    ui: &mut egui::Ui,
    rt: &Runtime,
    view: View,
    setup_folded: bool,
    export_dir: &mut String,
) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        let fold = if setup_folded {
            "▶ Setup"
        } else {
            "◀ Setup"
        };
        if ui
            .selectable_label(!setup_folded, fold)
            .on_hover_text(if setup_folded {
                "Show the setup panel"
            } else {
                "Fold the setup panel away to give the results the width"
            })
            .clicked()
        {
            commands.push(Command::ToggleSetup);
        }
        ui.heading("aligndiff");
        ui.separator();
        for (tab, name) in [
            (View::Progress, "Run"),
            (View::Overview, "Overview"),
            (View::SideBySide, "Side by side"),
            (View::Judges, "Judges"),
            (View::Runs, "Earlier runs"),
        ] {
            if ui.selectable_label(view == tab, name).clicked() {
                commands.push(Command::Show(tab));
            }
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let export = ui.add_enabled(
                rt.result.is_some() && !rt.tasks.exporting(),
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
            let edit = ui.add(egui::TextEdit::singleline(export_dir).desired_width(260.0));
            let label = ui.label("Export to");
            edit.labelled_by(label.id)
                .on_hover_text("The folder the four report files are written into");
            if rt.tasks.exporting() {
                ui.spinner();
            }
        });
    });
    commands
}

/// Rows, judge and overrides of the result; the frame time and the audit's stage. It asks for
/// nothing: the empty list keeps every view's signature the same.
pub fn status_bar_ui(ui: &mut egui::Ui, rt: &Runtime) -> Vec<Command> {
    ui.horizontal(|ui| {
        match &rt.result {
            Some(r) => ui.weak(format!(
                "{} rows · judge: {} · {} human override(s)",
                r.rows.len(),
                r.judges.first().map_or("?", |j| j.id.as_str()),
                r.overrides
            )),
            None => ui.weak("no results yet"),
        };
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if let Some(ms) = rt.frame_ms {
                ui.weak(format!("frame {ms:.1} ms"));
            }
            if let Some(job) = &rt.job {
                ui.spinner();
                ui.label(&job.stage);
            }
        });
    });
    Vec::new()
}
