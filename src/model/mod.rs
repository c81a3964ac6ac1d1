//! Checkpoints: where they come from, what they are, and loading them safely.

pub mod arch;
pub mod fingerprint;
pub mod format;
pub mod gguf;
pub mod kernels;
pub mod lora;
pub mod source;
pub mod template;
pub mod tokenizer;
pub mod transformer;
pub mod weight_diff;
pub mod weights;

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use serde::Serialize;

pub use arch::{Architecture, ModelConfig};
pub use fingerprint::{FileDigest, Fingerprint, HashCache, ServedIdentity};
pub use source::Source;
pub use template::{ChatTemplate, Message};
pub use tokenizer::TextTokenizer;
pub use transformer::{SeqCache, Transformer};
pub use weights::{Requantize, WeightsInfo};

use crate::error::{Error, Result};

/// What to load: a source and an optional LoRA adapter folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelSpec {
    /// A path or `hf:owner/name[@revision][:file.gguf]`.
    pub source: String,
    /// A PEFT adapter folder merged into a safetensors base.
    pub lora: Option<PathBuf>,
}

impl ModelSpec {
    /// A spec without an adapter.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            lora: None,
        }
    }

    /// A label for humans: the source, plus the adapter if any.
    pub fn label(&self) -> String {
        match &self.lora {
            Some(l) => format!("{} + LoRA {}", self.source, l.display()),
            None => self.source.clone(),
        }
    }
}

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where the weights live.
    pub device: Device,
    /// Load-time re-encoding of slow quantization formats.
    pub requantize: Requantize,
    /// Longest prompt + answer, in tokens, this load will serve.
    pub max_positions: usize,
    /// Where file hashes are cached (`None`: the default location).
    pub hash_cache: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            requantize: Requantize::Never,
            max_positions: 4096,
            hash_cache: None,
        }
    }
}

/// A human-facing summary of a loaded model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// `gguf` or `safetensors`.
    pub format: String,
    /// Family.
    pub architecture: Architecture,
    /// Hyperparameters.
    pub config: ModelConfig,
    /// Parameter count implied by the shapes.
    pub parameters: u64,
    /// Tensor types and load-time re-encoding.
    pub weights: WeightsInfo,
    /// Tokenizer origin and vocabulary size.
    pub tokenizer: String,
    /// Template origin.
    pub template: String,
    /// `cpu`, `cuda:0`, `metal:0`.
    pub device: String,
    /// Seconds spent loading (hashing included).
    pub load_seconds: f64,
    /// GGUF `general.name`, if any.
    pub name: Option<String>,
}

/// A model ready to generate.
#[derive(Debug)]
pub struct LoadedModel {
    /// What was asked for.
    pub spec: ModelSpec,
    /// The network.
    pub transformer: Transformer,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
    /// Its chat template.
    pub template: ChatTemplate,
    /// Exactly which files and transformations.
    pub fingerprint: Fingerprint,
    /// Summary for display and reports.
    pub info: ModelInfo,
}

/// A short name for a device.
pub fn device_label(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda:0".into(),
        Device::Metal(_) => "metal:0".into(),
    }
}

/// Pick a device by name: `cpu`, `cuda`, `metal` or `auto` (the best compiled-in one available).
pub fn select_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::Invalid(
                    "CUDA requested but this build has no CUDA support (build with --features cuda)".into(),
                ));
            }
            Device::new_cuda(0).map_err(|e| {
                Error::Invalid(format!(
                    "cannot open CUDA device 0: {} (an NVIDIA driver and a visible GPU are \
                     needed; --device cpu runs without them)",
                    e.to_string()
                        .lines()
                        .next()
                        .unwrap_or("unknown driver error")
                ))
            })
        }
        "metal" => {
            if !candle_core::utils::metal_is_available() {
                return Err(Error::Invalid(
                    "Metal requested but this build has no Metal support (build with --features metal)".into(),
                ));
            }
            Ok(Device::new_metal(0)?)
        }
        // The best compiled-in device that opens; a CUDA build on a machine without a GPU
        // runs on the CPU.
        "auto" => {
            if candle_core::utils::cuda_is_available() {
                if let Ok(device) = Device::new_cuda(0) {
                    return Ok(device);
                }
            }
            if candle_core::utils::metal_is_available() {
                if let Ok(device) = Device::new_metal(0) {
                    return Ok(device);
                }
            }
            Ok(Device::Cpu)
        }
        other => Err(Error::Invalid(format!(
            "unknown device `{other}` (expected cpu, cuda, metal or auto)"
        ))),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::bad_file(path, format!("invalid JSON: {e}")))
}

