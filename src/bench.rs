//! `aligndiff bench`: load time, prefill and decode throughput per batch size, peak memory.

use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::generate::{self, GenerationSettings, Request};
use crate::model::LoadedModel;

/// Figures for one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct BatchFigures {
    /// Sequences decoded together.
    pub batch: usize,
    /// Prompt tokens per second (prompts are prefilled one at a time).
    pub prefill_tokens_per_s: f64,
    /// Generated tokens per second, all sequences together.
    pub decode_tokens_per_s: f64,
    /// Seconds for the whole batch.
    pub wall_seconds: f64,
    /// Peak resident memory after this run, in MiB.
    pub peak_rss_mib: f64,
}

/// A benchmark's results.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Seconds to load (validate, hash, read, re-encode).
    pub load_seconds: f64,
    /// Resident memory right after loading, in MiB.
    pub rss_after_load_mib: f64,
    /// Peak resident memory during loading, in MiB.
    pub peak_rss_after_load_mib: f64,
    /// Instruction set of aligndiff's kernels for `Q4_1`, `Q5_0`, `Q5_1` and `Q8_0` weights here.
    pub kernels: String,
    /// Prompt length used.
    pub prompt_tokens: usize,
    /// Tokens generated per sequence.
    pub new_tokens: usize,
    /// One entry per batch size.
    pub batches: Vec<BatchFigures>,
}

/// Resident and peak resident memory of this process in MiB, from /proc (0 where unavailable).
pub fn memory_mib() -> (f64, f64) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (0.0, 0.0);
    };
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A deterministic prompt of exactly `n` tokens, varied by `variant`.
fn prompt_of(model: &LoadedModel, n: usize, variant: usize) -> Result<Vec<u32>> {
    let text = format!(
        "Report {variant}. The auditor reviewed the model's answers to requests in many categories, \
         noting where it refused, where it complied, and how its tone changed after fine-tuning. "
    );
    let unit = model.tokenizer.encode(&text, false)?;
    if unit.is_empty() {
        return Err(Error::Invalid(
            "the tokenizer produced no tokens for the benchmark prompt".into(),
        ));
    }
    Ok(unit.iter().copied().cycle().take(n).collect())
}

/// Measure `model` at each batch size.
pub fn run(
    model: &LoadedModel,
    batch_sizes: &[usize],
    prompt_tokens: usize,
    new_tokens: usize,
) -> Result<BenchReport> {
    let (rss, peak) = memory_mib();
    let cancel = AtomicBool::new(false);
    // Warm up (thread pools, allocator, repacked weight caches) outside the measurement.
    {
        let settings = GenerationSettings {
            max_new_tokens: 2,
            batch_size: 1,
            ignore_eos: true,
            ..Default::default()
        };
        let warm = [Request {
            prompt_ids: prompt_of(model, prompt_tokens.min(16), 0)?,
            seed_key: 0,
        }];
        generate::generate(model, &warm, &settings, &cancel, &mut |_| {})?;
    }
    let mut batches = Vec::new();
    for &batch in batch_sizes {
        let requests = (0..batch)
            .map(|i| {
                Ok(Request {
                    prompt_ids: prompt_of(model, prompt_tokens, i + 1)?,
                    seed_key: i as u64,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let settings = GenerationSettings {
            max_new_tokens: new_tokens,
            batch_size: batch,
            ignore_eos: true,
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let (_, stats) = generate::generate(model, &requests, &settings, &cancel, &mut |_| {})?;
        let wall = started.elapsed().as_secs_f64();
        let per_s = |tokens: usize, d: std::time::Duration| {
            if d.as_secs_f64() > 0.0 {
                tokens as f64 / d.as_secs_f64()
            } else {
                0.0
            }
        };
        batches.push(BatchFigures {
            batch,
            prefill_tokens_per_s: per_s(stats.prefill_tokens, stats.prefill_time),
            decode_tokens_per_s: per_s(stats.decode_tokens, stats.decode_time),
            wall_seconds: wall,
            peak_rss_mib: memory_mib().1,
        });
    }
    Ok(BenchReport {
        load_seconds: model.info.load_seconds,
        rss_after_load_mib: rss,
        peak_rss_after_load_mib: peak,
        kernels: crate::model::kernels::instruction_set().to_owned(),
        prompt_tokens,
        new_tokens,
        batches,
    })
}
