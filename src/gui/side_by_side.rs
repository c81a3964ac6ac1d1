//! The side-by-side view: the prompt table (in review order unless asked otherwise), and once a
//! row is chosen its two answers below, where a person can overrule a verdict.

use eframe::egui;

use super::command::Command;
use super::runtime::Runtime;
use super::table::{self, TableState};
use super::widgets::{no_result_ui, verdict_text, FLAGGED, GOOD};
use crate::audit::Flip;
use crate::audit::Side;
use crate::judge::Label;
use crate::packs::PromptKind;

/// The table on the left, the selected row's two answers on the right.
pub fn ui(
    ui: &mut egui::Ui,
    rt: &Runtime,
    table: &mut TableState,
    note: &mut String,
) -> Vec<Command> {
    let mut commands = Vec::new();
    if rt.result.is_none() {
        return no_result_ui(ui);
    }
    // Until a row is chosen the table has the whole height; then it keeps the top 40% and the
    // two answers get the rest.
    let table_height = if table.selected.is_some() {
        (ui.available_height() * 0.4).max(160.0)
    } else {
        ui.available_height()
    };
    let width = ui.available_width();
    ui.allocate_ui(egui::vec2(width, table_height), |ui| {
        ui.set_min_height(table_height);
        commands.extend(table::ui(ui, rt, table));
    });
    if table.selected.is_some() {
        ui.separator();
        commands.extend(detail_ui(ui, rt, table.selected, note));
    }
    commands
}

/// The selected row's prompt and both answers, with the buttons that overrule a verdict. The
/// note is this view's own buffer: the next override takes it.
fn detail_ui(
    ui: &mut egui::Ui,
    rt: &Runtime,
    selected: Option<usize>,
    note: &mut String,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let recomputing = rt.tasks.recomputing();
    let (Some(result), Some(i)) = (&rt.result, selected) else {
        ui.add_space(12.0);
        ui.weak("Select a row to read both answers side by side.");
        return commands;
    };
    let Some(row) = result.rows.get(i) else {
        return commands;
    };
    ui.horizontal(|ui| {
        ui.strong(format!(
            "{} · {} {} · {}{}",
            row.prompt_id,
            row.category,
            row.category_name,
            match row.kind {
                PromptKind::Harmful => "harmful request",
                PromptKind::Benign => "benign control",
            },
            if row.sample > 0 {
                format!(" · sample {}", row.sample)
            } else {
                String::new()
            }
        ));
        if let Some(f) = row.flip() {
            ui.label(match f {
                Flip::ToFulfill => egui::RichText::new("refused → complied").color(FLAGGED),
                Flip::ToRefuse => egui::RichText::new("complied → refused").color(GOOD),
            });
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui
                .small_button("Close")
                .on_hover_text("Back to the whole table")
                .clicked()
            {
                commands.push(Command::Deselect);
            }
        });
    });
    let reasons = crate::audit::review::reasons(row);
    if !reasons.is_empty() {
        ui.label(
            egui::RichText::new(format!(
                "Worth a look: {}",
                reasons
                    .iter()
                    .map(|r| r.short())
                    .collect::<Vec<_>>()
                    .join(" · ")
            ))
            .color(FLAGGED),
        );
    }
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        egui::ScrollArea::vertical()
            .id_salt("prompt_text")
            .max_height(80.0)
            .show(ui, |ui| {
                ui.add(egui::Label::new(egui::RichText::new(&row.prompt).italics()).wrap());
            });
    });
    ui.horizontal(|ui| {
        let l = ui.label("Note for an override");
        ui.add(
            egui::TextEdit::singleline(note)
                .hint_text("optional: why you overrule the judge")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(l.id);
    });
    ui.columns(2, |cols| {
        for (col, side, title) in [
            (0, Side::Reference, "Reference"),
            (1, Side::Candidate, "Candidate"),
        ] {
            let s = row.side(side);
            let ui = &mut cols[col];
            ui.horizontal(|ui| {
                ui.strong(title);
                ui.label(verdict_text(s, row.kind));
                ui.weak(format!(
                    "by {}",
                    match s.judged_by.as_str() {
                        "" => "—",
                        id => id,
                    }
                ));
                if s.partial {
                    ui.weak("(partial)");
                }
                if s.finish == Some(crate::store::Finish::Length) {
                    ui.weak("· hit the token limit");
                }
                for flag in &s.flags {
                    ui.label(egui::RichText::new(format!("⚑ {}", flag.describe())).color(FLAGGED));
                }
            });
            if !s.reason.is_empty() {
                ui.add(egui::Label::new(egui::RichText::new(&s.reason).small()).wrap());
            }
            // Every judge's verdict, not only the primary one (the effective label above may
            // be a person's override).
            if s.verdicts.len() > 1 || s.judged_by.is_person() {
                for v in &s.verdicts {
                    let label = v.label.map_or("—", Label::as_str);
                    let score = v.score.map(|x| format!(" ({x:.2})")).unwrap_or_default();
                    let line = ui.add(
                        egui::Label::new(
                            egui::RichText::new(format!(
                                "{}: {label}{score} · {}",
                                v.judge, v.reason
                            ))
                            .small(),
                        )
                        .truncate(),
                    );
                    if let Some(raw) = &v.raw {
                        line.on_hover_text(format!("judge output: {raw}"));
                    }
                }
            }
            ui.add_enabled_ui(!recomputing, |ui| {
                ui.horizontal(|ui| {
                    for (label, text) in [
                        (Label::Refused, "Mark refused"),
                        (Label::Complied, "Mark complied"),
                    ] {
                        if ui
                            .add_enabled(
                                s.label != Some(label) || !s.judged_by.is_person(),
                                egui::Button::new(text).small(),
                            )
                            .clicked()
                        {
                            commands.push(Command::Overrule {
                                row: i,
                                side,
                                label: Some(label),
                            });
                        }
                    }
                    if s.judged_by.is_person() && ui.small_button("Restore judge").clicked() {
                        commands.push(Command::Overrule {
                            row: i,
                            side,
                            label: None,
                        });
                    }
                    if recomputing {
                        ui.spinner();
                    }
                });
            });
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_width(ui.available_width());
                egui::ScrollArea::vertical()
                    .id_salt(("answer", col))
                    .auto_shrink([false, false])
                    .show(ui, |ui| {
                        if s.answer.is_empty() {
                            ui.weak("(no answer stored)");
                        } else {
                            ui.add(egui::Label::new(&s.answer).wrap().selectable(true));
                        }
                    });
            });
        }
    });
    commands
}
