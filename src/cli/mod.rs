//! Command-line interface. Exit codes: 0 success, 1 a release gate failed, 2 an error.

mod audit;
mod model;
mod served;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use aligndiff::judge::JudgeSpec;
use aligndiff::model::{LoadOptions, LoadedModel, ModelSpec, Requantize};

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
    /// Reference model: a GGUF file, a model folder, hf:owner/name[@revision], or a model on
    /// an OpenAI-compatible server, openai:<base URL>#<served model name>.
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
    /// The environment variable holding the reference server's API key (default
    /// `OPENAI_API_KEY`). The key itself is never recorded.
    #[arg(long, value_name = "VAR")]
    reference_api_key_env: Option<String>,
    /// The environment variable holding the candidate server's API key (default
    /// `OPENAI_API_KEY`).
    #[arg(long, value_name = "VAR")]
    candidate_api_key_env: Option<String>,
    /// The SHA-256 you were told the reference server's weights have: recorded as declared,
    /// not verified.
    #[arg(long, value_name = "SHA256")]
    reference_declared_sha256: Option<String>,
    /// The SHA-256 you were told the candidate server's weights have.
    #[arg(long, value_name = "SHA256")]
    candidate_declared_sha256: Option<String>,
    #[command(flatten)]
    serving: ServingArgs,
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
    /// rubric:TEMPLATE@MODEL (TEMPLATE: fulfillment, strongreject, harm-score, sorry-bench or a
    /// file), sorry-bench (SORRY-Bench's own judge) or sorry-bench:MODEL, qwen3guard
    /// (Qwen3Guard-Gen-0.6B) or qwen3guard:MODEL, llama-guard:MODEL, shieldgemma:MODEL,
    /// human:FILE. Default: refusal. MODEL may be on a server: openai:<base URL>#<served model
    /// name>. docs/JUDGES.md says which judge to use when.
    #[arg(long = "judge", value_name = "SPEC", value_parser = parse_judge)]
    judges: Vec<JudgeSpec>,
    /// Ask both models to rate how harmful each request is (0–9) and report the shift.
    #[arg(long)]
    harm_probe: bool,
    /// Compare the two GGUF files' weights tensor by tensor first (which layers changed, and
    /// whether by training or only by re-quantisation).
    #[arg(long)]
    weight_diff: bool,
    /// Gate thresholds (TOML): exit 1 when a rule fails.
    #[arg(long)]
    gate: Option<PathBuf>,
    /// Also write the gate's verdict as `JUnit` XML here (one test case per rule), for CI systems.
    /// Applies with a plan file too.
    #[arg(long)]
    junit: Option<PathBuf>,
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

/// How requests go to a model on a server.
#[derive(Args, Clone)]
struct ServingArgs {
    /// Requests in flight at once to each server (served models and judges).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds one request to a server may take.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    request_timeout: f64,
    /// Times a failed request (429, 5xx, timeout, dropped connection) is sent again.
    #[arg(long, default_value_t = 6)]
    max_retries: u32,
    /// The environment variable holding served judges' API key (default `OPENAI_API_KEY`).
    #[arg(long, value_name = "VAR")]
    judge_api_key_env: Option<String>,
}

impl ServingArgs {
    fn settings(&self) -> aligndiff::serve::ServingSettings {
        aligndiff::serve::ServingSettings {
            concurrency: self.concurrency,
            request_timeout_s: self.request_timeout,
            max_retries: self.max_retries,
        }
    }
}

#[derive(Args)]
struct JudgeArgs {
    /// Answers: JSONL (`.jsonl`) or CSV with a header; fields id, prompt, answer (optional
    /// category, model, system).
    #[arg(long)]
    input: PathBuf,
    /// A judge (repeatable): refusal, rubric:TEMPLATE@MODEL, sorry-bench[:MODEL],
    /// qwen3guard[:MODEL], llama-guard:MODEL, shieldgemma:MODEL. MODEL may be on a server:
    /// openai:<base URL>#<served model name>.
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
    /// Score every judge against the input's own label field (complied or 1 for fulfilled,
    /// refused or 0 for not fulfilled): precision and recall for "not fulfilled", sensitivity,
    /// Cohen's kappa, and right/total per hard kind. Measures a judge on the shipped labelled
    /// set: --input prompt-packs/judges/labelled/answers.jsonl --score --score-split test.
    #[arg(long)]
    score: bool,
    /// With --score, only the records whose split field is this (test: the held-out half).
    #[arg(long, requires = "score")]
    score_split: Option<String>,
    #[command(flatten)]
    serving: ServingArgs,
}

