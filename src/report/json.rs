//! `report.json`: every figure, the provenance of both sides, the judges and the flipped prompts,
//! for machines and for auditors who reproduce the audit.

use serde_json::json;

use crate::audit::{AuditResult, SideRun};

fn side_json(side: &SideRun) -> serde_json::Value {
    let mut block = json!({
        "backend": side.backend.as_str(),
        "source": crate::serve::public_source(&side.plan.model),
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
    });
    if let (Some(served), Some(obj)) = (&side.served, block.as_object_mut()) {
        obj.insert("endpoint".into(), json!(served.endpoint));
        obj.insert("served_model".into(), json!(served.served_model));
        obj.insert("server_said".into(), served.server_said.clone());
        obj.insert(
            "served".into(),
            json!({
                "server_models": served.server_models,
                "system_fingerprints": served.system_fingerprints,
                "api_key_env": served.api_key_env,
                "api_key_set": served.api_key_set,
                "weights_verified": served.weights_verified,
                "declared_sha256": served.declared_sha256,
                "requests": served.requests,
                "retries": served.retries,
                "answers_per_minute": served.answers_per_minute,
                "prompt_tokens": served.prompt_tokens,
                "completion_tokens": served.completion_tokens,
            }),
        );
    }
    block
}

/// Rows of the review queue `report.json` lists (the heaviest; the GUI orders all of them).
const REVIEW_LISTED: usize = 100;

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
    let flagged: Vec<_> = super::format::gaming_answers(r)
        .into_iter()
        .filter_map(|(i, side, flag)| {
            let row = r.rows.get(i)?;
            let answer = row.side(side);
            Some(json!({
                "row": i, "pack": row.pack, "prompt_id": row.prompt_id, "sample": row.sample,
                "side": side, "flag": flag, "label": answer.label,
            }))
        })
        .collect();
    let review: Vec<_> = crate::audit::review::queue(&r.rows)
        .into_iter()
        .filter(|item| item.weight > 0)
        .take(REVIEW_LISTED)
        .filter_map(|item| {
            let row = r.rows.get(item.row)?;
            Some(json!({
                "row": item.row, "pack": row.pack, "prompt_id": row.prompt_id,
                "sample": row.sample, "weight": item.weight, "reasons": item.reasons,
                "reviewed": item.reviewed,
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
        "judge_error": r.judge_error,
        "flagged_answers": flagged,
        "review_queue": review,
        "harm_probe": r.harm_probe,
        "human_overrides": r.overrides,
        "categories": r.categories,
        "overall": r.overall,
        "over_refusal": r.over_refusal,
        "drift": r.drift,
        "gate": r.gate,
        "weight_diff": r.weight_diff,
        "flipped": flipped,
        "wall_seconds": r.wall_seconds,
    })
}
