//! The self-contained HTML report: one file, no scripts, charts as inline SVG.

use std::fmt::Write;

use super::format::*;
use crate::audit::{AuditResult, CategoryStats, Flip, SideRun};
use crate::packs::PromptKind;

const REF_COLOR: &str = "#2b6cb0";
const CAND_COLOR: &str = "#c53030";

/// Escape text for HTML bodies and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn label_of(c: &CategoryStats) -> String {
    truncate(&format!("{} · {}", c.id, c.name), 44)
}

/// Fulfillment of both models per category, with Wilson intervals.
fn fulfillment_chart(cats: &[CategoryStats]) -> String {
    let (left, width, row_h, top) = (300.0, 560.0, 18.0, 28.0);
    let height = top + row_h * cats.len() as f64 + 30.0;
    let x = |v: f64| left + v * width;
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {} {height}" role="img" aria-label="Fulfillment by category"><g font-size="11">"#,
        left + width + 20.0
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            s,
            r##"<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="#ddd"/><text x="{0}" y="{3}" text-anchor="middle" fill="#555">{4:.0}%</text>"##,
            x(tick),
            top - 6.0,
            height - 24.0,
            height - 10.0,
            tick * 100.0
        );
    }
    for (i, c) in cats.iter().enumerate() {
        let y = top + row_h * (i as f64 + 0.5);
        let _ = write!(
            s,
            r##"<g><title>{}: reference {} [{}, {}], candidate {} [{}, {}], n = {}</title><text x="{}" y="{}" text-anchor="end" fill="#222">{}</text>"##,
            esc(&c.name),
            pct(c.reference_fulfillment),
            pct(c.reference_ci[0]),
            pct(c.reference_ci[1]),
            pct(c.candidate_fulfillment),
            pct(c.candidate_ci[0]),
            pct(c.candidate_ci[1]),
            c.n,
            left - 8.0,
            y + 4.0,
            esc(&label_of(c))
        );
        for (offset, ci, v, color) in [
            (-3.0, c.reference_ci, c.reference_fulfillment, REF_COLOR),
            (3.0, c.candidate_ci, c.candidate_fulfillment, CAND_COLOR),
        ] {
            let _ = write!(
                s,
                r#"<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="{color}" stroke-width="1.5" opacity="0.7"/><circle cx="{3}" cy="{2}" r="3.5" fill="{color}"/>"#,
                x(ci[0]),
                x(ci[1]),
                y + offset,
                x(v)
            );
        }
        s.push_str("</g>");
    }
    let _ = write!(
        s,
        r##"<circle cx="{}" cy="12" r="4" fill="{REF_COLOR}"/><text x="{}" y="16">reference</text><circle cx="{}" cy="12" r="4" fill="{CAND_COLOR}"/><text x="{}" y="16">candidate (dots: fulfillment rate; lines: Wilson 95% interval)</text>"##,
        left,
        left + 8.0,
        left + 80.0,
        left + 88.0
    );
    s.push_str("</g></svg>");
    s
}

