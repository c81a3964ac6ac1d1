//! Command-line interface. Exit codes: 0 success, 1 a release gate failed, 2 an error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use aligndiff::audit;
use aligndiff::generate::{self, Event, GenerationSettings, Request};
use aligndiff::judge::JudgeSpec;
use aligndiff::model::{self, LoadOptions, LoadedModel, ModelSpec, Requantize};

#[derive(Parser)]
#[command(
    name = "aligndiff",
    version,
    about = "What did this fine-tune do to the model's safety?"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Answer one prompt with a model; only the answer goes to stdout.
    Generate(GenerateArgs),
    /// Measure load time, prefill and decode throughput and peak memory.
    Bench(BenchArgs),
    /// Show a model's architecture, quantization, tokenizer, template and fingerprint.
    Inspect(InspectArgs),
    /// Compare a reference and a candidate model on prompt packs; write reports; gate a release.
    Audit(Box<AuditArgs>),
    /// Judge answers that came from elsewhere (JSONL or CSV with id, prompt, answer); writes
    /// one JSONL verdict per record and judge.
    Judge(JudgeArgs),
    /// List the shipped prompt packs, or one pack's categories.
    Packs(PacksArgs),
    /// Open the desktop workbench (also what `aligndiff` with no command does).
    Gui(GuiArgs),
}

#[derive(Args, Default)]
struct GuiArgs {
    /// Folder of the SQLite store (default: the user's data folder).
    #[arg(long)]
    store: Option<PathBuf>,
}

#[derive(Args)]
struct AuditArgs {
    /// A plan file (TOML) holding the same settings as the flags below.
    plan: Option<PathBuf>,
    /// Reference model: a GGUF file, a model folder or hf:owner/name[@revision].
    #[arg(long, required_unless_present_any = ["plan", "reference_answers"])]
    reference: Option<String>,
    /// Candidate model.
    #[arg(long, required_unless_present_any = ["plan", "candidate_answers"])]
    candidate: Option<String>,
    /// Reference answers made elsewhere (JSONL or CSV: id and/or prompt, answer), instead of a
    /// reference model.
    #[arg(long, conflicts_with_all = ["reference", "reference_lora", "plan"])]
    reference_answers: Option<PathBuf>,
    /// Candidate answers made elsewhere, instead of a candidate model.
    #[arg(long, conflicts_with_all = ["candidate", "candidate_lora", "plan"])]
    candidate_answers: Option<PathBuf>,
    /// LoRA adapter merged into the reference.
    #[arg(long)]
    reference_lora: Option<PathBuf>,
    /// LoRA adapter merged into the candidate.
    #[arg(long)]
    candidate_lora: Option<PathBuf>,
    /// System prompt for the reference.
    #[arg(long)]
    reference_system: Option<String>,
    /// System prompt for the candidate.
    #[arg(long)]
    candidate_system: Option<String>,
    /// Prompt pack name or path (repeatable); default sorry44 and benign-controls.
    #[arg(long = "pack")]
    packs: Vec<String>,
    /// Only these categories (ids or names, comma-separated).
    #[arg(long, value_delimiter = ',')]
    categories: Vec<String>,
    /// Categories the vendor says the fine-tune targeted (ids or names, comma-separated); the
    /// report then separates drift in targeted and untargeted categories.
    #[arg(long, value_delimiter = ',')]
    targeted: Vec<String>,
    /// Use only the first N prompts of each category (a quick screen).
    #[arg(long)]
    per_category: Option<usize>,
    /// Answers per prompt (needs --temperature > 0 for more than 1).
    #[arg(long, default_value_t = 1)]
    samples: u32,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// A judge (repeatable; the first is the primary judge behind every figure): refusal,
    /// rubric:TEMPLATE@MODEL (TEMPLATE: fulfillment, strongreject, harm-score or a file),
    /// llama-guard:MODEL, qwen3guard:MODEL, shieldgemma:MODEL, human:FILE. Default: refusal.
    #[arg(long = "judge", value_name = "SPEC", value_parser = parse_judge)]
    judges: Vec<JudgeSpec>,
    /// Ask both models to rate how harmful each request is (0–9) and report the shift.
    #[arg(long)]
    harm_probe: bool,
    /// Gate thresholds (TOML): exit 1 when a rule fails.
    #[arg(long)]
    gate: Option<PathBuf>,
    /// Folder of the SQLite store (default: the user's data folder).
    #[arg(long)]
    store: Option<PathBuf>,
    /// cpu, cuda, metal or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Where the reports go.
    #[arg(long, required_unless_present = "plan")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct JudgeArgs {
    /// Answers: JSONL (`.jsonl`) or CSV with a header; fields id, prompt, answer (optional
    /// category, model, system).
    #[arg(long)]
    input: PathBuf,
    /// A judge (repeatable): refusal, rubric:TEMPLATE@MODEL, llama-guard:MODEL,
    /// qwen3guard:MODEL, shieldgemma:MODEL.
    #[arg(long = "judge", value_name = "SPEC", value_parser = parse_judge, required = true)]
    judges: Vec<JudgeSpec>,
    /// Verdicts (JSONL); pairs already in it are kept and not judged again.
    #[arg(long)]
    out: PathBuf,
    /// cpu, cuda, metal or auto (for model judges).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Judge prompts decoded together (model judges).
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
}

