//! What the model card shows, taken from a loaded model or a run's `Loaded` event.

use super::format::short;
use crate::model::{Fingerprint, ModelInfo};

/// One file of a model, as the card lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFile {
    /// What the file is to the model (`weights`, `tokenizer`, `adapter`, ...).
    pub role: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, hex.
    pub sha256: String,
    /// Where it was read from.
    pub path: String,
}

/// A model's card: its architecture, format, files and fingerprint.
#[derive(Debug, Clone)]
pub struct Card {
    /// Heading: the GGUF name or the architecture.
    pub title: String,
    /// (field, value) lines.
    pub lines: Vec<(String, String)>,
    /// Every file with its role, size and SHA-256.
    pub files: Vec<CardFile>,
    /// The fingerprint id answers are stored under.
    pub fingerprint: String,
    /// Everything above as plain text, for the copy button.
    pub text: String,
}

impl Card {
    /// Describe a model.
    pub fn new(info: &ModelInfo, fp: &Fingerprint) -> Self {
        let c = &info.config;
        let stored: Vec<String> = info
            .weights
            .stored_types
            .iter()
            .map(|(t, n)| format!("{n}×{t}"))
            .collect();
        let mut quant = stored.join(" ");
        for (from, to, n) in &info.weights.requantized {
            quant.push_str(&format!("; {n} {from} re-encoded as {to}"));
        }
        let mut lines = vec![
            (
                "architecture".to_owned(),
                info.architecture.name().to_owned(),
            ),
            (
                "size".to_owned(),
                format!(
                    "{:.1} M parameters, {} layers, hidden {}, vocab {}",
                    info.parameters as f64 / 1e6,
                    c.layers,
                    c.hidden_size,
                    c.vocab_size
                ),
            ),
            ("format".to_owned(), info.format.clone()),
            ("quantization".to_owned(), quant),
            ("tokenizer".to_owned(), info.tokenizer.clone()),
            (
                "template".to_owned(),
                format!("{} (sha256 {})", info.template, short(&fp.template_sha256)),
            ),
            ("device".to_owned(), info.device.clone()),
        ];
        if let Some(rev) = &fp.revision {
            lines.push(("revision".to_owned(), rev.clone()));
        }
        for t in &fp.transforms {
            lines.push(("transform".to_owned(), t.clone()));
        }
        let files: Vec<CardFile> = fp
            .files
            .iter()
            .map(|f| CardFile {
                role: f.role.clone(),
                bytes: f.bytes,
                sha256: f.sha256.clone(),
                path: f.path.clone(),
            })
            .collect();
        let title = info
            .name
            .clone()
            .unwrap_or_else(|| info.architecture.name().to_owned());
        let mut text = format!("{title}\n");
        for (k, v) in &lines {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push_str(&format!("fingerprint: {}\n", fp.id));
        for f in &files {
            text.push_str(&format!(
                "{} {} bytes sha256 {} {}\n",
                f.role, f.bytes, f.sha256, f.path
            ));
        }
        Self {
            title,
            lines,
            files,
            fingerprint: fp.id.clone(),
            text,
        }
    }
}
