//! Tiny models built in code, in both GGUF and Hugging Face safetensors layouts, with the same
//! weights, so tests can exercise every loading path without downloads.
//!
//! Also a real llama.cpp `llama-server` for the served-model tests ([`server`]) and a
//! fault-injecting HTTP proxy to put in front of it ([`proxy`]).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod fixture;
#[cfg(feature = "gui")]
pub mod gui;
pub mod proxy;
pub mod server;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Which architecture the tiny model imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Llama, Family::Qwen2, Family::Qwen3, Family::Gemma3];

    pub fn gguf_arch(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Gemma3 => "gemma3",
        }
    }

    fn hf_model_type(self) -> &'static str {
        match self {
            Family::Gemma3 => "gemma3_text",
            other => other.gguf_arch(),
        }
    }

    fn qk_norm(self) -> bool {
        matches!(self, Family::Qwen3 | Family::Gemma3)
    }
}

/// Gemma's sliding window in the tiny model: short, so test prompts exceed it.
pub const GEMMA_WINDOW: usize = 5;

/// Shape of the tiny model.
#[derive(Clone, Copy, Debug)]
pub struct Tiny {
    pub family: Family,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ffn: usize,
    pub seed: u64,
}

impl Default for Tiny {
    fn default() -> Self {
        Self {
            family: Family::Llama,
            hidden: 64,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            ffn: 96,
            seed: 7,
        }
    }
}

impl Tiny {
    /// A tiny model of `family`; Gemma gets six layers so one of them is a global layer.
    pub fn of(family: Family) -> Self {
        Self {
            family,
            layers: if family == Family::Gemma3 { 6 } else { 2 },
            ..Self::default()
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

/// GPT-2's byte-to-unicode table: every byte gets a printable character.
pub fn byte_chars() -> Vec<String> {
    let mut printable: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut table = vec![String::new(); 256];
    for (b, c) in printable.iter().zip(&chars) {
        table[*b as usize] = char::from_u32(*c).unwrap().to_string();
    }
    table
}

/// Vocabulary: 256 byte tokens, a few merges, and the `ChatML` specials.
pub fn vocab() -> (Vec<String>, Vec<i32>, Vec<String>) {
    let mut tokens = byte_chars();
    let merges = vec!["Ġ t".to_string(), "h e".to_string(), "Ġt he".to_string()];
    tokens.push("Ġt".into());
    tokens.push("he".into());
    tokens.push("Ġthe".into());
    let mut types = vec![1; tokens.len()];
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(special.into());
        types.push(3);
    }
    (tokens, types, merges)
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
    fn tensor(&mut self, dims: &[usize], scale: f32) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|_| self.next() * scale).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }
}

/// Weights in Hugging Face naming, (out, in) layout.
pub fn hf_weights(t: &Tiny) -> HashMap<String, Tensor> {
    let (vocab_tokens, _, _) = vocab();
    let v = vocab_tokens.len();
    let mut rng = Lcg(t.seed);
    let mut w = HashMap::new();
    let (h, q, kv) = (t.hidden, t.heads * t.head_dim(), t.kv_heads * t.head_dim());
    w.insert("model.embed_tokens.weight".into(), rng.tensor(&[v, h], 1.0));
    w.insert("lm_head.weight".into(), rng.tensor(&[v, h], 0.5));
    // Gemma stores RMS norm weights as w with an effective scale of 1 + w.
    let offset = if t.family == Family::Gemma3 { 0.0 } else { 1.0 };
    let norm = |rng: &mut Lcg, n: usize| (rng.tensor(&[n], 0.2) + offset).unwrap();
    w.insert("model.norm.weight".into(), norm(&mut rng, h));
    for i in 0..t.layers {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        w.insert(p("input_layernorm.weight"), norm(&mut rng, h));
        w.insert(p("post_attention_layernorm.weight"), norm(&mut rng, h));
        if t.family == Family::Gemma3 {
            w.insert(p("pre_feedforward_layernorm.weight"), norm(&mut rng, h));
            w.insert(p("post_feedforward_layernorm.weight"), norm(&mut rng, h));
        }
        if t.family.qk_norm() {
            w.insert(p("self_attn.q_norm.weight"), norm(&mut rng, t.head_dim()));
            w.insert(p("self_attn.k_norm.weight"), norm(&mut rng, t.head_dim()));
        }
        w.insert(p("self_attn.q_proj.weight"), rng.tensor(&[q, h], 0.4));
        w.insert(p("self_attn.k_proj.weight"), rng.tensor(&[kv, h], 0.4));
        w.insert(p("self_attn.v_proj.weight"), rng.tensor(&[kv, h], 0.4));
        w.insert(p("self_attn.o_proj.weight"), rng.tensor(&[h, q], 0.4));
        if t.family == Family::Qwen2 {
            w.insert(p("self_attn.q_proj.bias"), rng.tensor(&[q], 0.2));
            w.insert(p("self_attn.k_proj.bias"), rng.tensor(&[kv], 0.2));
            w.insert(p("self_attn.v_proj.bias"), rng.tensor(&[kv], 0.2));
        }
        w.insert(p("mlp.gate_proj.weight"), rng.tensor(&[t.ffn, h], 0.4));
        w.insert(p("mlp.up_proj.weight"), rng.tensor(&[t.ffn, h], 0.4));
        w.insert(p("mlp.down_proj.weight"), rng.tensor(&[h, t.ffn], 0.4));
    }
    w
}