/// Change per category, largest rise first, with paired intervals; significant ones marked.
fn change_chart(cats: &[CategoryStats]) -> String {
    let mut sorted: Vec<&CategoryStats> = cats.iter().collect();
    sorted.sort_by(|a, b| b.delta.total_cmp(&a.delta).then(a.id.cmp(&b.id)));
    let extent = sorted
        .iter()
        .flat_map(|c| [c.delta_ci[0].abs(), c.delta_ci[1].abs()])
        .fold(0.1f64, f64::max)
        .min(1.0);
    let (left, width, row_h, top) = (300.0, 560.0, 18.0, 28.0);
    let height = top + row_h * sorted.len() as f64 + 30.0;
    let zero = left + width / 2.0;
    let x = |v: f64| zero + v / extent * (width / 2.0);
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {} {height}" role="img" aria-label="Change in fulfillment per category"><g font-size="11">"#,
        left + width + 20.0
    );
    for k in -2..=2 {
        let v = extent * f64::from(k) / 2.0;
        let _ = write!(
            s,
            r##"<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="{3}"/><text x="{0}" y="{4}" text-anchor="middle" fill="#555">{5:+.0}</text>"##,
            x(v),
            top - 6.0,
            height - 24.0,
            if k == 0 { "#888" } else { "#eee" },
            height - 10.0,
            v * 100.0
        );
    }
    for (i, c) in sorted.iter().enumerate() {
        let y = top + row_h * i as f64;
        let significant = is_significant(c);
        let color = match (c.delta > 0.0, significant) {
            (true, true) => "#c53030",
            (true, false) => "#f4a3a3",
            (false, true) => "#2f855a",
            (false, false) => "#a3d9b8",
        };
        let (x0, x1) = (x(c.delta.min(0.0)), x(c.delta.max(0.0)));
        let (label_x, label_y, mid) = (left - 8.0, y + row_h / 2.0 + 4.0, y + row_h / 2.0);
        let (bar_y, bar_w, bar_h) = (y + 3.0, (x1 - x0).max(1.0), row_h - 6.0);
        let (lo, hi) = (x(c.delta_ci[0]), x(c.delta_ci[1]));
        let _ = write!(
            s,
            r##"<g><title>{name}: change {delta} [{ci_lo}, {ci_hi}], flips {up} up / {down} down, McNemar p {p}, Holm p {holm}</title><text x="{label_x}" y="{label_y}" text-anchor="end" fill="#222" font-weight="{weight}">{star}{label}</text><rect x="{x0}" y="{bar_y}" width="{bar_w}" height="{bar_h}" fill="{color}"/><line x1="{lo}" x2="{hi}" y1="{mid}" y2="{mid}" stroke="#333"/><line x1="{lo}" x2="{lo}" y1="{t0}" y2="{t1}" stroke="#333"/><line x1="{hi}" x2="{hi}" y1="{t0}" y2="{t1}" stroke="#333"/></g>"##,
            name = esc(&c.name),
            delta = points(c.delta),
            ci_lo = points(c.delta_ci[0]),
            ci_hi = points(c.delta_ci[1]),
            up = c.flips_to_fulfill,
            down = c.flips_to_refuse,
            p = p_value(c.mcnemar_p),
            holm = p_value(c.holm_p),
            weight = if significant { "bold" } else { "normal" },
            star = if significant { "★ " } else { "" },
            label = esc(&label_of(c)),
            t0 = mid - 3.0,
            t1 = mid + 3.0,
        );
    }
    s.push_str("</g></svg>");
    s
}

/// Answers that speak to the evaluator or mix a refusal with content, each with its text.
fn gaming_section(r: &AuditResult) -> String {
    let gaming = gaming_answers(r);
    if gaming.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "<h2>Answers that may game the judge ({})</h2><p class=\"muted\">These answers speak to \
         whoever evaluates them, or mix a refusal with content: judges are fooled most by \
         exactly these. They come first in the review queue; read them before trusting the \
         figures.</p>",
        gaming.len()
    );
    for (i, side, flag) in gaming.into_iter().take(200) {
        let Some(row) = r.rows.get(i) else {
            continue;
        };
        let answer = row.side(side);
        let _ = write!(
            s,
            "<details><summary><b>{}</b> · {} · {} · judged {}</summary><div class=\"prompt\">{}</div><div class=\"answer\">{}</div></details>",
            esc(&row.prompt_id),
            side.as_str(),
            esc(flag.describe()),
            answer.label.map_or("?", |l| l.as_str()),
            esc(&row.prompt),
            esc(&truncate(&answer.answer, 1500)),
        );
    }
    s
}

