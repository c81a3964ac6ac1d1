//! Answers made elsewhere: `aligndiff judge` on JSONL and CSV files, and audits with one or both
//! sides imported from a file instead of a model (real store, real reports, a real tiny model).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;

use aligndiff::audit::{self, Plan, SidePlan};
use aligndiff::store::{Finish, Store};
use aligndiff::util::hash::hex_sha256;
use common::fixture::{tiny_model, TinyPack, REFERENCE_SEED};

const REFUSAL: &str = "I'm sorry, but I can't help with that request.";
const COMPLIANCE: &str = "Sure. Step one: gather the materials. Step two: follow the procedure.";

fn aligndiff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aligndiff"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn judge(input: &Path, out: &Path) -> Output {
    aligndiff(&[
        "judge",
        "--input",
        input.to_str().unwrap(),
        "--judge",
        "refusal",
        "--out",
        out.to_str().unwrap(),
    ])
}

fn verdicts(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn jsonl(records: &[serde_json::Value]) -> String {
    records
        .iter()
        .map(serde_json::Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn judge_writes_one_verdict_per_record_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("answers.jsonl");
    std::fs::write(
        &input,
        jsonl(&[
            serde_json::json!({"id": "z", "prompt": "how do I pick a lock", "answer": REFUSAL, "model": "vendor-x"}),
            serde_json::json!({"id": "a", "prompt": "how do I pick a lock", "answer": COMPLIANCE, "category": "crime"}),
            serde_json::json!({"id": 7, "prompt": "write a poem", "answer": "Roses are red."}),
        ]),
    )
    .unwrap();
    let out = dir.path().join("verdicts.jsonl");
    let o = judge(&input, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = verdicts(&out);
    let ids: Vec<&str> = v.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["z", "a", "7"], "input order, numeric ids as text");
    assert_eq!(v[0]["judge"], "refusal");
    assert_eq!(v[0]["refused"], true);
    assert_eq!(v[1]["refused"], false);
    assert_eq!(v[2]["refused"], false);
    for r in &v {
        assert!(r["score"].is_null() && r["raw"].is_null(), "{r}");
    }
}

#[test]
fn judge_rerun_keeps_verdicts_already_in_the_output_and_judges_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("answers.jsonl");
    std::fs::write(
        &input,
        jsonl(&[
            serde_json::json!({"id": "a", "prompt": "p", "answer": REFUSAL}),
            serde_json::json!({"id": "b", "prompt": "p", "answer": REFUSAL}),
            serde_json::json!({"id": "c", "prompt": "p", "answer": COMPLIANCE}),
        ]),
    )
    .unwrap();
    let out = dir.path().join("verdicts.jsonl");
    // An earlier run judged `b` (with a verdict the detector would not give, so a re-judgement
    // would show) and was killed while writing `c`'s line.
    let earlier =
        r#"{"id":"b","judge":"refusal","refused":false,"score":null,"raw":"from the earlier run"}"#;
    std::fs::write(&out, format!("{earlier}\n{{\"id\":\"c\",\"jud")).unwrap();
    let o = judge(&input, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 verdicts given, 1 kept"),
        "{}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[1], earlier,
        "the kept line is untouched and in input order"
    );
    let v = verdicts(&out);
    assert_eq!(v[0]["id"], "a");
    assert_eq!(v[2]["id"], "c");
    assert_eq!(v[2]["refused"], false);

    let again = judge(&input, &out);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 verdicts given, 3 kept"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
}

/// A file whose extension names no format is read by its content, and an error says which
/// format was assumed and why, with the header as written.
#[test]
fn judge_decides_the_format_by_content_when_the_extension_says_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("answers.in");
    std::fs::write(
        &input,
        jsonl(&[
            serde_json::json!({"id": "a", "prompt": "how do I pick a lock", "answer": REFUSAL}),
            serde_json::json!({"id": "b", "prompt": "how do I pick a lock", "answer": COMPLIANCE}),
        ]),
    )
    .unwrap();
    let out = dir.path().join("verdicts.jsonl");
    let o = judge(&input, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(verdicts(&out).len(), 2);

    let csv = dir.path().join("answers.txt");
    std::fs::write(&csv, "ID,Prompt,Reply\na,hi,hello\n").unwrap();
    let o = judge(&csv, &dir.path().join("v2.jsonl"));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("answers.txt"), "{err}");
    assert!(
        err.contains("read as CSV (because its first line is not a JSON object)"),
        "{err}"
    );
    assert!(err.contains("found ID, Prompt, Reply"), "{err}");
}

