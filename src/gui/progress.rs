//! The run view: stage, a progress bar per model with counts, tokens/s and ETA, and the answer
//! being generated as it streams in.

use eframe::egui;

use super::command::Command;
use super::format::{capitalise, count, duration, served_name};
use super::job::{Job, Judging, StreamedAnswer};
use super::runtime::Runtime;
use super::state::View;
use crate::audit::Side;

/// Draw the run view.
pub fn ui(ui: &mut egui::Ui, rt: &Runtime) -> Vec<Command> {
    let mut commands = Vec::new();
    if let Some(f) = &rt.failure {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.colored_label(
                ui.visuals().error_fg_color,
                "The last run stopped with an error",
            );
            ui.add(egui::Label::new(f).wrap());
            ui.weak(
                "Answers stored before the error are kept; fix the problem and press Run again.",
            );
        });
        ui.add_space(8.0);
    }
    match &rt.job {
        Some(job) => job_ui(job, ui),
        None => {
            ui.add_space(24.0);
            ui.vertical_centered(|ui| {
                if rt.result.is_some() {
                    ui.heading("The audit is complete");
                    if ui.button("Show the overview").clicked() {
                        commands.push(Command::Show(View::Overview));
                    }
                } else {
                    ui.heading("No run yet: pick two models");
                    ui.add_space(8.0);
                    ui.label(
                        "Choose the reference (the aligned model the vendor started from) and the \
                         candidate (the customised model) on the left, pick prompt packs, and press \
                         Run audit. Answers are stored as they are generated, so a stopped run \
                         resumes where it left off.",
                    );
                }
            });
        }
    }
    commands
}

fn job_ui(job: &Job, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.heading(capitalise(&job.stage));
    });
    ui.add_space(8.0);
    let elapsed = job.started.elapsed().as_secs_f64();
    let mut generated = 0usize;
    let mut remaining = 0usize;
    for (i, side) in [Side::Reference, Side::Candidate].into_iter().enumerate() {
        let name = match side {
            Side::Reference => "Reference",
            Side::Candidate => "Candidate",
        };
        match job.progress[i] {
            Some(p) => {
                generated += p.done.saturating_sub(p.cached);
                remaining += p.total.saturating_sub(p.done);
                let fraction = if p.total > 0 {
                    p.done as f32 / p.total as f32
                } else {
                    0.0
                };
                ui.label(format!(
                    "{name}: {} of {} answers ({} from the store) · {:.1} tokens/s",
                    p.done, p.total, p.cached, p.tokens_per_s
                ));
                ui.add(egui::ProgressBar::new(fraction).show_percentage());
                if let Some(served) = &job.served[i] {
                    let t = job.traffic[i].unwrap_or_default();
                    ui.label(
                        egui::RichText::new(format!(
                            "{} · {} in flight · {} · {:.1} answers/min",
                            served_name(served).unwrap_or_else(|| served.clone()),
                            t.in_flight,
                            count(t.retries, "retry", "retries"),
                            t.per_minute
                        ))
                        .weak(),
                    );
                }
            }
            None => {
                remaining += job.prompts.len();
                ui.label(format!("{name}: waiting"));
                ui.add(egui::ProgressBar::new(0.0));
            }
        }
        ui.add_space(4.0);
    }
    if let Some(Judging {
        judge,
        done,
        total,
        reused,
        per_minute,
    }) = &job.judging
    {
        ui.label(format!(
            "Judge {judge}: {done} of {total} answers ({reused} from the store) · {per_minute:.1} answers/min"
        ));
        ui.add(
            egui::ProgressBar::new(if *total > 0 {
                *done as f32 / *total as f32
            } else {
                0.0
            })
            .show_percentage(),
        );
        ui.add_space(4.0);
    }
    if generated > 0 && elapsed > 0.0 {
        let rate = generated as f64 / elapsed;
        ui.label(format!(
            "{:.1} answers/min · about {} left",
            rate * 60.0,
            duration(remaining as f64 / rate)
        ));
    } else {
        ui.weak(format!("elapsed {}", duration(elapsed)));
    }
    ui.add_space(12.0);
    ui.separator();
    match &job.stream {
        Some(StreamedAnswer { side, item, text }) => {
            ui.strong(format!(
                "{} is answering prompt {} of {}",
                match side {
                    Side::Reference => "The reference",
                    Side::Candidate => "The candidate",
                },
                item + 1,
                job.prompts.len()
            ));
            if let Some(p) = job.prompts.get(*item) {
                egui::Frame::group(ui.style()).show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.add(egui::Label::new(egui::RichText::new(p).italics()).wrap());
                });
            }
            egui::ScrollArea::vertical()
                .stick_to_bottom(true)
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    ui.add(egui::Label::new(egui::RichText::new(text).monospace()).wrap());
                });
        }
        None => {
            ui.weak("Answers appear here as they are generated.");
        }
    }
}
