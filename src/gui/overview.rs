//! The overview: a summary strip, the per-category chart (change sorted by size, both models'
//! fulfillment with intervals, significant categories marked), and the prompt table below it.

use eframe::egui;
use egui_plot::{Bar, BarChart, GridMark, Line, Plot, PlotPoints, Points, Text};

use super::command::Command;
use super::runtime::Runtime;
use super::table::{self, TableState};
use super::widgets::{no_result_ui, FLAGGED, GOOD};
use crate::audit::{AuditResult, CategoryStats};
use crate::packs::PromptKind;
use crate::report::format::{
    gate_word, interval, is_significant, judge_error_sentence, p_value, pct, points, primary_judge,
    rates_with_ci, tone, Tone, SIGNIFICANCE,
};

/// The colour of a change that reads worse (or better) for safety; grey when not significant.
fn tone_color(tone: Tone) -> Option<egui::Color32> {
    match tone {
        Tone::Worse => Some(FLAGGED),
        Tone::Better => Some(GOOD),
        Tone::Unchanged => None,
    }
}
const REFERENCE_COLOR: egui::Color32 = egui::Color32::from_rgb(96, 160, 232);
const CANDIDATE_COLOR: egui::Color32 = egui::Color32::from_rgb(240, 150, 60);
const NOT_SIGNIFICANT: egui::Color32 = egui::Color32::from_gray(130);

/// Draw the overview.
pub fn ui(ui: &mut egui::Ui, rt: &Runtime, table: &mut TableState) -> Vec<Command> {
    let mut commands = Vec::new();
    let Some(result) = &rt.result else {
        return no_result_ui(ui);
    };
    summary_ui(result, ui);
    ui.add_space(4.0);
    let mut order: Vec<&CategoryStats> = result.categories.iter().collect();
    order.sort_by(|a, b| b.delta.total_cmp(&a.delta).then_with(|| a.id.cmp(&b.id)));
    egui::Panel::top("chart")
        .resizable(true)
        .default_size(340.0)
        .size_range(160.0..=900.0)
        .show(ui, |ui| {
            commands.extend(chart_ui(&order, table.category.as_deref(), ui));
        });
    commands.extend(table::ui(ui, rt, table));
    commands
}

fn stat(ui: &mut egui::Ui, title: &str, value: &str, detail: &str, color: Option<egui::Color32>) {
    // Cards never wrap their text: a card that does not fit moves to the next line whole (the
    // wrapping layout decides on the size asked for, so ask for the card's own width).
    let size = |text: &str, font: egui::FontId| {
        ui.ctx().fonts_mut(|f| {
            f.layout_no_wrap(text.to_owned(), font, egui::Color32::WHITE)
                .size()
        })
    };
    let lines = [
        size(title, egui::TextStyle::Body.resolve(ui.style())),
        size(value, egui::FontId::proportional(18.0)),
        size(detail, egui::TextStyle::Small.resolve(ui.style())),
    ];
    let margin = 2.0 * ui.spacing().item_spacing.x + 12.0;
    let width = lines.iter().map(|s| s.x).fold(0.0, f32::max) + margin;
    let height = lines.iter().map(|s| s.y).sum::<f32>() + 2.0 * ui.spacing().item_spacing.y + 12.0;
    ui.allocate_ui_with_layout(
        egui::vec2(width, height),
        egui::Layout::top_down(egui::Align::Min),
        |ui| stat_card_ui(ui, title, value, detail, color),
    );
}

fn stat_card_ui(
    ui: &mut egui::Ui,
    title: &str,
    value: &str,
    detail: &str,
    color: Option<egui::Color32>,
) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.vertical(|ui| {
            ui.add(egui::Label::new(egui::RichText::new(title).weak()).extend());
            let v = egui::RichText::new(value).size(18.0).strong();
            ui.add(
                egui::Label::new(match color {
                    Some(c) => v.color(c),
                    None => v,
                })
                .extend(),
            );
            ui.add(egui::Label::new(egui::RichText::new(detail).small()).extend());
        });
    });
}

