//! Turn a validated GGUF file or a safetensors folder into a [`Transformer`].

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::arch::{Architecture, ModelConfig};
use super::gguf::GgufFile;
use super::kernels::StoredMatrix;
use super::lora::LoraAdapter;
use super::transformer::{Block, Embedding, Linear, Matrix, RmsNorm, Transformer};
use crate::error::{Error, Result};

/// How weights are prepared at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Requantize {
    /// Keep every tensor as stored: the audit measures the supplied weights, bit for bit.
    #[default]
    Never,
    /// Re-encode Q4_1, Q5_0 and Q5_1 tensors as Q8_0 (an explicit opt-in that the fingerprint
    /// and the report record). The re-encode is lossy and changes greedy answers; it was the
    /// default before those formats had vectorised kernels (`auto` in older plans means this).
    #[serde(rename = "q8_0", alias = "auto")]
    Q8_0,
}

/// What the loader did to the weights, for the fingerprint and the report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct WeightsInfo {
    /// Tensor types as stored, most common first.
    pub stored_types: Vec<(String, usize)>,
    /// Tensors re-encoded at load: (from, to, count).
    pub requantized: Vec<(String, String, usize)>,
    /// dtype used for dense weights.
    pub dense_dtype: Option<String>,
}

/// The formats `--requantize q8_0` re-encodes.
fn requantizable(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Logical weight names, mapped to each format's naming.
#[derive(Clone, Copy)]
enum W {
    Embed,
    Output,
    OutputNorm,
    AttnNorm,
    Q,
    K,
    V,
    O,
    QBias,
    KBias,
    VBias,
    QNorm,
    KNorm,
    PostAttnNorm,
    FfnNorm,
    Gate,
    Up,
    Down,
    PostFfnNorm,
}

fn gguf_name(w: W, layer: usize) -> String {
    let per_layer = |s: &str| format!("blk.{layer}.{s}");
    match w {
        W::Embed => "token_embd.weight".into(),
        W::Output => "output.weight".into(),
        W::OutputNorm => "output_norm.weight".into(),
        W::AttnNorm => per_layer("attn_norm.weight"),
        W::Q => per_layer("attn_q.weight"),
        W::K => per_layer("attn_k.weight"),
        W::V => per_layer("attn_v.weight"),
        W::O => per_layer("attn_output.weight"),
        W::QBias => per_layer("attn_q.bias"),
        W::KBias => per_layer("attn_k.bias"),
        W::VBias => per_layer("attn_v.bias"),
        W::QNorm => per_layer("attn_q_norm.weight"),
        W::KNorm => per_layer("attn_k_norm.weight"),
        W::PostAttnNorm => per_layer("post_attention_norm.weight"),
        W::FfnNorm => per_layer("ffn_norm.weight"),
        W::Gate => per_layer("ffn_gate.weight"),
        W::Up => per_layer("ffn_up.weight"),
        W::Down => per_layer("ffn_down.weight"),
        W::PostFfnNorm => per_layer("post_ffw_norm.weight"),
    }
}

fn hf_name(w: W, layer: usize, arch: Architecture) -> String {
    let per_layer = |s: &str| format!("model.layers.{layer}.{s}");
    match w {
        W::Embed => "model.embed_tokens.weight".into(),
        W::Output => "lm_head.weight".into(),
        W::OutputNorm => "model.norm.weight".into(),
        W::AttnNorm => per_layer("input_layernorm.weight"),
        W::Q => per_layer("self_attn.q_proj.weight"),
        W::K => per_layer("self_attn.k_proj.weight"),
        W::V => per_layer("self_attn.v_proj.weight"),
        W::O => per_layer("self_attn.o_proj.weight"),
        W::QBias => per_layer("self_attn.q_proj.bias"),
        W::KBias => per_layer("self_attn.k_proj.bias"),
        W::VBias => per_layer("self_attn.v_proj.bias"),
        W::QNorm => per_layer("self_attn.q_norm.weight"),
        W::KNorm => per_layer("self_attn.k_norm.weight"),
        W::FfnNorm if arch == Architecture::Gemma3 => per_layer("pre_feedforward_layernorm.weight"),
        // Llama/Qwen call their pre-MLP norm "post_attention_layernorm"; Gemma uses that name for
        // the norm after attention.
        W::PostAttnNorm | W::FfnNorm => per_layer("post_attention_layernorm.weight"),
        W::Gate => per_layer("mlp.gate_proj.weight"),
        W::Up => per_layer("mlp.up_proj.weight"),
        W::Down => per_layer("mlp.down_proj.weight"),
        W::PostFfnNorm => per_layer("post_feedforward_layernorm.weight"),
    }
}

/// Where tensors come from while a model is assembled.
trait TensorSource {
    fn has(&self, w: W, layer: usize) -> bool;
    fn matrix(&mut self, w: W, layer: usize, dims: (usize, usize)) -> Result<Matrix>;
    fn vector(&mut self, w: W, layer: usize, len: usize, offset: f32) -> Result<Tensor>;
    fn embedding(&mut self, dims: (usize, usize)) -> Result<(Embedding, Matrix)>;
}

fn shape_error(path: &Path, name: &str, got: &[usize], want: &[usize]) -> Error {
    Error::bad_file(
        path,
        format!("tensor `{name}` has shape {got:?}, the config implies {want:?}"),
    )
}

struct GgufSource<'a> {
    gguf: &'a GgufFile,
    reader: BufReader<std::fs::File>,
    device: Device,
    requantize: Requantize,
    requantized: HashMap<(String, String), usize>,
}

