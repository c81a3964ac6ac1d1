//! The audit pipeline end to end on tiny in-code models: a real SQLite store, real reports, the
//! gate's exit codes, answer reuse, and resuming after the process is killed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use aligndiff::audit::{self, JudgedBy, Plan, SidePlan};
use aligndiff::store::{Finish, Store};
use common::fixture::{tiny_model, Fixture, TinyPack};

/// The model pair and a pack of two harmful categories with `harmful_per_category` prompts
/// each, plus four benign prompts.
fn fixture(harmful_per_category: usize) -> Fixture {
    common::fixture::fixture(&TinyPack::two_categories(harmful_per_category, 4))
}

fn plan(f: &Fixture, candidate: &Path, out: &str) -> Plan {
    let side = |p: &Path| SidePlan {
        model: p.display().to_string(),
        answers: None,
        lora: None,
        system: None,
        api_key_env: None,
        declared_sha256: None,
    };
    let mut plan = Plan::new(side(&f.reference), side(candidate), f.root.join(out));
    plan.packs = vec![f.pack.display().to_string()];
    plan.generation.max_new_tokens = 12;
    plan.generation.batch_size = 4;
    plan.store = Some(f.root.join("store"));
    plan
}

#[test]
fn audit_writes_all_reports_with_the_documented_fields() {
    let f = fixture(6);
    let p = plan(&f, &f.candidate, "out");
    let store = Store::open_dir(p.store.as_ref().unwrap()).unwrap();
    let result = audit::run(&p, &store, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(result.rows.len(), 16);
    assert_eq!(result.reference.generated, 16);
    let limited = |side: fn(&audit::Row) -> &audit::RowSide| {
        result
            .rows
            .iter()
            .filter(|r| side(r).finish == Some(Finish::Length))
            .count()
    };
    assert_eq!(result.reference.hit_token_limit, limited(|r| &r.reference));
    assert_eq!(result.candidate.hit_token_limit, limited(|r| &r.candidate));
    assert!(
        result.reference.hit_token_limit > 0,
        "tiny random models run to the token limit"
    );
    assert_eq!(result.categories.len(), 2);
    let written = aligndiff::report::write_all(&result, &p.out).unwrap();
    assert_eq!(written.len(), 4);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.out.join("report.json")).unwrap()).unwrap();
    for side in ["reference", "candidate"] {
        let s = &json[side];
        assert!(s["source"].as_str().unwrap().ends_with(".gguf"));
        assert!(s.get("system_prompt").is_some());
        assert!(s.get("revision").is_some());
        let files = s["fingerprint"]["files"].as_array().unwrap();
        assert_eq!(files.len(), 1);
        let path = files[0]["path"].as_str().unwrap();
        assert_eq!(
            files[0]["sha256"],
            aligndiff::model::fingerprint::sha256_file(Path::new(path)).unwrap()
        );
        assert_eq!(files[0]["bytes"], std::fs::metadata(path).unwrap().len());
    }
    for key in [
        "settings",
        "packs",
        "judges",
        "categories",
        "overall",
        "over_refusal",
        "gate",
        "tool",
    ] {
        assert!(json.get(key).is_some(), "report.json lacks {key}");
    }
    for key in [
        "id",
        "name",
        "n",
        "reference_fulfillment",
        "candidate_fulfillment",
        "delta",
        "delta_ci",
        "flips_to_fulfill",
        "flips_to_refuse",
        "mcnemar_p",
        "holm_p",
    ] {
        assert!(
            json["categories"][0].get(key).is_some(),
            "category lacks {key}"
        );
        assert!(json["overall"].get(key).is_some(), "overall lacks {key}");
        assert!(
            json["over_refusal"].get(key).is_some(),
            "over_refusal lacks {key}"
        );
    }
    assert_eq!(json["packs"][0]["id"], "tiny");
    assert_eq!(json["judges"][0]["id"], "refusal");
    assert_eq!(json["overall"]["n"], 12);
    let csv = std::fs::read_to_string(p.out.join("generations.csv")).unwrap();
    assert!(csv.starts_with("pack,prompt_id,category"));
    let html = std::fs::read_to_string(p.out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Alpha") && !html.contains("<script"));
    // The counts in the report add up to what the rows say.
    let b = result
        .rows
        .iter()
        .filter(|r| {
            r.kind == aligndiff::packs::PromptKind::Harmful
                && r.flip() == Some(audit::Flip::ToFulfill)
        })
        .count();
    assert_eq!(result.overall.flips_to_fulfill as usize, b);
}

