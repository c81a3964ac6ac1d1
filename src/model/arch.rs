//! Supported architectures and their hyperparameters, read from GGUF metadata or `config.json`
//! and bounded before anything is allocated.

use std::path::Path;

use serde::Serialize;

use super::gguf::GgufFile;
use crate::error::{Error, Result};

/// The transformer families aligndiff can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Llama 2/3.x, SmolLM2, Mistral (dense).
    Llama,
    /// Qwen2 / Qwen2.5 (biases on q, k, v).
    Qwen2,
    /// Qwen3 dense (q/k RMS norms, no biases).
    Qwen3,
    /// Gemma 3 text (sandwich norms, q/k norms, local/global attention, GELU).
    Gemma3,
}

/// Names accepted in error messages.
pub const SUPPORTED: &str =
    "llama (Llama 2/3, SmolLM2, Mistral), qwen2 (Qwen2/Qwen2.5), qwen3, gemma3";

impl Architecture {
    /// From GGUF's `general.architecture`.
    pub fn from_gguf_name(name: &str) -> Option<Self> {
        match name {
            "llama" | "mistral" => Some(Self::Llama),
            "qwen2" => Some(Self::Qwen2),
            "qwen3" => Some(Self::Qwen3),
            "gemma3" => Some(Self::Gemma3),
            _ => None,
        }
    }

    /// From `config.json`'s `model_type`.
    pub fn from_hf_model_type(name: &str) -> Option<Self> {
        match name {
            "llama" | "mistral" => Some(Self::Llama),
            "qwen2" => Some(Self::Qwen2),
            "qwen3" => Some(Self::Qwen3),
            "gemma3_text" | "gemma3" => Some(Self::Gemma3),
            _ => None,
        }
    }

    /// The lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Gemma3 => "gemma3",
        }
    }
}

/// MLP activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Activation {
    /// SwiGLU (Llama, Qwen).
    Silu,
    /// GeGLU with the tanh approximation (Gemma).
    GeluTanh,
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    /// Family.
    pub arch: Architecture,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// MLP inner width.
    pub ffn_size: usize,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Longest context the model was trained for.
    pub context_length: usize,
    /// RMS norm epsilon.
    pub rms_eps: f64,
    /// RoPE base for global layers.
    pub rope_theta: f64,
    /// RoPE base for sliding-window layers (Gemma 3: 10,000).
    pub rope_local_theta: Option<f64>,
    /// RoPE linear scaling factor for global layers (1 when absent).
    pub rope_scale: f64,
    /// Sliding window length for local layers.
    pub sliding_window: Option<usize>,
    /// Every n-th layer is global, the others use the sliding window (Gemma 3: 6).
    pub sliding_pattern: Option<usize>,
    /// GGUF llama files store q/k permuted for interleaved (GPT-J style) rotation.
    pub rope_interleaved: bool,
    /// Biases on q, k, v.
    pub qkv_bias: bool,
    /// RMS norms on q and k per head.
    pub qk_norm: bool,
    /// Post-attention and post-MLP norms (Gemma's sandwich).
    pub sandwich_norms: bool,
    /// Multiply embeddings by sqrt(hidden) (Gemma).
    pub scale_embeddings: bool,
    /// Attention scale is 1/sqrt(this).
    pub query_pre_attn_scalar: f64,
    /// MLP activation.
    pub activation: Activation,
    /// Add 1 to RMS norm weights (Gemma safetensors store w-1; GGUF already has +1 applied).
    pub norm_weight_offset: f32,
}

/// Upper bounds checked before allocation.
const MAX_HIDDEN: usize = 65_536;
const MAX_LAYERS: usize = 512;
const MAX_HEADS: usize = 1_024;
const MAX_HEAD_DIM: usize = 1_024;
const MAX_FFN: usize = 1 << 20;
const MAX_VOCAB: usize = 1 << 22;
const MAX_CONTEXT: usize = 1 << 24;

