//! Messages that fade after a few seconds, in the bottom right corner; a click dismisses one.

use std::time::{Duration, Instant};

use eframe::egui;

use super::command::Command;

/// A message that fades after a few seconds.
pub struct Toast {
    /// What it says.
    pub text: String,
    /// Shown in the error colour, and longer.
    pub error: bool,
    /// When it disappears.
    pub until: Instant,
}

impl Toast {
    /// A message shown for 6 s, or 12 s for an error.
    pub fn new(text: impl Into<String>, error: bool) -> Self {
        Self {
            text: text.into(),
            error,
            until: Instant::now() + Duration::from_secs(if error { 12 } else { 6 }),
        }
    }
}

/// Draw the messages; a click on one asks to dismiss it.
pub fn ui(ctx: &egui::Context, toasts: &[Toast]) -> Vec<Command> {
    let mut commands = Vec::new();
    if toasts.is_empty() {
        return commands;
    }
    egui::Area::new(egui::Id::unique("aligndiff_toasts"))
        .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -36.0))
        .order(egui::Order::Foreground)
        .show(ctx, |ui| {
            for (i, t) in toasts.iter().enumerate() {
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
                        commands.push(Command::DismissToast(i));
                    }
                });
            }
        });
    let now = Instant::now();
    if let Some(next) = toasts.iter().map(|t| t.until).min() {
        ctx.request_repaint_after(next.saturating_duration_since(now));
    }
    commands
}
