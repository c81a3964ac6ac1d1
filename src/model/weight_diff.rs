//! What the vendor changed in the weights, without generating a token: for two GGUF files of
//! the same architecture (a fine-tune, a merged LoRA, a re-quantised file), per tensor and per
//! layer, the relative norm of the difference `‖B − A‖ / ‖A‖` over the dequantized weights.
//!
//! A re-quantised file changes every tensor a little; a fine-tune changes some a lot. To tell
//! them apart, each tensor whose stored format differs is also compared with the reference
//! re-encoded into the candidate's format: that re-encode's own error is what quantisation
//! alone costs. A tensor whose difference is within 1.5× of it is marked `quantization`; one
//! beyond it, or any difference between tensors of the same format, is `trained`.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::QTensor;
use candle_core::Device;
use serde::Serialize;

use super::gguf::GgufFile;
use crate::error::{Error, Result};

/// How a tensor's difference reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Bit-for-bit the same after dequantizing.
    Identical,
    /// Different, but no more than re-encoding the reference into the candidate's format does.
    Quantization,
    /// Different beyond what quantization explains.
    Trained,
}

/// One tensor present in both files.
#[derive(Debug, Clone, Serialize)]
pub struct TensorDiff {
    /// GGUF tensor name, e.g. `blk.3.ffn_down.weight`.
    pub name: String,
    /// Block index, when the tensor belongs to one.
    pub layer: Option<usize>,
    /// The module within its block (`ffn_down`, `attn_q`, ...), or the whole name.
    pub module: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Stored format in the reference and the candidate.
    pub reference_type: String,
    /// Stored format in the candidate.
    pub candidate_type: String,
    /// `‖B − A‖ / ‖A‖` (0 when identical; `‖B‖` when `A` is all zeros).
    pub relative_norm: f64,
    /// Largest absolute elementwise difference.
    pub max_abs: f64,
    /// `‖Q(A) − A‖ / ‖A‖` where `Q` re-encodes into the candidate's format, when the formats differ.
    pub quantization_floor: Option<f64>,
    /// The reading.
    pub change: Change,
}

/// One block's tensors together.
#[derive(Debug, Clone, Serialize)]
pub struct LayerDiff {
    /// Block index.
    pub layer: usize,
    /// `‖B − A‖ / ‖A‖` over all the block's weights.
    pub relative_norm: f64,
    /// The block's tensors read as trained changes.
    pub trained_tensors: usize,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct WeightDiff {
    /// Every tensor in both files, in the reference's order.
    pub tensors: Vec<TensorDiff>,
    /// Per block.
    pub layers: Vec<LayerDiff>,
    /// Tensors only one file has (name and which side).
    pub unmatched: Vec<String>,
    /// `‖B − A‖ / ‖A‖` over every matched weight.
    pub overall_relative_norm: f64,
    /// Counts by reading.
    pub identical: usize,
    /// Tensors within quantization noise.
    pub quantization: usize,
    /// Tensors changed beyond it.
    pub trained: usize,
}

/// Squared norms accumulated in f64.
#[derive(Default, Clone, Copy)]
struct Norms {
    diff: f64,
    base: f64,
}

impl Norms {
    /// Add the squared difference and the squared reference of every element pair.
    fn of(reference: &[f32], other: &[f32]) -> Self {
        let mut n = Self::default();
        for (x, y) in reference.iter().zip(other) {
            let (x, y) = (f64::from(*x), f64::from(*y));
            n.diff += (y - x) * (y - x);
            n.base += x * x;
        }
        n
    }

    fn add(&mut self, other: Self) {
        self.diff += other.diff;
        self.base += other.base;
    }

    /// `‖B − A‖ / ‖A‖`, or `‖B − A‖` when `A` is all zeros.
    fn relative(self) -> f64 {
        if self.base > 0.0 {
            (self.diff / self.base).sqrt()
        } else {
            self.diff.sqrt()
        }
    }
}

fn layer_of(name: &str) -> (Option<usize>, String) {
    let mut parts = name.split('.');
    if parts.next() == Some("blk") {
        if let Some(layer) = parts.next().and_then(|p| p.parse().ok()) {
            let module = parts.next().unwrap_or(name).to_owned();
            return (Some(layer), module);
        }
    }
    (None, name.trim_end_matches(".weight").to_owned())
}

fn values(q: &QTensor, path: &Path, name: &str) -> Result<Vec<f32>> {
    q.dequantize(&Device::Cpu)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| Error::bad_file(path, format!("cannot dequantize tensor `{name}`: {e}")))
}