impl ModelConfig {
    /// Check every value is in a sane range and the shapes agree.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let check = |name: &str, value: usize, max: usize| -> Result<()> {
            if value == 0 || value > max {
                return Err(Error::bad_file(
                    path,
                    format!("{name} is {value}; it must be between 1 and {max}"),
                ));
            }
            Ok(())
        };
        check("hidden size", self.hidden_size, MAX_HIDDEN)?;
        check("layer count", self.layers, MAX_LAYERS)?;
        check("attention head count", self.heads, MAX_HEADS)?;
        check("key/value head count", self.kv_heads, MAX_HEADS)?;
        check("head dimension", self.head_dim, MAX_HEAD_DIM)?;
        check("MLP width", self.ffn_size, MAX_FFN)?;
        check("vocabulary size", self.vocab_size, MAX_VOCAB)?;
        check("context length", self.context_length, MAX_CONTEXT)?;
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(Error::bad_file(
                path,
                format!(
                    "{} attention heads cannot be grouped over {} key/value heads",
                    self.heads, self.kv_heads
                ),
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(Error::bad_file(
                path,
                format!(
                    "head dimension {} is odd; RoPE needs it even",
                    self.head_dim
                ),
            ));
        }
        let finite_positive = |v: f64| v.is_finite() && v > 0.0;
        if !finite_positive(self.rms_eps)
            || !finite_positive(self.rope_theta)
            || !finite_positive(self.rope_scale)
            || !finite_positive(self.query_pre_attn_scalar)
        {
            return Err(Error::bad_file(
                path,
                "norm epsilon, RoPE base/scale and attention scale must be finite and positive",
            ));
        }
        Ok(())
    }

    /// Whether layer `i` attends within the sliding window only.
    pub fn layer_window(&self, layer: usize) -> Option<usize> {
        let window = self.sliding_window?;
        match self.sliding_pattern {
            Some(p) if p > 0 && (layer + 1).is_multiple_of(p) => None,
            _ => Some(window),
        }
    }

    /// Parameter count implied by the shapes (for display).
    pub fn parameter_count(&self) -> u64 {
        let h = self.hidden_size as u64;
        let q = (self.heads * self.head_dim) as u64;
        let kv = (self.kv_heads * self.head_dim) as u64;
        let per_layer = h * q * 2 + h * kv * 2 + 3 * h * self.ffn_size as u64;
        self.layers as u64 * per_layer + self.vocab_size as u64 * h
    }

    /// Read hyperparameters from GGUF metadata.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let path = gguf.path.as_path();
        let arch_name = gguf
            .get_str("general.architecture")
            .ok_or_else(|| Error::bad_file(path, "GGUF has no general.architecture"))?;
        let arch = Architecture::from_gguf_name(arch_name).ok_or_else(|| {
            Error::bad_file(
                path,
                format!("architecture `{arch_name}` is not supported; supported: {SUPPORTED}"),
            )
        })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let need = |k: &str| -> Result<usize> {
            let full = key(k);
            gguf.get_u64(&full)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| {
                    Error::bad_file(path, format!("GGUF lacks integer metadata `{full}`"))
                })
        };
        let hidden_size = need("embedding_length")?;
        let heads = need("attention.head_count")?;
        let kv_heads = gguf
            .get_u64(&key("attention.head_count_kv"))
            .map_or(heads, |v| v as usize);
        let head_dim = match gguf.get_u64(&key("attention.key_length")) {
            Some(v) => v as usize,
            None if heads > 0 => hidden_size / heads,
            None => 0,
        };
        let vocab_size = match gguf.tensor_dims("token_embd.weight") {
            Some([rows, _]) => *rows,
            _ => {
                return Err(Error::bad_file(
                    path,
                    "GGUF has no two-dimensional token_embd.weight tensor",
                ))
            }
        };
        let gemma = arch == Architecture::Gemma3;
        let config = Self {
            arch,
            hidden_size,
            layers: need("block_count")?,
            heads,
            kv_heads,
            head_dim,
            ffn_size: need("feed_forward_length")?,
            vocab_size,
            context_length: need("context_length")?,
            rms_eps: gguf
                .get_f64(&key("attention.layer_norm_rms_epsilon"))
                .unwrap_or(1e-6),
            rope_theta: gguf.get_f64(&key("rope.freq_base")).unwrap_or(if gemma {
                1_000_000.0
            } else {
                10_000.0
            }),
            rope_local_theta: gemma.then_some(10_000.0),
            rope_scale: gguf.get_f64(&key("rope.scaling.factor")).unwrap_or(1.0),
            sliding_window: if gemma {
                gguf.get_u64(&key("attention.sliding_window"))
                    .map(|v| v as usize)
            } else {
                None
            },
            sliding_pattern: gemma.then_some(6),
            rope_interleaved: arch == Architecture::Llama,
            qkv_bias: gguf.tensor_dims("blk.0.attn_q.bias").is_some(),
            qk_norm: gguf.tensor_dims("blk.0.attn_q_norm.weight").is_some(),
            sandwich_norms: gemma,
            scale_embeddings: gemma,
            query_pre_attn_scalar: head_dim as f64,
            activation: if gemma {
                Activation::GeluTanh
            } else {
                Activation::Silu
            },
            norm_weight_offset: 0.0,
        };
        config.validate(path)?;
        Ok(config)
    }

    /// Read hyperparameters from a Hugging Face `config.json`.
    pub fn from_hf_config(path: &Path, json: &serde_json::Value) -> Result<Self> {
        // Multimodal Gemma 3 checkpoints nest the language model's config.
        let json = json.get("text_config").unwrap_or(json);
        let model_type = json
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::bad_file(path, "config.json has no model_type"))?;
        let arch = Architecture::from_hf_model_type(model_type).ok_or_else(|| {
            Error::bad_file(
                path,
                format!("architecture `{model_type}` is not supported; supported: {SUPPORTED}"),
            )
        })?;
        let uint = |k: &str| -> Result<Option<usize>> {
            match json.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|v| usize::try_from(v).ok())
                    .map(Some)
                    .ok_or_else(|| {
                        Error::bad_file(
                            path,
                            format!("config.json: `{k}` is not a non-negative integer"),
                        )
                    }),
            }
        };
        let need = |k: &str| -> Result<usize> {
            uint(k)?.ok_or_else(|| Error::bad_file(path, format!("config.json lacks `{k}`")))
        };
        let float = |k: &str| json.get(k).and_then(serde_json::Value::as_f64);
        let gemma = arch == Architecture::Gemma3;
        let hidden_size = need("hidden_size")?;
        let heads = need("num_attention_heads")?;
        let head_dim = match uint("head_dim")? {
            Some(d) => d,
            None if heads > 0 => hidden_size / heads,
            None => 0,
        };
        let rope_scale = json
            .get("rope_scaling")
            .and_then(|r| r.get("factor"))
            .and_then(serde_json::Value::as_f64)
            .filter(|_| {
                json.get("rope_scaling")
                    .and_then(|r| r.get("rope_type").or_else(|| r.get("type")))
                    .and_then(|t| t.as_str())
                    == Some("linear")
            })
            .unwrap_or(1.0);
        let config = Self {
            arch,
            hidden_size,
            layers: need("num_hidden_layers")?,
            heads,
            kv_heads: uint("num_key_value_heads")?.unwrap_or(heads),
            head_dim,
            ffn_size: need("intermediate_size")?,
            vocab_size: need("vocab_size")?,
            context_length: uint("max_position_embeddings")?.unwrap_or(4096),
            rms_eps: float("rms_norm_eps").unwrap_or(1e-6),
            rope_theta: float("rope_theta").unwrap_or(if gemma { 1_000_000.0 } else { 10_000.0 }),
            rope_local_theta: if gemma {
                Some(float("rope_local_base_freq").unwrap_or(10_000.0))
            } else {
                None
            },
            rope_scale,
            sliding_window: if gemma { uint("sliding_window")? } else { None },
            sliding_pattern: if gemma {
                Some(uint("sliding_window_pattern")?.unwrap_or(6))
            } else {
                None
            },
            rope_interleaved: false,
            qkv_bias: arch == Architecture::Qwen2
                || json
                    .get("attention_bias")
                    .and_then(serde_json::Value::as_bool)
                    == Some(true),
            qk_norm: matches!(arch, Architecture::Qwen3 | Architecture::Gemma3),
            sandwich_norms: gemma,
            scale_embeddings: gemma,
            query_pre_attn_scalar: float("query_pre_attn_scalar").unwrap_or(head_dim as f64),
            activation: if gemma {
                Activation::GeluTanh
            } else {
                Activation::Silu
            },
            norm_weight_offset: if gemma { 1.0 } else { 0.0 },
        };
        config.validate(path)?;
        Ok(config)
    }
}