/// llama.cpp's q/k permutation for Llama GGUF files (rotate-half → interleaved pairs).
fn permute(w: &Tensor, heads: usize) -> Tensor {
    let (out, inp) = w.dims2().unwrap();
    w.reshape((heads, 2, out / heads / 2, inp))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .reshape((out, inp))
        .unwrap()
}

/// Write the tiny model as a GGUF file (F32 tensors unless `dtype` says otherwise).
pub fn write_gguf(path: &Path, t: &Tiny, dtype: GgmlDType) -> PathBuf {
    let w = hf_weights(t);
    let (tokens, types, merges) = vocab();
    let arch = t.family.gguf_arch();
    // GGUF stores Gemma's norm weights with the +1 already applied.
    let gguf_norm = |x: Tensor| {
        if t.family == Family::Gemma3 {
            (x + 1.0).unwrap()
        } else {
            x
        }
    };
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    let mut put = |name: String, tensor: Tensor| tensors.push((name, tensor));
    put(
        "token_embd.weight".into(),
        w["model.embed_tokens.weight"].clone(),
    );
    put("output.weight".into(), w["lm_head.weight"].clone());
    put(
        "output_norm.weight".into(),
        gguf_norm(w["model.norm.weight"].clone()),
    );
    for i in 0..t.layers {
        let g = |s: &str| w[&format!("model.layers.{i}.{s}")].clone();
        let b = |s: &str| format!("blk.{i}.{s}");
        // Only Llama GGUF files carry q/k permuted for interleaved RoPE.
        let (q, k) = if t.family != Family::Llama {
            (g("self_attn.q_proj.weight"), g("self_attn.k_proj.weight"))
        } else {
            (
                permute(&g("self_attn.q_proj.weight"), t.heads),
                permute(&g("self_attn.k_proj.weight"), t.kv_heads),
            )
        };
        put(
            b("attn_norm.weight"),
            gguf_norm(g("input_layernorm.weight")),
        );
        if t.family == Family::Gemma3 {
            put(
                b("post_attention_norm.weight"),
                gguf_norm(g("post_attention_layernorm.weight")),
            );
            put(
                b("ffn_norm.weight"),
                gguf_norm(g("pre_feedforward_layernorm.weight")),
            );
            put(
                b("post_ffw_norm.weight"),
                gguf_norm(g("post_feedforward_layernorm.weight")),
            );
        } else {
            put(b("ffn_norm.weight"), g("post_attention_layernorm.weight"));
        }
        if t.family.qk_norm() {
            put(
                b("attn_q_norm.weight"),
                gguf_norm(g("self_attn.q_norm.weight")),
            );
            put(
                b("attn_k_norm.weight"),
                gguf_norm(g("self_attn.k_norm.weight")),
            );
        }
        put(b("attn_q.weight"), q);
        put(b("attn_k.weight"), k);
        put(b("attn_v.weight"), g("self_attn.v_proj.weight"));
        put(b("attn_output.weight"), g("self_attn.o_proj.weight"));
        if t.family == Family::Qwen2 {
            put(b("attn_q.bias"), g("self_attn.q_proj.bias"));
            put(b("attn_k.bias"), g("self_attn.k_proj.bias"));
            put(b("attn_v.bias"), g("self_attn.v_proj.bias"));
        }
        put(b("ffn_gate.weight"), g("mlp.gate_proj.weight"));
        put(b("ffn_up.weight"), g("mlp.up_proj.weight"));
        put(b("ffn_down.weight"), g("mlp.down_proj.weight"));
    }
    let qtensors: Vec<(String, QTensor)> = tensors
        .into_iter()
        .map(|(n, t)| {
            let dt = if t.rank() == 1 { GgmlDType::F32 } else { dtype };
            (n, QTensor::quantize(&t, dt).unwrap())
        })
        .collect();
    let key = |k: &str| format!("{arch}.{k}");
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.name".into(), Value::String("tiny".into())),
        (key("embedding_length"), Value::U32(t.hidden as u32)),
        (key("block_count"), Value::U32(t.layers as u32)),
        (key("attention.head_count"), Value::U32(t.heads as u32)),
        (
            key("attention.head_count_kv"),
            Value::U32(t.kv_heads as u32),
        ),
        (key("feed_forward_length"), Value::U32(t.ffn as u32)),
        (key("context_length"), Value::U32(512)),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(1e-5)),
        (key("rope.freq_base"), Value::F32(10000.0)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        (
            "tokenizer.ggml.pre".into(),
            Value::String(
                if t.family == Family::Llama {
                    "smollm"
                } else {
                    "qwen2"
                }
                .into(),
            ),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|s| Value::String(s.clone())).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.iter().map(|t| Value::I32(*t)).collect()),
        ),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.iter().map(|s| Value::String(s.clone())).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(259)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(259)),
        (
            "tokenizer.chat_template".into(),
            Value::String(CHATML.into()),
        ),
    ];
    if t.family == Family::Gemma3 {
        meta.push((key("attention.key_length"), Value::U32(t.head_dim() as u32)));
        meta.push((
            key("attention.sliding_window"),
            Value::U32(GEMMA_WINDOW as u32),
        ));
    }
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> =
        qtensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    candle_core::quantized::gguf_file::write(&mut f, &meta_refs, &tensor_refs).unwrap();
    path.to_path_buf()
}

