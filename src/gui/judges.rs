//! How far to trust each judge: the judges of the audit, their agreement (Cohen's kappa,
//! confusion matrix, per category) and every disagreement, which opens the answers side by side.

use eframe::egui;

use super::command::Command;
use super::format::source_name;
use super::runtime::Runtime;
use super::widgets::no_result_ui;
use crate::audit::Agreement;
use crate::audit::{AuditResult, Side};
use crate::judge::Label;

fn kappa_text(k: Option<f64>) -> String {
    k.map_or_else(|| "—".to_owned(), |k| format!("{k:.3}"))
}

fn label_text(l: Label) -> &'static str {
    l.as_str()
}

/// Draw the judges view.
pub fn ui(ui: &mut egui::Ui, rt: &Runtime) -> Vec<Command> {
    let mut commands = Vec::new();
    let Some(r) = &rt.result else {
        return no_result_ui(ui);
    };
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            judges_table(r, ui);
            ui.add_space(8.0);
            judge_error_ui(r, ui);
            ui.add_space(12.0);
            if r.agreement.is_empty() {
                ui.weak(
                    "One judge only: add judges (--judge on the CLI, judges = [...] in a plan) or \
                     overrule verdicts to compare judges.",
                );
            }
            for a in &r.agreement {
                commands.extend(agreement_ui(r, a, ui));
                ui.add_space(10.0);
            }
            if let Some(h) = &r.harm_probe {
                ui.separator();
                ui.strong("Self-rated harm (0–9, expected rating from digit probabilities)");
                ui.label(format!(
                    "reference {:.2} → candidate {:.2}, shift {:+.2} [{:+.2}, {:+.2}] over {} harmful prompts ({} unrated)",
                    h.reference_mean, h.candidate_mean, h.shift, h.shift_ci[0], h.shift_ci[1], h.n, h.unrated
                ));
            }
        });
    commands
}

/// The primary judge's measured error, its 2×2 table, and the answers that may game it.
fn judge_error_ui(r: &AuditResult, ui: &mut egui::Ui) {
    ui.strong("How wrong the primary judge is");
    ui.add(egui::Label::new(crate::report::format::judge_error_sentence(r)).wrap());
    if let Some(e) = &r.judge_error {
        let c = &e.counts;
        egui::Grid::new("judge_error_table")
            .striped(true)
            .num_columns(3)
            .show(ui, |ui| {
                ui.strong("");
                ui.strong("judged fulfilled");
                ui.strong("judged not fulfilled");
                ui.end_row();
                ui.label("labelled fulfilled");
                ui.label(c.fulfilled_judged_fulfilled.to_string());
                ui.label(c.fulfilled_judged_refused.to_string());
                ui.end_row();
                ui.label("labelled not fulfilled");
                ui.label(c.refused_judged_fulfilled.to_string());
                ui.label(c.refused_judged_refused.to_string());
                ui.end_row();
            });
    }
    let gaming = crate::report::format::gaming_answers(r).len();
    if gaming > 0 {
        ui.label(format!(
            "{gaming} answer(s) speak to the evaluator or mix a refusal with content: they lead \
             the review queue in Side by side."
        ));
    }
}

