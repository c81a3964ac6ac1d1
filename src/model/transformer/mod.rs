//! aligndiff's own decoder-only transformer over candle tensors.
//!
//! candle-transformers' quantized models have no padding masks, no per-sequence positions and a
//! few numerical bugs (see docs/ENGINE.md). This forward pass keeps one KV cache per sequence:
//! prompts are prefilled one at a time, and decode steps batch the matrix products of all live
//! sequences while attention runs per sequence in plain Rust with a fixed summation order. Each
//! sequence therefore sees the same arithmetic whatever else is in the batch, which is what makes
//! greedy answers identical at batch size 1 and batch size N.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use super::arch::{Activation, ModelConfig};
use super::kernels::StoredMatrix;
use crate::error::{Error, Result};

/// A weight matrix (`out × in`): candle's quantized or dense kernels, or aligndiff's own
/// vectorised kernels for the stored formats candle computes with scalar code.
#[derive(Debug)]
pub enum Matrix {
    /// Computed by candle.
    Candle(QMatMul),
    /// Kept in its stored GGUF encoding and computed by [`crate::model::kernels`] (CPU only);
    /// shared with the embedding table when the two are tied.
    Stored(Arc<StoredMatrix>),
}

impl Matrix {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Candle(w) => w.forward(x)?,
            Self::Stored(w) => x.contiguous()?.apply_op1_no_bwd(w.as_ref())?,
        })
    }
}

/// A linear layer with an optional bias; the weight may be quantized or dense.
#[derive(Debug)]
pub struct Linear {
    weight: Matrix,
    bias: Option<Tensor>,
}

impl Linear {
    /// Wrap a weight (`out × in`) and an optional bias (`out`).
    pub fn new(weight: Matrix, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = batch_invariant_matmul(&self.weight, x)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// `x · wᵀ` computed so that a row's result does not depend on how many rows there are.
///
/// candle picks different CPU kernels for a single row (a GEMV) and for several rows (e.g. the
/// repacked Q6_K tiles), and they sum in different orders. A lone row is therefore padded to two,
/// so batch-1 decoding runs the same kernel as batched decoding and greedy answers agree exactly.
fn batch_invariant_matmul(w: &Matrix, x: &Tensor) -> Result<Tensor> {
    let rows = x.elem_count() / x.dim(candle_core::D::Minus1)?.max(1);
    // Only the K-quant formats have row-count-dependent (repacked) CPU kernels; the others
    // compute every row with the same dot product, so padding would only cost time.
    let row_dependent = match w {
        Matrix::Candle(QMatMul::QTensor(q)) => matches!(q.dtype(), GgmlDType::Q4K | GgmlDType::Q6K),
        _ => false,
    };
    if rows != 1 || !row_dependent {
        return w.forward(x);
    }
    let dims = x.dims().to_vec();
    let flat = x.reshape((1, dims[dims.len() - 1]))?;
    let padded = Tensor::cat(&[&flat, &flat], 0)?;
    let y = w.forward(&padded)?.narrow(0, 0, 1)?;
    let mut out_dims = dims;
    let last = out_dims.len() - 1;
    out_dims[last] = y.dim(1)?;
    Ok(y.reshape(out_dims)?)
}

/// Token embedding table, kept quantized where the file is.
#[derive(Debug)]
pub enum Embedding {
    /// Rows dequantized on lookup.
    Quantized(Arc<QTensor>),
    /// Rows dequantized on lookup from aligndiff's stored-format layout (CPU).
    Stored(Arc<StoredMatrix>),
    /// A dense `vocab × hidden` matrix.
    Dense(Tensor),
}

impl Embedding {
    fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Quantized(q) => q.embedding(ids)?,
            Self::Stored(table) => {
                let device = ids.device().clone();
                let ids = ids.to_vec1::<u32>()?;
                let mut rows = Vec::with_capacity(ids.len() * table.cols());
                for &id in &ids {
                    rows.extend(table.row(id as usize)?);
                }
                Tensor::from_vec(rows, (ids.len(), table.cols()), &device)?
            }
            Self::Dense(w) => w.index_select(ids, 0)?,
        })
    }
}

/// RMS norm with its weight (any Gemma +1 offset already folded in).
#[derive(Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    /// A norm over the last dimension.
    pub fn new(weight: Tensor, eps: f64) -> Self {
        Self {
            weight,
            eps: eps as f32,
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(
            &x.contiguous()?,
            &self.weight,
            self.eps,
        )?)
    }
}