impl GgufSource<'_> {
    fn load(&mut self, name: &str, want: &[usize]) -> Result<QTensor> {
        let path = &self.gguf.path;
        let dims = self
            .gguf
            .tensor_dims(name)
            .ok_or_else(|| Error::bad_file(path, format!("GGUF lacks tensor `{name}`")))?;
        if dims != want {
            return Err(shape_error(path, name, dims, want));
        }
        // Read onto the CPU first so a slow format can be re-encoded before it reaches the device.
        let q = self
            .gguf
            .content
            .tensor(&mut self.reader, name, &Device::Cpu)
            .map_err(|e| Error::bad_file(path, format!("reading tensor `{name}`: {e}")))?;
        let q = if self.requantize == Requantize::Q8_0
            && self.device.is_cpu()
            && requantizable(q.dtype())
        {
            let from = format!("{:?}", q.dtype());
            let dense = q.dequantize(&Device::Cpu)?;
            drop(q);
            let q8 = QTensor::quantize(&dense, GgmlDType::Q8_0)?;
            *self.requantized.entry((from, "Q8_0".into())).or_default() += 1;
            q8
        } else {
            q
        };
        if self.device.is_cpu() {
            Ok(q)
        } else {
            let dense = q.dequantize(&Device::Cpu)?;
            Ok(QTensor::quantize_onto(&dense, q.dtype(), &self.device)?)
        }
    }
}

impl GgufSource<'_> {
    /// A loaded tensor as a weight matrix: on the CPU, the formats candle computes with scalar
    /// code go to aligndiff's own kernels in their stored encoding; the rest stay with candle.
    fn to_matrix(&self, name: &str, q: Arc<QTensor>) -> Result<Matrix> {
        Ok(match self.stored(name, &q)? {
            Some(stored) => Matrix::Stored(Arc::new(stored)),
            None => Matrix::Candle(QMatMul::from_arc(q)?),
        })
    }

    /// The tensor in aligndiff's stored-format layout, where its kernels handle it.
    fn stored(&self, name: &str, q: &QTensor) -> Result<Option<StoredMatrix>> {
        if !(self.device.is_cpu() && StoredMatrix::handles(q.dtype())) {
            return Ok(None);
        }
        let (rows, cols) = q.shape().dims2()?;
        StoredMatrix::new(q.dtype(), rows, cols, &q.data()?)
            .map(Some)
            .map_err(|e| Error::bad_file(&self.gguf.path, format!("tensor `{name}`: {e}")))
    }
}

impl TensorSource for GgufSource<'_> {
    fn has(&self, w: W, layer: usize) -> bool {
        self.gguf.tensor_dims(&gguf_name(w, layer)).is_some()
    }

    fn matrix(&mut self, w: W, layer: usize, (rows, cols): (usize, usize)) -> Result<Matrix> {
        let name = gguf_name(w, layer);
        let q = self.load(&name, &[rows, cols])?;
        self.to_matrix(&name, Arc::new(q))
    }

    fn vector(&mut self, w: W, layer: usize, len: usize, offset: f32) -> Result<Tensor> {
        let name = gguf_name(w, layer);
        let t = self.load(&name, &[len])?.dequantize(&self.device)?;
        Ok(if offset != 0.0 {
            (t + f64::from(offset))?
        } else {
            t
        })
    }

    fn embedding(&mut self, dims: (usize, usize)) -> Result<(Embedding, Matrix)> {
        let name = gguf_name(W::Embed, 0);
        let embed = self.load(&name, &[dims.0, dims.1])?;
        let tied = !self.has(W::Output, 0);
        // One copy of the table serves both the lookup and, when tied, the output layer.
        if let Some(stored) = self.stored(&name, &embed)? {
            drop(embed);
            let stored = Arc::new(stored);
            let output = if tied {
                Matrix::Stored(stored.clone())
            } else {
                self.matrix(W::Output, 0, dims)?
            };
            return Ok((Embedding::Stored(stored), output));
        }
        let embed = Arc::new(embed);
        let output = if tied {
            Matrix::Candle(QMatMul::from_arc(embed.clone())?)
        } else {
            self.matrix(W::Output, 0, dims)?
        };
        Ok((Embedding::Quantized(embed), output))
    }
}

