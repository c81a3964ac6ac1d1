//! Tokenizers: `tokenizer.json` when the model ships one, otherwise rebuilt from GGUF metadata
//! (byte-level BPE as in Qwen and SmolLM2, SentencePiece-style BPE with byte fallback as in Gemma).
//! The GGUF path builds a `tokenizer.json` document and hands it to the `tokenizers` crate, so
//! both paths run the same, well-tested encoder.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use serde_json::{json, Value as Json};

use super::gguf::GgufFile;
use crate::error::{Error, Result};

/// A model's tokenizer with the special tokens aligndiff needs.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    /// Beginning-of-sequence token, if the model has one.
    pub bos: Option<(u32, String)>,
    /// End-of-sequence token, if the model has one.
    pub eos: Option<(u32, String)>,
    /// Whether plain (untemplated) text should start with BOS.
    pub add_bos: bool,
    /// Tokens that end an answer (EOS, end-of-turn), filled in with the chat template's.
    pub stop_ids: Vec<u32>,
    /// Where this tokenizer came from, e.g. `gguf:gpt2/qwen2` or `tokenizer.json`.
    pub origin: String,
}

/// Token texts llama.cpp always treats as control tokens (end-of-generation and fill-in-middle
/// markers), whatever type the file gives them; matching them keeps the ids identical.
const FORCED_CONTROL: &[&str] = &[
    "</s>",
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<EOT>",
    "_<EOT>",
    "<|eom_id|>",
    "<|return|>",
    "<|call|>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
];

/// Byte-level pre-tokenizer patterns, as in the models' own `tokenizer.json` files.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

impl TextTokenizer {
    /// Encode text; special-token strings in the text (e.g. `<|im_start|>`) become their ids.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, false)?;
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        if add_bos {
            if let Some((bos, _)) = &self.bos {
                ids.push(*bos);
            }
        }
        ids.extend_from_slice(encoding.get_ids());
        Ok(ids)
    }

    /// Decode ids to text, dropping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.inner.decode(ids, true)?)
    }

    /// The id of a token string, if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The string of a token id.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The tokenizer as a `tokenizer.json` document.
    pub fn to_json(&self) -> Result<String> {
        Ok(self.inner.to_string(false)?)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Load `tokenizer.json` (and special tokens from `tokenizer_config.json` when given).
    pub fn from_files(tokenizer_json: &Path, tokenizer_config: Option<&Json>) -> Result<Self> {
        let text =
            std::fs::read_to_string(tokenizer_json).map_err(|e| Error::io(tokenizer_json, e))?;
        let inner = tokenizers::Tokenizer::from_str(&text)
            .map_err(|e| Error::bad_file(tokenizer_json, format!("cannot parse tokenizer: {e}")))?;
        let special = |key: &str| -> Option<(u32, String)> {
            let value = tokenizer_config?.get(key)?;
            let content = value
                .as_str()
                .or_else(|| value.get("content").and_then(Json::as_str))?;
            Some((inner.token_to_id(content)?, content.to_owned()))
        };
        let bos = special("bos_token");
        let eos = special("eos_token");
        let add_bos = tokenizer_config
            .and_then(|c| c.get("add_bos_token"))
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let stop_ids = eos.iter().map(|(id, _)| *id).collect();
        Ok(Self {
            inner,
            bos,
            eos,
            add_bos,
            stop_ids,
            origin: "tokenizer.json".into(),
        })
    }

    /// Rebuild the tokenizer stored in a GGUF file's metadata.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let path = gguf.path.as_path();
        let model = gguf
            .get_str("tokenizer.ggml.model")
            .ok_or_else(|| Error::bad_file(path, "GGUF has no tokenizer (tokenizer.ggml.model)"))?;
        let tokens = gguf
            .get_str_array("tokenizer.ggml.tokens")
            .ok_or_else(|| Error::bad_file(path, "GGUF has no tokenizer.ggml.tokens"))?;
        let types: Vec<i64> = match gguf.get("tokenizer.ggml.token_type") {
            Some(candle_core::quantized::gguf_file::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    candle_core::quantized::gguf_file::Value::I32(t) => i64::from(*t),
                    candle_core::quantized::gguf_file::Value::U32(t) => i64::from(*t),
                    _ => 1,
                })
                .collect(),
            _ => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(Error::bad_file(
                path,
                format!(
                    "tokenizer.ggml.token_type has {} entries but there are {} tokens",
                    types.len(),
                    tokens.len()
                ),
            ));
        }
        let types: Vec<i64> = types
            .iter()
            .zip(&tokens)
            .map(|(t, text)| {
                if *t == 1 && FORCED_CONTROL.contains(text) {
                    3
                } else {
                    *t
                }
            })
            .collect();
        let pre = gguf.get_str("tokenizer.ggml.pre").unwrap_or("default");
        let (document, origin) = match model {
            "gpt2" => {
                let merges = gguf.get_str_array("tokenizer.ggml.merges").ok_or_else(|| {
                    Error::bad_file(
                        path,
                        "byte-level BPE tokenizer without tokenizer.ggml.merges",
                    )
                })?;
                (
                    byte_level_document(&tokens, &types, &merges, pre)
                        .map_err(|m| Error::bad_file(path, m))?,
                    format!("gguf:gpt2/{pre}"),
                )
            }
            "llama" => {
                let scores: Vec<f32> = match gguf.get("tokenizer.ggml.scores") {
                    Some(candle_core::quantized::gguf_file::Value::Array(items)) => items
                        .iter()
                        .map(|v| match v {
                            candle_core::quantized::gguf_file::Value::F32(s) => *s,
                            _ => 0.0,
                        })
                        .collect(),
                    _ => {
                        return Err(Error::bad_file(
                            path,
                            "SentencePiece tokenizer without tokenizer.ggml.scores",
                        ))
                    }
                };
                if scores.len() != tokens.len() {
                    return Err(Error::bad_file(
                        path,
                        "tokenizer.ggml.scores and tokens differ in length",
                    ));
                }
                let prefix = gguf
                    .get_bool("tokenizer.ggml.add_space_prefix")
                    .unwrap_or(true);
                (
                    sentencepiece_document(&tokens, &types, &scores, prefix),
                    "gguf:llama/sentencepiece".to_string(),
                )
            }
            other => {
                return Err(Error::bad_file(
                    path,
                    format!("tokenizer model `{other}` is not supported (supported: gpt2, llama)"),
                ))
            }
        };
        let inner = tokenizers::Tokenizer::from_str(&document.to_string()).map_err(|e| {
            Error::bad_file(path, format!("cannot build tokenizer from metadata: {e}"))
        })?;
        let id_token = |key: &str| -> Option<(u32, String)> {
            let id = u32::try_from(gguf.get_u64(key)?).ok()?;
            let token = tokens.get(id as usize)?;
            Some((id, (*token).to_owned()))
        };
        let bos = id_token("tokenizer.ggml.bos_token_id");
        let eos = id_token("tokenizer.ggml.eos_token_id");
        let mut stop_ids: Vec<u32> = eos.iter().map(|(id, _)| *id).collect();
        if let Some((eot, _)) = id_token("tokenizer.ggml.eot_token_id") {
            if !stop_ids.contains(&eot) {
                stop_ids.push(eot);
            }
        }
        Ok(Self {
            inner,
            bos,
            eos,
            add_bos: gguf
                .get_bool("tokenizer.ggml.add_bos_token")
                .unwrap_or(model == "llama"),
            stop_ids,
            origin,
        })
    }
}

