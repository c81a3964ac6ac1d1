//! Audits with a side on a real llama.cpp `llama-server` (built by
//! `scripts/build-llama-server.sh`): pairing with an in-process side of the same GGUF, resume
//! after the server dies, faults injected by a proxy in front of the real server, cancel, and
//! an API key that never reaches the store, the reports or the logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aligndiff::audit::{self, Backend, JobEvent, Plan, SidePlan};
use aligndiff::model::Requantize;
use aligndiff::store::Store;
use common::proxy::{Fault, FaultPlan, FaultProxy};
use common::server::{LlamaServer, ServerOptions};

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// One server at a time: on two cores, parallel servers starve each other and timeouts that
/// test the client would fire on healthy requests.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn smol() -> PathBuf {
    common::demo_model(SMOL)
}

fn server(parallel: usize) -> Option<LlamaServer> {
    LlamaServer::start_or_skip(
        &smol(),
        ServerOptions {
            parallel,
            ctx: 1024 * parallel,
            alias: Some("smol".into()),
            ..ServerOptions::default()
        },
    )
}

fn served(url: &str) -> SidePlan {
    SidePlan::model(format!("openai:{url}#smol"))
}

/// `prompts` harmful prompts (the first of each of the first categories), short answers.
fn plan(root: &Path, reference: SidePlan, candidate: SidePlan, prompts: usize) -> Plan {
    let mut plan = Plan::new(reference, candidate, root.join("out"));
    plan.packs = vec!["sorry44".into()];
    plan.categories = (1..=prompts).map(|c| c.to_string()).collect();
    plan.per_category = Some(1);
    plan.generation.max_new_tokens = 16;
    plan.generation.batch_size = 4;
    plan.requantize = Requantize::Never;
    plan.serving.concurrency = 4;
    plan.serving.max_retries = 2;
    plan.serving.request_timeout_s = 60.0;
    plan.store = Some(root.join("store"));
    plan
}

fn run(plan: &Plan) -> aligndiff::Result<audit::AuditResult> {
    let store = Store::open_dir(plan.store.as_ref().unwrap()).unwrap();
    audit::run(plan, &store, &AtomicBool::new(false), &mut |_| {})
}

fn stored_answers(plan: &Plan) -> usize {
    rusqlite_count(plan.store.as_ref().unwrap(), "generations")
}

fn rusqlite_count(store_dir: &Path, table: &str) -> usize {
    let conn = rusqlite::Connection::open(store_dir.join("aligndiff.sqlite")).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as usize
}

fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_served_candidate_pairs_with_the_same_gguf_in_process() {
    let _serial = serial();
    let Some(server) = server(4) else { return };
    let root = tempfile::tempdir().unwrap();
    let p = plan(
        root.path(),
        SidePlan::model(smol().display().to_string()),
        served(&server.base_url()),
        12,
    );
    let result = run(&p).unwrap();
    assert_eq!(result.rows.len(), 12, "every prompt paired");
    assert_eq!(result.candidate.backend, Backend::Openai);
    assert_eq!(result.reference.backend, Backend::InProcess);
    assert!(result.rows.iter().all(|r| !r.candidate.answer.is_empty()));
    // Same weights (stored Q4_1, not re-encoded), same template, greedy: most openings agree;
    // llama.cpp's and candle's kernels round differently, which decides near-ties.
    let agree = result
        .rows
        .iter()
        .filter(|r| {
            let (a, b) = (r.reference.answer.as_str(), r.candidate.answer.as_str());
            first_words(a, 3) == first_words(b, 3)
        })
        .count();
    eprintln!("openings (first 3 words) agree on {agree} of 12 prompts");
    for r in &result.rows {
        eprintln!(
            "  {}: in-process {:?} | served {:?}",
            r.prompt_id,
            first_words(r.reference.answer.as_str(), 6),
            first_words(r.candidate.answer.as_str(), 6)
        );
    }
    assert!(agree >= 8, "only {agree} of 12 openings agree");

    let side = result.candidate.served.as_ref().unwrap();
    assert_eq!(side.served_model, "smol");
    assert_eq!(side.endpoint, server.base_url());
    assert!(!side.weights_verified);
    assert_eq!(side.server_models, vec!["smol".to_owned()]);
    assert_eq!(side.system_fingerprints.len(), 1, "{side:?}");
    assert!(side.completion_tokens > 0 && side.prompt_tokens > 0);
    aligndiff::report::write_all(&result, &p.out).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.out.join("report.json")).unwrap()).unwrap();
    let c = &json["candidate"];
    assert_eq!(c["backend"], "openai");
    assert_eq!(c["endpoint"], server.base_url());
    assert_eq!(c["served_model"], "smol");
    assert_eq!(c["server_said"]["owned_by"], "llamacpp");
    assert_eq!(c["served"]["weights_verified"], false);
    assert_eq!(json["reference"]["backend"], "in-process");
    let html = std::fs::read_to_string(p.out.join("report.html")).unwrap();
    assert!(html.contains("not verified by aligndiff"));
    assert!(html.contains("<dt>serving</dt><dd>4 requests in flight, 60 s timeout, 2 retries</dd>"));
    let md = std::fs::read_to_string(p.out.join("report.md")).unwrap();
    assert!(md.contains("served sides: 4 requests in flight"), "{md}");

    // A second audit with the same served model as its reference reuses every answer.
    let again = plan(
        root.path(),
        served(&server.base_url()),
        SidePlan::model(smol().display().to_string()),
        12,
    );
    let r2 = run(&again).unwrap();
    assert_eq!((r2.reference.reused, r2.reference.generated), (12, 0));
    assert_eq!((r2.candidate.reused, r2.candidate.generated), (12, 0));
}

