//! The test harness for the served-model backend, against a real llama.cpp `llama-server`
//! (built by scripts/build-llama-server.sh) on the SmolLM2 demo model: the server starts, answers
//! the OpenAI-compatible API, restarts on its port after a crash, and the fault-injecting proxy in
//! front of it does what each fault says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::proxy::{Fault, FaultPlan, FaultProxy, MALFORMED_BODY};
use common::server::{LlamaServer, ServerOptions};
use serde_json::{json, Value};

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn smol(opts: ServerOptions) -> Option<LlamaServer> {
    LlamaServer::start_or_skip(&common::demo_model(SMOL), opts)
}

fn colors_request(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "List three primary colors."}],
        "max_tokens": 16,
        "temperature": 0,
        "seed": 0,
        "logprobs": true,
        "top_logprobs": 5,
    })
}

fn short_request() -> Value {
    json!({
        "messages": [{"role": "user", "content": "Say hi."}],
        "max_tokens": 4,
        "temperature": 0,
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

#[test]
fn the_server_lists_its_model_and_answers_a_chat_completion_with_logprobs() {
    let Some(server) = smol(ServerOptions {
        alias: Some("smol".into()),
        ..Default::default()
    }) else {
        return;
    };
    println!(
        "llama-server started in {:?} on port {}",
        server.startup_time(),
        server.port()
    );

    let models = server.get_json("/models");
    println!("GET /v1/models:\n{}", pretty(&models));
    let data = models["data"].as_array().expect("data: [...]");
    assert_eq!(data.len(), 1, "{models}");
    assert_eq!(
        data[0]["id"], "smol",
        "the alias is the model's id: {models}"
    );
    assert_eq!(data[0]["object"], "model");

    let started = Instant::now();
    let resp = server.post_json("/chat/completions", &colors_request("smol"));
    println!(
        "POST /v1/chat/completions ({:?}):\n{}",
        started.elapsed(),
        pretty(&resp)
    );
    assert_eq!(resp["object"], "chat.completion");
    let choice = &resp["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    let content = choice["message"]["content"].as_str().expect("content");
    assert!(!content.trim().is_empty(), "{resp}");
    assert!(
        matches!(choice["finish_reason"].as_str(), Some("length" | "stop")),
        "{resp}"
    );
    let usage = &resp["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{resp}");
    let completion_tokens = usage["completion_tokens"].as_u64().unwrap();
    assert!((1..=16).contains(&completion_tokens), "{resp}");
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + completion_tokens
    );
    let logprobs = choice["logprobs"]["content"]
        .as_array()
        .expect("logprobs.content: [...]");
    assert_eq!(logprobs.len() as u64, completion_tokens, "{resp}");
    for entry in logprobs {
        assert!(entry["token"].is_string(), "{entry}");
        assert!(entry["logprob"].as_f64().unwrap() <= 0.0, "{entry}");
        let top = entry["top_logprobs"].as_array().expect("top_logprobs");
        assert_eq!(top.len(), 5, "{entry}");
        // Greedy: the chosen token is the most likely one.
        assert_eq!(top[0]["token"], entry["token"], "{entry}");
    }
}

/// Reads a response body to its end (so ureq can reuse the connection).
fn body_of(resp: ureq::Response) -> String {
    resp.into_string().unwrap()
}

#[test]
fn the_proxy_injects_each_fault_and_counts_what_reached_the_server() {
    let Some(server) = smol(ServerOptions::default()) else {
        return;
    };
    let proxy = FaultProxy::start(
        server.addr(),
        FaultPlan::sequence(vec![
            Fault::TooMany { retry_after_s: 1 },
            Fault::ServerError,
            Fault::Malformed,
            Fault::Drop,
            Fault::Slow { delay_ms: 3000 },
            Fault::Pass,
        ]),
    );
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(2))
        .timeout_read(Duration::from_secs(60))
        .build();
    // For the stall: a read timeout shorter than it (the server's own answer comes before the
    // headers, so a loaded machine does not make this one time out early).
    let impatient = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(2))
        .timeout_read(Duration::from_secs(1))
        .build();
    let url = format!("{}/chat/completions", proxy.base_url());
    #[allow(clippy::result_large_err)] // ureq 2's Error, as ureq returns it
    let post = || agent.post(&url).send_json(short_request());

    // GET /v1/models is never faulted.
    let models: Value = agent
        .get(&format!("{}/models", proxy.base_url()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(models["object"], "list");

    // 1: 429 with Retry-After.
    match post() {
        Err(ureq::Error::Status(429, resp)) => {
            assert_eq!(resp.header("Retry-After"), Some("1"));
            let body: Value = serde_json::from_str(&body_of(resp)).unwrap();
            assert_eq!(body["error"]["code"], 429);
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    // 2: 500.
    match post() {
        Err(ureq::Error::Status(500, resp)) => {
            let body: Value = serde_json::from_str(&body_of(resp)).unwrap();
            assert!(body["error"]["message"].is_string());
        }
        other => panic!("expected a 500, got {other:?}"),
    }
    // 3: 200 with a body that is not JSON.
    let resp = post().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_type(), "application/json");
    let text = body_of(resp);
    assert_eq!(text, MALFORMED_BODY);
    assert!(serde_json::from_str::<Value>(&text).is_err());
    // 4: the connection closes without an answer.
    match post() {
        Err(ureq::Error::Transport(t)) => println!("Drop: {t}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
    // 5: headers, then a stall longer than the read timeout.
    let resp = impatient
        .post(&url)
        .send_json(short_request())
        .expect("the headers come before the stall");
    assert_eq!(resp.status(), 200);
    let started = Instant::now();
    let slow = resp.into_string();
    let waited = started.elapsed();
    match slow {
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            println!("Slow: {e} after {waited:?}");
        }
        other => panic!("expected a read timeout, got {other:?}"),
    }
    assert!(waited < Duration::from_millis(2900), "{waited:?}");
    // 6: through.
    let resp: Value = post().unwrap().into_json().unwrap();
    assert!(
        resp["choices"][0]["message"]["content"].is_string(),
        "{resp}"
    );
    // 7: after the sequence, everything passes.
    let resp: Value = post().unwrap().into_json().unwrap();
    assert_eq!(resp["object"], "chat.completion");

    let stats = proxy.stats();
    println!("{stats:#?}");
    assert_eq!(stats.seen("/chat/completions"), 7);
    assert_eq!(stats.seen("/models"), 1);
    for kind in ["too_many", "server_error", "malformed", "drop", "slow"] {
        assert_eq!(stats.fault_count(kind), 1, "{kind}: {:?}", stats.faults);
    }
    assert_eq!(stats.fault_count("pass"), 2);
    assert_eq!(stats.faults_injected(), 5);
    // Malformed, Slow and the two passes reached the server; 429, 500 and Drop did not.
    assert_eq!(stats.forwarded("/chat/completions"), 4);
    assert_eq!(stats.forwarded("/models"), 1);
    assert_eq!(stats.upstream_errors, 0);
    let forwarded: Vec<&str> = stats
        .requests
        .iter()
        .filter(|r| r.upstream_status.is_some())
        .map(|r| r.fault.kind())
        .collect();
    assert_eq!(forwarded, ["pass", "malformed", "slow", "pass", "pass"]);
    assert_eq!(stats.forwarded_chat_bodies().len(), 4);
    // Keep-alive: the agent sent several requests on one connection.
    assert!(
        stats.connections < stats.requests.len(),
        "{} connections for {} requests",
        stats.connections,
        stats.requests.len()
    );
}

#[test]
fn the_proxy_resets_mid_response_and_passes_everything_but_chat_completions() {
    let Some(server) = smol(ServerOptions::default()) else {
        return;
    };
    let proxy = FaultProxy::start(server.addr(), FaultPlan::always(Fault::Reset));
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let url = format!("{}/chat/completions", proxy.base_url());

    // The headers arrive, the body stops short of its Content-Length.
    let reset = agent
        .post(&url)
        .send_json(short_request())
        .map_err(|e| e.to_string())
        .and_then(|r| r.into_string().map_err(|e| e.to_string()));
    assert!(reset.is_err(), "{reset:?}");
    println!("Reset: {}", reset.unwrap_err());

    // Never faulted: /v1/models and the server's /health.
    let health = agent
        .get(&format!("{}/health", proxy.root_url()))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        agent
            .get(&format!("{}/models", proxy.base_url()))
            .call()
            .unwrap()
            .status(),
        200
    );

    // A new plan starts its own count.
    proxy.set_plan(FaultPlan::every(2, Fault::ServerError));
    let statuses: Vec<u16> = (0..4)
        .map(|_| match agent.post(&url).send_json(short_request()) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        })
        .collect();
    assert_eq!(statuses, [200, 500, 200, 500]);
    let stats = proxy.stats();
    assert_eq!(stats.fault_count("reset"), 1);
    assert_eq!(stats.fault_count("server_error"), 2);
    assert_eq!(stats.forwarded("/chat/completions"), 3);

    // Upstream gone: 502.
    drop(server);
    match agent.post(&url).send_json(short_request()) {
        Err(ureq::Error::Status(502, _)) => {}
        other => panic!("expected a 502, got {other:?}"),
    }
    assert_eq!(proxy.stats().upstream_errors, 1);
}

#[test]
fn the_server_comes_back_on_its_port_after_a_crash() {
    let Some(mut server) = smol(ServerOptions::default()) else {
        return;
    };
    let port = server.port();
    let health = format!("{}/health", server.root_url());
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    assert_eq!(agent.get(&health).call().unwrap().status(), 200);

    server.kill();
    assert!(!server.is_running());
    assert!(
        matches!(agent.get(&health).call(), Err(ureq::Error::Transport(_))),
        "nothing listens after the kill"
    );

    server.restart();
    println!("restarted in {:?}", server.startup_time());
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_eq!(agent.get(&health).call().unwrap().status(), 200);
    let resp = server.post_json("/chat/completions", &short_request());
    assert_eq!(resp["object"], "chat.completion");
    assert_eq!(server.log_text().matches("test harness: start").count(), 2);
}

#[test]
fn with_an_api_key_the_api_wants_it_and_health_does_not() {
    let Some(server) = smol(ServerOptions {
        api_key: Some("sekrit".into()),
        parallel: 1,
        ctx: 1024,
        ..Default::default()
    }) else {
        return;
    };
    let plain = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let url = format!("{}/chat/completions", server.base_url());
    let status = |req: ureq::Request| match req.send_json(short_request()) {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, r)) => {
            let body: Value = r.into_json().unwrap();
            println!("{code}: {body}");
            code
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status(plain.post(&url)), 401);
    assert_eq!(
        status(plain.post(&url).set("Authorization", "Bearer wrong")),
        401
    );
    assert_eq!(
        status(plain.post(&url).set("Authorization", "Bearer sekrit")),
        200
    );
    // The harness's own agent sends the key.
    assert_eq!(status(server.agent().post(&url)), 200);
    assert!(matches!(
        plain.get(&format!("{}/models", server.base_url())).call(),
        Err(ureq::Error::Status(401, _))
    ));
    assert_eq!(
        plain
            .get(&format!("{}/health", server.root_url()))
            .call()
            .unwrap()
            .status(),
        200
    );
}

#[test]
#[should_panic(expected = "exited before it was healthy")]
fn a_server_that_cannot_start_fails_the_test_with_its_log() {
    let server = smol(ServerOptions {
        extra_args: vec!["--no-such-option".into()],
        ..Default::default()
    });
    // Only where the harness skips is there nothing to panic about: panic as it would have.
    assert!(server.is_none());
    panic!("exited before it was healthy (skipped)");
}