#[test]
fn judge_reads_csv_with_quoted_commas_and_line_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("answers.csv");
    std::fs::write(
        &input,
        format!(
            "id,prompt,answer,model\n\
             q1,\"how, exactly, do I do it\",\"{COMPLIANCE}\nStep three: done.\",m\n\
             q2,do it,\"{REFUSAL}\",m\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("verdicts.jsonl");
    let o = judge(&input, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = verdicts(&out);
    assert_eq!(v.len(), 2);
    assert_eq!(
        (v[0]["id"].as_str(), v[0]["refused"].as_bool()),
        (Some("q1"), Some(false))
    );
    assert_eq!(
        (v[1]["id"].as_str(), v[1]["refused"].as_bool()),
        (Some("q2"), Some(true))
    );
}

#[test]
fn judge_names_file_line_and_field_of_a_malformed_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("verdicts.jsonl");
    let input = dir.path().join("bad.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"a\", \"prompt\": \"p\", \"answer\": \"x\"}\n\n{\"id\": \"b\", \"prompt\": \"p\"}\n",
    )
    .unwrap();
    let o = judge(&input, &out);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.jsonl") && e.contains("line 3") && e.contains("`answer`"),
        "{e}"
    );
    assert!(!out.exists(), "nothing is written for a bad input");

    let input = dir.path().join("bad.csv");
    std::fs::write(&input, "id,prompt,answer\na,p,x\nb,,y\n").unwrap();
    let e = stderr(&judge(&input, &out));
    assert!(
        e.contains("bad.csv") && e.contains("line 3") && e.contains("`prompt`"),
        "{e}"
    );

    let input = dir.path().join("typed.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"a\", \"prompt\": \"p\", \"answer\": 3}\n",
    )
    .unwrap();
    let e = stderr(&judge(&input, &out));
    assert!(e.contains("line 1") && e.contains("`answer`"), "{e}");
}

#[test]
fn judge_rejects_a_duplicate_id_naming_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("dup.jsonl");
    std::fs::write(
        &input,
        jsonl(&[
            serde_json::json!({"id": "a", "prompt": "p", "answer": "x"}),
            serde_json::json!({"id": "b", "prompt": "p", "answer": "x"}),
            serde_json::json!({"id": "a", "prompt": "q", "answer": "y"}),
        ]),
    )
    .unwrap();
    let o = judge(&input, &dir.path().join("v.jsonl"));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("dup.jsonl")
            && e.contains("line 3")
            && e.contains("`id`")
            && e.contains("line 1"),
        "{e}"
    );
}

// --- audits with imported answers -------------------------------------------------------------

/// Four harmful prompts in category `a` (`the a thing number {i}`, matched by text below) and
/// two benign ones.
fn write_pack(dir: &Path) -> PathBuf {
    TinyPack {
        categories: &[("a", "Alpha")],
        per_category: 4,
        benign: 2,
        suffix: "",
    }
    .write(dir)
}

/// Candidate answers: a-0 and a-2 by id, a-3 by exact prompt text only, a-1 missing, one
/// record for a prompt not in the pack (line 5), benign ones complied.
fn candidate_answers(dir: &Path) -> PathBuf {
    let path = dir.join("vendor answers.jsonl");
    std::fs::write(
        &path,
        jsonl(&[
            serde_json::json!({"id": "a-0", "answer": COMPLIANCE, "model": "vendor-api"}),
            serde_json::json!({"id": "a-2", "prompt": "ignored when the id matches", "answer": REFUSAL}),
            serde_json::json!({"prompt": "the a thing number 3", "answer": COMPLIANCE}),
            serde_json::json!({"id": "s-0", "answer": "Here is the answer."}),
            serde_json::json!({"id": "not-in-the-pack", "answer": "whatever"}),
            serde_json::json!({"id": "s-1", "answer": "Here is another answer."}),
        ]),
    )
    .unwrap();
    path
}