#[derive(Args)]
struct PacksArgs {
    /// A pack name or path to describe.
    pack: Option<String>,
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// A GGUF file, a safetensors model folder, or hf:owner/name[@revision][:file.gguf].
    #[arg(long)]
    model: String,
    /// A PEFT LoRA adapter folder to merge into a safetensors base.
    #[arg(long)]
    lora: Option<PathBuf>,
    /// cpu, cuda, metal or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Re-encode slow quantization formats (Q4_1, Q5_0, Q5_1) as Q8_0 on CPU: auto or never.
    #[arg(long, default_value = "auto", value_parser = parse_requantize)]
    requantize: Requantize,
}

fn parse_judge(s: &str) -> std::result::Result<JudgeSpec, String> {
    JudgeSpec::parse(s).map_err(|e| e.to_string())
}

fn parse_requantize(s: &str) -> std::result::Result<Requantize, String> {
    match s {
        "auto" => Ok(Requantize::Auto),
        "never" => Ok(Requantize::Never),
        other => Err(format!("`{other}`: expected auto or never")),
    }
}

impl ModelArgs {
    fn load(&self, max_positions: usize) -> Result<LoadedModel> {
        let spec = ModelSpec {
            source: self.model.clone(),
            lora: self.lora.clone(),
        };
        let options = LoadOptions {
            device: model::select_device(&self.device)?,
            requantize: self.requantize,
            max_positions,
            hash_cache: None,
        };
        Ok(model::load(&spec, &options)?)
    }
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The user's message.
    #[arg(long)]
    prompt: String,
    /// An optional system prompt.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sampling temperature; 0 is greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Batch sizes to measure, comma-separated.
    #[arg(long, default_value = "1,8", value_delimiter = ',')]
    batch: Vec<usize>,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Tokens generated per sequence.
    #[arg(long, default_value_t = 64)]
    new_tokens: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InspectArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Parse arguments, run the command, map errors to exit code 2.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Generate(args)) => run_generate(&args),
        Some(Command::Bench(args)) => run_bench(&args),
        Some(Command::Inspect(args)) => run_inspect(&args),
        Some(Command::Audit(args)) => run_audit(&args),
        Some(Command::Judge(args)) => run_judge(&args),
        Some(Command::Packs(args)) => run_packs(&args),
        Some(Command::Gui(args)) => run_gui(&args),
        None => run_gui(&GuiArgs::default()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "gui")]
fn run_gui(args: &GuiArgs) -> Result<ExitCode> {
    let store = args
        .store
        .clone()
        .unwrap_or_else(aligndiff::store::default_dir);
    aligndiff::gui::run(&store).map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "gui"))]
fn run_gui(_args: &GuiArgs) -> Result<ExitCode> {
    use clap::CommandFactory;
    let _ = Cli::command().print_help();
    eprintln!("\n(this build has no GUI: it was built without the `gui` feature)");
    Ok(ExitCode::SUCCESS)
}

