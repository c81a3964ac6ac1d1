//! The prompt table: filters (category, flipped only, text search), the order (the review
//! queue first, or pack order) and the rows, scrolling through thousands of them by drawing
//! only the visible ones.

use eframe::egui;

use super::command::Command;
use super::format::first_line;
use super::runtime::Runtime;
use super::widgets::{cell, flip_text, verdict_text};
use crate::audit::review::{self, ReviewItem};
use crate::audit::AuditResult;
use crate::audit::Flip;

/// How the table orders its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RowOrder {
    /// The review queue: the rows whose reading moves the figures most come first.
    #[default]
    Review,
    /// The packs' own order.
    Pack,
    /// A fixed random order: labelling the first rows of it measures the judge without the
    /// review queue's bias toward hard answers.
    Random,
}

/// The table's own buffers: filters, selection and the rows they leave visible. The table edits
/// the flipped-only box, the search text and its cache in place; `App::apply` sets the category
/// and the selection (other views ask for those too).
#[derive(Default)]
pub struct TableState {
    /// Only rows of this category.
    pub category: Option<String>,
    /// Only rows whose verdict flipped.
    pub flipped_only: bool,
    /// Text a row's prompt, answers or id must contain.
    pub search: String,
    /// The row shown side by side.
    pub selected: Option<usize>,
    /// Scroll the table to the selected row on the next frame.
    pub scroll_to_selected: bool,
    /// Review queue first, or pack order.
    pub order: RowOrder,
    /// Row indices that pass the filters, in display order.
    visible: Vec<usize>,
    /// Each row's review item (by row index), for the "why" column.
    review: Vec<Option<ReviewItem>>,
    /// The filters and result `visible` was computed for.
    computed_for: Option<TableKey>,
}

/// What the visible rows depend on.
#[derive(Debug, Clone, PartialEq)]
struct TableKey {
    category: Option<String>,
    flipped_only: bool,
    order: RowOrder,
    search: String,
    generation: u64,
}

/// Recompute the visible rows when the filters or the result changed.
fn refresh(table: &mut TableState, result: &AuditResult, generation: u64) {
    let key = TableKey {
        category: table.category.clone(),
        flipped_only: table.flipped_only,
        order: table.order,
        search: table.search.clone(),
        generation,
    };
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
    let queue = review::queue(&result.rows);
    let mut position = vec![usize::MAX; result.rows.len()];
    for (at, item) in queue.iter().enumerate() {
        if let Some(p) = position.get_mut(item.row) {
            *p = at;
        }
    }
    match table.order {
        RowOrder::Review => visible.sort_by_key(|&i| position.get(i).copied()),
        RowOrder::Pack if table.flipped_only => {
            // Refused → complied first: those are the findings.
            visible.sort_by_key(|&i| match result.rows[i].flip() {
                Some(Flip::ToFulfill) => 0,
                _ => 1,
            });
        }
        RowOrder::Pack => {}
        RowOrder::Random => visible.sort_by_key(|&i| shuffled_rank(&result.rows[i])),
    }
    let mut by_row = vec![None; result.rows.len()];
    for item in queue {
        let row = item.row;
        if let Some(slot) = by_row.get_mut(row) {
            *slot = Some(item);
        }
    }
    table.review = by_row;
    table.visible = visible;
    table.computed_for = Some(key);
}

/// Filters and the table of prompts.
pub fn ui(ui: &mut egui::Ui, rt: &Runtime, table: &mut TableState) -> Vec<Command> {
    let mut commands = Vec::new();
    let Some(result) = &rt.result else {
        return commands;
    };
    refresh(table, result, rt.result_generation);
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
        let l = ui.label("Order");
        egui::ComboBox::from_id_salt("row_order")
            .selected_text(match table.order {
                RowOrder::Review => "review first",
                RowOrder::Pack => "pack order",
                RowOrder::Random => "random sample",
            })
            .width(110.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut table.order, RowOrder::Review, "review first")
                    .on_hover_text(
                        "Answers that speak to the evaluator or mix a refusal with content, \
                         flips, judges that disagree and unsure verdicts first: reading these \
                         moves the figures the most",
                    );
                ui.selectable_value(&mut table.order, RowOrder::Pack, "pack order");
                ui.selectable_value(&mut table.order, RowOrder::Random, "random sample")
                    .on_hover_text(
                        "A fixed shuffle: label the first 30 or more rows' answers to measure the \
                         judge on this audit without favouring hard answers",
                    );
            })
            .response
            .labelled_by(l.id);
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
    let (flip_w, cat_w, verdict_w, why_w) = (18.0, 150.0, 96.0, 190.0);
    let prompt_w = (width - flip_w - cat_w - 2.0 * verdict_w - why_w - 48.0).max(120.0);
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
        cell(
            ui,
            why_w,
            row_height,
            egui::Label::new(egui::RichText::new("why read it").strong()),
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
                let why = table.review.get(i).and_then(Option::as_ref);
                let why_cell = cell(
                    ui,
                    why_w,
                    row_height,
                    egui::Label::new(why_text(why)).truncate(),
                );
                if let Some(item) = why.filter(|item| item.reasons.len() > 1) {
                    why_cell.on_hover_text(
                        item.reasons
                            .iter()
                            .map(|r| r.short())
                            .collect::<Vec<_>>()
                            .join("\n"),
                    );
                }
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

/// The "why read it" cell: the heaviest reason and how many more, or that a person ruled.
fn why_text(item: Option<&ReviewItem>) -> egui::RichText {
    let Some(item) = item else {
        return egui::RichText::new("");
    };
    let Some(first) = item.reasons.first() else {
        return egui::RichText::new(if item.reviewed { "✓ reviewed" } else { "" }).weak();
    };
    let more = match item.reasons.len() {
        1 => String::new(),
        n => format!(" +{}", n - 1),
    };
    let text = format!(
        "{}{}{more}",
        if item.reviewed { "✓ " } else { "" },
        first.short()
    );
    if item.reviewed {
        egui::RichText::new(text).weak()
    } else {
        egui::RichText::new(text)
    }
}

/// A row's place in the fixed shuffle: a hash of what names it (the same audit always shuffles
/// the same way, whatever was filtered).
fn shuffled_rank(row: &crate::audit::Row) -> u64 {
    let key = format!("{}\u{0}{}\u{0}{}", row.pack, row.prompt_id, row.sample);
    key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