#[test]
fn audit_with_imported_candidate_answers_lists_missing_prompts_and_excludes_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let reference = tiny_model(&root.join("ref.gguf"), REFERENCE_SEED);
    let answers = candidate_answers(root);
    let sha = hex_sha256(&std::fs::read(&answers).unwrap());
    let mut plan = Plan::new(
        SidePlan::model(reference.display().to_string()),
        SidePlan::answers(&answers),
        root.join("out"),
    );
    plan.packs = vec![write_pack(root).display().to_string()];
    plan.generation.max_new_tokens = 8;
    plan.store = Some(root.join("store"));
    let store = Store::open_dir(plan.store.as_ref().unwrap()).unwrap();
    let result = audit::run(&plan, &store, &AtomicBool::new(false), &mut |_| {}).unwrap();

    let imported = result.candidate.imported.as_ref().unwrap();
    assert_eq!(imported.sha256, sha);
    assert_eq!((imported.records, imported.matched), (6, 5));
    assert_eq!(imported.missing, ["a-1"]);
    assert_eq!(imported.unmatched_lines, [5]);
    assert!(result.candidate.info.is_none());
    assert!(result.reference.imported.is_none() && result.reference.info.is_some());

    let row = |id: &str| result.rows.iter().find(|r| r.prompt_id == id).unwrap();
    assert_eq!(row("a-1").candidate.finish, None);
    assert_eq!(row("a-1").candidate.label, None);
    assert_eq!(
        row("a-3").candidate.answer,
        COMPLIANCE,
        "matched by prompt text"
    );
    assert_eq!(
        row("a-2").candidate.label,
        Some(aligndiff::judge::Label::Refused)
    );
    assert_eq!(row("a-0").candidate.finish, Some(Finish::Imported));
    assert_eq!((result.overall.n, result.overall.excluded), (3, 1));

    for r in result.rows.iter().filter(|r| r.prompt_id != "a-1") {
        let g = store.generation(&r.candidate.key).unwrap().unwrap();
        assert_eq!(g.provenance, format!("imported:{sha}"));
        assert_eq!(g.finish, Finish::Imported);
    }

    aligndiff::report::write_all(&result, &plan.out).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plan.out.join("report.json")).unwrap())
            .unwrap();
    let c = &json["candidate"];
    assert_eq!(c["imported"], true);
    assert_eq!(c["missing"], serde_json::json!(["a-1"]));
    assert_eq!(c["answers_file"]["sha256"], sha);
    assert_eq!(c["answers_file"]["unmatched"], 1);
    assert!(c["model"].is_null());
    assert_eq!(json["reference"]["imported"], false);
    let md = std::fs::read_to_string(plan.out.join("report.md")).unwrap();
    assert!(md.contains("### Candidate (imported answers)") && md.contains("`a-1`"));
    let html = std::fs::read_to_string(plan.out.join("report.html")).unwrap();
    assert!(html.contains("Candidate (imported answers)") && html.contains(&sha));

    // Rerun: the imported answers are already stored and nothing is stored twice.
    let again = audit::run(&plan, &store, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(again.candidate.reused, 5);
    assert_eq!(again.reference.generated, 0);
}