/// One transformer block's weights.
#[derive(Debug)]
pub struct Block {
    /// Pre-attention norm.
    pub attn_norm: RmsNorm,
    /// Query projection.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection.
    pub o: Linear,
    /// Per-head query norm (Qwen3, Gemma 3).
    pub q_norm: Option<RmsNorm>,
    /// Per-head key norm.
    pub k_norm: Option<RmsNorm>,
    /// Norm on the attention output before the residual add (Gemma 3).
    pub post_attn_norm: Option<RmsNorm>,
    /// Pre-MLP norm.
    pub ffn_norm: RmsNorm,
    /// MLP gate.
    pub gate: Linear,
    /// MLP up.
    pub up: Linear,
    /// MLP down.
    pub down: Linear,
    /// Norm on the MLP output before the residual add (Gemma 3).
    pub post_ffn_norm: Option<RmsNorm>,
}

/// Precomputed rotary tables for one RoPE base.
#[derive(Debug)]
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(
        theta: f64,
        scale: f64,
        head_dim: usize,
        positions: usize,
        device: &Device,
    ) -> Result<Self> {
        let half = head_dim / 2;
        let inv: Vec<f32> = (0..half)
            .map(|i| (1.0 / theta.powf(2.0 * i as f64 / head_dim as f64) / scale) as f32)
            .collect();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for f in &inv {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Ok(Self {
            cos: Tensor::from_vec(cos, (positions, half), device)?,
            sin: Tensor::from_vec(sin, (positions, half), device)?,
        })
    }
}

/// Per-layer key/value history of one sequence, `[position][kv head][head dim]`.
#[derive(Debug, Default, Clone)]
struct LayerCache {
    k: Vec<f32>,
    v: Vec<f32>,
}

/// The KV cache of one sequence.
#[derive(Debug, Clone)]
pub struct SeqCache {
    layers: Vec<LayerCache>,
    len: usize,
}

impl SeqCache {
    /// Tokens held so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was prefilled yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by this cache.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| (l.k.capacity() + l.v.capacity()) * 4)
            .sum()
    }
}

/// A loaded decoder-only transformer.
#[derive(Debug)]
pub struct Transformer {
    /// Shape of the model.
    pub config: ModelConfig,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    output: Matrix,
    rope_global: Rope,
    rope_local: Option<Rope>,
    max_positions: usize,
    device: Device,
}

