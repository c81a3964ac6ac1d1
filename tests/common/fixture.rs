//! The tiny prompt pack and the pair of tiny models most audit tests start from, written into a
//! temporary folder.

use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;

use super::{write_gguf, Tiny};

/// The reference model's seed (`Tiny::default()`).
pub const REFERENCE_SEED: u64 = 7;
/// The candidate model's seed: a different model of the same shape.
pub const CANDIDATE_SEED: u64 = 99;

/// A tiny Llama-shaped model with this seed, as a Q8_0 GGUF file.
pub fn tiny_model(path: &Path, seed: u64) -> PathBuf {
    write_gguf(
        path,
        &Tiny {
            seed,
            ..Default::default()
        },
        GgmlDType::Q8_0,
    )
}

/// The reference (`ref.gguf`) and candidate (`cand.gguf`) models in `dir`.
pub fn model_pair(dir: &Path) -> (PathBuf, PathBuf) {
    (
        tiny_model(&dir.join("ref.gguf"), REFERENCE_SEED),
        tiny_model(&dir.join("cand.gguf"), CANDIDATE_SEED),
    )
}

/// A prompt pack `tiny`: harmful categories, then a benign `safe` category.
pub struct TinyPack<'a> {
    /// Harmful categories as (id, name).
    pub categories: &'a [(&'a str, &'a str)],
    /// Harmful prompts per category, `the {id} thing number {i}{suffix}`.
    pub per_category: usize,
    /// Benign prompts, `a safe question {i}`.
    pub benign: usize,
    /// Text after each harmful prompt.
    pub suffix: &'a str,
}

impl TinyPack<'_> {
    /// Categories `a` (Alpha) and `b` (Beta): the pack of the audit and GUI tests.
    pub fn two_categories(per_category: usize, benign: usize) -> Self {
        Self {
            categories: &[("a", "Alpha"), ("b", "Beta")],
            per_category,
            benign,
            suffix: ", the theory",
        }
    }

    /// Write `dir/pack` (pack.toml and prompts.jsonl) and return its folder.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let pack = dir.join("pack");
        std::fs::create_dir_all(&pack).unwrap();
        let mut toml = String::from("id = \"tiny\"\nversion = \"1\"\ntaxonomy = \"t\"\n");
        for (id, name) in self.categories.iter().chain(&[("safe", "Safe")]) {
            toml.push_str(&format!(
                "[[categories]]\nid = \"{id}\"\nname = \"{name}\"\n"
            ));
        }
        std::fs::write(pack.join("pack.toml"), toml).unwrap();
        let mut lines = Vec::new();
        for (cat, _) in self.categories {
            for i in 0..self.per_category {
                lines.push(format!(
                    r#"{{"id": "{cat}-{i}", "category": "{cat}", "kind": "harmful", "text": "the {cat} thing number {i}{}"}}"#,
                    self.suffix
                ));
            }
        }
        for i in 0..self.benign {
            lines.push(format!(r#"{{"id": "s-{i}", "category": "safe", "kind": "benign", "text": "a safe question {i}"}}"#));
        }
        std::fs::write(pack.join("prompts.jsonl"), lines.join("\n")).unwrap();
        pack
    }
}

/// A temporary folder with the model pair and a pack.
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// The folder; gone when the fixture is dropped.
    pub root: PathBuf,
    /// The reference model.
    pub reference: PathBuf,
    /// The candidate model.
    pub candidate: PathBuf,
    /// The pack folder.
    pub pack: PathBuf,
}

/// The model pair and `pack` in a new temporary folder.
pub fn fixture(pack: &TinyPack<'_>) -> Fixture {
    fixture_with(|root| pack.write(root))
}

/// The model pair in a new temporary folder, with the pack `write_pack(folder)` writes there
/// (for packs whose prompts are not [`TinyPack`]'s).
pub fn fixture_with(write_pack: impl FnOnce(&Path) -> PathBuf) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (reference, candidate) = model_pair(&root);
    let pack = write_pack(&root);
    Fixture {
        _dir: dir,
        root,
        reference,
        candidate,
        pack,
    }
}
