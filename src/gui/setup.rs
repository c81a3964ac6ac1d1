//! The setup panel: the two models (files, a server, or answers files), the prompt packs and categories, generation settings, and the
//! Run / Stop / Resume buttons.

use eframe::egui;

use super::card;
use super::command::Command;
use super::runtime::Runtime;
use super::server_picker;
use super::side_form::{ModelPlace, SideForm};
use super::state::{category_key, DialogTarget, Persisted, Settings};
use super::widgets::{field, FORM_LABEL_WIDTH};
use crate::audit::Side;
use crate::packs::PromptKind;

/// Draw the setup panel. `form`, the saved setup, is this panel's own buffer: its fields are
/// edited in place and take effect when a command (`Run`, `Inspect`, `Export`) reads them.
pub fn ui(ui: &mut egui::Ui, rt: &Runtime, form: &mut Persisted) -> Vec<Command> {
    let mut commands = Vec::new();
    let running = rt.running();
    egui::Panel::bottom("run_buttons").show(ui, |ui| commands.extend(run_buttons_ui(ui, rt, form)));
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for side in [Side::Reference, Side::Candidate] {
                let title = match side {
                    Side::Reference => "Reference model",
                    Side::Candidate => "Candidate model",
                };
                egui::CollapsingHeader::new(egui::RichText::new(title).strong())
                    .default_open(true)
                    .show(ui, |ui| commands.extend(model_ui(ui, rt, form, side)));
            }
            egui::CollapsingHeader::new(egui::RichText::new("Prompt packs").strong())
                .default_open(true)
                .show(ui, |ui| commands.extend(packs_ui(ui, rt, form)));
            egui::CollapsingHeader::new(egui::RichText::new("Categories").strong())
                .default_open(false)
                .show(ui, |ui| categories_ui(ui, rt, form));
            egui::CollapsingHeader::new(egui::RichText::new("Generation").strong())
                .default_open(true)
                .show(ui, |ui| settings_ui(ui, running, &mut form.settings));
            egui::CollapsingHeader::new(egui::RichText::new("Judge specs").strong())
                .default_open(false)
                .show(ui, |ui| judges_ui(ui, running, form));
            egui::CollapsingHeader::new(egui::RichText::new("Release gate").strong())
                .default_open(false)
                .show(ui, |ui| {
                    commands.extend(gate_ui(ui, running, &mut form.gate))
                });
        });
    commands
}

fn model_ui(ui: &mut egui::Ui, rt: &Runtime, setup: &mut Persisted, side: Side) -> Vec<Command> {
    let mut commands = Vec::new();
    let running = rt.running();
    let form = setup.side_mut(side);
    ui.add_enabled_ui(!running, |ui| {
        egui::Grid::new(("model_place", side.as_str()))
            .num_columns(2)
            .spacing([8.0, 4.0])
            .min_col_width(FORM_LABEL_WIDTH)
            .show(ui, |ui| {
                ui.label("Model from");
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut form.place, ModelPlace::Files, "Files or hub")
                        .on_hover_text(
                            "A GGUF file, a model folder or a hub id, loaded by aligndiff",
                        );
                    ui.selectable_value(&mut form.place, ModelPlace::Server, "Server")
                        .on_hover_text(
                            "An OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, \
                             Ollama): aligndiff sends the prompts and sees only the answers",
                        );
                });
                ui.end_row();
            });
        if form.on_server() {
            commands.extend(server_picker::form_ui(ui, rt, form, side));
        } else {
            commands.extend(files_ui(ui, form, side));
        }
        egui::Grid::new(("model_form", side.as_str()))
            .num_columns(2)
            .spacing([8.0, 4.0])
            .min_col_width(FORM_LABEL_WIDTH)
            .show(ui, |ui| {
                field(ui, "Answers file", &mut form.answers, "instead of a model: answers.jsonl / .csv");
                ui.label("");
                if ui
                    .small_button("Answers file…")
                    .on_hover_text("Answers made elsewhere (an API, another harness): judged and compared like generated ones; see docs/IMPORT.md")
                    .clicked()
                {
                    commands.push(Command::Browse(DialogTarget::Answers(side)));
                }
                ui.end_row();
                let l = ui.label("System prompt");
                ui.add(
                    egui::TextEdit::multiline(&mut form.system)
                        .hint_text("optional; sent with every request")
                        .desired_rows(2)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(l.id);
                ui.end_row();
            });
    });
    let form = setup.side(side);
    if form.on_server() {
        commands.extend(server_picker::card_ui(ui, rt, form, side));
        ui.add_space(6.0);
        return commands;
    }
    ui.horizontal(|ui| {
        let inspecting = rt.tasks.inspecting(side);
        let button = ui.add_enabled(
            !inspecting && !form.source.trim().is_empty() && form.answers.trim().is_empty(),
            egui::Button::new("Inspect"),
        );
        if button
            .on_hover_text("Load the model to check its files, architecture and fingerprint")
            .clicked()
        {
            commands.push(Command::Inspect(side));
        }
        if inspecting {
            ui.spinner();
            ui.weak("loading and hashing…");
        }
    });
    match rt.card(side) {
        // A served model's card (from a run) belongs to the server form.
        Some(Ok(card)) if card.served.is_none() => commands.extend(card::ui(ui, card, side)),
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("⚠ {e}"));
        }
        _ => {}
    }
    ui.add_space(6.0);
    commands
}