impl Transformer {
    /// Assemble a model from loaded weights; `max_positions` bounds prompt + answer length.
    pub fn new(
        config: ModelConfig,
        embed: Embedding,
        blocks: Vec<Block>,
        norm: RmsNorm,
        output: Matrix,
        max_positions: usize,
        device: &Device,
    ) -> Result<Self> {
        let max_positions = max_positions.min(config.context_length).max(1);
        let rope_global = Rope::new(
            config.rope_theta,
            config.rope_scale,
            config.head_dim,
            max_positions,
            device,
        )?;
        let rope_local = match config.rope_local_theta {
            Some(theta) => Some(Rope::new(
                theta,
                1.0,
                config.head_dim,
                max_positions,
                device,
            )?),
            None => None,
        };
        Ok(Self {
            config,
            embed,
            blocks,
            norm,
            output,
            rope_global,
            rope_local,
            max_positions,
            device: device.clone(),
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Longest sequence (prompt + answer) this instance can hold.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// An empty cache for a new sequence.
    pub fn new_cache(&self) -> SeqCache {
        SeqCache {
            layers: vec![LayerCache::default(); self.blocks.len()],
            len: 0,
        }
    }

    fn rope_for(&self, layer: usize) -> &Rope {
        match (&self.rope_local, self.config.layer_window(layer)) {
            (Some(local), Some(_)) => local,
            _ => &self.rope_global,
        }
    }

    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let x = self.embed.lookup(ids)?;
        if self.config.scale_embeddings {
            Ok((x * (self.config.hidden_size as f64).sqrt())?)
        } else {
            Ok(x)
        }
    }

    fn apply_rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        Ok(if self.config.rope_interleaved {
            candle_nn::rotary_emb::rope_i(&x, cos, sin)?
        } else {
            candle_nn::rotary_emb::rope(&x, cos, sin)?
        })
    }

    fn mlp(&self, block: &Block, x: &Tensor) -> Result<Tensor> {
        let gate = block.gate.forward(x)?;
        let act = match self.config.activation {
            Activation::Silu => candle_nn::ops::silu(&gate)?,
            Activation::GeluTanh => gate.gelu()?,
        };
        block.down.forward(&(act * block.up.forward(x)?)?)
    }

    /// The rest of a block after attention: output projection, (post-)norms, MLP, residuals.
    fn finish_block(&self, block: &Block, residual: &Tensor, attn: &Tensor) -> Result<Tensor> {
        let mut out = block.o.forward(attn)?;
        if let Some(n) = &block.post_attn_norm {
            out = n.forward(&out)?;
        }
        let x = (residual + out)?;
        let h = block.ffn_norm.forward(&x)?;
        let mut out = self.mlp(block, &h)?;
        if let Some(n) = &block.post_ffn_norm {
            out = n.forward(&out)?;
        }
        Ok((x + out)?)
    }

    fn check_room(&self, cache: &SeqCache, extra: usize) -> Result<()> {
        if cache.len + extra > self.max_positions {
            return Err(Error::Invalid(format!(
                "sequence of {} tokens exceeds the {} positions this model was loaded for \
                 (shorten the prompt or lower max_new_tokens)",
                cache.len + extra,
                self.max_positions
            )));
        }
        Ok(())
    }

    /// Run a whole prompt through the model for one fresh sequence; returns the last position's
    /// logits (`vocab`, f32).
    pub fn prefill(&self, tokens: &[u32], cache: &mut SeqCache) -> Result<Tensor> {
        if !cache.is_empty() {
            return Err(Error::Invalid("prefill needs a fresh cache".into()));
        }
        self.extend(tokens, cache)
    }

    /// Run more prompt tokens through the model after those already in `cache` (a shared prompt
    /// prefix computed once, then cloned); returns the last position's logits. On a fresh cache
    /// this is exactly [`Self::prefill`].
    pub fn extend(&self, tokens: &[u32], cache: &mut SeqCache) -> Result<Tensor> {
        if tokens.is_empty() {
            return Err(Error::Invalid("cannot prefill an empty prompt".into()));
        }
        self.check_room(cache, tokens.len())?;
        let cfg = &self.config;
        let t = tokens.len();
        let past = cache.len;
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embed(&ids)?.unsqueeze(0)?; // (1, t, hidden)
        let scale = 1.0 / cfg.query_pre_attn_scalar.sqrt();
        let mut masks: Vec<(Option<usize>, Tensor)> = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            let residual = x.clone();
            let h = block.attn_norm.forward(&x)?;
            let q = block
                .q
                .forward(&h)?
                .reshape((1, t, cfg.heads, cfg.head_dim))?;
            let k = block
                .k
                .forward(&h)?
                .reshape((1, t, cfg.kv_heads, cfg.head_dim))?;
            let v = block
                .v
                .forward(&h)?
                .reshape((1, t, cfg.kv_heads, cfg.head_dim))?;
            let (q, k) = match (&block.q_norm, &block.k_norm) {
                (Some(qn), Some(kn)) => (qn.forward(&q)?, kn.forward(&k)?),
                _ => (q, k),
            };
            let rope = self.rope_for(i);
            let cos = rope.cos.narrow(0, past, t)?;
            let sin = rope.sin.narrow(0, past, t)?;
            let q = self.apply_rope(&q.transpose(1, 2)?, &cos, &sin)?; // (1, heads, t, d)
            let k = self.apply_rope(&k.transpose(1, 2)?, &cos, &sin)?; // (1, kv, t, d)
            let v = v.transpose(1, 2)?.contiguous()?;

            // Keep k/v for later decode steps, laid out [position][kv head][dim]; attend over
            // the cached positions too.
            let layer = &mut cache.layers[i];
            let cached = |held: &[f32]| -> Result<Tensor> {
                Ok(
                    Tensor::from_slice(held, (past, cfg.kv_heads, cfg.head_dim), &self.device)?
                        .transpose(0, 1)?
                        .unsqueeze(0)?,
                )
            };
            let (k_all, v_all) = if past == 0 {
                (k.clone(), v.clone())
            } else {
                (
                    Tensor::cat(&[&cached(&layer.k)?, &k], 2)?,
                    Tensor::cat(&[&cached(&layer.v)?, &v], 2)?,
                )
            };
            layer.k.extend(
                k.squeeze(0)?
                    .transpose(0, 1)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
            layer.v.extend(
                v.squeeze(0)?
                    .transpose(0, 1)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );

            let group = cfg.heads / cfg.kv_heads;
            let k = candle_transformers::utils::repeat_kv(k_all, group)?.contiguous()?;
            let v = candle_transformers::utils::repeat_kv(v_all, group)?.contiguous()?;
            let scores = (q.matmul(&k.t()?)? * scale)?;
            // One mask per window size for the whole prompt, not one per layer.
            let window = cfg.layer_window(i);
            let mask = match masks.iter().find(|(w, _)| *w == window) {
                Some((_, m)) => m.clone(),
                None => {
                    let m = causal_mask(t, past, window, &self.device)?;
                    masks.push((window, m.clone()));
                    m
                }
            };
            let scores = scores.broadcast_add(&mask)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let attn =
                probs
                    .matmul(&v)?
                    .transpose(1, 2)?
                    .reshape((1, t, cfg.heads * cfg.head_dim))?;
            x = self.finish_block(block, &residual, &attn)?;
        }
        cache.len = past + t;
        let last = x.narrow(1, t - 1, 1)?.squeeze(1)?.contiguous()?; // (1, hidden)
        let last = self.norm.forward(&last)?;
        Ok(batch_invariant_matmul(&self.output, &last)?
            .squeeze(0)?
            .to_dtype(DType::F32)?)
    }

    /// One decode step for several sequences at once: `tokens[i]` is appended to `caches[i]`.
    /// Returns logits (`batch × vocab`, f32).
    pub fn decode(&self, tokens: &[u32], caches: &mut [&mut SeqCache]) -> Result<Tensor> {
        let b = tokens.len();
        if b == 0 || b != caches.len() {
            return Err(Error::Invalid(format!(
                "decode needs one cache per token ({} tokens, {} caches)",
                b,
                caches.len()
            )));
        }
        for cache in caches.iter() {
            if cache.is_empty() {
                return Err(Error::Invalid("decode needs a prefilled cache".into()));
            }
            self.check_room(cache, 1)?;
        }
        let cfg = &self.config;
        let ids = Tensor::new(tokens, &self.device)?;
        let positions: Vec<u32> = caches.iter().map(|c| c.len as u32).collect();
        let positions = Tensor::new(positions.as_slice(), &self.device)?;
        let mut x = self.embed(&ids)?; // (b, hidden)
        let scale = (1.0 / cfg.query_pre_attn_scalar.sqrt()) as f32;
        // Rotary rows for each sequence's position, gathered once per step, (b, 1, d/2).
        let gather = |rope: &Rope| -> Result<(Tensor, Tensor)> {
            Ok((
                rope.cos.index_select(&positions, 0)?.unsqueeze(1)?,
                rope.sin.index_select(&positions, 0)?.unsqueeze(1)?,
            ))
        };
        let global_tables = gather(&self.rope_global)?;
        let local_tables = match &self.rope_local {
            Some(local) => gather(local)?,
            None => global_tables.clone(),
        };
        let kv_width = cfg.kv_heads * cfg.head_dim;
        for (i, block) in self.blocks.iter().enumerate() {
            let residual = x.clone();
            let h = block.attn_norm.forward(&x)?;
            let q = block.q.forward(&h)?.reshape((b, cfg.heads, cfg.head_dim))?;
            let k = block
                .k
                .forward(&h)?
                .reshape((b, cfg.kv_heads, cfg.head_dim))?;
            let v = block.v.forward(&h)?;
            let (q, k) = match (&block.q_norm, &block.k_norm) {
                (Some(qn), Some(kn)) => (qn.forward(&q)?, kn.forward(&k)?),
                _ => (q, k),
            };
            let (cos, sin) = if self.rope_local.is_some() && cfg.layer_window(i).is_some() {
                &local_tables
            } else {
                &global_tables
            };
            let q = self.apply_rope(&q.unsqueeze(2)?, cos, sin)?; // (b, heads, 1, d)
            let k = self.apply_rope(&k.unsqueeze(2)?, cos, sin)?; // (b, kv, 1, d)
            let q = q.flatten_all()?.to_vec1::<f32>()?;
            let k = k.flatten_all()?.to_vec1::<f32>()?;
            let v = v.flatten_all()?.to_vec1::<f32>()?;
            let q_width = cfg.heads * cfg.head_dim;
            for (s, cache) in caches.iter_mut().enumerate() {
                let layer = &mut cache.layers[i];
                layer
                    .k
                    .extend_from_slice(&k[s * kv_width..(s + 1) * kv_width]);
                layer
                    .v
                    .extend_from_slice(&v[s * kv_width..(s + 1) * kv_width]);
            }
            // Every (sequence, head) pair attends on its own, spread over candle's CPU workers;
            // each pair's arithmetic is the same whichever worker runs it.
            let mut attn = vec![0f32; b * q_width];
            {
                let layers: Vec<&LayerCache> = caches.iter().map(|c| &c.layers[i]).collect();
                let outputs: Vec<std::sync::Mutex<&mut [f32]>> = attn
                    .chunks_mut(cfg.head_dim)
                    .map(std::sync::Mutex::new)
                    .collect();
                let shape = HeadShape {
                    heads: cfg.heads,
                    kv_heads: cfg.kv_heads,
                    head_dim: cfg.head_dim,
                    window: cfg.layer_window(i),
                    scale,
                };
                let q = &q;
                let run = |items: std::ops::Range<usize>| {
                    for item in items {
                        let (s, h) = (item / cfg.heads, item % cfg.heads);
                        let qh = &q[s * q_width + h * cfg.head_dim..][..cfg.head_dim];
                        if let Ok(mut out) = outputs[item].lock() {
                            attend_head(qh, layers[s], h, &shape, &mut out);
                        }
                    }
                };
                if self.device.is_cpu() && b * cfg.heads > 1 {
                    candle_core::utils::barrier_pool().execute_chunked(b * cfg.heads, run);
                } else {
                    run(0..b * cfg.heads);
                }
            }
            let attn = Tensor::from_vec(attn, (b, q_width), &self.device)?;
            x = self.finish_block(block, &residual, &attn)?;
        }
        for cache in caches.iter_mut() {
            cache.len += 1;
        }
        let x = self.norm.forward(&x)?;
        Ok(batch_invariant_matmul(&self.output, &x)?.to_dtype(DType::F32)?)
    }
}

/// Additive causal mask `(t, past + t)` for `t` new positions after `past` cached ones,
/// optionally limited to a sliding window.
fn causal_mask(t: usize, past: usize, window: Option<usize>, device: &Device) -> Result<Tensor> {
    let width = past + t;
    let mut mask = vec![0f32; t * width];
    for row in 0..t {
        let at = past + row;
        for col in 0..width {
            let future = col > at;
            let too_old = window.is_some_and(|w| at >= w && col <= at - w);
            if future || too_old {
                mask[row * width + col] = f32::NEG_INFINITY;
            }
        }
    }
    Ok(Tensor::from_vec(mask, (t, width), device)?)
}

/// The attention geometry of one layer.
#[derive(Clone, Copy)]
struct HeadShape {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    window: Option<usize>,
    scale: f32,
}

/// Attention of one head at one new query position over a sequence's cached keys/values, in a
/// fixed order.
fn attend_head(qh: &[f32], layer: &LayerCache, h: usize, shape: &HeadShape, out: &mut [f32]) {
    let HeadShape {
        heads,
        kv_heads,
        head_dim,
        window,
        scale,
    } = *shape;
    let kv_width = kv_heads * head_dim;
    let len = layer.k.len() / kv_width;
    let start = window.map_or(0, |w| len.saturating_sub(w));
    let g = h / (heads / kv_heads);
    let mut scores = vec![0f32; len - start];
    let mut max = f32::NEG_INFINITY;
    for (j, score) in scores.iter_mut().enumerate() {
        let pos = start + j;
        let kh = &layer.k[pos * kv_width + g * head_dim..pos * kv_width + (g + 1) * head_dim];
        *score = dot(qh, kh) * scale;
        max = max.max(*score);
    }
    let mut sum = 0f32;
    for score in &mut scores {
        *score = (*score - max).exp();
        sum += *score;
    }
    let inv = 1.0 / sum;
    out.fill(0.0);
    for (j, p) in scores.iter().enumerate() {
        let pos = start + j;
        let vh = &layer.v[pos * kv_width + g * head_dim..pos * kv_width + (g + 1) * head_dim];
        let w = p * inv;
        for (o, v) in out.iter_mut().zip(vh) {
            *o += w * v;
        }
    }
}

/// A dot product written so the compiler vectorises it: eight independent accumulators over
/// exact chunks (no bounds checks in the loop), summed in a fixed order.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut sum = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += x * y;
    }
    sum
}

#[cfg(test)]
mod tests;