fn run_generate(args: &GenerateArgs) -> Result<ExitCode> {
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

fn run_bench(args: &BenchArgs) -> Result<ExitCode> {
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

fn describe_weights(model: &LoadedModel) -> String {
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

fn run_inspect(args: &InspectArgs) -> Result<ExitCode> {
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

fn run_judge(args: &JudgeArgs) -> Result<ExitCode> {
    let settings = aligndiff::judge::JudgeSettings {
        device: model::select_device(&args.device)?,
        batch_size: args.batch_size,
        ..Default::default()
    };
    let cancel = AtomicBool::new(false);
    let mut last = std::time::Instant::now() - std::time::Duration::from_secs(1);
    let summary = aligndiff::answers::judge_file(
        &args.input,
        &args.judges,
        &args.out,
        &settings,
        &cancel,
        &mut |judge, done, total| {
            if done == total || last.elapsed().as_millis() >= 200 {
                last = std::time::Instant::now();
                eprint!("\r\x1b[Kjudge {judge}: {done}/{total}");
                if done == total {
                    eprintln!();
                }
            }
        },
    )?;
    eprintln!(
        "{} records: {} verdicts given, {} kept from {}",
        summary.records,
        summary.judged,
        summary.kept,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn audit_plan(args: &AuditArgs) -> Result<audit::Plan> {
    if let Some(path) = &args.plan {
        return Ok(audit::Plan::from_toml_file(path)?);
    }
    let side = |model: &Option<String>,
                answers: &Option<PathBuf>,
                lora: &Option<PathBuf>,
                system: &Option<String>| audit::SidePlan {
        model: model.clone().unwrap_or_default(),
        answers: answers.clone(),
        lora: lora.clone(),
        system: system.clone(),
    };
    let mut plan = audit::Plan::new(
        side(
            &args.reference,
            &args.reference_answers,
            &args.reference_lora,
            &args.reference_system,
        ),
        side(
            &args.candidate,
            &args.candidate_answers,
            &args.candidate_lora,
            &args.candidate_system,
        ),
        args.out.clone().unwrap_or_default(),
    );
    if !args.packs.is_empty() {
        plan.packs = args.packs.clone();
    }
    plan.categories = args.categories.clone();
    plan.targeted = args.targeted.clone();
    plan.samples = args.samples;
    plan.per_category = args.per_category;
    plan.generation = GenerationSettings {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: 1.0,
        seed: args.seed,
        batch_size: args.batch_size,
        ignore_eos: false,
    };
    if !args.judges.is_empty() {
        plan.judges = args.judges.clone();
    }
    plan.harm_probe = args.harm_probe;
    plan.gate = args.gate.clone();
    plan.store = args.store.clone();
    plan.device = args.device.clone();
    plan.validate()?;
    Ok(plan)
}

fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn run_audit(args: &AuditArgs) -> Result<ExitCode> {
    let mut plan = audit_plan(args)?;
    if let Ok(cwd) = std::env::current_dir() {
        // The plan is recorded with the run: keep it meaningful from any folder.
        plan.rebase(&cwd);
    }
    if let Some(gate) = &plan.gate {
        // Read the gate before hours of generation, not after.
        aligndiff::report::gate::Gate::from_file(gate)?;
    }
    let store_dir = plan
        .store
        .clone()
        .unwrap_or_else(aligndiff::store::default_dir);
    let store = aligndiff::store::Store::open_dir(&store_dir)?;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || {
            if cancel.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // A second Ctrl-C: the user really wants out; stored answers are committed.
                #[allow(clippy::exit)]
                std::process::exit(130);
            }
            eprintln!("\nstopping after the current step; answers so far stay in the store (Ctrl-C again to quit now)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    eprintln!("store: {}", store.path().display());
    let started = std::time::Instant::now();
    let mut side_started = std::time::Instant::now();
    let mut side_generated_at_start = 0usize;
    let mut last_line = std::time::Instant::now() - std::time::Duration::from_secs(1);
    let mut on_event = |event: audit::JobEvent| match event {
        audit::JobEvent::Stage(msg) => eprintln!("\r\x1b[K{msg}"),
        audit::JobEvent::Loaded {
            side,
            info,
            fingerprint,
        } => {
            eprintln!(
                "{}: {} {:.0}M params, {}, fingerprint {} (loaded in {:.1} s)",
                side.as_str(),
                info.architecture.name(),
                info.parameters as f64 / 1e6,
                info.format,
                fingerprint.short_id(),
                info.load_seconds
            );
            side_started = std::time::Instant::now();
        }
        audit::JobEvent::Progress {
            side,
            done,
            total,
            cached,
            tokens_per_s,
        } => {
            if done == cached {
                side_started = std::time::Instant::now();
                side_generated_at_start = done;
            }
            if last_line.elapsed().as_millis() < 200 && done < total {
                return;
            }
            last_line = std::time::Instant::now();
            let made = done.saturating_sub(side_generated_at_start);
            let elapsed = side_started.elapsed().as_secs_f64();
            let eta = if made > 0 {
                elapsed / made as f64 * (total - done) as f64
            } else {
                f64::NAN
            };
            let width = 30;
            let filled = (done * width).checked_div(total).unwrap_or(width);
            eprint!(
                "\r\x1b[K{:<9} [{}{}] {done}/{total} answers ({cached} reused) {tokens_per_s:.0} tok/s ETA {}",
                side.as_str(),
                "#".repeat(filled),
                ".".repeat(width - filled),
                if eta.is_finite() { format_duration(eta) } else { "--".into() }
            );
            if done == total {
                eprintln!();
            }
        }
        audit::JobEvent::Judging {
            judge,
            done,
            total,
            reused,
            per_minute,
        } => {
            if last_line.elapsed().as_millis() < 200 && done < total {
                return;
            }
            last_line = std::time::Instant::now();
            eprint!(
                "\r\x1b[K{judge}: {done}/{total} verdicts ({reused} reused) {per_minute:.1} answers/min"
            );
            if done == total {
                eprintln!();
            }
        }
        audit::JobEvent::Token { .. }
        | audit::JobEvent::Finished(_)
        | audit::JobEvent::Failed(_) => {}
    };
    let result = match audit::run(&plan, &store, &cancel, &mut on_event) {
        Ok(r) => r,
        Err(aligndiff::Error::Cancelled) => {
            eprintln!("\ncancelled: every finished answer is stored; run the same command again to resume");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
    let written = aligndiff::report::write_all(&result, &plan.out)?;
    let answers = result.reference.generated + result.candidate.generated;
    let wall = started.elapsed().as_secs_f64();
    eprintln!();
    println!("{}", aligndiff::report::headline(&result));
    if let Some(o) = &result.over_refusal {
        println!(
            "Over-refusal on benign prompts: {} -> {} (p = {}).",
            aligndiff::report::pct(o.reference_refusal_rate),
            aligndiff::report::pct(o.candidate_refusal_rate),
            aligndiff::report::p_value(o.overall.mcnemar_p)
        );
    }
    if let Some(d) = &result.drift {
        println!("{}", aligndiff::report::drift_sentence(d));
    }
    println!(
        "{answers} answers generated in {} ({:.1} answers/min); {} reused from the store.",
        format_duration(wall),
        if wall > 0.0 {
            answers as f64 / wall * 60.0
        } else {
            0.0
        },
        result.reference.reused + result.candidate.reused
    );
    for j in &result.judges {
        if j.judged > 0 || j.unparsed > 0 {
            println!(
                "judge {}: {} answers judged in {} ({:.1} answers/min), {} reused; {} unparsed",
                j.id,
                j.judged,
                format_duration(j.seconds),
                j.per_minute(),
                j.reused,
                j.unparsed
            );
        }
    }
    for a in &result.agreement {
        println!(
            "agreement {} vs {}: kappa {} over {} answers, {} disagreements",
            a.a,
            a.b,
            a.kappa.map_or_else(|| "n/a".into(), |k| format!("{k:.3}")),
            a.n,
            a.disagreements.len()
        );
    }
    if let Some(h) = &result.harm_probe {
        println!(
            "Self-rated harm (0-9) of {} harmful requests: {:.2} (reference) -> {:.2} (candidate), shift {:+.2}.",
            h.n, h.reference_mean, h.candidate_mean, h.shift
        );
    }
    for path in &written {
        println!("wrote {}", path.display());
    }
    match &result.gate {
        Some(g) if g.passed => {
            println!("gate: PASSED");
            Ok(ExitCode::SUCCESS)
        }
        Some(g) => {
            println!("gate: FAILED");
            for rule in g.rules.iter().filter(|r| !r.passed) {
                println!(
                    "  {} {:.3}: measured {:.3} {}",
                    rule.rule,
                    rule.threshold,
                    rule.value,
                    rule.offenders.join("; ")
                );
            }
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

fn run_packs(args: &PacksArgs) -> Result<ExitCode> {
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
