//! Exports of an audit: `report.json`, `report.md`, a self-contained `report.html` with inline
//! SVG charts, and `generations.csv` with every prompt and both answers. Files are written
//! atomically (temporary file, fsync, rename).

pub mod gate;
mod html;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::audit::{Agreement, AuditResult, CategoryStats, JudgeInfo, SideRun};
use crate::error::{Error, Result};

/// Write `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

fn side_json(side: &SideRun) -> serde_json::Value {
    json!({
        "source": side.plan.model,
        "lora": side.plan.lora,
        "system_prompt": side.plan.system,
        "imported": side.imported.is_some(),
        "answers_file": side.imported.as_ref().map(|i| json!({
            "path": i.path,
            "sha256": i.sha256,
            "records": i.records,
            "matched": i.matched,
            "unmatched": i.unmatched_lines.len(),
            "unmatched_lines": i.unmatched_lines,
        })),
        "missing": side.imported.as_ref().map_or(&[][..], |i| &i.missing[..]),
        "fingerprint": {
            "id": side.fingerprint.id,
            "files": side.fingerprint.files.iter().map(|f| json!({
                "role": f.role, "path": f.path, "bytes": f.bytes, "sha256": f.sha256,
            })).collect::<Vec<_>>(),
            "template_sha256": side.fingerprint.template_sha256,
            "transforms": side.fingerprint.transforms,
        },
        "revision": side.fingerprint.revision,
        "model": side.info.as_ref().map(|info| json!({
            "architecture": info.architecture,
            "parameters": info.parameters,
            "format": info.format,
            "tokenizer": info.tokenizer,
            "template": info.template,
            "device": info.device,
            "weights": info.weights,
        })),
        "answers": {
            "generated": side.generated,
            "reused_from_store": side.reused,
            "hit_token_limit": side.hit_token_limit,
        },
    })
}

/// Prompts without an answer, each formatted by `show`: the first 100, then how many more
/// (report.json lists them all).
pub(crate) fn missing_list(missing: &[String], show: impl Fn(&str) -> String) -> String {
    if missing.is_empty() {
        return "none".to_owned();
    }
    let mut text = missing
        .iter()
        .take(100)
        .map(|m| show(m))
        .collect::<Vec<_>>()
        .join(", ");
    if missing.len() > 100 {
        text.push_str(&format!(
            " and {} more (all in report.json)",
            missing.len() - 100
        ));
    }
    text
}

/// `1, 2, 3` (the first 20, then `…`).
pub(crate) fn join_numbers(numbers: &[usize]) -> String {
    let mut text = numbers
        .iter()
        .take(20)
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if numbers.len() > 20 {
        text.push_str(", …");
    }
    text
}

/// The `report.json` document.
pub fn to_json(r: &AuditResult) -> serde_json::Value {
    let flipped: Vec<_> = r
        .rows
        .iter()
        .filter_map(|row| {
            let flip = row.flip()?;
            Some(json!({
                "pack": row.pack, "prompt_id": row.prompt_id, "category": row.category,
                "kind": row.kind, "sample": row.sample, "direction": flip, "prompt": row.prompt,
                "reference_answer": row.reference.answer, "candidate_answer": row.candidate.answer,
                "reference_judged_by": row.reference.judged_by, "candidate_judged_by": row.candidate.judged_by,
            }))
        })
        .collect();
    json!({
        "tool": r.tool,
        "created": r.created,
        "reference": side_json(&r.reference),
        "candidate": side_json(&r.candidate),
        "settings": {
            "generation": r.plan.generation,
            "samples": r.plan.samples,
            "packs": r.plan.packs,
            "categories": r.plan.categories,
            "device": r.plan.device,
            "requantize": r.plan.requantize,
            "gate_file": r.plan.gate,
        },
        "packs": r.packs,
        "judges": r.judges,
        "primary_judge": r.judges.first().map(|j| j.id.clone()),
        "agreement": r.agreement,
        "harm_probe": r.harm_probe,
        "human_overrides": r.overrides,
        "categories": r.categories,
        "overall": r.overall,
        "over_refusal": r.over_refusal,
        "drift": r.drift,
        "gate": r.gate,
        "flipped": flipped,
        "wall_seconds": r.wall_seconds,
    })
}

/// One sentence on targeted vs untargeted drift.
pub fn drift_sentence(d: &crate::audit::compare::Drift) -> String {
    format!(
        "Targeted categories ({}): fulfillment {} → {}, change {} [{}, {}], p = {}. \
         Untargeted categories: {} → {}, change {} [{}, {}], p = {}.",
        d.targeted_ids.join(", "),
        pct(d.targeted.reference_fulfillment),
        pct(d.targeted.candidate_fulfillment),
        points(d.targeted.delta),
        points(d.targeted.delta_ci[0]),
        points(d.targeted.delta_ci[1]),
        p_value(d.targeted.mcnemar_p),
        pct(d.untargeted.reference_fulfillment),
        pct(d.untargeted.candidate_fulfillment),
        points(d.untargeted.delta),
        points(d.untargeted.delta_ci[0]),
        points(d.untargeted.delta_ci[1]),
        p_value(d.untargeted.mcnemar_p),
    )
}

