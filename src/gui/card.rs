//! The model card: what it says, taken from a loaded model, a run's `Loaded` or `Connected`
//! event, or a server's model list, and how the setup panel draws it.

use eframe::egui;

use super::command::Command;
use super::format::{human_bytes, short};
use crate::audit::Side;
use crate::model::fingerprint::FileDigest;
use crate::model::{Fingerprint, ModelInfo};
use crate::report::format::{model_facts, served_entry_facts, ModelFact};

/// A model's card: its architecture, format, files and fingerprint.
#[derive(Debug, Clone)]
pub struct Card {
    /// Heading: the GGUF name, the architecture, or the served model's name.
    pub title: String,
    /// What the card says, as every report says it ([`model_facts`], [`served_entry_facts`]).
    pub lines: Vec<ModelFact>,
    /// Every file with its role, size and SHA-256 (none for a served model).
    pub files: Vec<FileDigest>,
    /// The fingerprint id answers are stored under.
    pub fingerprint: String,
    /// For a served model, its source `openai:<URL>#<model>` (without credentials).
    pub served: Option<String>,
    /// Everything above as plain text, for the copy button.
    pub text: String,
}

impl Card {
    /// Describe a loaded model.
    pub fn new(info: &ModelInfo, fp: &Fingerprint) -> Self {
        let title = info
            .name
            .clone()
            .unwrap_or_else(|| info.architecture.name().to_owned());
        Self::with(title, model_facts(info, fp), fp, None)
    }

    /// Describe a served model from what its server's model list said (`entry`); `fp` is the
    /// identity its answers are stored under.
    pub fn served(
        endpoint: &str,
        served_model: &str,
        entry: &serde_json::Value,
        fp: &Fingerprint,
    ) -> Self {
        let source = crate::serve::public_source(&format!(
            "{}{endpoint}#{served_model}",
            crate::serve::SCHEME
        ));
        Self::with(
            served_model.to_owned(),
            served_entry_facts(endpoint, served_model, entry),
            fp,
            Some(source),
        )
    }

    /// The card of a served model from the identity a run found; `None` for a loaded model.
    pub fn from_fingerprint(fp: &Fingerprint) -> Option<Self> {
        let s = fp.served.as_ref()?;
        Some(Self::served(
            &s.endpoint,
            &s.served_model,
            &s.server_said,
            fp,
        ))
    }

    fn with(
        title: String,
        lines: Vec<ModelFact>,
        fp: &Fingerprint,
        served: Option<String>,
    ) -> Self {
        let files = fp.files.clone();
        let mut text = format!("{title}\n");
        for fact in &lines {
            text.push_str(&format!("{}: {}\n", fact.name, fact.value));
        }
        text.push_str(&format!("fingerprint: {}\n", fp.id));
        for f in &files {
            text.push_str(&format!(
                "{} {} bytes sha256 {} {}\n",
                f.role, f.bytes, f.sha256, f.path
            ));
        }
        Self {
            title,
            lines,
            files,
            fingerprint: fp.id.clone(),
            served,
            text,
        }
    }
}

/// Draw a card: title and copy button, the facts, the fingerprint, the files.
pub fn ui(ui: &mut egui::Ui, card: &Card, side: Side) -> Vec<Command> {
    let mut commands = Vec::new();
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.strong(&card.title);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let hover = if card.files.is_empty() {
                    "Copy the card"
                } else {
                    "Copy the card, with every file's SHA-256"
                };
                if ui.small_button("Copy").on_hover_text(hover).clicked() {
                    commands.push(Command::Copy(card.text.clone()));
                }
            });
        });
        egui::Grid::new(("card", side.as_str()))
            .num_columns(2)
            .spacing([8.0, 2.0])
            .show(ui, |ui| {
                for fact in &card.lines {
                    ui.weak(fact.name);
                    ui.add(egui::Label::new(&fact.value).wrap());
                    ui.end_row();
                }
                ui.weak("fingerprint");
                ui.monospace(short(&card.fingerprint))
                    .on_hover_text(&card.fingerprint);
                ui.end_row();
            });
        if card.files.is_empty() {
            return;
        }
        egui::CollapsingHeader::new(format!("{} file(s), SHA-256", card.files.len()))
            .id_salt(("card_files", side.as_str()))
            .show(ui, |ui| {
                for f in &card.files {
                    ui.label(format!(
                        "{} · {} · {}",
                        f.role,
                        human_bytes(f.bytes),
                        f.path
                    ));
                    ui.monospace(&f.sha256);
                }
            });
    });
    commands
}
