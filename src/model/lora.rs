//! PEFT LoRA adapters (`adapter_config.json` + `adapter_model.safetensors`), merged into a
//! safetensors base at load time: `W' = W + (alpha / r) · B · A`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::format::{self, FileFormat};
use crate::error::{Error, Result};

/// A loaded adapter, waiting to be merged.
#[derive(Debug)]
pub struct LoraAdapter {
    /// The adapter folder.
    pub dir: PathBuf,
    /// Files the adapter was read from (config, weights).
    pub files: Vec<PathBuf>,
    /// Rank.
    pub rank: usize,
    /// `lora_alpha`.
    pub alpha: f64,
    /// The merge scale: alpha / r, or alpha / sqrt(r) with rsLoRA.
    pub scale: f64,
    /// Base weight name → (A: `r × in`, B: `out × r`).
    pairs: HashMap<String, (Tensor, Tensor)>,
}

impl LoraAdapter {
    /// Read an adapter folder.
    pub fn open(dir: &Path) -> Result<Self> {
        let config_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&config_path, format!("invalid JSON: {e}")))?;
        let rank = config
            .get("r")
            .and_then(serde_json::Value::as_u64)
            .filter(|r| (1..=65_536).contains(r))
            .ok_or_else(|| {
                Error::bad_file(&config_path, "`r` must be an integer from 1 to 65536")
            })? as usize;
        let alpha = config
            .get("lora_alpha")
            .and_then(serde_json::Value::as_f64)
            .filter(|a| a.is_finite())
            .ok_or_else(|| Error::bad_file(&config_path, "`lora_alpha` must be a number"))?;
        if config
            .get("fan_in_fan_out")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
        {
            return Err(Error::bad_file(
                &config_path,
                "fan_in_fan_out adapters (GPT-2 Conv1D layers) are not supported",
            ));
        }
        let rslora = config
            .get("use_rslora")
            .and_then(serde_json::Value::as_bool)
            == Some(true);
        let scale = if rslora {
            alpha / (rank as f64).sqrt()
        } else {
            alpha / rank as f64
        };

        let weights_path = dir.join("adapter_model.safetensors");
        if !weights_path.exists() {
            let pickle = dir.join("adapter_model.bin");
            if pickle.exists() {
                return Err(format::pickle_refusal(&pickle));
            }
            return Err(Error::bad_file(
                dir,
                "no adapter_model.safetensors in this adapter folder",
            ));
        }
        match format::sniff(&weights_path)? {
            FileFormat::Safetensors => {}
            FileFormat::Pickle => return Err(format::pickle_refusal(&weights_path)),
            _ => {
                return Err(Error::bad_file(
                    &weights_path,
                    "not a safetensors file (bad header)",
                ))
            }
        }
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu)
            .map_err(|e| Error::bad_file(&weights_path, format!("cannot read safetensors: {e}")))?;
        let mut a_parts = HashMap::new();
        let mut b_parts = HashMap::new();
        for (name, tensor) in tensors {
            let Some(stripped) = name.strip_prefix("base_model.model.") else {
                continue;
            };
            if let Some(base) = stripped.strip_suffix(".lora_A.weight") {
                a_parts.insert(format!("{base}.weight"), tensor);
            } else if let Some(base) = stripped.strip_suffix(".lora_B.weight") {
                b_parts.insert(format!("{base}.weight"), tensor);
            }
        }
        let mut pairs = HashMap::new();
        for (name, a) in a_parts {
            let b = b_parts.remove(&name).ok_or_else(|| {
                Error::bad_file(&weights_path, format!("{name}: lora_A without lora_B"))
            })?;
            let (ra, _) = a
                .dims2()
                .map_err(|e| Error::bad_file(&weights_path, format!("{name}: {e}")))?;
            let (_, rb) = b
                .dims2()
                .map_err(|e| Error::bad_file(&weights_path, format!("{name}: {e}")))?;
            if ra != rank || rb != rank {
                return Err(Error::bad_file(
                    &weights_path,
                    format!("{name}: A has rank {ra} and B rank {rb}, config says r = {rank}"),
                ));
            }
            pairs.insert(name, (a.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?));
        }
        if let Some(name) = b_parts.keys().next() {
            return Err(Error::bad_file(
                &weights_path,
                format!("{name}: lora_B without lora_A"),
            ));
        }
        if pairs.is_empty() {
            return Err(Error::bad_file(
                &weights_path,
                "no lora_A/lora_B pairs found (expected names like base_model.model.<layer>.lora_A.weight)",
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files: vec![config_path, weights_path],
            rank,
            alpha,
            scale,
            pairs,
        })
    }

    /// Names of the base weights this adapter changes.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.pairs.keys().map(String::as_str)
    }

    /// Merge into `weight` (`out × in`, f32) if the adapter targets `name`.
    pub fn merge(&self, name: &str, weight: Tensor) -> Result<Tensor> {
        let Some((a, b)) = self.pairs.get(name) else {
            return Ok(weight);
        };
        let delta = (b.matmul(a)? * self.scale)?;
        if delta.dims() != weight.dims() {
            return Err(Error::bad_file(
                &self.dir,
                format!(
                    "{name}: adapter delta has shape {:?} but the base weight is {:?}",
                    delta.dims(),
                    weight.dims()
                ),
            ));
        }
        let delta = delta.to_device(weight.device())?;
        Ok((weight + delta)?)
    }
}