fn summary_ui(r: &AuditResult, ui: &mut egui::Ui) {
    let o = &r.overall;
    let judge = primary_judge(r);
    ui.add(egui::Label::new(egui::RichText::new(judge_error_sentence(r)).small()).wrap());
    ui.horizontal_wrapped(|ui| {
        stat(
            ui,
            "Harmful requests fulfilled",
            &format!(
                "{} → {}",
                pct(o.reference_fulfillment),
                pct(o.candidate_fulfillment)
            ),
            &format!("n = {} paired · judge: {judge}", o.n),
            None,
        );
        stat(
            ui,
            "Change",
            &points(o.delta),
            &interval(o),
            tone_color(tone(o, PromptKind::Harmful)),
        );
        stat(
            ui,
            "McNemar p",
            &p_value(o.mcnemar_p),
            "exact, paired",
            None,
        );
        match (&r.judge_error, &o.corrected) {
            (Some(_), Some(k)) if k.clipped => stat(
                ui,
                "Corrected for judge error",
                "does not fit",
                "the judge errs differently here: label 30+ answers",
                Some(FLAGGED),
            ),
            (Some(e), Some(k)) => stat(
                ui,
                "Corrected for judge error",
                &format!("{} → {}", pct(k.reference), pct(k.candidate)),
                &format!(
                    "change {} · judge sensitivity {}, specificity {} ({})",
                    points(k.delta),
                    pct(e.sensitivity),
                    pct(e.specificity),
                    match e.source {
                        crate::judge::accuracy::ErrorSource::AuditLabels => "your labels",
                        crate::judge::accuracy::ErrorSource::ShippedTestHalf => "labelled set",
                    }
                ),
                None,
            ),
            (Some(_), None) => stat(
                ui,
                "Corrected for judge error",
                "cannot correct",
                "the judge's error leaves nothing to correct with",
                Some(FLAGGED),
            ),
            (None, _) => stat(
                ui,
                "Judge error",
                "not measured",
                "label 30+ answers to measure it",
                None,
            ),
        }
        stat(
            ui,
            "Flips",
            &format!("↑{} ↓{}", o.flips_to_fulfill, o.flips_to_refuse),
            "refused→complied / complied→refused",
            None,
        );
        if let Some(or) = &r.over_refusal {
            stat(
                ui,
                "Over-refusal (benign)",
                &format!(
                    "{} → {}",
                    pct(or.reference_refusal_rate),
                    pct(or.candidate_refusal_rate)
                ),
                &format!(
                    "n = {}, p = {}",
                    or.overall.n,
                    p_value(or.overall.mcnemar_p)
                ),
                None,
            );
        }
        if let Some(d) = &r.drift {
            for (title, c) in [
                ("Targeted drift", &d.targeted),
                ("Untargeted drift", &d.untargeted),
            ] {
                stat(
                    ui,
                    title,
                    &points(c.delta),
                    &format!("n = {}, p = {}", c.n, p_value(c.mcnemar_p)),
                    None,
                );
            }
        }
        match &r.gate {
            Some(g) => stat(
                ui,
                "Gate",
                gate_word(g.passed),
                &format!("{} rule(s)", g.rules.len()),
                Some(if g.passed { GOOD } else { FLAGGED }),
            ),
            None => stat(ui, "Gate", "none", "no thresholds set", None),
        }
        stat(
            ui,
            "Human overrides",
            &r.overrides.to_string(),
            "verdicts a person overruled",
            None,
        );
    });
}

/// The category under the pointer, by its x position in the chart.
fn category_at(x: f64, count: usize) -> Option<usize> {
    let i = x.round();
    (i >= 0.0 && (x - i).abs() <= 0.45 && (i as usize) < count).then_some(i as usize)
}

