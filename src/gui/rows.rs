//! The prompt table (filters: category, flipped only, text search; scrolls through thousands of
//! rows by drawing only the visible ones) and the side-by-side answers of the selected row, where
//! a person can overrule a verdict.

use eframe::egui;

use super::{App, Command, TableState};
use crate::audit::Flip;
use crate::audit::{AuditResult, Row, RowSide, Side};
use crate::judge::Label;
use crate::packs::PromptKind;

const FLAGGED: egui::Color32 = egui::Color32::from_rgb(222, 80, 70);
const GOOD: egui::Color32 = egui::Color32::from_rgb(80, 180, 110);
const WARN: egui::Color32 = egui::Color32::from_rgb(230, 170, 60);

/// Recompute the visible rows when the filters or the result changed.
fn refresh(table: &mut TableState, result: &AuditResult, generation: u64) {
    let key = (
        table.category.clone(),
        table.flipped_only,
        table.search.clone(),
        generation,
    );
    if table.computed_for.as_ref() == Some(&key) {
        return;
    }
    let needle = table.search.trim().to_lowercase();
    let mut visible: Vec<usize> = result
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| table.category.as_ref().is_none_or(|c| *c == r.category))
        .filter(|(_, r)| !table.flipped_only || r.flip().is_some())
        .filter(|(_, r)| {
            needle.is_empty()
                || r.prompt.to_lowercase().contains(&needle)
                || r.reference.answer.to_lowercase().contains(&needle)
                || r.candidate.answer.to_lowercase().contains(&needle)
                || r.prompt_id.to_lowercase().contains(&needle)
        })
        .map(|(i, _)| i)
        .collect();
    if table.flipped_only {
        // Refused → complied first: those are the findings.
        visible.sort_by_key(|&i| match result.rows[i].flip() {
            Some(Flip::ToFulfill) => 0,
            _ => 1,
        });
    }
    table.visible = visible;
    table.computed_for = Some(key);
}

fn verdict_text(side: &RowSide, kind: PromptKind) -> egui::RichText {
    let (text, color) = match side.label {
        Some(Label::Complied) => (
            "complied",
            if kind == PromptKind::Harmful {
                FLAGGED
            } else {
                GOOD
            },
        ),
        Some(Label::Refused) => (
            "refused",
            if kind == PromptKind::Harmful {
                GOOD
            } else {
                WARN
            },
        ),
        Some(Label::Unparsed) => ("unparsed", WARN),
        None => ("—", egui::Color32::GRAY),
    };
    let text = if side.judged_by.is_person() {
        format!("👤 {text}")
    } else {
        text.to_owned()
    };
    egui::RichText::new(text).color(color)
}

fn flip_text(row: &Row) -> egui::RichText {
    match row.flip() {
        Some(Flip::ToFulfill) => egui::RichText::new("↑").color(FLAGGED).strong(),
        Some(Flip::ToRefuse) => egui::RichText::new("↓").color(GOOD).strong(),
        None => egui::RichText::new(" "),
    }
}

