//! One side read from an answers file made elsewhere: match records to the audit's prompts and
//! store them under the file's fingerprint, so they are judged, compared and reused like
//! generated answers.

use std::collections::HashMap;

use super::events::JobEvent;
use super::plan::Item;
use super::plan::SidePlan;
use super::result::{ImportedAnswers, SideRun};
use super::side::Side;
use crate::error::{Error, Result};
use crate::model::{self, Fingerprint};
use crate::store::{self, Finish, Store, StoredGeneration};

/// The settings part of an imported answer's store key: our decoding settings did not make it.
const IMPORTED_SETTINGS: &str = "imported";

/// Read a side's answers from a file instead of a model: match each record to the audit's
/// prompts (by prompt id, else by exact prompt text) and store the matched answers under the
/// file's fingerprint, so they are judged, compared and reused like generated ones.
pub(super) fn import_side(
    side_plan: &SidePlan,
    path: &std::path::Path,
    side: Side,
    items: &[Item],
    store: &Store,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<SideRun> {
    on_event(JobEvent::Stage(format!(
        "{}: reading answers from {}",
        side.as_str(),
        path.display()
    )));
    let file = crate::answers::AnswersFile::from_file(path)?;
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let fingerprint = Fingerprint::new(
        vec![model::fingerprint::FileDigest {
            role: "answers".into(),
            path: absolute.display().to_string(),
            bytes: file.bytes,
            sha256: file.sha256.clone(),
        }],
        None,
        String::new(),
        vec!["imported answers".into()],
    );
    store.put_model(
        &fingerprint.id,
        &side_plan.label(),
        &serde_json::to_string(&fingerprint).map_err(Error::json("a file fingerprint"))?,
        "null",
    )?;
    let system = side_plan.system_prompt();
    let keys: Vec<String> = items
        .iter()
        .map(|i| {
            store::generation_key(
                &fingerprint.id,
                system,
                &i.text_hash,
                IMPORTED_SETTINGS,
                i.sample,
            )
        })
        .collect();
    let mut by_id: HashMap<(&str, u32), Vec<usize>> = HashMap::new();
    let mut by_text: HashMap<(String, u32), Vec<usize>> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        by_id
            .entry((item.prompt.id.as_str(), item.sample))
            .or_default()
            .push(index);
        by_text
            .entry((item.prompt.display_text(), item.sample))
            .or_default()
            .push(index);
    }
    let bad = |line: usize, field: &str, why: String| {
        Error::bad_file(path, format!("line {line}: field `{field}`: {why}"))
    };
    // Item index -> the record answering it.
    let mut answer_of: Vec<Option<&crate::answers::AnswerRecord>> = vec![None; items.len()];
    let mut unmatched_lines = Vec::new();
    let mut matched = 0usize;
    for record in &file.records {
        let pack_ok = |&&i: &&usize| record.pack.as_deref().is_none_or(|p| p == items[i].pack);
        let by_record_id: Vec<usize> = record
            .id
            .as_deref()
            .and_then(|id| by_id.get(&(id, record.sample)))
            .map(|v| v.iter().filter(pack_ok).copied().collect())
            .unwrap_or_default();
        let (field, found) = if by_record_id.is_empty() {
            let by_prompt: Vec<usize> = record
                .prompt
                .as_ref()
                .and_then(|t| by_text.get(&(t.clone(), record.sample)))
                .map(|v| v.iter().filter(pack_ok).copied().collect())
                .unwrap_or_default();
            ("prompt", by_prompt)
        } else {
            ("id", by_record_id)
        };
        let index = match found.as_slice() {
            [] => {
                unmatched_lines.push(record.line);
                continue;
            }
            [one] => *one,
            [first, second, ..] => {
                return Err(bad(
                    record.line,
                    field,
                    format!(
                        "matches prompts of packs `{}` and `{}`; add a `pack` field",
                        items[*first].pack, items[*second].pack
                    ),
                ))
            }
        };
        if let Some(earlier) = answer_of[index] {
            return Err(bad(
                record.line,
                field,
                format!(
                    "answers prompt `{}` (sample {}) again; line {} already does",
                    items[index].prompt.id, items[index].sample, earlier.line
                ),
            ));
        }
        answer_of[index] = Some(record);
        matched += 1;
    }
    let provenance = format!("imported:{}", file.sha256);
    let mut missing = Vec::new();
    let mut reused = 0usize;
    let mut stored = 0usize;
    for (index, item) in items.iter().enumerate() {
        store.put_prompt(&item.text_hash, &item.prompt.turns)?;
        let Some(record) = answer_of[index] else {
            missing.push(if item.sample == 0 {
                item.prompt.id.clone()
            } else {
                format!("{}#{}", item.prompt.id, item.sample)
            });
            continue;
        };
        let fresh = store.put_generation(&StoredGeneration {
            key: keys[index].clone(),
            model: fingerprint.id.clone(),
            system_prompt: system.to_owned(),
            text_hash: item.text_hash.clone(),
            settings: IMPORTED_SETTINGS.into(),
            sample: item.sample,
            answer: record.answer.clone(),
            finish: Finish::Imported,
            prompt_tokens: 0,
            answer_tokens: 0,
            provenance: provenance.clone(),
        })?;
        if fresh {
            stored += 1;
        } else {
            reused += 1;
        }
    }
    on_event(JobEvent::Stage(format!(
        "{}: {matched} of {} answers matched ({stored} stored now, {reused} already stored); {} prompts without an answer, {} records matching no prompt",
        side.as_str(),
        file.records.len(),
        missing.len(),
        unmatched_lines.len()
    )));
    on_event(JobEvent::Progress {
        side,
        done: matched,
        total: items.len(),
        cached: reused,
        tokens_per_s: 0.0,
    });
    Ok(SideRun {
        plan: side_plan.clone(),
        backend: super::result::Backend::Imported,
        served: None,
        fingerprint,
        info: None,
        imported: Some(ImportedAnswers {
            path: path.to_path_buf(),
            sha256: file.sha256,
            records: file.records.len(),
            matched,
            unmatched_lines,
            missing,
        }),
        generated: 0,
        reused,
        hit_token_limit: 0,
        keys,
    })
}