/// GGUF token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
fn added_tokens(tokens: &[&str], types: &[i64]) -> Vec<Json> {
    tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, t))| **t == 3 || **t == 4)
        .map(|(id, (token, t))| {
            json!({
                "id": id, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": *t == 3,
            })
        })
        .collect()
}

fn vocab_map(tokens: &[&str]) -> serde_json::Map<String, Json> {
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    for (id, token) in tokens.iter().enumerate() {
        // Duplicate strings keep their first id, as llama.cpp does.
        vocab.entry((*token).to_owned()).or_insert(json!(id));
    }
    vocab
}

fn byte_level_document(
    tokens: &[&str],
    types: &[i64],
    merges: &[&str],
    pre: &str,
) -> std::result::Result<Json, String> {
    let split = |pattern: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
        ]})
    };
    let pre_tokenizer = match pre {
        "qwen2" | "deepseek-r1-qwen" => split(QWEN2_PATTERN),
        "llama-bpe" | "llama3" | "smaug-bpe" => split(LLAMA3_PATTERN),
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]}),
        "default" | "gpt2" | "gpt-2" => {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})
        }
        other => {
            return Err(format!(
                "byte-level pre-tokenizer `{other}` is not supported (supported: qwen2, llama-bpe, smollm, gpt2)"
            ))
        }
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(tokens, types),
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab_map(tokens),
            "merges": merges,
        }
    }))
}

/// SentencePiece BPE as a `tokenizers` BPE model: merges derived from the piece scores the way
/// Hugging Face's `SentencePieceExtractor` does (every split of a piece into two known pieces,
/// ranked by the merged piece's score, ties in vocabulary order).
fn sentencepiece_document(
    tokens: &[&str],
    types: &[i64],
    scores: &[f32],
    add_space_prefix: bool,
) -> Json {
    let ids: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .rev()
        .map(|(id, t)| (*t, id))
        .collect();
    let mut merges: Vec<(f32, usize, usize, usize)> = Vec::new(); // (score, order, left, right)
    let mut order = 0usize;
    for (id, piece) in tokens.iter().enumerate() {
        // Only normal pieces are produced by merging.
        if types[id] != 1 {
            continue;
        }
        let mut local = Vec::new();
        for (split, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(split);
            if let (Some(&l), Some(&r)) = (ids.get(left), ids.get(right)) {
                local.push((l, r));
            }
        }
        local.sort_unstable();
        for (l, r) in local {
            merges.push((scores[id], order, l, r));
            order += 1;
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let merges: Vec<Json> = merges
        .iter()
        .map(|(_, _, l, r)| json!([tokens[*l], tokens[*r]]))
        .collect();
    let mut normalizers = Vec::new();
    if add_space_prefix {
        normalizers.push(json!({"type": "Prepend", "prepend": "\u{2581}"}));
    }
    normalizers.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}));
    let unk = types.iter().position(|t| *t == 2).map(|i| tokens[i]);
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if add_space_prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(tokens, types),
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab_map(tokens),
            "merges": merges,
        }
    })
}
