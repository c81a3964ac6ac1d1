//! The model commands: `generate`, `bench`, `inspect`, and `packs`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{BenchArgs, GenerateArgs, InspectArgs, PacksArgs};
use aligndiff::generate::{self, Event, GenerationSettings, Request};
use aligndiff::model::LoadedModel;

pub(super) fn run_generate(args: &GenerateArgs) -> Result<ExitCode> {
    if args.model.is_served() {
        return super::served::run_generate(args);
    }
    let model = args.model.load(4096)?;
    let prompt_ids =
        model.prompt_ids(args.system.as_deref(), std::slice::from_ref(&args.prompt))?;
    let settings = GenerationSettings {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        batch_size: 1,
        ignore_eos: false,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let mut stdout = std::io::stdout().lock();
    let mut write_error = None;
    let (completions, _) = generate::generate(
        &model,
        &[Request {
            prompt_ids,
            seed_key: 0,
        }],
        &settings,
        &cancel,
        &mut |event| {
            if let Event::Token { delta, .. } = event {
                if let Err(e) = stdout
                    .write_all(delta.as_bytes())
                    .and_then(|()| stdout.flush())
                {
                    write_error.get_or_insert(e);
                }
            }
        },
    )?;
    if let Some(e) = write_error {
        return Err(e).context("writing to stdout");
    }
    writeln!(stdout)?;
    if let Some(c) = completions.first() {
        eprintln!(
            "[{} prompt tokens, {} generated, finished: {}]",
            c.prompt_tokens,
            c.token_ids.len(),
            c.finish.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run_bench(args: &BenchArgs) -> Result<ExitCode> {
    if args.model.is_served() {
        return super::served::run_bench(args);
    }
    if args.batch.is_empty() || args.batch.contains(&0) {
        anyhow::bail!("--batch needs positive batch sizes, e.g. 1,8");
    }
    let model = args.model.load(args.prompt_tokens + args.new_tokens + 8)?;
    let report = aligndiff::bench::run(&model, &args.batch, args.prompt_tokens, args.new_tokens)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let file_mib = model
        .fingerprint
        .files
        .iter()
        .filter(|f| f.role == "weights")
        .map(|f| f.bytes as f64)
        .sum::<f64>()
        / (1024.0 * 1024.0);
    println!("model        {}", model.spec.label());
    println!(
        "weights      {file_mib:.1} MiB on disk; {}",
        describe_weights(&model)
    );
    println!("load         {:.2} s", report.load_seconds);
    if model.transformer.device().is_cpu() {
        println!(
            "kernels      Q4_1/Q5_0/Q5_1/Q8_0 on aligndiff's {} kernels, K-quants on candle's",
            report.kernels
        );
    }
    println!(
        "memory       {:.0} MiB resident after load (peak {:.0} MiB, {:.2}x the file)",
        report.rss_after_load_mib,
        report.peak_rss_after_load_mib,
        report.peak_rss_after_load_mib / file_mib.max(1e-9)
    );
    println!(
        "workload     {} prompt tokens, {} new tokens per sequence",
        report.prompt_tokens, report.new_tokens
    );
    println!("batch   prefill tok/s   decode tok/s   wall s   peak MiB");
    for b in &report.batches {
        println!(
            "{:>5}   {:>13.1}   {:>12.1}   {:>6.2}   {:>8.0}",
            b.batch, b.prefill_tokens_per_s, b.decode_tokens_per_s, b.wall_seconds, b.peak_rss_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn describe_weights(model: &LoadedModel) -> String {
    let w = &model.info.weights;
    let stored: Vec<String> = w
        .stored_types
        .iter()
        .map(|(t, n)| format!("{n}x{t}"))
        .collect();
    let mut s = format!("stored {}", stored.join(" "));
    for (from, to, n) in &w.requantized {
        s.push_str(&format!("; {n} {from} re-encoded as {to}"));
    }
    s
}

pub(super) fn run_inspect(args: &InspectArgs) -> Result<ExitCode> {
    if args.model.is_served() {
        return super::served::run_inspect(args);
    }
    let model = args.model.load(4096)?;
    if args.json {
        let value = serde_json::json!({
            "spec": model.spec,
            "info": model.info,
            "fingerprint": model.fingerprint,
            "stop_tokens": model.tokenizer.stop_ids.iter().map(|id| {
                serde_json::json!({"id": id, "token": model.tokenizer.token(*id)})
            }).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let i = &model.info;
    let c = &i.config;
    println!("source        {}", model.spec.label());
    if let Some(name) = &i.name {
        println!("name          {name}");
    }
    println!("format        {}", i.format);
    println!("architecture  {}", i.architecture.name());
    println!(
        "parameters    {:.1} M ({} layers, hidden {}, {} heads / {} kv heads x {}, MLP {}, vocab {})",
        i.parameters as f64 / 1e6,
        c.layers,
        c.hidden_size,
        c.heads,
        c.kv_heads,
        c.head_dim,
        c.ffn_size,
        c.vocab_size
    );
    println!(
        "context       {} tokens (RoPE base {})",
        c.context_length, c.rope_theta
    );
    println!("weights       {}", describe_weights(&model));
    println!("tokenizer     {}", i.tokenizer);
    let stops: Vec<String> = model
        .tokenizer
        .stop_ids
        .iter()
        .map(|id| format!("{} ({id})", model.tokenizer.token(*id).unwrap_or_default()))
        .collect();
    println!("stop tokens   {}", stops.join(", "));
    println!(
        "template      {} (sha256 {})",
        model.template.origin, model.template.sha256
    );
    println!("device        {}", i.device);
    println!("loaded in     {:.2} s", i.load_seconds);
    println!("fingerprint   {}", model.fingerprint.id);
    if let Some(rev) = &model.fingerprint.revision {
        println!("revision      {rev}");
    }
    for t in &model.fingerprint.transforms {
        println!("transform     {t}");
    }
    for f in &model.fingerprint.files {
        println!(
            "  {:<9} {:>12} bytes  {}  {}",
            f.role, f.bytes, f.sha256, f.path
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run_packs(args: &PacksArgs) -> Result<ExitCode> {
    match &args.pack {
        None => {
            for name in aligndiff::packs::builtin_names() {
                let pack = aligndiff::packs::load(name)?;
                println!(
                    "{:<16} v{}  {:>4} prompts  {:>2} categories  {}",
                    pack.id,
                    pack.version,
                    pack.prompts.len(),
                    pack.categories.len(),
                    pack.title
                );
            }
        }
        Some(name) => {
            let pack = aligndiff::packs::load(name)?;
            println!(
                "{} v{} ({}, taxonomy {}, sha256 {})",
                pack.id, pack.version, pack.origin, pack.taxonomy, pack.sha256
            );
            let counts = pack.counts();
            for c in &pack.categories {
                println!(
                    "{:>4}  {:<52} {:>3} prompts  {}",
                    c.id,
                    c.name,
                    counts.get(c.id.as_str()).unwrap_or(&0),
                    c.domain
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