#[test]
fn a_killed_server_fails_the_audit_clearly_and_a_restart_resumes() {
    let _serial = serial();
    let Some(mut server) = server(1) else { return };
    let root = tempfile::tempdir().unwrap();
    let mut system = served(&server.base_url());
    system.system = Some("You are a careful assistant.".into());
    let mut p = plan(root.path(), served(&server.base_url()), system, 10);
    p.serving.concurrency = 1;
    // A dead server refuses connections at once: the retry gives up quickly without a short
    // timeout (which a loaded machine could trip on healthy requests).
    p.serving.max_retries = 1;
    let store = Store::open_dir(p.store.as_ref().unwrap()).unwrap();
    let mut killed_after = None;
    let err = audit::run(&p, &store, &AtomicBool::new(false), &mut |e| {
        if let JobEvent::Progress { done, cached, .. } = e {
            if done >= 4 && done > cached && killed_after.is_none() {
                server.kill();
                killed_after = Some(done);
            }
        }
    })
    .unwrap_err()
    .to_string();
    assert!(
        killed_after.is_some(),
        "the audit failed before the kill: {err}"
    );
    assert!(err.contains(&server.base_url()), "{err}");
    assert!(err.contains("prompt sorry44/"), "{err}");
    let kept = stored_answers(&p);
    assert!((4..20).contains(&kept), "{kept} answers stored");
    drop(store);

    server.restart();
    let result = run(&p).unwrap();
    let sent = result.reference.generated + result.candidate.generated;
    let reused = result.reference.reused + result.candidate.reused;
    eprintln!("after the restart: {sent} answers sent, {reused} reused");
    assert_eq!(
        reused, kept,
        "every answer stored before the crash is reused"
    );
    assert_eq!(sent, 20 - kept, "only the missing prompts are sent");
    assert_eq!(stored_answers(&p), 20);
}

#[test]
fn faults_from_a_proxy_are_retried_and_nothing_is_stored_twice() {
    let _serial = serial();
    let Some(server) = server(4) else { return };
    let faults = vec![
        Fault::TooMany { retry_after_s: 1 },
        Fault::ServerError,
        Fault::Malformed,
        Fault::Drop,
        Fault::Slow { delay_ms: 8_000 },
        Fault::Reset,
    ];
    let injected = faults.len();
    let proxy = FaultProxy::start(server.addr(), FaultPlan::sequence(faults));
    let root = tempfile::tempdir().unwrap();
    let mut p = plan(
        root.path(),
        SidePlan::model(smol().display().to_string()),
        served(&proxy.base_url()),
        8,
    );
    // Short answers, so that a healthy request ends well inside the timeout that the slow
    // body runs past.
    p.generation.max_new_tokens = 4;
    p.serving.concurrency = 2;
    p.serving.max_retries = 4;
    p.serving.request_timeout_s = 4.0;
    let started = Instant::now();
    let result = run(&p).unwrap();
    let stats = proxy.stats();
    eprintln!(
        "faults {:?}; forwarded {} chat requests; retries {}; {:.1} s",
        stats.faults,
        stats.forwarded("/chat/completions"),
        result.candidate.served.as_ref().unwrap().retries,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stats.faults_injected(), injected);
    assert_eq!(result.rows.len(), 8);
    assert_eq!(result.candidate.generated, 8);
    assert!(result.candidate.served.as_ref().unwrap().retries >= injected);
    assert_eq!(stored_answers(&p), 16, "each side's 8 answers stored once");
    assert_eq!(
        rusqlite_count(p.store.as_ref().unwrap(), "served_answers"),
        8
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );

    // A server that always fails: after the retries, an error naming the endpoint and the
    // prompt, and nothing stored for that side.
    let broken = FaultProxy::start(server.addr(), FaultPlan::always(Fault::ServerError));
    let root = tempfile::tempdir().unwrap();
    let mut p = plan(
        root.path(),
        served(&server.base_url()),
        served(&broken.base_url()),
        3,
    );
    p.serving.max_retries = 2;
    let err = run(&p).unwrap_err().to_string();
    assert!(err.contains(&broken.base_url()), "{err}");
    assert!(err.contains("prompt sorry44/"), "{err}");
    assert!(
        err.contains("HTTP 500") && err.contains("3 attempts"),
        "{err}"
    );
    assert_eq!(
        stored_answers(&p),
        3,
        "the reference's answers stay; none for the candidate"
    );
    assert_eq!(broken.stats().seen("/chat/completions") % 3, 0);
}

