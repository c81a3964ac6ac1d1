//! What the model card shows, taken from a loaded model or a run's `Loaded` event.

use crate::model::fingerprint::FileDigest;
use crate::model::{Fingerprint, ModelInfo};
use crate::report::format::{model_facts, ModelFact};

/// A model's card: its architecture, format, files and fingerprint.
#[derive(Debug, Clone)]
pub struct Card {
    /// Heading: the GGUF name or the architecture.
    pub title: String,
    /// What the card says, as every report says it ([`model_facts`]).
    pub lines: Vec<ModelFact>,
    /// Every file with its role, size and SHA-256.
    pub files: Vec<FileDigest>,
    /// The fingerprint id answers are stored under.
    pub fingerprint: String,
    /// Everything above as plain text, for the copy button.
    pub text: String,
}

impl Card {
    /// Describe a model.
    pub fn new(info: &ModelInfo, fp: &Fingerprint) -> Self {
        let lines = model_facts(info, fp);
        let files = fp.files.clone();
        let title = info
            .name
            .clone()
            .unwrap_or_else(|| info.architecture.name().to_owned());
        let mut text = format!("{title}\n");
        for fact in &lines {
            text.push_str(&format!("{}: {}\n", fact.name, fact.value));
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