#[test]
fn a_second_candidate_reuses_the_reference_answers() {
    let f = fixture(3);
    let other_candidate = tiny_model(&f.root.join("cand2.gguf"), 5);
    let store_dir = f.root.join("store");
    let store = Store::open_dir(&store_dir).unwrap();
    let first = audit::run(
        &plan(&f, &f.candidate, "o1"),
        &store,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(first.reference.generated, 10);
    let second = audit::run(
        &plan(&f, &other_candidate, "o2"),
        &store,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(second.reference.generated, 0);
    assert_eq!(second.reference.reused, 10);
    assert_eq!(second.candidate.generated, 10);
    for (a, b) in first.rows.iter().zip(&second.rows) {
        assert_eq!(a.reference.answer, b.reference.answer);
    }
}

#[test]
fn a_person_overruling_a_verdict_changes_the_statistics() {
    let f = fixture(3);
    let store = Store::open_dir(&f.root.join("store")).unwrap();
    let result = audit::run(
        &plan(&f, &f.candidate, "o"),
        &store,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    let row = result
        .rows
        .iter()
        .find(|r| r.kind == aligndiff::packs::PromptKind::Harmful)
        .unwrap();
    let flipped_label = if row.candidate.fulfilled() == Some(true) {
        "refused"
    } else {
        "complied"
    };
    store
        .put_override(&row.candidate.key, flipped_label, "read it myself")
        .unwrap();
    let again = audit::recompare(&result, &store).unwrap();
    assert_eq!(again.overrides, 1);
    assert_ne!(
        again.overall.candidate_fulfillment,
        result.overall.candidate_fulfillment
    );
    let changed = again
        .rows
        .iter()
        .find(|r| r.candidate.key == row.candidate.key)
        .unwrap();
    assert_eq!(changed.candidate.judged_by, JudgedBy::Person);
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aligndiff"))
}

fn cli_audit(f: &Fixture, out: &str, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["audit", "--reference"])
        .arg(&f.reference)
        .arg("--candidate")
        .arg(&f.candidate)
        .arg("--pack")
        .arg(&f.pack)
        .args(["--batch-size", "4", "--store"])
        .arg(f.root.join("store"))
        .arg("--out")
        .arg(f.root.join(out))
        .args(extra)
        .env("ALIGNDIFF_CACHE", f.root.join("cache"));
    c
}

#[test]
fn the_gate_sets_the_exit_code() {
    let f = fixture(3);
    let strict = f.root.join("strict.toml");
    std::fs::write(&strict, "max_candidate_fulfillment = -0.5\n").unwrap();
    let lenient = f.root.join("lenient.toml");
    std::fs::write(
        &lenient,
        "max_overall_delta = 1.0\nmax_over_refusal_increase = 1.0\n",
    )
    .unwrap();
    let strict_junit = f.root.join("strict-junit.xml");
    let out = cli_audit(
        &f,
        "strict",
        &[
            "--max-new-tokens",
            "10",
            "--gate",
            strict.to_str().unwrap(),
            "--junit",
            strict_junit.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("gate: FAILED"));
    // The JUnit report: one test case per rule, the failing one with its figures.
    let xml = std::fs::read_to_string(&strict_junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains(r#"tests="1" failures="1""#), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 1, "{xml}");
    assert!(xml.contains("<failure message=\"measured "), "{xml}");
    assert!(xml.contains("threshold -0.500"), "{xml}");
    let lenient_junit = f.root.join("lenient-junit.xml");
    let out = cli_audit(
        &f,
        "lenient",
        &[
            "--max-new-tokens",
            "10",
            "--gate",
            lenient.to_str().unwrap(),
            "--junit",
            lenient_junit.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read_to_string(&lenient_junit).unwrap();
    assert!(xml.contains(r#"tests="2" failures="0""#), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    // JUnit without a gate has nothing to report: an error before any generation.
    let out = cli_audit(
        &f,
        "junit-alone",
        &[
            "--max-new-tokens",
            "10",
            "--junit",
            lenient_junit.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give a gate too"));
    let broken = f.root.join("broken.toml");
    std::fs::write(&broken, "max_overall_delta = \"lots\"\n").unwrap();
    let out = cli_audit(
        &f,
        "broken",
        &["--max-new-tokens", "10", "--gate", broken.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.toml"));
}

#[test]
fn a_killed_audit_resumes_without_losing_or_repeating_answers() {
    let f = fixture(40);
    let total = 84i64;
    let db = f.root.join("store").join("aligndiff.sqlite");
    let mut child = cli_audit(&f, "killed", &["--max-new-tokens", "48"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some, but not all, of the reference answers are stored, then kill -9.
    let count = |db: &Path| -> i64 {
        let Ok(conn) =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        else {
            return 0;
        };
        conn.query_row("SELECT COUNT(*) FROM generations", [], |r| r.get(0))
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n = count(&db);
        if n >= 5 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no answers appeared");
        if child.try_wait().unwrap().is_some() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the audit ended before it could be killed:\n{err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = count(&db);
    assert!(
        before > 0 && before < 2 * total,
        "killed with {before} answers stored"
    );

    let out = cli_audit(&f, "resumed", &["--max-new-tokens", "48"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = count(&db);
    assert_eq!(after, 2 * total, "every answer stored exactly once");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.root.join("resumed/report.json")).unwrap())
            .unwrap();
    let generated = report["reference"]["answers"]["generated"]
        .as_i64()
        .unwrap()
        + report["candidate"]["answers"]["generated"]
            .as_i64()
            .unwrap();
    let reused = report["reference"]["answers"]["reused_from_store"]
        .as_i64()
        .unwrap()
        + report["candidate"]["answers"]["reused_from_store"]
            .as_i64()
            .unwrap();
    assert_eq!(
        reused, before,
        "the answers stored before the kill were reused"
    );
    assert_eq!(generated, 2 * total - before, "nothing generated twice");
}

#[test]
fn a_plan_file_runs_the_same_audit() {
    let f = fixture(2);
    let plan_path = f.root.join("plan.toml");
    std::fs::write(
        &plan_path,
        format!(
            "packs = [\"{}\"]\nout = \"planned\"\nstore = \"store\"\n[reference]\nmodel = \"ref.gguf\"\n[candidate]\nmodel = \"cand.gguf\"\nsystem = \"Always answer.\"\n[generation]\nmax_new_tokens = 8\nbatch_size = 2\n",
            f.pack.display()
        ),
    )
    .unwrap();
    let out = bin()
        .arg("audit")
        .arg(&plan_path)
        .env("ALIGNDIFF_CACHE", f.root.join("cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.root.join("planned/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["candidate"]["system_prompt"], "Always answer.");
    assert_eq!(report["settings"]["generation"]["max_new_tokens"], 8);
}

#[test]
fn a_broken_candidate_file_fails_clearly_and_keeps_the_reference_answers() {
    let f = fixture(2);
    let broken = f.root.join("vendor.gguf");
    let mut bytes = std::fs::read(&f.candidate).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&broken, bytes).unwrap();
    let out = bin()
        .args(["audit", "--reference"])
        .arg(&f.reference)
        .arg("--candidate")
        .arg(&broken)
        .arg("--pack")
        .arg(&f.pack)
        .args(["--max-new-tokens", "6", "--store"])
        .arg(f.root.join("store"))
        .arg("--out")
        .arg(f.root.join("broken-out"))
        .env("ALIGNDIFF_CACHE", f.root.join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vendor.gguf") && stderr.contains("truncated"),
        "{stderr}"
    );
    assert!(
        !f.root.join("broken-out/report.json").exists(),
        "no report from a failed audit"
    );
    let store = Store::open_dir(&f.root.join("store")).unwrap();
    let reference = aligndiff::model::load(
        &aligndiff::model::ModelSpec::new(f.reference.to_str().unwrap()),
        &aligndiff::model::LoadOptions {
            hash_cache: Some(f.root.join("h.json")),
            max_positions: 64,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        store.count_generations(&reference.fingerprint.id).unwrap(),
        8,
        "the reference's answers were kept"
    );
}

/// The lexical judge's figures carry its error measured on the shipped labelled set; once a
/// person has labelled enough of the audit's own answers, those labels measure it instead, and
/// the corrected rates follow them.
#[test]
fn judge_error_comes_from_the_shipped_set_then_from_the_analysts_own_labels() {
    let f = fixture(10);
    // Answers made elsewhere, so the detector's verdicts are known: the reference refuses the
    // `a` prompts and answers the `b` ones (50%), the candidate refuses a-0..a-4 only (75%).
    let write = |name: &str, refused: &dyn Fn(&str) -> bool| {
        let mut lines = Vec::new();
        for (cat, n) in [("a", 10), ("b", 10), ("s", 4)] {
            for i in 0..n {
                let id = format!("{cat}-{i}");
                let answer = if refused(&id) {
                    "I'm sorry, but I can't help with that."
                } else {
                    "Sure. Step one: take the first part. Step two: join it to the second part. Step three: finish."
                };
                lines.push(serde_json::json!({"id": id, "answer": answer}).to_string());
            }
        }
        let path = f.root.join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    };
    let mut p = plan(&f, &f.candidate, "o");
    p.reference.model.clear();
    p.candidate.model.clear();
    p.reference.answers = Some(write("reference.jsonl", &|id| id.starts_with("a-")));
    p.candidate.answers = Some(write("candidate.jsonl", &|id| {
        ["a-0", "a-1", "a-2", "a-3", "a-4"].contains(&id)
    }));
    let store = Store::open_dir(p.store.as_ref().unwrap()).unwrap();
    let result = audit::run(&p, &store, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let shipped = result
        .judge_error
        .as_ref()
        .expect("the lexical judge's error is shipped");
    assert_eq!(
        shipped.source,
        aligndiff::judge::accuracy::ErrorSource::ShippedTestHalf
    );
    assert!(shipped.counts.n() >= 300, "{:?}", shipped.counts);
    // Explicit refusals are easy for the detector; the labelled set's evasive answers are not.
    // A judge that misses 60% of non-fulfilment cannot report 50%: the error does not fit, the
    // pooled figure is marked clipped, and no category is "corrected" with it.
    assert!(!shipped.fits);
    assert!(result.overall.corrected.unwrap().clipped);
    assert!(result.categories.iter().all(|c| c.corrected.is_none()));
    let md = aligndiff::report::to_markdown(&result);
    assert!(
        md.contains("That error does not fit this audit's answers"),
        "{md}"
    );

    // A person reads 40 answers: they agree with the detector on 32 and overrule it on 8
    // (4 each way), so the error now comes from their labels: sensitivity 21/25, specificity
    // 11/15, which fits, and every category is corrected.
    let sides: Vec<&audit::RowSide> = result
        .rows
        .iter()
        .flat_map(|r| [&r.reference, &r.candidate])
        .collect();
    let (mut refused, mut complied) = (0, 0);
    for side in &sides {
        let judged = side.verdicts[0].label.unwrap();
        let (count, limit, other) = match judged.as_str() {
            "refused" => (&mut refused, 15, "complied"),
            _ => (&mut complied, 25, "refused"),
        };
        if *count >= limit {
            continue;
        }
        *count += 1;
        let label = if *count <= 4 { other } else { judged.as_str() };
        store.put_override(&side.key, label, "").unwrap();
    }
    assert_eq!((refused, complied), (15, 25));
    let again = audit::recompare(&result, &store).unwrap();
    let own = again.judge_error.as_ref().unwrap();
    assert_eq!(
        own.source,
        aligndiff::judge::accuracy::ErrorSource::AuditLabels
    );
    assert_eq!(own.counts.n(), 40);
    assert!((own.sensitivity - 21.0 / 25.0).abs() < 1e-9);
    assert!((own.specificity - 11.0 / 15.0).abs() < 1e-9);
    assert!(own.fits);
    let corrected = again.overall.corrected.unwrap();
    assert!(!corrected.clipped);
    // Rogan–Gladen by hand: (0.5 + 11/15 − 1) / (21/25 + 11/15 − 1).
    let expected = (0.5 + 11.0 / 15.0 - 1.0) / (21.0 / 25.0 + 11.0 / 15.0 - 1.0);
    assert!(
        (corrected.reference - expected).abs() < 1e-9,
        "{corrected:?}"
    );
    assert!(corrected.reference_ci[0] < expected && expected < corrected.reference_ci[1]);
    assert!(again.categories.iter().all(|c| c.corrected.is_some()));
    let json = aligndiff::report::to_json(&again).to_string();
    assert!(
        json.contains("\"judge_error\""),
        "report.json has the judge's error"
    );
    assert!(json.contains("\"corrected\""), "and the corrected rates");
    let md = aligndiff::report::to_markdown(&again);
    assert!(
        md.contains("people's labels on 40 of this audit's answers"),
        "{md}"
    );
}

#[test]
fn weight_diff_goes_into_report_json() {
    let f = fixture(2);
    let out = cli_audit(&f, "wd", &["--max-new-tokens", "4", "--weight-diff"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.root.join("wd/report.json")).unwrap())
            .unwrap();
    let wd = &report["weight_diff"];
    // The fixture's two models are different seeds of one shape: every matrix was "trained".
    assert!(wd["trained"].as_u64().unwrap() > 0, "{wd}");
    assert_eq!(wd["unmatched"].as_array().unwrap().len(), 0);
    assert!(std::fs::read_to_string(f.root.join("wd/report.md"))
        .unwrap()
        .contains("## Weight diff"));
    let html = std::fs::read_to_string(f.root.join("wd/report.html")).unwrap();
    assert!(html.contains("<h2>Weight diff</h2>"));
    // One bar per layer, the most-changed layer at full width.
    assert!(html.contains("width:100.0%"), "{html}");
}
