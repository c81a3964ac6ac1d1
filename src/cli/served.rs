//! `generate`, `inspect` and `bench` on a model on an OpenAI-compatible server.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Result;

use super::{BenchArgs, GenerateArgs, InspectArgs};
use aligndiff::serve::{self, ChatRequest};

pub(super) fn run_generate(args: &GenerateArgs) -> Result<ExitCode> {
    let served = args.model.connect(1)?;
    let request = ChatRequest {
        model: served.name().to_owned(),
        messages: serve::prompt_messages(
            args.system.as_deref(),
            std::slice::from_ref(&args.prompt),
        ),
        max_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: Some(args.seed),
        stop: Vec::new(),
        logprobs: false,
        top_logprobs: None,
        n: 1,
        stream: false,
    };
    let cancel = AtomicBool::new(false);
    let answer = served.client.chat(&request, "the prompt", &cancel)?;
    println!("{}", answer.text);
    eprintln!(
        "[{} prompt tokens, {} generated, finished: {}; model {}{}; {:.0} ms]",
        answer.served.prompt_tokens,
        answer.served.completion_tokens,
        answer.served.finish_reason,
        answer.served.server_model,
        answer
            .served
            .system_fingerprint
            .as_deref()
            .map_or(String::new(), |f| format!(", system fingerprint {f}")),
        answer.latency.as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run_inspect(args: &InspectArgs) -> Result<ExitCode> {
    let served = args.model.connect(1)?;
    let cancel = AtomicBool::new(false);
    let all = served.client.models(&cancel)?;
    if args.json {
        let value = serde_json::json!({
            "backend": "openai",
            "endpoint": served.client.endpoint().base_url(),
            "served_model": served.name(),
            "server_said": served.entry.entry,
            "fingerprint": served.fingerprint,
            "served_models": all.iter().map(|m| &m.id).collect::<Vec<_>>(),
            "api_key_env": served.client.key_env(),
            "api_key_set": served.client.has_key(),
            "weights_verified": false,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("source        {}", served.label());
    println!("backend       OpenAI-compatible server (chat completions)");
    println!("endpoint      {}", served.client.endpoint().base_url());
    println!("served model  {}", served.name());
    println!(
        "server said   {}",
        aligndiff::model::fingerprint::canonical_json(&served.entry.entry)
    );
    println!(
        "all models    {}",
        all.iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "API key       from ${} ({})",
        served.client.key_env(),
        if served.client.has_key() {
            "set"
        } else {
            "not set"
        }
    );
    println!("identity      {}", served.fingerprint.id);
    println!("weights       not verified: aligndiff sees the API, not the files the server loaded");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run_bench(args: &BenchArgs) -> Result<ExitCode> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        anyhow::bail!("--concurrency needs positive numbers of requests in flight, e.g. 1,8,32");
    }
    let most = args.concurrency.iter().copied().max().unwrap_or(1);
    let served = args.model.connect(most)?;
    let cancel = AtomicBool::new(false);
    // About 0.75 words per token in English text.
    let words = (args.prompt_tokens * 3 / 4).max(1);
    let report = serve::bench::run(
        &served.client,
        served.name(),
        &args.concurrency,
        words,
        args.new_tokens,
        &cancel,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("model        {}", report.model);
    println!(
        "workload     prompts of about {} words, at most {} answer tokens, greedy",
        report.prompt_words, report.max_tokens
    );
    println!(
        "in flight  requests  peak  answers/min  answer tok/s  latency ms  overhead ms  client ms  retries"
    );
    for l in &report.levels {
        println!(
            "{:>9}  {:>8}  {:>4}  {:>11.1}  {:>12.1}  {:>10.1}  {:>11}  {:>9.3}  {:>7}",
            l.concurrency,
            l.requests,
            l.peak_in_flight,
            l.answers_per_minute,
            l.completion_tokens_per_s,
            l.mean_latency_ms,
            l.mean_overhead_ms
                .map_or_else(|| "n/a".to_owned(), |o| format!("{o:.2}")),
            l.mean_client_ms,
            l.retries
        );
    }
    println!(
        "overhead = latency less the server's own timings (llama.cpp reports them: HTTP and templating on both ends); client = this client's own work per request (JSON out and in); at 1 in flight the overhead is {}",
        report
            .levels
            .iter()
            .find(|l| l.concurrency == 1)
            .and_then(|l| l.mean_overhead_ms)
            .map_or_else(|| "not measured".to_owned(), |o| format!("{o:.2} ms per request"))
    );
    Ok(ExitCode::SUCCESS)
}