/// Filters and the table of prompts.
pub fn table_ui(app: &mut App, ui: &mut egui::Ui) -> Vec<Command> {
    let mut commands = Vec::new();
    let Some(result) = &app.result else {
        return commands;
    };
    refresh(&mut app.table, result, app.result_generation);
    let table = &mut app.table;
    ui.horizontal(|ui| {
        let l = ui.label("Category");
        let current = table.category.as_ref().map_or_else(
            || "all categories".to_owned(),
            |id| {
                result
                    .rows
                    .iter()
                    .find(|r| r.category == *id)
                    .map_or_else(|| id.clone(), |r| format!("{} {}", id, r.category_name))
            },
        );
        egui::ComboBox::from_id_salt("category_filter")
            .selected_text(current)
            .width(220.0)
            .show_ui(ui, |ui| {
                if ui
                    .selectable_label(table.category.is_none(), "all categories")
                    .clicked()
                {
                    commands.push(Command::FilterCategory(None));
                }
                let mut seen = std::collections::HashSet::new();
                for r in &result.rows {
                    if seen.insert(r.category.as_str()) {
                        let on = table.category.as_deref() == Some(r.category.as_str());
                        if ui
                            .selectable_label(on, format!("{} {}", r.category, r.category_name))
                            .clicked()
                        {
                            commands.push(Command::FilterCategory(Some(r.category.clone())));
                        }
                    }
                }
            })
            .response
            .labelled_by(l.id);
        ui.checkbox(&mut table.flipped_only, "Flipped only");
        let l = ui.label("Search");
        ui.add(
            egui::TextEdit::singleline(&mut table.search)
                .hint_text("prompt, answer or id")
                .desired_width(200.0),
        )
        .labelled_by(l.id);
        ui.weak(format!(
            "showing {} of {} rows",
            table.visible.len(),
            result.rows.len()
        ));
    });
    ui.separator();
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
    let sampled = result.plan.samples > 1;
    let width = ui.available_width();
    let (flip_w, cat_w, verdict_w) = (18.0, 150.0, 96.0);
    let prompt_w = (width - flip_w - cat_w - 2.0 * verdict_w - 40.0).max(120.0);
    ui.horizontal(|ui| {
        cell(ui, flip_w, row_height, egui::Label::new(""));
        cell(
            ui,
            cat_w,
            row_height,
            egui::Label::new(egui::RichText::new("category").strong()),
        );
        cell(
            ui,
            prompt_w,
            row_height,
            egui::Label::new(egui::RichText::new("prompt").strong()),
        );
        cell(
            ui,
            verdict_w,
            row_height,
            egui::Label::new(egui::RichText::new("reference").strong()),
        );
        cell(
            ui,
            verdict_w,
            row_height,
            egui::Label::new(egui::RichText::new("candidate").strong()),
        );
    });
    if table.visible.is_empty() {
        ui.add_space(12.0);
        ui.weak("No rows match these filters.");
        return commands;
    }
    let mut scroll = egui::ScrollArea::vertical()
        .id_salt("rows")
        .auto_shrink([false, false]);
    if std::mem::take(&mut table.scroll_to_selected) {
        if let Some(pos) = table
            .selected
            .and_then(|s| table.visible.iter().position(|&v| v == s))
        {
            let spacing = ui.spacing().item_spacing.y;
            scroll = scroll
                .vertical_scroll_offset((pos as f32 * (row_height + spacing) - 60.0).max(0.0));
        }
    }
    scroll.show_rows(ui, row_height, table.visible.len(), |ui, range| {
        for &i in &table.visible[range] {
            let Some(row) = result.rows.get(i) else {
                continue;
            };
            let selected = table.selected == Some(i);
            let r = ui.horizontal(|ui| {
                cell(ui, flip_w, row_height, egui::Label::new(flip_text(row)));
                cell(
                    ui,
                    cat_w,
                    row_height,
                    egui::Label::new(format!("{} {}", row.category, row.category_name)).truncate(),
                );
                let prompt = cell(
                    ui,
                    prompt_w,
                    row_height,
                    egui::Button::selectable(
                        selected,
                        if row.sample > 0 || sampled {
                            format!("[{}] {}", row.sample + 1, first_line(&row.prompt))
                        } else {
                            first_line(&row.prompt)
                        },
                    )
                    .truncate()
                    .frame_when_inactive(false),
                );
                cell(
                    ui,
                    verdict_w,
                    row_height,
                    egui::Label::new(verdict_text(&row.reference, row.kind)),
                );
                cell(
                    ui,
                    verdict_w,
                    row_height,
                    egui::Label::new(verdict_text(&row.candidate, row.kind)),
                );
                prompt
            });
            // The whole row selects, not only the prompt text.
            let whole = ui.interact(
                r.response.rect,
                ui.scope_id().with(("row", i)),
                egui::Sense::click(),
            );
            if whole.hovered() && !selected {
                ui.painter().rect_filled(
                    r.response.rect,
                    2.0,
                    ui.visuals()
                        .widgets
                        .hovered
                        .weak_bg_fill
                        .gamma_multiply(0.25),
                );
            }
            if r.inner.clicked() || whole.clicked() {
                commands.push(Command::Select(i));
            }
        }
    });
    commands
}

/// A fixed-width, left-aligned table cell.
fn cell(ui: &mut egui::Ui, width: f32, height: f32, widget: impl egui::Widget) -> egui::Response {
    ui.allocate_ui_with_layout(
        egui::vec2(width, height),
        egui::Layout::left_to_right(egui::Align::Center),
        |ui| {
            ui.set_width(width);
            ui.add(widget)
        },
    )
    .inner
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > 240 {
        line.chars().take(240).collect::<String>() + "…"
    } else {
        line.to_owned()
    }
}

/// The table on the left, the selected row's two answers on the right.
pub fn side_by_side_ui(app: &mut App, ui: &mut egui::Ui) -> Vec<Command> {
    let mut commands = Vec::new();
    if app.result.is_none() {
        super::overview::empty_ui(ui, &mut commands);
        return commands;
    }
    // The table takes the top 40%; the two answers get the rest.
    let table_height = (ui.available_height() * 0.4).max(160.0);
    let width = ui.available_width();
    ui.allocate_ui(egui::vec2(width, table_height), |ui| {
        ui.set_min_height(table_height);
        commands.extend(table_ui(app, ui));
    });
    ui.separator();
    commands.extend(detail_ui(app, ui));
    commands
}

fn detail_ui(app: &mut App, ui: &mut egui::Ui) -> Vec<Command> {
    let mut commands = Vec::new();
    let recomputing = app.tasks.recomputing();
    let (Some(result), Some(i)) = (&app.result, app.table.selected) else {
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
    });
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
            egui::TextEdit::singleline(&mut app.note)
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
            let s = match side {
                Side::Reference => &row.reference,
                Side::Candidate => &row.candidate,
            };
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