/// A model from files or the hub: its source, revision and LoRA adapter.
fn files_ui(ui: &mut egui::Ui, form: &mut SideForm, side: Side) -> Vec<Command> {
    let mut commands = Vec::new();
    egui::Grid::new(("files_form", side.as_str()))
        .num_columns(2)
        .spacing([8.0, 4.0])
        .min_col_width(FORM_LABEL_WIDTH)
        .show(ui, |ui| {
            field(
                ui,
                "Source",
                &mut form.source,
                "model.gguf, a folder, or hf:owner/name",
            );
            ui.label("");
            ui.horizontal(|ui| {
                if ui.small_button("GGUF file…").clicked() {
                    commands.push(Command::Browse(DialogTarget::Model(side)));
                }
                if ui.small_button("Model folder…").clicked() {
                    commands.push(Command::Browse(DialogTarget::ModelFolder(side)));
                }
            });
            ui.end_row();
            if form.source.trim_start().starts_with("hf:") {
                field(
                    ui,
                    "Revision",
                    &mut form.revision,
                    "commit, tag or branch (pin it)",
                );
            }
            field(ui, "LoRA adapter", &mut form.lora, "optional PEFT folder");
            ui.label("");
            if ui.small_button("Adapter folder…").clicked() {
                commands.push(Command::Browse(DialogTarget::Lora(side)));
            }
            ui.end_row();
        });
    commands
}

fn packs_ui(ui: &mut egui::Ui, rt: &Runtime, form: &mut Persisted) -> Vec<Command> {
    let mut commands = Vec::new();
    let running = rt.running();
    let offered: Vec<String> = crate::packs::builtin_names()
        .into_iter()
        .map(str::to_owned)
        .chain(form.pack_files.iter().cloned())
        .collect();
    ui.add_enabled_ui(!running, |ui| {
        for name in &offered {
            let mut selected = form.packs.contains(name);
            ui.horizontal(|ui| {
                let title = match rt.packs.pack(name) {
                    Some(p) => format!(
                        "{} · {} prompts · {} categories",
                        p.id,
                        p.prompts.len(),
                        p.categories.len()
                    ),
                    None => name.clone(),
                };
                let origin = rt
                    .packs
                    .pack(name)
                    .map(|p| p.origin.clone())
                    .unwrap_or_default();
                let checkbox = ui.checkbox(&mut selected, title);
                if checkbox.on_hover_text(origin).changed() {
                    if selected {
                        form.packs.push(name.clone());
                    } else {
                        form.packs.retain(|p| p != name);
                    }
                }
                if rt.packs.pack(name).is_none() && !rt.packs.pack_failed(name) {
                    ui.spinner();
                }
                if form.pack_files.contains(name)
                    && ui
                        .small_button("✖")
                        .on_hover_text("Forget this pack file")
                        .clicked()
                {
                    commands.push(Command::ForgetPackFile(name.clone()));
                }
            });
            if let Some(e) = rt.packs.pack_error(name) {
                ui.colored_label(ui.visuals().error_fg_color, format!("⚠ {e}"));
            }
        }
        if ui.button("Open pack file…").clicked() {
            commands.push(Command::Browse(DialogTarget::PackFile));
        }
    });
    commands
}

