//! `report.md`: the audit in Markdown, for a pull request or a ticket.

use super::format::*;
use crate::audit::{AuditResult, CategoryStats, Flip, SideRun};

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        headers.join(" | "),
        "---|".repeat(headers.len())
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| md_escape(c)).collect();
        s.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    s
}

fn category_line(c: &CategoryStats) -> String {
    let cells: Vec<String> = category_cells(c).iter().map(|x| md_escape(x)).collect();
    format!("| {} |", cells.join(" | "))
}

fn category_header() -> String {
    format!(
        "| {} |\n|{}\n",
        CATEGORY_HEADERS.join(" | "),
        "---|".repeat(CATEGORY_HEADERS.len())
    )
}

/// The `report.md` document.
pub fn to_markdown(r: &AuditResult) -> String {
    let mut s = String::new();
    let judge = primary_judge(r);
    s.push_str("# aligndiff safety audit\n\n");
    s.push_str(&format!(
        "- **Reference**: `{}`{}\n",
        r.reference.plan.label(),
        system_note(&r.reference)
    ));
    s.push_str(&format!(
        "- **Candidate**: `{}`{}\n",
        r.candidate.plan.label(),
        system_note(&r.candidate)
    ));
    s.push_str(&format!(
        "- **Judge** for every figure: `{judge}`{}\n- **Created**: {} by aligndiff {} ({})\n\n",
        if r.overrides > 0 {
            format!(" ({} verdicts overruled by a person)", r.overrides)
        } else {
            String::new()
        },
        r.created,
        r.tool.version,
        r.tool.git_commit
    ));
    s.push_str(&headline(r));
    s.push_str("\n\n");
    s.push_str(&judge_error_sentence(r));
    s.push_str("\n\n");
    if let Some(sentence) = over_refusal_sentence(r) {
        s.push_str(&sentence);
        s.push_str("\n\n");
    }
    if let Some(d) = &r.drift {
        s.push_str(&format!("{}\n\n", drift_sentence(d)));
    }
    if let Some(g) = &r.gate {
        s.push_str(&format!("## Gate: {}\n\n", gate_word(g.passed)));
        s.push_str("| rule | value | threshold | result |\n|---|---|---|---|\n");
        for rule in &g.rules {
            s.push_str(&format!(
                "| {} | {:.3} | {:.3} | {}{} |\n",
                rule.rule,
                rule.value,
                rule.threshold,
                if rule.passed { "pass" } else { "FAIL" },
                if rule.offenders.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", rule.offenders.join("; "))
                }
            ));
        }
        s.push('\n');
    }
    s.push_str("## Categories (harmful prompts)\n\n");
    s.push_str(&category_header());
    for c in &r.categories {
        s.push_str(&category_line(c));
        s.push('\n');
    }
    s.push_str(&category_line(&r.overall));
    s.push_str("\n\n");
    if let Some(o) = &r.over_refusal {
        s.push_str("## Benign controls (fulfillment; a drop is over-refusal)\n\n");
        s.push_str(&category_header());
        for c in &o.categories {
            s.push_str(&category_line(c));
            s.push('\n');
        }
        s.push_str(&category_line(&o.overall));
        s.push_str("\n\n");
    }
    let gaming = gaming_answers(r);
    if !gaming.is_empty() {
        s.push_str("## Answers that may game the judge\n\n");
        s.push_str(
            "These answers speak to whoever evaluates them, or mix a refusal with content: \
             judges are fooled most by exactly these. They come first in the review queue; read \
             them before trusting the figures.\n\n",
        );
        let rows: Vec<Vec<String>> = gaming
            .iter()
            .take(200)
            .filter_map(|&(i, side, flag)| {
                let row = r.rows.get(i)?;
                let s = row.side(side);
                Some(vec![
                    row.prompt_id.clone(),
                    side.as_str().to_owned(),
                    flag.describe().to_owned(),
                    s.label.map_or("—", crate::judge::Label::as_str).to_owned(),
                    crate::util::text::truncate(&s.answer, 160),
                ])
            })
            .collect();
        s.push_str(&md_table(
            &["prompt", "side", "what", "verdict", "answer (start)"],
            &rows,
        ));
        s.push('\n');
    }
    s.push_str("## Judges\n\n");
    s.push_str(&format!(
        "Every figure above uses `{judge}`. Unparsed: verdicts a judge model wrote that could not be \
         read; they are counted here and left out of every figure.\n\n"
    ));
    s.push_str(&md_table(&JUDGE_HEADERS, &judge_rows(r)));
    s.push('\n');
    if !r.agreement.is_empty() {
        s.push_str("### Agreement between judges (both models' answers)\n\n");
        s.push_str(&md_table(&AGREEMENT_HEADERS, &agreement_rows(r)));
        s.push_str(
            "\nPer-category agreement and every disagreement are in report.json (`agreement`).\n\n",
        );
    }
    if let Some(sentence) = harm_probe_sentence(r) {
        s.push_str(&format!("### Self-rated harm\n\n{sentence}\n\n"));
    }
    if let Some(w) = &r.weight_diff {
        s.push_str(&weight_diff_section(w));
    }
    s.push_str("## Provenance\n\n");
    for (name, side) in [("Reference", &r.reference), ("Candidate", &r.candidate)] {
        match (&side.imported, &side.info) {
            _ if side.served.is_some() => {
                let served = side.served.as_ref().map(served_facts).unwrap_or_default();
                s.push_str(&format!(
                    "### {name} (served model)\n\n- source: `{}`\n- identity: `{}`\n",
                    md_escape(&crate::serve::public_source(&side.plan.model)),
                    side.fingerprint.id
                ));
                for f in served {
                    s.push_str(&format!("- {}: {}\n", f.name, md_escape(&f.value)));
                }
            }
            (Some(i), _) => s.push_str(&format!(
                "### {name} (imported answers)\n\n- answers file: `{}`\n- sha256: `{}`\n- fingerprint: `{}`\n- {}\n- prompts without an answer (left out of the pairing): {}\n",
                md_escape(&i.path.display().to_string()),
                i.sha256,
                side.fingerprint.id,
                records_sentence(i),
                missing_list(&i.missing, |m| format!("`{}`", md_escape(m)))
            )),
            (None, info) => s.push_str(&format!(
                "### {name}\n\n- source: `{}`\n- fingerprint: `{}`\n- architecture: {}\n- revision: {}\n- template sha256: `{}`\n",
                side.plan.model,
                side.fingerprint.id,
                info.as_ref().map_or_else(|| "unknown".to_owned(), model_summary),
                side.fingerprint.revision.as_deref().unwrap_or("n/a (local file)"),
                side.fingerprint.template_sha256
            )),
        }
        for t in &side.fingerprint.transforms {
            s.push_str(&format!("- load-time transform: {t}\n"));
        }
        s.push_str(&format!(
            "- answers: {} {}, {} reused from the store, {} stopped at the token limit\n\n",
            side.generated,
            if side.served.is_some() {
                "received from the server"
            } else {
                "generated"
            },
            side.reused,
            side.hit_token_limit
        ));
        if !side.fingerprint.files.is_empty() {
            s.push_str("| role | bytes | sha256 | path |\n|---|---|---|---|\n");
        }
        for f in &side.fingerprint.files {
            s.push_str(&format!(
                "| {} | {} | `{}` | `{}` |\n",
                f.role,
                f.bytes,
                f.sha256,
                md_escape(&f.path)
            ));
        }
        s.push('\n');
    }
    let g = &r.plan.generation;
    s.push_str(&format!(
        "Settings: max_new_tokens {}, temperature {}, top_p {}, seed {}, batch size {}, samples {}, device {}{}.\n\nPacks: {}.\n\nJudges: {}.\n\n",
        g.max_new_tokens,
        g.temperature,
        g.top_p,
        g.seed,
        g.batch_size,
        r.plan.samples,
        r.plan.device,
        serving_sentence(r).map_or(String::new(), |t| format!("; served sides: {t}")),
        r.packs.iter().map(|p| format!("`{}` v{} (sha256 `{}`)", p.id, p.version, short_hash(&p.sha256))).collect::<Vec<_>>().join(", "),
        r.judges.iter().map(|j| format!("`{}` ({}, fingerprint `{}`)", j.id, j.kind, short_hash(&j.fingerprint))).collect::<Vec<_>>().join(", "),
    ));
    let flips: Vec<_> = r
        .rows
        .iter()
        .filter(|row| row.flip() == Some(Flip::ToFulfill))
        .collect();
    s.push_str(&format!(
        "## Prompts that flipped from refused to fulfilled ({})\n\n",
        flips.len()
    ));
    for row in flips.iter().take(50) {
        s.push_str(&format!(
            "### {} — {}\n\n> {}\n\n**Reference** ({}): {}\n\n**Candidate** ({}): {}\n\n",
            row.prompt_id,
            row.category_name,
            md_escape(&row.prompt),
            row.reference.judged_by,
            md_escape(&truncate(&row.reference.answer, 600)),
            row.candidate.judged_by,
            md_escape(&truncate(&row.candidate.answer, 600)),
        ));
    }
    if flips.len() > 50 {
        s.push_str(&format!(
            "… and {} more in generations.csv.\n",
            flips.len() - 50
        ));
    }
    s
}

fn system_note(side: &SideRun) -> String {
    match side.plan.system.as_deref() {
        Some(sys) if !sys.is_empty() => format!(" with system prompt “{}”", md_escape(sys)),
        _ => String::new(),
    }
}

/// The weight diff: the counts, the layers, and the most-changed tensors.
fn weight_diff_section(w: &crate::model::weight_diff::WeightDiff) -> String {
    let mut s = format!(
        "## Weight diff\n\n{}\n\n",
        md_escape(&weight_diff_sentence(w))
    );
    let layers = weight_diff_layer_rows(w);
    if !layers.is_empty() {
        s.push_str(&md_table(&WEIGHT_DIFF_LAYER_HEADERS, &layers));
        s.push('\n');
    }
    let top = weight_diff_top_rows(w, 10);
    if !top.is_empty() {
        s.push_str("Most-changed tensors (all of them are in report.json, `weight_diff`):\n\n");
        s.push_str(&md_table(&WEIGHT_DIFF_TENSOR_HEADERS, &top));
        s.push('\n');
    }
    s
}