fn chart_ui(order: &[&CategoryStats], filtered: Option<&str>, ui: &mut egui::Ui) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal_wrapped(|ui| {
        ui.strong("Per category, sorted by change in fulfillment");
        ui.weak("· bars: change with 95% paired CI · dots: fulfillment of");
        ui.colored_label(REFERENCE_COLOR, "reference");
        ui.weak("and");
        ui.colored_label(CANDIDATE_COLOR, "candidate");
        ui.weak(format!("· ★ Holm p < {SIGNIFICANCE} · click to filter"));
    });
    let ids: Vec<String> = order.iter().map(|c| c.id.clone()).collect();
    let n = order.len();
    let ids_for_axis = ids.clone();
    let response = Plot::new("categories_chart")
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .show_crosshair(false)
        .include_y(-1.0)
        .include_y(1.0)
        .include_x(-0.6)
        .include_x(n as f64 - 0.4)
        .y_axis_label("fulfillment / change")
        .y_axis_formatter(|m: GridMark, _| format!("{:.0}%", m.value * 100.0))
        .x_grid_spacer(move |_| {
            (0..n)
                .map(|i| GridMark {
                    value: i as f64,
                    // A large step makes egui_plot treat every mark as major, so each is labelled.
                    step_size: 10.0,
                })
                .collect()
        })
        .x_axis_formatter(move |m: GridMark, _| {
            let i = m.value.round();
            if (m.value - i).abs() < 1e-6 && i >= 0.0 {
                ids_for_axis.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .label_formatter(|_| None::<String>)
        .show(ui, |plot| {
            let bars: Vec<Bar> = order
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let color = tone_color(tone(c, PromptKind::Harmful)).unwrap_or(NOT_SIGNIFICANT);
                    let selected = filtered == Some(c.id.as_str());
                    let mut bar = Bar::new(i as f64, c.delta)
                        .width(0.6)
                        .fill(color.gamma_multiply(if selected { 1.0 } else { 0.55 }));
                    if selected {
                        bar = bar.stroke(egui::Stroke::new(2.0, egui::Color32::WHITE));
                    }
                    bar
                })
                .collect();
            plot.bar_chart(BarChart::new("change", bars).allow_hover(false));
            for (i, c) in order.iter().enumerate() {
                let x = i as f64;
                plot.line(
                    Line::new(
                        "",
                        PlotPoints::new(vec![[x, c.delta_ci[0]], [x, c.delta_ci[1]]]),
                    )
                    .color(egui::Color32::from_gray(200))
                    .width(1.0)
                    .allow_hover(false),
                );
                if is_significant(c) {
                    let y = c.delta_ci[1].max(c.candidate_ci[1]).max(c.reference_ci[1]) + 0.06;
                    plot.text(Text::new("", egui_plot::PlotPoint::new(x, y), "★").color(FLAGGED));
                }
            }
            let reference: Vec<[f64; 2]> = order
                .iter()
                .enumerate()
                .map(|(i, c)| [i as f64 - 0.22, c.reference_fulfillment])
                .collect();
            let candidate: Vec<[f64; 2]> = order
                .iter()
                .enumerate()
                .map(|(i, c)| [i as f64 + 0.22, c.candidate_fulfillment])
                .collect();
            plot.points(
                Points::new("reference", reference)
                    .radius(2.5)
                    .color(REFERENCE_COLOR)
                    .allow_hover(false),
            );
            plot.points(
                Points::new("candidate", candidate)
                    .radius(2.5)
                    .color(CANDIDATE_COLOR)
                    .allow_hover(false),
            );
        });
    let hovered = response
        .response
        .hover_pos()
        .map(|p| response.transform.value_from_position(p))
        .and_then(|p| category_at(p.x, n));
    if let Some(i) = hovered {
        if let Some(c) = order.get(i) {
            response.response.clone().on_hover_ui_at_pointer(|ui| {
                ui.strong(format!("{} {}", c.id, c.name));
                ui.label(format!("fulfillment {}", rates_with_ci(c)));
                ui.label(format!(
                    "change {} [{}, {}] · flips ↑{} ↓{}",
                    points(c.delta),
                    points(c.delta_ci[0]),
                    points(c.delta_ci[1]),
                    c.flips_to_fulfill,
                    c.flips_to_refuse
                ));
                ui.label(format!(
                    "McNemar p = {} · Holm p = {} · n = {}",
                    p_value(c.mcnemar_p),
                    p_value(c.holm_p),
                    c.n
                ));
                ui.weak("click to filter the table");
            });
            if response.response.clicked() {
                let id = c.id.clone();
                commands.push(Command::FilterCategory(
                    (filtered != Some(id.as_str())).then_some(id),
                ));
            }
        }
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::category_at;

    #[test]
    fn pointer_positions_map_to_the_nearest_category_and_gaps_to_none() {
        assert_eq!(category_at(0.1, 3), Some(0));
        assert_eq!(category_at(1.9, 3), Some(2));
        assert_eq!(category_at(1.5, 3), None);
        assert_eq!(category_at(3.0, 3), None);
        assert_eq!(category_at(-0.7, 3), None);
    }
}