#[test]
fn cancel_stops_sending_and_keeps_what_arrived() {
    let _serial = serial();
    let Some(server) = server(1) else { return };
    let root = tempfile::tempdir().unwrap();
    let mut p = plan(
        root.path(),
        served(&server.base_url()),
        served(&server.base_url()),
        12,
    );
    p.candidate.system = Some("Answer briefly.".into());
    p.serving.concurrency = 1;
    let cancel = AtomicBool::new(false);
    let store = Store::open_dir(p.store.as_ref().unwrap()).unwrap();
    let err = audit::run(&p, &store, &cancel, &mut |e| {
        if let JobEvent::Progress { done: 3, .. } = e {
            cancel.store(true, Ordering::Relaxed);
        }
    })
    .unwrap_err();
    assert!(matches!(err, aligndiff::Error::Cancelled), "{err}");
    let kept = stored_answers(&p);
    assert!((3..=4).contains(&kept), "{kept} answers kept");
    drop(store);
    let result = run(&p).unwrap();
    assert_eq!(result.reference.reused, kept);
}

#[test]
fn the_api_key_never_reaches_the_store_reports_or_logs() {
    let _serial = serial();
    const KEY: &str = "sk-aligndiff-test-7c1f9e2d4b";
    let Some(server) = LlamaServer::start_or_skip(
        &smol(),
        ServerOptions {
            parallel: 2,
            ctx: 2048,
            alias: Some("smol".into()),
            api_key: Some(KEY.into()),
            ..ServerOptions::default()
        },
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let audit_cmd = |key: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aligndiff"))
            .args(["audit", "--reference"])
            .arg(smol())
            .arg("--candidate")
            .arg(format!("openai:{}#smol", server.base_url()))
            .args(["--candidate-api-key-env", "VENDOR_KEY", "--pack", "sorry44"])
            .args(["--categories", "1,2,3", "--per-category", "1"])
            .args(["--max-new-tokens", "8", "--max-retries", "1"])
            .arg("--store")
            .arg(root.path().join("store"))
            .arg("--out")
            .arg(root.path().join("out"))
            .env("VENDOR_KEY", key)
            .env("OPENAI_API_KEY", key)
            .output()
            .unwrap()
    };
    // A wrong key: refused, and the error says where the key came from, not what it is.
    let wrong = audit_cmd("sk-wrong-key-000");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("$VENDOR_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("sk-wrong-key-000"), "{stderr}");

    let out = audit_cmd(KEY);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{logs}");
    assert!(!logs.contains(KEY), "the key is in the output");
    let mut files = 0;
    for dir in [root.path().join("store"), root.path().join("out")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let hit = bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes());
            assert!(!hit, "the key is in {}", path.display());
            files += 1;
        }
    }
    assert!(files >= 5, "looked at {files} files");
    let json = std::fs::read_to_string(root.path().join("out/report.json")).unwrap();
    assert!(json.contains("\"api_key_env\": \"VENDOR_KEY\""), "{json}");
    assert!(json.contains("\"api_key_set\": true"));
}

#[test]
fn credentials_in_a_server_url_are_stripped_from_what_is_recorded() {
    let _serial = serial();
    let Some(server) = server(2) else { return };
    let root = tempfile::tempdir().unwrap();
    let with_credentials = server
        .base_url()
        .replacen("http://", "http://analyst:hunter2pass@", 1);
    let p = plan(
        root.path(),
        SidePlan::model(smol().display().to_string()),
        served(&with_credentials),
        2,
    );
    let result = run(&p).unwrap();
    aligndiff::report::write_all(&result, &p.out).unwrap();
    for dir in [p.store.clone().unwrap(), p.out.clone()] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(9).any(|w| w == b"hunter2pa"),
                "credentials in {}",
                path.display()
            );
        }
    }
    assert_eq!(
        result.candidate.plan.label(),
        format!("openai:{}#smol", server.base_url())
    );
}

#[test]
fn a_prompt_longer_than_the_servers_context_stops_the_audit_saying_how_to_make_room() {
    let _serial = serial();
    let Some(server) = LlamaServer::start_or_skip(
        &smol(),
        ServerOptions {
            parallel: 1,
            ctx: 32,
            alias: Some("smol".into()),
            ..ServerOptions::default()
        },
    ) else {
        return;
    };
    // The server's least context per request is 256 tokens: a long system prompt is past it.
    let mut long = served(&server.base_url());
    long.system = Some("Answer with care and think about who may read the answer. ".repeat(40));
    let root = tempfile::tempdir().unwrap();
    let p = plan(
        root.path(),
        SidePlan::model(smol().display().to_string()),
        long,
        2,
    );
    let err = run(&p).unwrap_err().to_string();
    assert!(err.contains(&server.base_url()), "{err}");
    assert!(err.contains("prompt sorry44/"), "{err}");
    assert!(
        err.contains("longer context") && err.contains("--max-model-len"),
        "{err}"
    );
    assert_eq!(
        stored_answers(&p),
        2,
        "the in-process side's answers stay; none served"
    );
}