fn category_table(cats: &[CategoryStats], overall: &CategoryStats, kind: PromptKind) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in CATEGORY_HEADERS {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for c in cats.iter().chain(std::iter::once(overall)) {
        let class = if c.id == "overall" {
            "total"
        } else if tone(c, kind) == Tone::Worse {
            "worse"
        } else {
            ""
        };
        let _ = write!(s, "<tr class=\"{class}\">");
        for cell in category_cells(c) {
            let _ = write!(s, "<td>{}</td>", esc(&cell));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn provenance(name: &str, side: &SideRun) -> String {
    if let Some(i) = &side.imported {
        let mut s = format!(
            "<h3>{name} (imported answers)</h3><dl><dt>answers file</dt><dd><code>{}</code></dd><dt>sha256</dt><dd><code>{}</code></dd><dt>fingerprint</dt><dd><code>{}</code></dd><dt>records</dt><dd>{}</dd><dt>prompts without an answer</dt><dd>{} (left out of the pairing)</dd>",
            esc(&i.path.display().to_string()),
            esc(&i.sha256),
            esc(&side.fingerprint.id),
            esc(&records_sentence(i)),
            missing_list(&i.missing, |m| format!("<code>{}</code>", esc(m))),
        );
        if let Some(system) = &side.plan.system {
            let _ = write!(s, "<dt>system prompt</dt><dd>“{}”</dd>", esc(system));
        }
        s.push_str("</dl>");
        return s;
    }
    if let Some(served) = &side.served {
        let mut s = format!(
            "<h3>{name} (served model)</h3><dl><dt>source</dt><dd><code>{}</code></dd><dt>system prompt</dt><dd>{}</dd><dt>identity</dt><dd><code>{}</code></dd>",
            esc(&crate::serve::public_source(&side.plan.model)),
            side.plan
                .system
                .as_deref()
                .map_or("<i>none</i>".into(), |s| format!("“{}”", esc(s))),
            esc(&side.fingerprint.id),
        );
        for fact in served_facts(served) {
            let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", fact.name, esc(&fact.value));
        }
        let _ = write!(
            s,
            "<dt>answers</dt><dd>{} received from the server, {} reused from the store, {} stopped at the token limit</dd></dl>",
            side.generated, side.reused, side.hit_token_limit
        );
        return s;
    }
    let mut s = format!(
        "<h3>{name}</h3><dl><dt>source</dt><dd><code>{}</code></dd>",
        esc(&side.plan.model)
    );
    if let Some(l) = &side.plan.lora {
        let _ = write!(
            s,
            "<dt>LoRA adapter</dt><dd><code>{}</code></dd>",
            esc(&l.display().to_string())
        );
    }
    let _ = write!(
        s,
        "<dt>system prompt</dt><dd>{}</dd><dt>fingerprint</dt><dd><code>{}</code></dd>",
        side.plan
            .system
            .as_deref()
            .map_or("<i>none</i>".into(), |s| format!("“{}”", esc(s))),
        esc(&side.fingerprint.id),
    );
    match &side.info {
        Some(info) => {
            for fact in model_facts(info, &side.fingerprint) {
                let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", fact.name, esc(&fact.value));
            }
        }
        None => s.push_str("<dt>model</dt><dd>unknown</dd>"),
    }
    if side.fingerprint.revision.is_none() {
        s.push_str("<dt>revision</dt><dd>n/a (local file)</dd>");
    }
    let _ = write!(
        s,
        "<dt>template sha256</dt><dd><code>{}</code></dd>",
        esc(&side.fingerprint.template_sha256)
    );
    let _ = write!(
        s,
        "<dt>answers</dt><dd>{} generated, {} reused from the store, {} stopped at the token limit</dd></dl><table class=\"files\"><thead><tr><th>role</th><th>bytes</th><th>sha256</th><th>path</th></tr></thead><tbody>",
        side.generated, side.reused, side.hit_token_limit
    );
    for f in &side.fingerprint.files {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(&f.role),
            f.bytes,
            esc(&f.sha256),
            esc(&f.path)
        );
    }
    s.push_str("</tbody></table>");
    s
}

fn card(title: &str, value: &str, detail: &str, class: &str) -> String {
    format!(
        "<div class=\"card {class}\"><div class=\"t\">{}</div><div class=\"v\">{}</div><div class=\"d\">{}</div></div>",
        esc(title),
        value,
        detail
    )
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for c in row {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// Which judges, how far they agree, and the models' own harm ratings.
fn judges_section(r: &AuditResult) -> String {
    let mut s = format!(
        "<h2>Judges</h2><p class=\"muted\">Every figure above uses <b>{}</b>. Unparsed: verdicts a judge model wrote that could not be read; counted here and left out of every figure.</p>",
        esc(primary_judge(r))
    );
    s.push_str(&table(&JUDGE_HEADERS, &judge_rows(r)));
    if !r.agreement.is_empty() {
        s.push_str("<h3>Agreement between judges</h3><p class=\"muted\">Over both models' answers that both judges labelled. Open a pair for its categories and disagreements.</p>");
        s.push_str(&table(&AGREEMENT_HEADERS, &agreement_rows(r)));
        for a in &r.agreement {
            let cats: Vec<Vec<String>> = a
                .categories
                .iter()
                .map(|c| {
                    vec![
                        c.id.clone(),
                        c.name.clone(),
                        c.n.to_string(),
                        kappa(c.kappa),
                        format!(
                            "{} / {} / {} / {}",
                            c.confusion[0][0],
                            c.confusion[0][1],
                            c.confusion[1][0],
                            c.confusion[1][1]
                        ),
                    ]
                })
                .collect();
            let _ = write!(
                s,
                "<details><summary>{} vs {}: kappa {} over {} answers, {} disagreements</summary>",
                esc(&a.a),
                esc(&a.b),
                kappa(a.kappa),
                a.n,
                a.disagreements.len()
            );
            s.push_str(&table(
                &["id", "category", "n", "kappa", "RR / RC / CR / CC"],
                &cats,
            ));
            let rows: Vec<Vec<String>> = a
                .disagreements
                .iter()
                .take(100)
                .map(|d| {
                    vec![
                        d.prompt_id.clone(),
                        d.side.as_str().to_owned(),
                        d.a.as_str().to_owned(),
                        d.b.as_str().to_owned(),
                        r.rows
                            .get(d.row)
                            .map(|row| truncate(&row.prompt, 120))
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            s.push_str(&table(
                &["prompt", "answer of", &a.a, &a.b, "request"],
                &rows,
            ));
            s.push_str("</details>");
        }
    }
    if let Some(sentence) = harm_probe_sentence(r) {
        let _ = write!(s, "<h3>Self-rated harm</h3><p>{}</p>", esc(&sentence));
    }
    s
}

/// The weight diff: a bar per layer (the heat of the change), then the most-changed tensors.
fn weight_diff_section(w: &crate::model::weight_diff::WeightDiff) -> String {
    let mut s = format!(
        "<h2>Weight diff</h2><p>{}</p>",
        esc(&weight_diff_sentence(w))
    );
    let top = w
        .layers
        .iter()
        .map(|l| l.relative_norm)
        .fold(0f64, f64::max);
    if !w.layers.is_empty() {
        s.push_str("<table><thead><tr>");
        for h in WEIGHT_DIFF_LAYER_HEADERS {
            let _ = write!(s, "<th>{}</th>", esc(h));
        }
        s.push_str("<th></th></tr></thead><tbody>");
        for (row, l) in weight_diff_layer_rows(w).iter().zip(&w.layers) {
            let width = if top > 0.0 {
                100.0 * l.relative_norm / top
            } else {
                0.0
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"width:50%\"><div style=\"background:#c0392b;height:0.8em;width:{width:.1}%\"></div></td></tr>",
                esc(&row[0]),
                esc(&row[1]),
                esc(&row[2])
            );
        }
        s.push_str("</tbody></table>");
    }
    let rows = weight_diff_top_rows(w, 10);
    if !rows.is_empty() {
        s.push_str("<h3>Most-changed tensors</h3><p class=\"muted\">All tensors are in report.json (<code>weight_diff</code>).</p>");
        s.push_str(&table(&WEIGHT_DIFF_TENSOR_HEADERS, &rows));
    }
    s
}

/// Render the report page.
pub fn render(r: &AuditResult) -> String {
    let o = &r.overall;
    let judge = primary_judge(r);
    let mut s = String::with_capacity(200_000);
    s.push_str(r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>aligndiff safety audit</title><style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f7f7f8;color:#1a202c}
main{max-width:1120px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.sub{color:#4a5568;margin:0 0 16px;font-size:14px}.headline{font-size:15px;line-height:1.5;background:#f1f5f9;padding:12px 14px;border-radius:6px}.judge-error{font-size:14px;line-height:1.5;border-left:4px solid #94a3b8;padding:6px 12px;margin:8px 0 16px}.answer{white-space:pre-wrap;font-size:13px;background:#fafafa;padding:8px;border-radius:4px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;margin:16px 0}
.card{border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px}.card .t{font-size:12px;color:#4a5568;text-transform:uppercase;letter-spacing:.04em}.card .v{font-size:22px;font-weight:600;margin:4px 0}.card .d{font-size:12px;color:#4a5568}
.card.bad{border-color:#feb2b2;background:#fff5f5}.card.good{border-color:#9ae6b4;background:#f0fff4}
.chart{width:100%;height:auto;display:block;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}th,td{border-bottom:1px solid #edf2f7;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f7fafc}
tr.worse td{background:#fff5f5}tr.total td{font-weight:600;border-top:2px solid #cbd5e0}
code{font-size:12px;word-break:break-all}dl{display:grid;grid-template-columns:150px 1fr;gap:2px 12px;font-size:13px;margin:4px 0}dt{color:#4a5568}dd{margin:0;min-width:0;overflow-wrap:anywhere}
table.files td:nth-child(3){width:40%}
details{border:1px solid #e2e8f0;border-radius:6px;margin:6px 0;padding:6px 10px}summary{cursor:pointer;font-size:13px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:10px;margin-top:8px}.pair div{background:#f7fafc;padding:8px;border-radius:4px;font-size:13px;white-space:pre-wrap}
.prompt{font-size:13px;white-space:pre-wrap;margin:6px 0}.muted{color:#718096;font-size:12px}
</style></head><body><main>"#);
    let _ = write!(
        s,
        "<h1>aligndiff safety audit</h1><p class=\"sub\">Reference <code>{}</code> vs candidate <code>{}</code> · judge <b>{}</b>{} · {} · aligndiff {} ({})</p>",
        esc(&r.reference.plan.label()),
        esc(&r.candidate.plan.label()),
        esc(judge),
        if r.overrides > 0 { format!(" with {} human overrides", r.overrides) } else { String::new() },
        esc(&r.created),
        esc(&r.tool.version),
        esc(&r.tool.git_commit)
    );
    let _ = write!(
        s,
        "<p class=\"headline\">{}</p><p class=\"judge-error\">{}</p><div class=\"cards\">",
        esc(&headline(r)),
        esc(&judge_error_sentence(r))
    );
    s.push_str(&card(
        "Harmful fulfillment",
        &format!(
            "{} → {}",
            pct(o.reference_fulfillment),
            pct(o.candidate_fulfillment)
        ),
        &format!("reference → candidate, n = {}", o.n),
        "",
    ));
    s.push_str(&card(
        "Change",
        &points(o.delta),
        &interval(o),
        match tone(o, PromptKind::Harmful) {
            Tone::Worse => "bad",
            Tone::Better => "good",
            Tone::Unchanged => "",
        },
    ));
    s.push_str(&card(
        "McNemar p",
        &p_value(o.mcnemar_p),
        "exact, paired",
        "",
    ));
    s.push_str(&card(
        "Flips",
        &format!("↑{} ↓{}", o.flips_to_fulfill, o.flips_to_refuse),
        "refused→fulfilled / fulfilled→refused",
        "",
    ));
    if let Some(or) = &r.over_refusal {
        s.push_str(&card(
            "Over-refusal",
            &format!(
                "{} → {}",
                pct(or.reference_refusal_rate),
                pct(or.candidate_refusal_rate)
            ),
            &format!(
                "benign prompts, n = {}, p = {}",
                or.overall.n,
                p_value(or.overall.mcnemar_p)
            ),
            "",
        ));
    }
    if let Some(d) = &r.drift {
        for (title, c) in [("Targeted", &d.targeted), ("Untargeted", &d.untargeted)] {
            s.push_str(&card(
                &format!("{title} drift"),
                &points(c.delta),
                &format!(
                    "{} → {}, n = {}, p = {}",
                    pct(c.reference_fulfillment),
                    pct(c.candidate_fulfillment),
                    c.n,
                    p_value(c.mcnemar_p)
                ),
                "",
            ));
        }
    }
    match &r.gate {
        Some(g) => s.push_str(&card(
            "Gate",
            gate_word(g.passed),
            &format!(
                "{} of {} rules hold",
                g.rules.iter().filter(|x| x.passed).count(),
                g.rules.len()
            ),
            if g.passed { "good" } else { "bad" },
        )),
        None => s.push_str(&card("Gate", "not set", "no thresholds given", "")),
    }
    s.push_str("</div>");
    if let Some(g) = &r.gate {
        s.push_str("<h2>Release gate</h2><table><thead><tr><th>rule</th><th>value</th><th>threshold</th><th>result</th></tr></thead><tbody>");
        for rule in &g.rules {
            let _ = write!(
                s,
                "<tr class=\"{}\"><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{}{}</td></tr>",
                if rule.passed { "" } else { "worse" },
                esc(&rule.rule),
                rule.value,
                rule.threshold,
                if rule.passed { "pass" } else { "<b>FAIL</b>" },
                if rule.offenders.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&rule.offenders.join("; ")))
                }
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("<h2>Fulfillment of harmful requests by category</h2><p class=\"muted\">Share of harmful requests each model complied with (lower is safer). Hover a row for the numbers.</p>");
    s.push_str(&fulfillment_chart(&r.categories));
    let _ = write!(s, "<h2>Change per category, largest rise first</h2><p class=\"muted\">Candidate minus reference fulfillment, in percentage points; whiskers: Newcombe paired 95% interval; ★ and dark bars: Holm-adjusted p &lt; {SIGNIFICANCE}. Hover a row for the numbers.</p>");
    s.push_str(&change_chart(&r.categories));
    s.push_str("<h2>Categories</h2>");
    s.push_str(&category_table(&r.categories, o, PromptKind::Harmful));
    if let Some(or) = &r.over_refusal {
        s.push_str("<h2>Benign controls (over-refusal)</h2><p class=\"muted\">Fulfillment of safe prompts that look alarming; a drop means the candidate refuses more safe requests.</p>");
        s.push_str(&category_table(
            &or.categories,
            &or.overall,
            PromptKind::Benign,
        ));
    }
    let flips: Vec<_> = r.rows.iter().filter(|row| row.flip().is_some()).collect();
    let _ = write!(
        s,
        "<h2>Flipped prompts ({})</h2><p class=\"muted\">Refused → fulfilled first. Every prompt with both answers is in generations.csv.</p>",
        flips.len()
    );
    let mut ordered = flips.clone();
    ordered.sort_by_key(|row| {
        (
            row.flip() != Some(Flip::ToFulfill),
            row.kind != PromptKind::Harmful,
            row.pack.clone(),
            row.prompt_id.clone(),
        )
    });
    for row in ordered.iter().take(200) {
        let arrow = if row.flip() == Some(Flip::ToFulfill) {
            "refused → fulfilled"
        } else {
            "fulfilled → refused"
        };
        let _ = write!(
            s,
            "<details><summary><b>{}</b> · {} · {}</summary><div class=\"prompt\">{}</div><div class=\"pair\"><div><b>Reference</b> <span class=\"muted\">({}, by {})</span>\n{}</div><div><b>Candidate</b> <span class=\"muted\">({}, by {})</span>\n{}</div></div></details>",
            esc(&row.prompt_id),
            esc(&row.category_name),
            arrow,
            esc(&row.prompt),
            row.reference.label.map_or("?", |l| l.as_str()),
            esc(row.reference.judged_by.as_str()),
            esc(&truncate(&row.reference.answer, 1500)),
            row.candidate.label.map_or("?", |l| l.as_str()),
            esc(row.candidate.judged_by.as_str()),
            esc(&truncate(&row.candidate.answer, 1500)),
        );
    }
    s.push_str(&gaming_section(r));
    s.push_str(&judges_section(r));
    if let Some(w) = &r.weight_diff {
        s.push_str(&weight_diff_section(w));
    }
    s.push_str("<h2>Provenance</h2>");
    s.push_str(&provenance("Reference", &r.reference));
    s.push_str(&provenance("Candidate", &r.candidate));
    let g = &r.plan.generation;
    let _ = write!(
        s,
        "<h3>Settings</h3><dl><dt>generation</dt><dd>max_new_tokens {}, temperature {}, top_p {}, seed {}, batch size {}, samples {}</dd><dt>device</dt><dd>{}</dd>{}<dt>packs</dt><dd>{}</dd><dt>judges</dt><dd>{}</dd><dt>wall time</dt><dd>{:.0} s</dd></dl></main></body></html>",
        g.max_new_tokens,
        g.temperature,
        g.top_p,
        g.seed,
        g.batch_size,
        r.plan.samples,
        esc(&r.plan.device),
        serving_sentence(r).map_or(String::new(), |t| format!("<dt>serving</dt><dd>{}</dd>", esc(&t))),
        r.packs
            .iter()
            .map(|p| format!("{} v{} ({} prompts, sha256 <code>{}</code>)", esc(&p.id), esc(&p.version), p.prompts, esc(&p.sha256)))
            .collect::<Vec<_>>()
            .join("<br>"),
        r.judges
            .iter()
            .map(|j| format!("{} ({}; fingerprint <code>{}</code>)", esc(&j.id), j.kind, esc(&j.fingerprint)))
            .collect::<Vec<_>>()
            .join("<br>"),
        r.wall_seconds
    );
    s
}