/// Load a model: resolve the source, validate every file, fingerprint it, build the network,
/// the tokenizer and the chat template.
pub fn load(spec: &ModelSpec, options: &LoadOptions) -> Result<LoadedModel> {
    let started = Instant::now();
    let mut hashes = match &options.hash_cache {
        Some(p) => HashCache::open(Some(p.clone())),
        None => HashCache::default_location(),
    };
    /// A source after hub resolution: always local files.
    enum Local {
        Gguf(PathBuf),
        Folder(PathBuf),
    }
    let (source, revision) = match Source::parse(&spec.source)? {
        Source::Hub {
            repo,
            revision,
            file,
        } => {
            let resolved = source::resolve_hub(&repo, &revision, file.as_deref())?;
            let local = if file.is_some() {
                Local::Gguf(resolved.path)
            } else {
                Local::Folder(resolved.path)
            };
            (local, Some(resolved.commit))
        }
        Source::Gguf(path) => (Local::Gguf(path), None),
        Source::Folder(dir) => (Local::Folder(dir), None),
    };
    let mut transforms = Vec::new();
    let mut files = Vec::new();
    let loaded = match source {
        Local::Gguf(path) => {
            if spec.lora.is_some() {
                return Err(Error::bad_file(
                    &path,
                    "LoRA adapters can only be merged into a safetensors base, not a GGUF file \
                     (merge the adapter before quantizing, or load the safetensors base)",
                ));
            }
            let gguf = gguf::GgufFile::open(&path)?;
            // An unsupported architecture is the first thing to tell the user.
            let config = ModelConfig::from_gguf(&gguf)?;
            files.push(hashes.digest("weights", &path)?);
            let tokenizer = TextTokenizer::from_gguf(&gguf)?;
            // Before the weights arrive: the build's freed buffers would otherwise stay mapped
            // under them and set the load's peak.
            crate::util::memory::release_freed();
            let template = ChatTemplate::new(
                gguf.get_str("tokenizer.chat_template").map(str::to_owned),
                if gguf.get("tokenizer.chat_template").is_some() {
                    "gguf:tokenizer.chat_template"
                } else {
                    ""
                },
            );
            let (transformer, weights) = weights::load_gguf(
                &gguf,
                config,
                options.requantize,
                options.max_positions,
                &options.device,
            )?;
            for (from, to, n) in &weights.requantized {
                transforms.push(format!("requantized {n} {from} tensors to {to}"));
            }
            let name = gguf.get_str("general.name").map(str::to_owned);
            (transformer, tokenizer, template, weights, "gguf", name)
        }
        Local::Folder(dir) => {
            let ff = source::folder_files(&dir)?;
            let config_json = read_json(&ff.config)?;
            let config = ModelConfig::from_hf_config(&ff.config, &config_json)?;
            let tok_config = ff.tokenizer_config.as_deref().map(read_json).transpose()?;
            let mut tokenizer = TextTokenizer::from_files(&ff.tokenizer, tok_config.as_ref())?;
            if let Some(gen) = ff.generation_config.as_deref().map(read_json).transpose()? {
                let ids = match gen.get("eos_token_id") {
                    Some(serde_json::Value::Number(n)) => n.as_u64().into_iter().collect(),
                    Some(serde_json::Value::Array(a)) => {
                        a.iter().filter_map(serde_json::Value::as_u64).collect()
                    }
                    _ => Vec::new(),
                };
                for id in ids {
                    if let Ok(id) = u32::try_from(id) {
                        if !tokenizer.stop_ids.contains(&id) {
                            tokenizer.stop_ids.push(id);
                        }
                    }
                }
            }
            let template_text = tok_config
                .as_ref()
                .and_then(|c| c.get("chat_template"))
                .and_then(|t| t.as_str())
                .map(str::to_owned);
            let template = ChatTemplate::new(
                template_text.clone(),
                if template_text.is_some() {
                    "tokenizer_config.json"
                } else {
                    ""
                },
            );
            files.push(hashes.digest("config", &ff.config)?);
            files.push(hashes.digest("tokenizer", &ff.tokenizer)?);
            for extra in [&ff.tokenizer_config, &ff.generation_config]
                .into_iter()
                .flatten()
            {
                files.push(hashes.digest("config", extra)?);
            }
            for shard in &ff.shards {
                files.push(hashes.digest("weights", shard)?);
            }
            let adapter = match &spec.lora {
                Some(dir) => {
                    let adapter = lora::LoraAdapter::open(dir)?;
                    for f in &adapter.files {
                        files.push(hashes.digest("adapter", f)?);
                    }
                    transforms.push(format!(
                        "merged LoRA r={} alpha={} scale={}",
                        adapter.rank, adapter.alpha, adapter.scale
                    ));
                    Some(adapter)
                }
                None => None,
            };
            let (transformer, weights) = weights::load_safetensors(
                &dir,
                config,
                &ff.shards,
                adapter.as_ref(),
                options.max_positions,
                &options.device,
            )?;
            (
                transformer,
                tokenizer,
                template,
                weights,
                "safetensors",
                None,
            )
        }
    };
    let (transformer, mut tokenizer, template, weights, format, name) = loaded;
    for marker in template.end_of_turn_markers() {
        if let Some(id) = tokenizer.token_id(marker) {
            if !tokenizer.stop_ids.contains(&id) {
                tokenizer.stop_ids.push(id);
            }
        }
    }
    if tokenizer.vocab_size() > transformer.config.vocab_size + 1024 {
        return Err(Error::Invalid(format!(
            "{}: the tokenizer has {} tokens but the model's embedding only {} rows",
            spec.source,
            tokenizer.vocab_size(),
            transformer.config.vocab_size
        )));
    }
    let fingerprint = Fingerprint::new(files, revision, template.sha256.clone(), transforms);
    let config = transformer.config.clone();
    let info = ModelInfo {
        format: format.into(),
        architecture: config.arch,
        parameters: config.parameter_count(),
        config,
        weights,
        tokenizer: format!("{} ({} tokens)", tokenizer.origin, tokenizer.vocab_size()),
        template: template.origin.clone(),
        device: device_label(&options.device),
        load_seconds: started.elapsed().as_secs_f64(),
        name,
    };
    // The tokenizer's construction leaves large freed buffers behind.
    crate::util::memory::release_freed();
    Ok(LoadedModel {
        spec: spec.clone(),
        transformer,
        tokenizer,
        template,
        fingerprint,
        info,
    })
}