fn judges_table(r: &AuditResult, ui: &mut egui::Ui) {
    ui.heading("Judges");
    ui.weak("The first judge is primary: the statistics use its verdicts, with people's overrides applied.");
    egui::Grid::new("judges_table")
        .striped(true)
        .num_columns(7)
        .spacing([14.0, 4.0])
        .show(ui, |ui| {
            for h in [
                "judge",
                "kind",
                "model / template",
                "judged",
                "reused",
                "unparsed",
                "answers/min",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for (i, j) in r.judges.iter().enumerate() {
                let id = if i == 0 {
                    format!("{} (primary)", j.id)
                } else {
                    j.id.clone()
                };
                ui.label(id)
                    .on_hover_text(format!("fingerprint {}", j.fingerprint));
                ui.label(j.kind.as_str());
                let mut what = Vec::new();
                if let Some(m) = &j.model_source {
                    what.push(source_name(m));
                }
                if let Some(t) = &j.template {
                    what.push(t.clone());
                }
                let text = if what.is_empty() {
                    "—".to_owned()
                } else {
                    what.join(" · ")
                };
                let mut hover = format!("spec: {}", j.spec);
                if let Some(sha) = &j.template_sha256 {
                    hover.push_str(&format!("\ntemplate sha256: {sha}"));
                }
                if let Some(d) = &j.decoding {
                    hover.push_str(&format!("\ndecoding: {d}"));
                }
                ui.label(text).on_hover_text(hover);
                ui.label(j.judged.to_string());
                ui.label(j.reused.to_string());
                if j.unparsed > 0 {
                    ui.colored_label(ui.visuals().warn_fg_color, j.unparsed.to_string());
                } else {
                    ui.label("0");
                }
                let per_minute = j.per_minute();
                ui.label(if j.judged > 0 && per_minute > 0.0 {
                    format!("{per_minute:.1}")
                } else {
                    "—".to_owned()
                });
                ui.end_row();
            }
        });
}

fn confusion_ui(ui: &mut egui::Ui, a: &str, b: &str, m: [[u64; 2]; 2], id: &str) {
    egui::Grid::new(("confusion", id))
        .num_columns(3)
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            ui.weak(format!("{a} ↓ / {b} →"));
            ui.weak("refused");
            ui.weak("complied");
            ui.end_row();
            for (i, (name, row)) in ["refused", "complied"].iter().zip(m).enumerate() {
                ui.weak(*name);
                for (j, count) in row.iter().enumerate() {
                    let v = count.to_string();
                    if i == j {
                        ui.label(v);
                    } else {
                        ui.strong(v);
                    }
                }
                ui.end_row();
            }
        });
}

fn agreement_ui(r: &AuditResult, a: &Agreement, ui: &mut egui::Ui) -> Vec<Command> {
    let mut commands = Vec::new();
    let pair = format!("{} vs {}", a.a, a.b);
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.strong(&pair);
            ui.label(format!(
                "κ = {} · agree on {:.1}% of {} answers · {} disagreements · {} left out (no or unparsed verdict)",
                kappa_text(a.kappa),
                a.observed * 100.0,
                a.n,
                a.disagreements.len(),
                a.excluded
            ));
        });
        confusion_ui(ui, &a.a, &a.b, a.confusion, &pair);
        egui::CollapsingHeader::new(format!("Per category ({})", a.categories.len()))
            .id_salt(("agreement_categories", &pair))
            .show(ui, |ui| {
                egui::Grid::new(("agreement_categories_grid", &pair))
                    .striped(true)
                    .num_columns(4)
                    .show(ui, |ui| {
                        for h in ["category", "n", "κ", "disagree"] {
                            ui.strong(h);
                        }
                        ui.end_row();
                        for c in &a.categories {
                            ui.label(format!("{} {}", c.id, c.name));
                            ui.label(c.n.to_string());
                            ui.label(kappa_text(c.kappa));
                            ui.label((c.confusion[0][1] + c.confusion[1][0]).to_string());
                            ui.end_row();
                        }
                    });
            });
        egui::CollapsingHeader::new(format!("Disagreements ({})", a.disagreements.len()))
            .id_salt(("disagreements", &pair))
            .default_open(!a.disagreements.is_empty() && a.disagreements.len() <= 50)
            .show(ui, |ui| {
                ui.weak("Click one to read both answers side by side.");
                for d in a.disagreements.iter().take(500) {
                    let prompt = r
                        .rows
                        .get(d.row)
                        .map(|row| row.prompt.lines().next().unwrap_or_default())
                        .unwrap_or_default();
                    let side = match d.side {
                        Side::Reference => "reference",
                        Side::Candidate => "candidate",
                    };
                    let text = format!(
                        "{} · {} answer · {}: {} / {}: {} · {}",
                        d.prompt_id,
                        side,
                        a.a,
                        label_text(d.a),
                        a.b,
                        label_text(d.b),
                        prompt
                    );
                    if ui
                        .add(egui::Button::new(text).truncate().frame_when_inactive(false))
                        .clicked()
                    {
                        commands.push(Command::OpenRow(d.row));
                    }
                }
                if a.disagreements.len() > 500 {
                    ui.weak(format!("… and {} more (all are in report.json)", a.disagreements.len() - 500));
                }
            });
    });
    commands
}