struct SafetensorsSource<'a> {
    tensors: HashMap<String, (Tensor, PathBuf)>,
    arch: Architecture,
    device: Device,
    dtype: DType,
    lora: Option<&'a LoraAdapter>,
    lora_applied: std::collections::HashSet<String>,
    folder: PathBuf,
}

impl SafetensorsSource<'_> {
    fn take(&mut self, name: &str, want: &[usize]) -> Result<Tensor> {
        let (t, path) = self.tensors.remove(name).ok_or_else(|| {
            Error::bad_file(
                &self.folder,
                format!("no tensor `{name}` in the safetensors files"),
            )
        })?;
        if t.dims() != want {
            return Err(shape_error(&path, name, t.dims(), want));
        }
        let t = t.to_dtype(DType::F32)?;
        let t = match self.lora {
            Some(lora) if lora.targets().any(|n| n == name) => {
                self.lora_applied.insert(name.to_owned());
                lora.merge(name, t)?
            }
            _ => t,
        };
        Ok(t.to_dtype(self.dtype)?.to_device(&self.device)?)
    }
}

impl TensorSource for SafetensorsSource<'_> {
    fn has(&self, w: W, layer: usize) -> bool {
        self.tensors.contains_key(&hf_name(w, layer, self.arch))
    }

    fn matrix(&mut self, w: W, layer: usize, (rows, cols): (usize, usize)) -> Result<Matrix> {
        let t = self.take(&hf_name(w, layer, self.arch), &[rows, cols])?;
        Ok(Matrix::Candle(QMatMul::Tensor(t)))
    }

    fn vector(&mut self, w: W, layer: usize, len: usize, offset: f32) -> Result<Tensor> {
        let t = self
            .take(&hf_name(w, layer, self.arch), &[len])?
            .to_dtype(DType::F32)?;
        Ok(if offset != 0.0 {
            (t + f64::from(offset))?
        } else {
            t
        })
    }

    fn embedding(&mut self, dims: (usize, usize)) -> Result<(Embedding, Matrix)> {
        let embed = self.take(&hf_name(W::Embed, 0, self.arch), &[dims.0, dims.1])?;
        let output = if self.has(W::Output, 0) {
            self.matrix(W::Output, 0, dims)?
        } else {
            Matrix::Candle(QMatMul::Tensor(embed.clone()))
        };
        Ok((Embedding::Dense(embed), output))
    }
}

fn assemble(
    config: ModelConfig,
    src: &mut dyn TensorSource,
    max_positions: usize,
    device: &Device,
) -> Result<Transformer> {
    let c = &config;
    let (h, q_width, kv_width) = (c.hidden_size, c.heads * c.head_dim, c.kv_heads * c.head_dim);
    let (embed, output) = src.embedding((c.vocab_size, h))?;
    let off = c.norm_weight_offset;
    let mut blocks = Vec::with_capacity(c.layers);
    for i in 0..c.layers {
        let linear =
            |src: &mut dyn TensorSource, w: W, bias: W, dims: (usize, usize)| -> Result<Linear> {
                let weight = src.matrix(w, i, dims)?;
                let bias = if c.qkv_bias {
                    Some(src.vector(bias, i, dims.0, 0.0)?)
                } else {
                    None
                };
                Ok(Linear::new(weight, bias))
            };
        let norm = |src: &mut dyn TensorSource, w: W, len: usize| -> Result<RmsNorm> {
            Ok(RmsNorm::new(src.vector(w, i, len, off)?, c.rms_eps))
        };
        let optional_norm =
            |src: &mut dyn TensorSource, w: W, on: bool, len: usize| -> Result<Option<RmsNorm>> {
                if on {
                    Ok(Some(norm(src, w, len)?))
                } else {
                    Ok(None)
                }
            };
        blocks.push(Block {
            attn_norm: norm(src, W::AttnNorm, h)?,
            q: linear(src, W::Q, W::QBias, (q_width, h))?,
            k: linear(src, W::K, W::KBias, (kv_width, h))?,
            v: linear(src, W::V, W::VBias, (kv_width, h))?,
            o: Linear::new(src.matrix(W::O, i, (h, q_width))?, None),
            q_norm: optional_norm(src, W::QNorm, c.qk_norm, c.head_dim)?,
            k_norm: optional_norm(src, W::KNorm, c.qk_norm, c.head_dim)?,
            post_attn_norm: optional_norm(src, W::PostAttnNorm, c.sandwich_norms, h)?,
            ffn_norm: norm(src, W::FfnNorm, h)?,
            gate: Linear::new(src.matrix(W::Gate, i, (c.ffn_size, h))?, None),
            up: Linear::new(src.matrix(W::Up, i, (c.ffn_size, h))?, None),
            down: Linear::new(src.matrix(W::Down, i, (h, c.ffn_size))?, None),
            post_ffn_norm: optional_norm(src, W::PostFfnNorm, c.sandwich_norms, h)?,
        });
    }
    let norm = RmsNorm::new(src.vector(W::OutputNorm, 0, h, off)?, c.rms_eps);
    Transformer::new(config, embed, blocks, norm, output, max_positions, device)
}

