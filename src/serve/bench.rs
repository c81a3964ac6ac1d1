//! `aligndiff bench` on a served model: answers per minute and tokens per second at several
//! concurrency levels, and the client's own cost per request (the time a request took that the
//! server does not account for, where the server reports its timings, as llama.cpp's does).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::chat::{ChatRequest, Message};
use super::client::Client;
use super::pool::{send_all, Job};
use crate::error::Result;

/// One concurrency level's figures.
#[derive(Debug, Clone, Serialize)]
pub struct LevelReport {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Requests sent.
    pub requests: usize,
    /// The most that were in flight at once.
    pub peak_in_flight: usize,
    /// Wall time of the level.
    pub wall_seconds: f64,
    /// Answers per minute.
    pub answers_per_minute: f64,
    /// Answer tokens per second, as the server counted them.
    pub completion_tokens_per_s: f64,
    /// Mean time from sending a request to having its answer parsed.
    pub mean_latency_ms: f64,
    /// Mean latency less the server's own timing of the answer: HTTP, JSON and this client.
    /// `None` when the server reports no timings.
    pub mean_overhead_ms: Option<f64>,
    /// Mean time the client itself spent per request (request JSON written, answer JSON read).
    pub mean_client_ms: f64,
    /// Retries needed.
    pub retries: usize,
}

/// A served-model benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct ServedBench {
    /// `openai:URL#model`.
    pub model: String,
    /// Approximate prompt length in words.
    pub prompt_words: usize,
    /// `max_tokens` per request.
    pub max_tokens: usize,
    /// One entry per level.
    pub levels: Vec<LevelReport>,
}

/// Send `requests_per_level(c)` requests at each concurrency `c`: a prompt of about
/// `prompt_words` words (different for every request, so no server-side prompt cache makes
/// them free) and greedy answers of at most `max_tokens` tokens.
pub fn run(
    client: &Client,
    model: &str,
    levels: &[usize],
    prompt_words: usize,
    max_tokens: usize,
    cancel: &AtomicBool,
) -> Result<ServedBench> {
    let words = [
        "river", "lantern", "copper", "meadow", "signal", "harbor", "violet", "engine", "garden",
        "quartz", "orbit", "marble", "thunder", "willow", "canvas", "falcon",
    ];
    let mut reports = Vec::new();
    for &concurrency in levels {
        let n = (concurrency * 4).clamp(8, 256);
        let jobs: Vec<Job> = (0..n)
            .map(|i| {
                let text: Vec<&str> = (0..prompt_words)
                    .map(|w| words[(w * 7 + i * 13 + w / 3) % words.len()])
                    .collect();
                Job {
                    request: ChatRequest::greedy(
                        model,
                        vec![Message::new(
                            "user",
                            format!(
                                "Request {i}. Continue this list of words: {}",
                                text.join(" ")
                            ),
                        )],
                        max_tokens,
                    ),
                    what: format!("benchmark request {i}"),
                }
            })
            .collect();
        let level_client = client.with_concurrency(concurrency)?;
        let traffic = level_client.traffic().clone();
        let started = Instant::now();
        let (mut tokens, mut latency, mut overhead, mut timed) =
            (0u64, Duration::ZERO, Duration::ZERO, 0usize);
        let mut client = Duration::ZERO;
        send_all(&level_client, &jobs, cancel, &mut |_, a| {
            tokens += u64::from(a.served.completion_tokens);
            latency += a.latency;
            client += a.client_time;
            if let Some(server) = a.server_time {
                overhead += a.latency.saturating_sub(server);
                timed += 1;
            }
            Ok(())
        })?;
        let wall = started.elapsed().as_secs_f64();
        reports.push(LevelReport {
            concurrency,
            requests: n,
            peak_in_flight: traffic.peak_in_flight.load(Ordering::Relaxed),
            wall_seconds: wall,
            answers_per_minute: n as f64 * 60.0 / wall.max(1e-9),
            completion_tokens_per_s: tokens as f64 / wall.max(1e-9),
            mean_latency_ms: latency.as_secs_f64() * 1e3 / n as f64,
            mean_client_ms: client.as_secs_f64() * 1e3 / n as f64,
            mean_overhead_ms: (timed > 0).then(|| overhead.as_secs_f64() * 1e3 / timed as f64),
            retries: traffic.retries.load(Ordering::Relaxed),
        });
    }
    Ok(ServedBench {
        model: client.endpoint().with_model(model).display(),
        prompt_words,
        max_tokens,
        levels: reports,
    })
}
