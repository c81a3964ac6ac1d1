//! A side whose model is on a server: the base URL, the API key variable's name, the served
//! models listed from `/v1/models` on a background thread, and the served model's card.

use eframe::egui;

use super::card;
use super::command::Command;
use super::runtime::Runtime;
use super::side_form::SideForm;
use super::widgets::{field, problem_ui, FORM_LABEL_WIDTH};
use crate::audit::Side;
use crate::serve::{self, DEFAULT_KEY_ENV};

/// What the field under the key variable says: what it takes, and whether it is set here.
fn key_env_words(form: &SideForm) -> String {
    let name = form.key_env_name();
    let set = std::env::var_os(name).is_some_and(|v| !v.is_empty());
    format!(
        "a variable's name, not the key · ${name} {}",
        if set {
            "is set (its value is never saved)"
        } else {
            "is not set: no key is sent"
        }
    )
}

/// Draw a server side's fields: URL, key variable, the List models button, the served model.
pub fn form_ui(ui: &mut egui::Ui, rt: &Runtime, form: &mut SideForm, side: Side) -> Vec<Command> {
    let mut commands = Vec::new();
    let asking = rt.tasks.listing(side);
    let listing = rt.listing(side).filter(|l| l.url == form.server_url.trim());
    let problem = form.server_url_problem();
    egui::Grid::new(("server_form", side.as_str()))
        .num_columns(2)
        .spacing([8.0, 4.0])
        .min_col_width(FORM_LABEL_WIDTH)
        .show(ui, |ui| {
            field(
                ui,
                "Server URL",
                &mut form.server_url,
                "http://gpu-box:8000/v1",
            );
            let key_field = field(
                ui,
                "API key variable",
                &mut form.api_key_env,
                DEFAULT_KEY_ENV,
            );
            if key_field.changed() {
                form.check_key_env();
                if form.key_env_note.is_some() {
                    // What was discarded must not come back with undo either.
                    if let Some(mut state) = egui::TextEdit::load_state(ui.ctx(), key_field.id) {
                        state.clear_undoer();
                        state.store(ui.ctx(), key_field.id);
                    }
                }
            }
            ui.label("");
            ui.add(egui::Label::new(egui::RichText::new(key_env_words(form)).weak()).wrap());
            ui.end_row();
            ui.label("");
            ui.horizontal(|ui| {
                let button = ui
                    .add_enabled(
                        !asking && problem.is_none(),
                        egui::Button::new("List models"),
                    )
                    .on_hover_text("Ask the server for the models it serves (GET /v1/models)");
                let button = match &problem {
                    Some(p) => button.on_disabled_hover_text(p),
                    None => button,
                };
                if button.clicked() {
                    commands.push(Command::ListModels(side));
                }
                if asking {
                    ui.spinner();
                    ui.weak(format!(
                        "asking {}/models…",
                        form.server_url.trim().trim_end_matches('/')
                    ));
                } else if let Some(models) = listing.and_then(|l| l.models_for(form)) {
                    ui.weak(match models.len() {
                        1 => "1 model served".to_owned(),
                        n => format!("{n} models served"),
                    });
                }
            });
            ui.end_row();
        });
    if let Some(note) = &form.key_env_note {
        problem_ui(ui, note);
    }
    // Again: the URL may have changed in the grid above.
    let problem = form.server_url_problem();
    if let (Some(p), false) = (&problem, form.server_url.trim().is_empty()) {
        problem_ui(ui, p);
    }
    if let Some(Err(e)) = listing.map(|l| &l.models) {
        problem_ui(ui, &format!("Could not list the served models: {e}"));
    }
    let listed = listing.and_then(|l| l.models_for(form));
    egui::Grid::new(("served_model_form", side.as_str()))
        .num_columns(2)
        .spacing([8.0, 4.0])
        .min_col_width(FORM_LABEL_WIDTH)
        .show(ui, |ui| {
            let l = ui.label("Served model");
            match listed {
                Some(models) => {
                    let shown = if form.served_model.trim().is_empty() {
                        "choose a model".to_owned()
                    } else {
                        form.served_model.clone()
                    };
                    egui::ComboBox::from_id_salt(("served_model", side.as_str()))
                        .selected_text(shown)
                        .width(ui.available_width())
                        .show_ui(ui, |ui| {
                            for m in models {
                                ui.selectable_value(&mut form.served_model, m.id.clone(), &m.id);
                            }
                        })
                        .response
                        .labelled_by(l.id);
                    ui.end_row();
                }
                None => {
                    ui.add(
                        egui::TextEdit::singleline(&mut form.served_model)
                            .hint_text("List models, or type its name (empty: the only one)")
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(l.id);
                    ui.end_row();
                }
            }
            field(
                ui,
                "Declared SHA-256",
                &mut form.declared_sha256,
                "optional: the weights' hash as the vendor states it",
            )
            .on_hover_text(
                "Recorded in the report as declared by the vendor; aligndiff cannot check a \
                 server's weights",
            );
        });
    if let Some(models) = listed {
        let wanted = form.served_model.trim();
        if !wanted.is_empty() && !models.iter().any(|m| m.id == wanted) {
            problem_ui(
                ui,
                &format!(
                    "The server does not list `{wanted}`; it serves {}.",
                    models
                        .iter()
                        .map(|m| format!("`{}`", m.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    commands
}

/// The served model's card: from the server's list, else from the last run's connection.
pub fn card_ui(ui: &mut egui::Ui, rt: &Runtime, form: &SideForm, side: Side) -> Vec<Command> {
    let wanted = form.served_model.trim();
    let listed = rt
        .listing(side)
        .and_then(|l| l.models_for(form))
        .and_then(|models| match models {
            [only] if wanted.is_empty() => Some(only),
            _ => models.iter().find(|m| m.id == wanted),
        })
        .map(|m| &m.card);
    let source = serve::public_source(&form.server_source());
    let connected = match rt.card(side) {
        Some(Ok(c)) if c.served.as_deref() == Some(source.as_str()) => Some(c),
        _ => None,
    };
    match listed.or(connected) {
        Some(card) => card::ui(ui, card, side),
        None => Vec::new(),
    }
}