fn categories_ui(ui: &mut egui::Ui, rt: &Runtime, form: &mut Persisted) {
    ui.weak("Uncheck categories to leave them out; mark the ones the vendor says the fine-tune targeted.");
    let running = rt.running();
    let names = form.packs.clone();
    ui.add_enabled_ui(!running, |ui| {
        for name in &names {
            let Some(pack) = rt.packs.pack(name) else {
                continue;
            };
            let counts = pack.counts();
            let included = pack
                .categories
                .iter()
                .filter(|c| !form.excluded.contains(&category_key(&pack.id, &c.id)))
                .count();
            egui::CollapsingHeader::new(format!(
                "{} · {included} of {} categories",
                pack.id,
                pack.categories.len()
            ))
            .id_salt(("pack_categories", name))
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    if ui.small_button("All").clicked() {
                        for c in &pack.categories {
                            form.excluded.remove(&category_key(&pack.id, &c.id));
                        }
                    }
                    if ui.small_button("None").clicked() {
                        for c in &pack.categories {
                            form.excluded.insert(category_key(&pack.id, &c.id));
                        }
                    }
                });
                for c in &pack.categories {
                    let key = category_key(&pack.id, &c.id);
                    let harmful = pack
                        .prompts
                        .iter()
                        .find(|p| p.category == c.id)
                        .is_some_and(|p| p.kind == PromptKind::Harmful);
                    ui.horizontal(|ui| {
                        let mut on = !form.excluded.contains(&key);
                        let n = counts.get(c.id.as_str()).copied().unwrap_or(0);
                        if ui
                            .checkbox(&mut on, format!("{} {} ({n})", c.id, c.name))
                            .changed()
                        {
                            if on {
                                form.excluded.remove(&key);
                            } else {
                                form.excluded.insert(key.clone());
                            }
                        }
                        if harmful {
                            let mut targeted = form.targeted.contains(&key);
                            if ui
                                .toggle_value(&mut targeted, "targeted")
                                .on_hover_text("The vendor says the fine-tune was meant to change this category")
                                .changed()
                            {
                                if targeted {
                                    form.targeted.insert(key.clone());
                                } else {
                                    form.targeted.remove(&key);
                                }
                            }
                        }
                    });
                }
            });
        }
    });
}

fn settings_ui(ui: &mut egui::Ui, running: bool, s: &mut Settings) {
    ui.add_enabled_ui(!running, |ui| {
        egui::Grid::new("settings")
            .num_columns(2)
            .spacing([8.0, 4.0])
            .show(ui, |ui| {
                let l = ui.label("Max new tokens");
                ui.add(egui::DragValue::new(&mut s.max_new_tokens).range(1..=8192))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Prompts per category");
                ui.add(
                    egui::DragValue::new(&mut s.per_category)
                        .range(0..=100_000)
                        .custom_formatter(|v, _| {
                            if v < 1.0 {
                                "all".into()
                            } else {
                                format!("{v:.0}")
                            }
                        }),
                )
                .labelled_by(l.id)
                .on_hover_text(
                    "Use only the first N prompts of each category (a quick screen); 0 = all",
                );
                ui.end_row();
                let l = ui.label("Samples per prompt");
                ui.add(egui::DragValue::new(&mut s.samples).range(1..=64))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Temperature");
                ui.add(
                    egui::DragValue::new(&mut s.temperature)
                        .range(0.0..=2.0)
                        .speed(0.05),
                )
                .labelled_by(l.id)
                .on_hover_text("0 = greedy; more than one sample needs a temperature above 0");
                ui.end_row();
                let l = ui.label("Seed");
                ui.add(egui::DragValue::new(&mut s.seed)).labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Batch size");
                ui.add(egui::DragValue::new(&mut s.batch_size).range(1..=256))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Device");
                egui::ComboBox::from_id_salt("device")
                    .selected_text(s.device.clone())
                    .show_ui(ui, |ui| {
                        for d in ["cpu", "auto", "cuda", "metal"] {
                            ui.selectable_value(&mut s.device, d.to_owned(), d);
                        }
                    })
                    .response
                    .labelled_by(l.id);
                ui.end_row();
            });
    });
}