impl LoadedModel {
    /// Token ids of a conversation rendered with the model's chat template.
    pub fn prompt_ids(&self, system: Option<&str>, user_turns: &[String]) -> Result<Vec<u32>> {
        self.conversation_ids(&template::conversation(system, user_turns, &[]))
    }

    /// Token ids of any conversation (a guard model is given the user's request and the
    /// assistant's answer) rendered with the model's chat template, ready for the next turn.
    pub fn conversation_ids(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let text = self
            .template
            .render(messages, self.bos_token(), self.eos_token())?;
        self.raw_prompt_ids(&text)
    }

    /// Token ids of text given to the model as it is, with no chat template (the beginning-of-
    /// text token is added when the tokenizer wants one and the text lacks it).
    pub fn raw_prompt_ids(&self, text: &str) -> Result<Vec<u32>> {
        let bos = self.bos_token();
        let add_bos = self.tokenizer.add_bos && (bos.is_empty() || !text.starts_with(bos));
        self.tokenizer.encode(text, add_bos)
    }

    /// The beginning-of-text token's text ('' when the tokenizer has none).
    pub fn bos_token(&self) -> &str {
        self.tokenizer.bos.as_ref().map_or("", |(_, s)| s.as_str())
    }

    /// The end-of-text token's text ('' when the tokenizer has none).
    pub fn eos_token(&self) -> &str {
        self.tokenizer.eos.as_ref().map_or("", |(_, s)| s.as_str())
    }
}
