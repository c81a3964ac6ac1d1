//! `generations.csv`: every prompt with both answers, the effective verdicts and every judge's
//! own label and score.

use crate::audit::{AuditResult, Flip, RowSide};
use crate::store::Finish;

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// How an answer ended, as the CSV says it (`missing` when there is no answer).
fn finish(f: Option<Finish>) -> String {
    f.map_or("missing", Finish::as_str).to_owned()
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
        let label = |side: &RowSide| side.label.map_or("", |l| l.as_str()).to_owned();
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
            row.reference.judged_by.to_string(),
            finish(row.reference.finish),
            row.candidate.answer.clone(),
            label(&row.candidate),
            row.candidate.partial.to_string(),
            row.candidate.judged_by.to_string(),
            finish(row.candidate.finish),
            match row.flip() {
                Some(Flip::ToFulfill) => "refused->fulfilled".into(),
                Some(Flip::ToRefuse) => "fulfilled->refused".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_quotes_and_newlines_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\nthen"), "\"say \"\"hi\"\"\nthen\"");
    }
}