fn judges_ui(ui: &mut egui::Ui, running: bool, form: &mut Persisted) {
    ui.weak(
        "One spec per line, the first is primary: refusal · rubric:fulfillment@MODEL · \
         rubric:strongreject@MODEL · llama-guard:MODEL · qwen3guard:MODEL · human:labels.csv",
    );
    let mut remove = None;
    ui.add_enabled_ui(!running, |ui| {
        for (i, spec) in form.judges.iter_mut().enumerate() {
            ui.horizontal(|ui| {
                let l = ui.label(format!("Judge {}", i + 1));
                ui.add(
                    egui::TextEdit::singleline(spec)
                        .hint_text("refusal")
                        .desired_width(ui.available_width() - 30.0),
                )
                .labelled_by(l.id);
                if ui
                    .small_button("x")
                    .on_hover_text("Remove this judge")
                    .clicked()
                {
                    remove = Some(i);
                }
            });
        }
        if ui.small_button("Add judge").clicked() {
            form.judges.push(String::new());
        }
        ui.checkbox(
            &mut form.harm_probe,
            "Self-rated harm probe (both models rate each request 0–9)",
        );
    });
    if let Some(i) = remove {
        form.judges.remove(i);
    }
}

fn gate_ui(ui: &mut egui::Ui, running: bool, gate: &mut String) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.weak("Thresholds (TOML, see examples/gate.toml); the overview then says PASSED or FAILED.");
    ui.add_enabled_ui(!running, |ui| {
        egui::Grid::new("gate").num_columns(2).show(ui, |ui| {
            field(ui, "Gate file", gate, "optional gate.toml");
            ui.label("");
            if ui.small_button("Gate file…").clicked() {
                commands.push(Command::Browse(DialogTarget::GateFile));
            }
            ui.end_row();
        });
    });
    commands
}

fn run_buttons_ui(ui: &mut egui::Ui, rt: &Runtime, form: &Persisted) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.add_space(4.0);
    ui.horizontal(|ui| match &rt.job {
        Some(job) => {
            let label = if job.stopping { "Stopping…" } else { "Stop" };
            if ui
                .add_enabled(!job.stopping, egui::Button::new(label))
                .on_hover_text("Stop after the current step; answers stored so far are kept")
                .clicked()
            {
                commands.push(Command::Stop);
            }
        }
        None => {
            let ready = form.reference.is_set() && form.candidate.is_set();
            if ui
                .add_enabled(
                    ready,
                    egui::Button::new(egui::RichText::new("Run audit").strong()),
                )
                .on_disabled_hover_text("Pick a reference and a candidate model first")
                .clicked()
            {
                commands.push(Command::Run);
            }
            if let Some(plan) = super::runs::unfinished(&rt.runs) {
                if ui
                    .button("Resume")
                    .on_hover_text("Continue the last unfinished run; stored answers are reused")
                    .clicked()
                {
                    commands.push(Command::Resume(Box::new(plan)));
                }
            }
        }
    });
    ui.add_space(4.0);
    commands
}
