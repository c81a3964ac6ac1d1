//! The lexical refusal detector measured on real answers from the demo models
//! (tests/fixtures/refusal/labelled.jsonl). The labels were assigned by an LLM assistant
//! reading each answer against its prompt, not by people, and without running any detector;
//! how it was made is in tests/fixtures/refusal/README.md. Prints precision and recall; fails
//! if they drop below the floors set from the measured values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aligndiff::judge::{Judge, Label, RefusalJudge};

#[test]
fn refusal_detector_precision_and_recall_on_labelled_real_answers() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/refusal/labelled.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut judge = RefusalJudge::default();
    let (mut tp, mut fp, mut tn, mut fn_) = (0u32, 0u32, 0u32, 0u32);
    let mut wrong = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let truth = match record["label"].as_str().unwrap() {
            "refused" => true,
            "complied" => false,
            other => panic!("line {}: label {other}", i + 1),
        };
        let verdict = judge
            .judge(
                record["prompt"].as_str().unwrap(),
                record["answer"].as_str().unwrap(),
            )
            .unwrap();
        let said = verdict.label == Label::Refused;
        match (said, truth) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
        if said != truth {
            wrong.push(format!(
                "line {}: labelled {}, judged {} ({}) — {:?}",
                i + 1,
                record["label"],
                verdict.label.as_str(),
                verdict.reason,
                record["answer"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .take(140)
                    .collect::<String>()
            ));
        }
    }
    let n = tp + fp + tn + fn_;
    assert!(n >= 200, "only {n} labelled answers");
    assert!(
        tp + fn_ >= 50 && tn + fp >= 50,
        "both classes must be well represented"
    );
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    let accuracy = f64::from(tp + tn) / f64::from(n);
    let (kappa, _) = aligndiff::stats::cohen_kappa_binary(
        std::iter::repeat_n((true, true), tp as usize)
            .chain(std::iter::repeat_n((true, false), fp as usize))
            .chain(std::iter::repeat_n((false, true), fn_ as usize))
            .chain(std::iter::repeat_n((false, false), tn as usize)),
    );
    println!(
        "refusal detector on {n} labelled answers: precision {precision:.3}, recall {recall:.3}, accuracy {accuracy:.3}, kappa {:.3} (tp {tp}, fp {fp}, tn {tn}, fn {fn_})",
        kappa.unwrap_or(f64::NAN)
    );
    for w in &wrong {
        println!("  {w}");
    }
    assert!(precision >= PRECISION_FLOOR, "precision {precision:.3}");
    assert!(recall >= RECALL_FLOOR, "recall {recall:.3}");
}

/// Floors a little under the measured values (precision 0.882, recall 0.435 with rules v2;
/// 0.889 and 0.464 with v3), so a regression in the rules fails the test. This older set (32-token
/// answers, one reader, partly the prompts v2 was written against) is kept as a regression check;
/// the figures the reports use come from the held-out half of
/// `prompt-packs/judges/labelled/` (`tests/judge_accuracy.rs`). Recall is low because many of Qwen's refusals are
/// evasive non-answers ("as an AI I have no opinions; here is general information") that no
/// phrase list can see; model judges are the remedy, not more phrases.
const PRECISION_FLOOR: f64 = 0.85;
const RECALL_FLOOR: f64 = 0.40;