/// Percent with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Signed percentage points.
pub fn points(x: f64) -> String {
    format!("{:+.1} pts", x * 100.0)
}

/// A p-value for people: 3 significant digits, scientific below 0.001.
pub fn p_value(p: f64) -> String {
    if p == 0.0 {
        "<1e-300".into()
    } else if p < 0.001 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The cells of one category row, shared by the Markdown and HTML tables: id, name, n,
/// reference, candidate, change [95% CI], flips up, flips down, McNemar p, Holm p.
pub(crate) fn category_cells(c: &CategoryStats) -> [String; 10] {
    [
        c.id.clone(),
        c.name.clone(),
        c.n.to_string(),
        pct(c.reference_fulfillment),
        pct(c.candidate_fulfillment),
        format!(
            "{} [{}, {}]",
            points(c.delta),
            points(c.delta_ci[0]),
            points(c.delta_ci[1])
        ),
        c.flips_to_fulfill.to_string(),
        c.flips_to_refuse.to_string(),
        p_value(c.mcnemar_p),
        // Holm adjusts across categories; the pooled row has nothing to adjust.
        if c.id == "overall" {
            "—".into()
        } else {
            p_value(c.holm_p)
        },
    ]
}

/// Header cells matching [`category_cells`].
pub(crate) const CATEGORY_HEADERS: [&str; 10] = [
    "id",
    "category",
    "n",
    "reference",
    "candidate",
    "change [95% CI]",
    "flips ↑",
    "flips ↓",
    "McNemar p",
    "Holm p",
];

/// A short form of a long hex digest.
fn short(hex: &str) -> &str {
    &hex[..12.min(hex.len())]
}

/// The cells of one judge's row, shared by the Markdown and HTML tables.
pub(crate) fn judge_cells(j: &JudgeInfo, primary: bool) -> [String; 7] {
    [
        if primary {
            format!("{} (primary)", j.id)
        } else {
            j.id.clone()
        },
        j.kind.clone(),
        match (&j.model_source, &j.model) {
            (Some(source), Some(fp)) => format!("{source} ({})", short(fp)),
            _ => "—".into(),
        },
        match (&j.template, &j.template_sha256) {
            (Some(t), Some(sha)) => format!("{t} ({})", short(sha)),
            _ => "—".into(),
        },
        match (&j.parser, &j.decoding) {
            (Some(p), Some(d)) => format!("{p}, decoding {d}"),
            (Some(p), None) => p.clone(),
            _ => "—".into(),
        },
        j.unparsed.to_string(),
        if j.judged > 0 {
            format!(
                "{} judged ({:.1}/min), {} reused",
                j.judged,
                j.per_minute(),
                j.reused
            )
        } else {
            format!("{} reused", j.reused)
        },
    ]
}

/// Header cells matching [`judge_cells`].
pub(crate) const JUDGE_HEADERS: [&str; 7] = [
    "judge",
    "kind",
    "model (fingerprint)",
    "template (sha256)",
    "parser, decoding",
    "unparsed",
    "this run",
];

/// Kappa for people: three decimals, or `n/a` when undefined.
pub fn kappa(k: Option<f64>) -> String {
    k.map_or_else(|| "n/a".into(), |k| format!("{k:.3}"))
}

/// The cells of one pair of judges, shared by the Markdown and HTML tables.
pub(crate) fn agreement_cells(a: &Agreement) -> [String; 7] {
    let c = a.confusion;
    [
        a.a.clone(),
        a.b.clone(),
        a.n.to_string(),
        kappa(a.kappa),
        pct(a.observed),
        format!("{} / {} / {} / {}", c[0][0], c[0][1], c[1][0], c[1][1]),
        a.disagreements.len().to_string(),
    ]
}

/// Header cells matching [`agreement_cells`].
pub(crate) const AGREEMENT_HEADERS: [&str; 7] = [
    "judge a",
    "judge b",
    "n",
    "Cohen's kappa",
    "agree",
    "both refused / a refused, b complied / a complied, b refused / both complied",
    "disagreements",
];

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

/// A one-paragraph verdict in words.
pub fn headline(r: &AuditResult) -> String {
    let o = &r.overall;
    let significant = r
        .categories
        .iter()
        .filter(|c| c.holm_p < 0.05 && c.delta > 0.0)
        .count();
    format!(
        "Harmful-request fulfillment went from {} (reference) to {} (candidate), a change of {} \
         (95% CI {} to {}; exact McNemar p = {}) over {} paired prompts: {} prompts flipped from \
         refused to fulfilled and {} the other way. {} of {} categories rose significantly after \
         Holm correction.",
        pct(o.reference_fulfillment),
        pct(o.candidate_fulfillment),
        points(o.delta),
        points(o.delta_ci[0]),
        points(o.delta_ci[1]),
        p_value(o.mcnemar_p),
        o.n,
        o.flips_to_fulfill,
        o.flips_to_refuse,
        significant,
        r.categories.len()
    )
}

/// The `report.md` document.
pub fn to_markdown(r: &AuditResult) -> String {
    let mut s = String::new();
    let judge = r.judges.first().map_or("?", |j| j.id.as_str());
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
    if let Some(o) = &r.over_refusal {
        s.push_str(&format!(
            "Over-refusal on {} benign prompts: {} (reference) → {} (candidate), change {}; McNemar p = {}.\n\n",
            o.overall.n,
            pct(o.reference_refusal_rate),
            pct(o.candidate_refusal_rate),
            points(o.candidate_refusal_rate - o.reference_refusal_rate),
            p_value(o.overall.mcnemar_p)
        ));
    }
    if let Some(d) = &r.drift {
        s.push_str(&format!("{}\n\n", drift_sentence(d)));
    }
    if let Some(g) = &r.gate {
        s.push_str(&format!(
            "## Gate: {}\n\n",
            if g.passed { "PASSED" } else { "FAILED" }
        ));
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
    s.push_str("## Judges\n\n");
    s.push_str(&format!(
        "Every figure above uses `{judge}`. Unparsed: verdicts a judge model wrote that could not be \
         read; they are counted here and left out of every figure.\n\n"
    ));
    let rows: Vec<Vec<String>> = r
        .judges
        .iter()
        .enumerate()
        .map(|(i, j)| judge_cells(j, i == 0).to_vec())
        .collect();
    s.push_str(&md_table(&JUDGE_HEADERS, &rows));
    s.push('\n');
    if !r.agreement.is_empty() {
        s.push_str("### Agreement between judges (both models' answers)\n\n");
        let rows: Vec<Vec<String>> = r
            .agreement
            .iter()
            .map(|a| agreement_cells(a).to_vec())
            .collect();
        s.push_str(&md_table(&AGREEMENT_HEADERS, &rows));
        s.push_str(
            "\nPer-category agreement and every disagreement are in report.json (`agreement`).\n\n",
        );
    }
    if let Some(h) = &r.harm_probe {
        s.push_str(&format!(
            "### Self-rated harm\n\nEach model rated how harmful every request is (0–9, expected value from its digit probabilities). \
             On {} harmful requests: {:.2} (reference) → {:.2} (candidate), shift {:+.2} (95% CI {:+.2} to {:+.2}); {} left out for too little probability on digits.\n\n",
            h.n, h.reference_mean, h.candidate_mean, h.shift, h.shift_ci[0], h.shift_ci[1], h.unrated
        ));
    }
    s.push_str("## Provenance\n\n");
    for (name, side) in [("Reference", &r.reference), ("Candidate", &r.candidate)] {
        match (&side.imported, &side.info) {
            (Some(i), _) => s.push_str(&format!(
                "### {name} (imported answers)\n\n- answers file: `{}`\n- sha256: `{}`\n- fingerprint: `{}`\n- {} records, {} matched to prompts, {} matching no prompt{}\n- prompts without an answer (left out of the pairing): {}\n",
                md_escape(&i.path.display().to_string()),
                i.sha256,
                side.fingerprint.id,
                i.records,
                i.matched,
                i.unmatched_lines.len(),
                if i.unmatched_lines.is_empty() {
                    String::new()
                } else {
                    format!(" (lines {})", join_numbers(&i.unmatched_lines))
                },
                missing_list(&i.missing, |m| format!("`{}`", md_escape(m)))
            )),
            (None, info) => s.push_str(&format!(
                "### {name}\n\n- source: `{}`\n- fingerprint: `{}`\n- architecture: {}\n- revision: {}\n- template sha256: `{}`\n",
                side.plan.model,
                side.fingerprint.id,
                info.as_ref().map_or_else(
                    || "unknown".to_owned(),
                    |info| format!(
                        "{} ({:.1} M parameters, {})",
                        info.architecture.name(),
                        info.parameters as f64 / 1e6,
                        info.format
                    )
                ),
                side.fingerprint.revision.as_deref().unwrap_or("n/a (local file)"),
                side.fingerprint.template_sha256
            )),
        }
        for t in &side.fingerprint.transforms {
            s.push_str(&format!("- load-time transform: {t}\n"));
        }
        s.push_str(&format!(
            "- answers: {} generated, {} reused from the store, {} stopped at the token limit\n\n| role | bytes | sha256 | path |\n|---|---|---|---|\n",
            side.generated, side.reused, side.hit_token_limit
        ));
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
        "Settings: max_new_tokens {}, temperature {}, top_p {}, seed {}, batch size {}, samples {}, device {}.\n\nPacks: {}.\n\nJudges: {}.\n\n",
        g.max_new_tokens,
        g.temperature,
        g.top_p,
        g.seed,
        g.batch_size,
        r.plan.samples,
        r.plan.device,
        r.packs.iter().map(|p| format!("`{}` v{} (sha256 `{}`)", p.id, p.version, &p.sha256[..16])).collect::<Vec<_>>().join(", "),
        r.judges.iter().map(|j| format!("`{}` ({}, fingerprint `{}`)", j.id, j.kind, &j.fingerprint[..16.min(j.fingerprint.len())])).collect::<Vec<_>>().join(", "),
    ));
    let flips: Vec<_> = r
        .rows
        .iter()
        .filter(|row| row.flip() == Some(crate::audit::compare::Flip::ToFulfill))
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

/// Cut text to at most `max` characters, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push_str(" […]");
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The `generations.csv` document.
pub fn to_csv(r: &AuditResult) -> String {
    let mut s = String::from(
        "pack,prompt_id,category,category_name,kind,sample,prompt,reference_answer,reference_verdict,reference_partial,reference_judged_by,reference_finish,candidate_answer,candidate_verdict,candidate_partial,candidate_judged_by,candidate_finish,flip",
    );
    // Then every judge's own label and score on each side, and the harm ratings.
    for side in ["reference", "candidate"] {
        for j in &r.judges {
            s.push(',');
            s.push_str(&csv_field(&format!("{side} {} label", j.id)));
            s.push(',');
            s.push_str(&csv_field(&format!("{side} {} score", j.id)));
        }
    }
    if r.harm_probe.is_some() {
        s.push_str(",reference_harm_rating,candidate_harm_rating");
    }
    s.push('\n');
    for row in &r.rows {
        let label = |side: &crate::audit::RowSide| side.label.map_or("", |l| l.as_str()).to_owned();
        let mut fields = vec![
            row.pack.clone(),
            row.prompt_id.clone(),
            row.category.clone(),
            row.category_name.clone(),
            format!("{:?}", row.kind).to_lowercase(),
            row.sample.to_string(),
            row.prompt.clone(),
            row.reference.answer.clone(),
            label(&row.reference),
            row.reference.partial.to_string(),
            row.reference.judged_by.clone(),
            row.reference.finish.clone(),
            row.candidate.answer.clone(),
            label(&row.candidate),
            row.candidate.partial.to_string(),
            row.candidate.judged_by.clone(),
            row.candidate.finish.clone(),
            match row.flip() {
                Some(crate::audit::compare::Flip::ToFulfill) => "refused->fulfilled".into(),
                Some(crate::audit::compare::Flip::ToRefuse) => "fulfilled->refused".into(),
                None => String::new(),
            },
        ];
        for side in [&row.reference, &row.candidate] {
            for v in &side.verdicts {
                fields.push(v.label.map_or("", |l| l.as_str()).to_owned());
                fields.push(v.score.map(|x| x.to_string()).unwrap_or_default());
            }
        }
        if r.harm_probe.is_some() {
            for side in [&row.reference, &row.candidate] {
                fields.push(
                    side.harm_rating
                        .map(|x| format!("{x:.3}"))
                        .unwrap_or_default(),
                );
            }
        }
        s.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
    }
    s
}

/// Write every export into `dir`; returns the paths written.
pub fn write_all(r: &AuditResult, dir: &Path) -> Result<Vec<PathBuf>> {
    let json_text = serde_json::to_string_pretty(&to_json(r))
        .map_err(|e| Error::Invalid(format!("report: {e}")))?;
    let files = [
        ("report.json", json_text),
        ("report.md", to_markdown(r)),
        ("report.html", html::render(r)),
        ("generations.csv", to_csv(r)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_quotes_and_newlines_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\nthen"), "\"say \"\"hi\"\"\nthen\"");
    }

    #[test]
    fn p_values_read_well() {
        assert_eq!(p_value(0.5), "0.500");
        assert_eq!(p_value(9.07e-68), "9.07e-68");
        assert_eq!(p_value(0.0), "<1e-300");
    }

    #[test]
    fn atomic_write_replaces_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        write_atomic(&p, b"first version, longer").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "second");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary files left"
        );
    }
}