/// Build a model from a validated GGUF file and the hyperparameters read from it.
pub fn load_gguf(
    gguf: &GgufFile,
    config: ModelConfig,
    requantize: Requantize,
    max_positions: usize,
    device: &Device,
) -> Result<(Transformer, WeightsInfo)> {
    let file = std::fs::File::open(&gguf.path).map_err(|e| Error::io(&gguf.path, e))?;
    let mut src = GgufSource {
        gguf,
        reader: BufReader::new(file),
        device: device.clone(),
        requantize,
        requantized: HashMap::new(),
    };
    let model = assemble(config, &mut src, max_positions, device)?;
    let mut requantized: Vec<_> = src
        .requantized
        .into_iter()
        .map(|((from, to), n)| (from, to, n))
        .collect();
    requantized.sort();
    Ok((
        model,
        WeightsInfo {
            stored_types: gguf.tensor_type_counts(),
            requantized,
            dense_dtype: None,
        },
    ))
}

/// Build a model from safetensors shards and a parsed `config.json`, merging an optional LoRA.
pub fn load_safetensors(
    folder: &Path,
    config: ModelConfig,
    shards: &[PathBuf],
    lora: Option<&LoraAdapter>,
    max_positions: usize,
    device: &Device,
) -> Result<(Transformer, WeightsInfo)> {
    let mut tensors = HashMap::new();
    let mut stored: HashMap<String, usize> = HashMap::new();
    for shard in shards {
        let loaded = candle_core::safetensors::load(shard, &Device::Cpu)
            .map_err(|e| Error::bad_file(shard, format!("cannot read safetensors: {e}")))?;
        for (name, t) in loaded {
            *stored.entry(format!("{:?}", t.dtype())).or_default() += 1;
            // Multimodal Gemma 3 checkpoints nest the text model one level down.
            let name = name
                .strip_prefix("language_model.")
                .map(str::to_owned)
                .unwrap_or(name)
                .replace("model.language_model.", "model.");
            if tensors.insert(name.clone(), (t, shard.clone())).is_some() {
                return Err(Error::bad_file(
                    shard,
                    format!("tensor `{name}` appears in two shards"),
                ));
            }
        }
    }
    let mut src = SafetensorsSource {
        tensors,
        arch: config.arch,
        device: device.clone(),
        dtype: DType::F32,
        lora,
        lora_applied: std::collections::HashSet::new(),
        folder: folder.to_path_buf(),
    };
    let model = assemble(config, &mut src, max_positions, device)?;
    if let Some(lora) = lora {
        let mut missing: Vec<&str> = lora
            .targets()
            .filter(|n| !src.lora_applied.contains(*n))
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            return Err(Error::bad_file(
                &lora.dir,
                format!(
                    "the adapter changes {} weights the base model does not have or use, e.g. {}",
                    missing.len(),
                    missing
                        .iter()
                        .take(3)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let mut stored_types: Vec<_> = stored.into_iter().collect();
    stored_types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok((
        model,
        WeightsInfo {
            stored_types,
            requantized: Vec::new(),
            dense_dtype: Some("F32".into()),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::Requantize;

    /// Plans name the setting; `auto` in plans written before the stored-format kernels meant
    /// the Q8_0 re-encode and still does.
    #[test]
    fn requantize_names_in_plans() {
        let parse = |s: &str| serde_json::from_str::<Requantize>(s).ok();
        assert_eq!(parse("\"never\""), Some(Requantize::Never));
        assert_eq!(parse("\"q8_0\""), Some(Requantize::Q8_0));
        assert_eq!(parse("\"auto\""), Some(Requantize::Q8_0));
        assert_eq!(parse("\"q4_0\""), None);
        assert_eq!(
            serde_json::to_string(&Requantize::Q8_0).ok().as_deref(),
            Some("\"q8_0\"")
        );
        assert_eq!(Requantize::default(), Requantize::Never);
    }
}