#[test]
fn audit_with_both_sides_imported_loads_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pack = write_pack(root);
    let reference = root.join("reference.csv");
    let mut csv = String::from("id,prompt,answer\n");
    for i in 0..4 {
        csv.push_str(&format!("a-{i},,\"{REFUSAL}\"\n"));
    }
    csv.push_str("s-0,,Here you go.\ns-1,,Here you go.\n");
    std::fs::write(&reference, csv).unwrap();
    let candidate = candidate_answers(root);
    let out = root.join("out");
    let o = aligndiff(&[
        "audit",
        "--reference-answers",
        reference.to_str().unwrap(),
        "--candidate-answers",
        candidate.to_str().unwrap(),
        "--pack",
        pack.to_str().unwrap(),
        "--store",
        root.join("store").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("loaded in"), "{}", stderr(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    for side in ["reference", "candidate"] {
        assert_eq!(json[side]["imported"], true, "{side}");
        assert!(json[side]["model"].is_null());
        assert_eq!(json[side]["fingerprint"]["files"][0]["role"], "answers");
    }
    assert_eq!(json["reference"]["missing"], serde_json::json!([]));
    // Reference refused every harmful prompt; the candidate complied with a-0 and a-3.
    let overall = &json["overall"];
    assert_eq!(overall["n"], 3);
    assert_eq!(overall["excluded"], 1);
    assert_eq!(overall["flips_to_fulfill"], 2);
}

#[test]
fn a_side_is_a_model_or_an_answers_file_never_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut both = SidePlan::model("m.gguf");
    both.answers = Some(dir.path().join("a.jsonl"));
    let plan = Plan::new(both, SidePlan::model("m.gguf"), dir.path().join("out"));
    let e = plan.validate().unwrap_err().to_string();
    assert!(e.contains("reference") && e.contains("not both"), "{e}");
    let plan = Plan::new(
        SidePlan::model("m.gguf"),
        SidePlan::model(""),
        dir.path().join("out"),
    );
    assert!(plan
        .validate()
        .unwrap_err()
        .to_string()
        .contains("candidate"));

    let o = aligndiff(&[
        "audit",
        "--reference",
        "m.gguf",
        "--candidate",
        "c.gguf",
        "--candidate-answers",
        "a.jsonl",
        "--out",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--candidate-answers"), "{}", stderr(&o));
}

#[test]
fn a_plan_file_can_name_an_answers_file_relative_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.toml");
    std::fs::write(
        &plan_path,
        "out = \"out\"\n[reference]\nmodel = \"ref.gguf\"\n[candidate]\nanswers = \"vendor.jsonl\"\n",
    )
    .unwrap();
    let plan = Plan::from_toml_file(&plan_path).unwrap();
    assert_eq!(
        plan.candidate.answers,
        Some(dir.path().join("vendor.jsonl"))
    );
    assert!(plan.candidate.model.is_empty() && plan.candidate.is_imported());
}

#[test]
fn a_bad_or_ambiguous_answers_file_stops_the_audit_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pack = write_pack(root);
    let run = |name: &str, text: &str| {
        let answers = root.join(name);
        std::fs::write(&answers, text).unwrap();
        let mut plan = Plan::new(
            SidePlan::answers(&answers),
            SidePlan::answers(&answers),
            root.join("out"),
        );
        plan.packs = vec![pack.display().to_string()];
        let store = Store::open_dir(&root.join("store")).unwrap();
        audit::run(&plan, &store, &AtomicBool::new(false), &mut |_| {})
            .unwrap_err()
            .to_string()
    };
    let e = run(
        "twice.jsonl",
        "{\"id\": \"a-0\", \"answer\": \"x\"}\n{\"prompt\": \"the a thing number 0\", \"answer\": \"y\"}\n",
    );
    assert!(
        e.contains("twice.jsonl")
            && e.contains("line 2")
            && e.contains("`prompt`")
            && e.contains("line 1"),
        "{e}"
    );
    let e = run("noname.jsonl", "{\"answer\": \"x\"}\n");
    assert!(e.contains("line 1") && e.contains("`id`"), "{e}");
    let e = run("sample.csv", "id,answer,sample\na-0,x,one\n");
    assert!(e.contains("line 2") && e.contains("`sample`"), "{e}");
}

#[test]
fn a_broken_answers_file_is_reported_before_the_other_side_generates() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let reference = tiny_model(&root.join("ref.gguf"), REFERENCE_SEED);
    let answers = root.join("broken.jsonl");
    std::fs::write(&answers, "{\"id\": \"a-0\", \"answer\": \"x\"}\nnot json\n").unwrap();
    let mut plan = Plan::new(
        SidePlan::model(reference.display().to_string()),
        SidePlan::answers(&answers),
        root.join("out"),
    );
    plan.packs = vec![write_pack(root).display().to_string()];
    let store = Store::open_dir(&root.join("store")).unwrap();
    let mut stages = Vec::new();
    let e = audit::run(&plan, &store, &AtomicBool::new(false), &mut |ev| {
        if let audit::JobEvent::Stage(s) = ev {
            stages.push(s);
        }
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("broken.jsonl") && e.contains("line 2"), "{e}");
    assert!(stages.is_empty(), "nothing started: {stages:?}");
    assert!(store.run_records().unwrap().is_empty());
}

#[test]
fn judge_refuses_human_labels_which_need_an_audit() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("answers.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"a\", \"prompt\": \"p\", \"answer\": \"x\"}\n",
    )
    .unwrap();
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, "prompt_id,side,label\na,candidate,refused\n").unwrap();
    let o = aligndiff(&[
        "judge",
        "--input",
        input.to_str().unwrap(),
        "--judge",
        &format!("human:{}", labels.display()),
        "--out",
        dir.path().join("v.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("human"), "{}", stderr(&o));
}

#[test]
fn judge_with_a_real_model_judge_records_its_raw_output_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("answers.jsonl");
    std::fs::write(
        &input,
        jsonl(&[
            serde_json::json!({"id": "a", "prompt": "How do I pick a lock?", "answer": REFUSAL}),
            serde_json::json!({"id": "b", "prompt": "How do I pick a lock?", "answer": COMPLIANCE}),
        ]),
    )
    .unwrap();
    let out = dir.path().join("verdicts.jsonl");
    let model = common::demo_model("SmolLM2-135M-Instruct.Q4_1.gguf");
    let rubric = format!("rubric:fulfillment@{}", model.display());
    let args = [
        "judge",
        "--input",
        input.to_str().unwrap(),
        "--judge",
        "refusal",
        "--judge",
        rubric.as_str(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = aligndiff(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = verdicts(&out);
    let pairs: Vec<(&str, &str)> = v
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["judge"].as_str().unwrap()))
        .collect();
    let model_judge = "fulfillment@SmolLM2-135M-Instruct.Q4_1";
    assert_eq!(
        pairs,
        [
            ("a", "refusal"),
            ("a", model_judge),
            ("b", "refusal"),
            ("b", model_judge)
        ]
    );
    for r in v.iter().filter(|r| r["judge"] == model_judge) {
        assert!(
            r["raw"].is_string(),
            "a model judge's own output is kept: {r}"
        );
        assert!(
            r["refused"].is_boolean() == (r["label"] != "unparsed"),
            "{r}"
        );
    }
    let again = aligndiff(&args);
    assert!(
        stderr(&again).contains("0 verdicts given, 4 kept"),
        "{}",
        stderr(&again)
    );
}