/// Write the tiny model as a Hugging Face folder (config.json, tokenizer files, safetensors).
pub fn write_hf_folder(dir: &Path, t: &Tiny, weights: &HashMap<String, Tensor>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let gguf = write_gguf(&dir.join("tmp.gguf"), t, GgmlDType::F32);
    let parsed = aligndiff::model::gguf::GgufFile::open(&gguf).unwrap();
    let tok = aligndiff::model::TextTokenizer::from_gguf(&parsed).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tok.to_json().unwrap()).unwrap();
    std::fs::remove_file(&gguf).unwrap();
    let (tokens, _, _) = vocab();
    let config = serde_json::json!({
        "model_type": t.family.hf_model_type(),
        "head_dim": t.head_dim(),
        "sliding_window": GEMMA_WINDOW,
        "sliding_window_pattern": 6,
        "rope_local_base_freq": 10000.0,
        "query_pre_attn_scalar": t.head_dim(),
        "hidden_size": t.hidden, "num_hidden_layers": t.layers, "num_attention_heads": t.heads,
        "num_key_value_heads": t.kv_heads, "intermediate_size": t.ffn, "vocab_size": tokens.len(),
        "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": false,
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    let tok_config = serde_json::json!({
        "chat_template": CHATML, "eos_token": "<|im_end|>", "bos_token": null, "add_bos_token": false,
    });
    std::fs::write(dir.join("tokenizer_config.json"), tok_config.to_string()).unwrap();
    candle_core::safetensors::save(weights, dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}

/// Where the real demo models live (fetched by scripts/fetch-demo-models.sh).
pub fn demo_model(file: &str) -> PathBuf {
    let dir = std::env::var_os("ALIGNDIFF_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/aligndiff/models")
        });
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-demo-models.sh first",
        path.display()
    );
    path
}