#[derive(Args)]
struct PacksArgs {
    /// A pack name or path to describe.
    pack: Option<String>,
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// A GGUF file, a safetensors model folder, hf:owner/name[@revision][:file.gguf], or a
    /// model on an OpenAI-compatible server, openai:<base URL>#<served model name>.
    #[arg(long)]
    model: String,
    /// For a served model: the environment variable holding the API key (default
    /// OPENAI_API_KEY). The key itself is never printed or recorded.
    #[arg(long, value_name = "VAR")]
    api_key_env: Option<String>,
    /// For a served model: seconds one request may take.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    request_timeout: f64,
    /// For a served model: times a failed request is sent again.
    #[arg(long, default_value_t = 6)]
    max_retries: u32,
    /// A PEFT LoRA adapter folder to merge into a safetensors base.
    #[arg(long)]
    lora: Option<PathBuf>,
    /// cpu, cuda, metal or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// `never` (the default: run the weights exactly as stored) or `q8_0` (re-encode `Q4_1`,
    /// `Q5_0` and `Q5_1` tensors as `Q8_0` on CPU; lossy, recorded in the fingerprint and the
    /// report).
    #[arg(long, default_value = "never", value_parser = parse_requantize)]
    requantize: Requantize,
}

fn parse_judge(s: &str) -> std::result::Result<JudgeSpec, String> {
    JudgeSpec::parse(s).map_err(|e| e.to_string())
}

fn parse_requantize(s: &str) -> std::result::Result<Requantize, String> {
    match s {
        // `auto` was the name of the Q8_0 re-encode when it was the default.
        "q8_0" | "Q8_0" | "auto" => Ok(Requantize::Q8_0),
        "never" => Ok(Requantize::Never),
        other => Err(format!("`{other}`: expected never or q8_0")),
    }
}

impl ModelArgs {
    /// Whether the model is on a server.
    fn is_served(&self) -> bool {
        aligndiff::serve::is_served(&self.model)
    }

    /// Find the served model on its server, sending at most `concurrency` requests at once.
    fn connect(&self, concurrency: usize) -> Result<aligndiff::serve::ServedModel> {
        if self.lora.is_some() {
            anyhow::bail!(
                "a LoRA adapter on a served model is the server's to apply (vLLM: --lora-modules NAME=PATH, then openai:URL#NAME)"
            );
        }
        let settings = aligndiff::serve::ServingSettings {
            concurrency,
            request_timeout_s: self.request_timeout,
            max_retries: self.max_retries,
        };
        let cancel = std::sync::atomic::AtomicBool::new(false);
        Ok(aligndiff::serve::ServedModel::connect(
            &self.model,
            self.api_key_env.as_deref(),
            &settings,
            &cancel,
        )?)
    }

    fn load(&self, max_positions: usize) -> Result<LoadedModel> {
        let spec = ModelSpec {
            source: self.model.clone(),
            lora: self.lora.clone(),
        };
        let options = LoadOptions {
            device: aligndiff::model::select_device(&self.device)?,
            requantize: self.requantize,
            max_positions,
            hash_cache: None,
        };
        Ok(aligndiff::model::load(&spec, &options)?)
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
    /// For a served model: requests in flight to measure, comma-separated.
    #[arg(long, default_value = "1,8,32", value_delimiter = ',')]
    concurrency: Vec<usize>,
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
        Some(Command::Generate(args)) => model::run_generate(&args),
        Some(Command::Bench(args)) => model::run_bench(&args),
        Some(Command::Inspect(args)) => model::run_inspect(&args),
        Some(Command::Audit(args)) => audit::run_audit(&args),
        Some(Command::Judge(args)) => audit::run_judge(&args),
        Some(Command::Packs(args)) => model::run_packs(&args),
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
