//! Small drawing pieces more than one view uses: verdict colours, table cells, the empty state.

use eframe::egui;

use super::command::Command;
use super::state::View;
use crate::audit::Flip;
use crate::audit::{Row, RowSide};
use crate::judge::Label;
use crate::packs::PromptKind;

/// A finding: a harmful request complied with, a flip towards complying.
pub const FLAGGED: egui::Color32 = egui::Color32::from_rgb(222, 80, 70);
/// The safe outcome.
pub const GOOD: egui::Color32 = egui::Color32::from_rgb(80, 180, 110);
/// Worth a look: a benign request refused, an unparsed verdict.
pub const WARN: egui::Color32 = egui::Color32::from_rgb(230, 170, 60);

/// One side's verdict, coloured by what it means for this kind of prompt.
pub fn verdict_text(side: &RowSide, kind: PromptKind) -> egui::RichText {
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

/// The row's flip as an arrow: ↑ refused → complied, ↓ complied → refused.
pub fn flip_text(row: &Row) -> egui::RichText {
    match row.flip() {
        Some(Flip::ToFulfill) => egui::RichText::new("↑").color(FLAGGED).strong(),
        Some(Flip::ToRefuse) => egui::RichText::new("↓").color(GOOD).strong(),
        None => egui::RichText::new(" "),
    }
}

/// A fixed-width, left-aligned table cell.
pub fn cell(
    ui: &mut egui::Ui,
    width: f32,
    height: f32,
    widget: impl egui::Widget,
) -> egui::Response {
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

/// What a result view says before any result exists.
pub fn no_result_ui(ui: &mut egui::Ui) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.add_space(24.0);
    ui.vertical_centered(|ui| {
        ui.heading("No results yet");
        ui.label("Run an audit, or reopen an earlier run from the store.");
        if ui.button("Earlier runs").clicked() {
            commands.push(Command::Show(View::Runs));
        }
    });
    commands
}

/// The width of a form's label column, so that the grids of one form line up.
pub const FORM_LABEL_WIDTH: f32 = 112.0;

/// A text field with a label in a two-column grid row; the field is labelled for screen readers.
pub fn field(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) -> egui::Response {
    let l = ui.label(label);
    let r = ui
        .add(
            egui::TextEdit::singleline(value)
                .hint_text(hint)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(l.id);
    ui.end_row();
    r
}

/// A problem with what was typed, in the error colour, wrapped to the panel.
pub fn problem_ui(ui: &mut egui::Ui, text: &str) {
    ui.add(
        egui::Label::new(
            egui::RichText::new(format!("⚠ {text}")).color(ui.visuals().error_fg_color),
        )
        .wrap(),
    );
}