/// Compare two GGUF files tensor by tensor (one tensor pair in memory at a time).
pub fn diff_gguf(reference: &Path, candidate: &Path) -> Result<WeightDiff> {
    let a = GgufFile::open(reference)?;
    let b = GgufFile::open(candidate)?;
    let mut ra =
        BufReader::new(std::fs::File::open(reference).map_err(|e| Error::io(reference, e))?);
    let mut rb =
        BufReader::new(std::fs::File::open(candidate).map_err(|e| Error::io(candidate, e))?);
    let mut tensors = Vec::new();
    let mut unmatched = Vec::new();
    let mut by_layer: BTreeMap<usize, (Norms, usize)> = BTreeMap::new();
    let mut total = Norms::default();
    for name in &a.tensor_order {
        let (Some(da), Some(db)) = (a.tensor_dims(name), b.tensor_dims(name)) else {
            unmatched.push(format!("{name} (reference only)"));
            continue;
        };
        if da != db {
            return Err(Error::Invalid(format!(
                "tensor `{name}` has shape {da:?} in {} and {db:?} in {}: not the same architecture",
                reference.display(),
                candidate.display()
            )));
        }
        let qa = a
            .content
            .tensor(&mut ra, name, &Device::Cpu)
            .map_err(|e| Error::bad_file(reference, format!("reading tensor `{name}`: {e}")))?;
        let qb = b
            .content
            .tensor(&mut rb, name, &Device::Cpu)
            .map_err(|e| Error::bad_file(candidate, format!("reading tensor `{name}`: {e}")))?;
        let va = values(&qa, reference, name)?;
        let vb = values(&qb, candidate, name)?;
        let n = Norms::of(&va, &vb);
        let max_abs = va
            .iter()
            .zip(&vb)
            .map(|(x, y)| (f64::from(*y) - f64::from(*x)).abs())
            .fold(0f64, f64::max);
        let relative_norm = n.relative();
        let quantization_floor = if qa.dtype() != qb.dtype() && relative_norm > 0.0 {
            // What re-encoding the reference into the candidate's format costs by itself,
            // starting from the values already dequantized above.
            let dense = candle_core::Tensor::from_slice(&va, da, &Device::Cpu)
                .map_err(|e| Error::bad_file(reference, format!("tensor `{name}`: {e}")))?;
            QTensor::quantize(&dense, qb.dtype())
                .ok()
                .and_then(|q| values(&q, reference, name).ok())
                .map(|vq| Norms::of(&va, &vq).relative())
        } else {
            None
        };
        let change = if n.diff == 0.0 {
            Change::Identical
        } else if quantization_floor.is_some_and(|floor| relative_norm <= 1.5 * floor) {
            Change::Quantization
        } else {
            Change::Trained
        };
        let (layer, module) = layer_of(name);
        if let Some(l) = layer {
            let entry = by_layer.entry(l).or_default();
            entry.0.add(n);
            entry.1 += usize::from(change == Change::Trained);
        }
        total.add(n);
        tensors.push(TensorDiff {
            name: name.clone(),
            layer,
            module,
            shape: da.to_vec(),
            reference_type: format!("{:?}", qa.dtype()),
            candidate_type: format!("{:?}", qb.dtype()),
            relative_norm,
            max_abs,
            quantization_floor,
            change,
        });
    }
    for name in &b.tensor_order {
        if a.tensor_dims(name).is_none() {
            unmatched.push(format!("{name} (candidate only)"));
        }
    }
    let layers = by_layer
        .into_iter()
        .map(|(layer, (n, trained))| LayerDiff {
            layer,
            relative_norm: n.relative(),
            trained_tensors: trained,
        })
        .collect();
    let count = |c: Change| tensors.iter().filter(|t| t.change == c).count();
    Ok(WeightDiff {
        identical: count(Change::Identical),
        quantization: count(Change::Quantization),
        trained: count(Change::Trained),
        overall_relative_norm: total.relative(),
        tensors,
        layers,
        unmatched,
    })
}
