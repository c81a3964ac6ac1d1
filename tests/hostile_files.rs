//! Files from the party under audit may be malformed or hostile. Each gets a clear error that
//! names the file and the problem; nothing panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use aligndiff::model::{self, LoadOptions, ModelSpec};
use candle_core::quantized::GgmlDType;
use common::Tiny;

fn try_load(dir: &Path, source: &Path) -> Result<model::LoadedModel, aligndiff::Error> {
    model::load(
        &ModelSpec::new(source.to_str().unwrap()),
        &LoadOptions {
            hash_cache: Some(dir.join("hashes.json")),
            max_positions: 64,
            ..Default::default()
        },
    )
}

fn load_error(dir: &Path, source: &Path) -> String {
    match try_load(dir, source) {
        Ok(_) => panic!("{} loaded but should have been refused", source.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_names(err: &str, path: &Path, words: &[&str]) {
    assert!(
        err.contains(&path.display().to_string()),
        "error does not name the file: {err}"
    );
    for w in words {
        assert!(err.contains(w), "error lacks `{w}`: {err}");
    }
}

/// A GGUF header written by hand.
#[derive(Default)]
struct Gguf {
    buf: Vec<u8>,
}

impl Gguf {
    fn new(version: u32, tensors: u64, kvs: u64) -> Self {
        let mut g = Self::default();
        g.buf.extend_from_slice(b"GGUF");
        g.u32(version).u64(tensors).u64(kvs);
        g
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn string(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
    fn kv_str(&mut self, k: &str, v: &str) -> &mut Self {
        self.string(k).u32(8).string(v)
    }
    fn kv_u32(&mut self, k: &str, v: u32) -> &mut Self {
        self.string(k).u32(4).u32(v)
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.string(name).u32(dims.len() as u32);
        for d in dims {
            self.u64(*d);
        }
        self.u32(ty).u64(offset)
    }
    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        let mut bytes = self.buf.clone();
        bytes.resize(bytes.len().next_multiple_of(32) + 64, 0);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

#[test]
fn unsupported_gguf_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for v in [1, 4, 0xFFFF] {
        let p = Gguf::new(v, 0, 0).write(dir.path(), &format!("v{v}.gguf"));
        assert_names(&load_error(dir.path(), &p), &p, &["version", "2 and 3"]);
    }
}

#[test]
fn alignment_must_be_a_nonzero_power_of_two() {
    let dir = tempfile::tempdir().unwrap();
    for a in [0, 3, 48] {
        let p = Gguf::new(3, 0, 1)
            .kv_u32("general.alignment", a)
            .write(dir.path(), &format!("a{a}.gguf"));
        assert_names(
            &load_error(dir.path(), &p),
            &p,
            &["alignment", "power of two"],
        );
    }
}

#[test]
fn duplicate_metadata_keys_and_tensor_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = Gguf::new(3, 0, 2)
        .kv_str("general.architecture", "llama")
        .kv_str("general.architecture", "qwen2")
        .write(dir.path(), "dupkey.gguf");
    assert_names(
        &load_error(dir.path(), &p),
        &p,
        &["general.architecture", "twice"],
    );
    let p = Gguf::new(3, 2, 0)
        .tensor("w", &[32], 0, 0)
        .tensor("w", &[32], 0, 128)
        .write(dir.path(), "duptensor.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["`w`", "twice"]);
}

#[test]
fn shape_arithmetic_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = Gguf::new(3, 1, 0)
        .tensor("huge", &[1 << 40, 1 << 40], 0, 0)
        .write(dir.path(), "overflow.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["huge", "overflow"]);
    let p = Gguf::new(3, 1, 0)
        .tensor("z", &[0, 4], 0, 0)
        .write(dir.path(), "zero.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["zero"]);
    let p = Gguf::new(3, 1, 0)
        .tensor("r", &[4; 5], 0, 0)
        .write(dir.path(), "rank.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["dimensions"]);
    let p = Gguf::new(3, 1, 0)
        .tensor("q", &[30, 2], 8, 0)
        .write(dir.path(), "block.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["block size"]);
    let p = Gguf::new(3, 1, 0)
        .tensor("t", &[32], 99, 0)
        .write(dir.path(), "type.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["type id 99"]);
}

#[test]
fn tensor_data_must_lie_inside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = Gguf::new(3, 1, 0)
        .tensor("w", &[1024, 1024], 0, 0)
        .write(dir.path(), "short.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["`w`", "truncated"]);
    let p = Gguf::new(3, 1, 0)
        .tensor("w", &[8], 0, 7)
        .write(dir.path(), "misaligned.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["alignment"]);
}

#[test]
fn lying_counts_and_lengths_are_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let p = Gguf::new(3, u64::MAX, 0).write(dir.path(), "tensors.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["tensors"]);
    let p = Gguf::new(3, 0, u64::MAX / 2).write(dir.path(), "kvs.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["metadata"]);
    let mut g = Gguf::new(3, 0, 1);
    g.string("k").u32(8).u64(1 << 50);
    let p = g.write(dir.path(), "string.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["claims"]);
    let mut g = Gguf::new(3, 0, 1);
    g.string("k").u32(9).u32(4).u64(1 << 50);
    let p = g.write(dir.path(), "array.gguf");
    assert_names(&load_error(dir.path(), &p), &p, &["array items"]);
}

#[test]
fn unknown_architecture_is_named_with_the_supported_list() {
    let dir = tempfile::tempdir().unwrap();
    let p = Gguf::new(3, 0, 1)
        .kv_str("general.architecture", "mamba")
        .write(dir.path(), "mamba.gguf");
    assert_names(
        &load_error(dir.path(), &p),
        &p,
        &["`mamba`", "qwen2", "gemma3", "llama"],
    );
}

#[test]
fn truncated_and_corrupted_models_error_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let good = common::write_gguf(
        &dir.path().join("good.gguf"),
        &Tiny::default(),
        GgmlDType::Q8_0,
    );
    let bytes = std::fs::read(&good).unwrap();
    assert!(try_load(dir.path(), &good).is_ok());
    // Cut the file at many points: every cut must give an error naming the file.
    let cut_points: Vec<usize> = (0..bytes.len())
        .step_by(bytes.len() / 97)
        .chain([bytes.len() - 1])
        .collect();
    for cut in cut_points {
        let p = dir.path().join("cut.gguf");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = load_error(dir.path(), &p);
        assert!(err.contains("cut.gguf"), "cut at {cut}: {err}");
    }
    // Flip bytes in the header: loading may succeed or fail, but never panics.
    let header_len = 24_000.min(bytes.len());
    let mut state = 12345u64;
    for i in 0..300 {
        let mut corrupt = bytes.clone();
        for _ in 0..4 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let pos = (state >> 33) as usize % header_len;
            corrupt[pos] ^= (state >> 13) as u8 | 1;
        }
        let p = dir.path().join(format!("flip{i}.gguf"));
        std::fs::write(&p, &corrupt).unwrap();
        let outcome = std::panic::catch_unwind(|| try_load(dir.path(), &p).map(|_| ()));
        assert!(outcome.is_ok(), "loading flip{i}.gguf panicked");
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn pickle_checkpoints_are_refused_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    // A raw pickle stream (protocol 4) disguised as a GGUF file.
    let p = dir.path().join("innocent.gguf");
    std::fs::write(
        &p,
        [0x80, 0x04, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x8c, 0x05],
    )
    .unwrap();
    assert_names(&load_error(dir.path(), &p), &p, &["pickle", "safetensors"]);
    // PyTorch's zip container.
    let p = dir.path().join("model.pt");
    std::fs::write(&p, b"PK\x03\x04\x14\0\0\0\0\0archive/data.pkl").unwrap();
    assert_names(&load_error(dir.path(), &p), &p, &["pickle", "safetensors"]);
    // A folder holding only pytorch_model.bin.
    let t = Tiny::default();
    let folder = common::write_hf_folder(&dir.path().join("torch"), &t, &common::hf_weights(&t));
    std::fs::remove_file(folder.join("model.safetensors")).unwrap();
    let bin = folder.join("pytorch_model.bin");
    std::fs::write(&bin, b"PK\x03\x04rest").unwrap();
    assert_names(
        &load_error(dir.path(), &folder),
        &bin,
        &["pickle", "Convert"],
    );
}

#[test]
fn random_bytes_are_not_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "just some text, definitely not weights").unwrap();
    assert_names(&load_error(dir.path(), &p), &p, &["unrecognised"]);
    let missing = dir.path().join("nope.gguf");
    assert_names(&load_error(dir.path(), &missing), &missing, &[]);
}

fn tiny_folder(dir: &Path, name: &str) -> PathBuf {
    let t = Tiny::default();
    common::write_hf_folder(&dir.join(name), &t, &common::hf_weights(&t))
}

#[test]
fn config_values_are_bounded_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, words) in [
        (
            "hidden_size",
            serde_json::json!(1_000_000_000_000u64),
            vec!["hidden size", "between"],
        ),
        (
            "num_hidden_layers",
            serde_json::json!(100_000),
            vec!["layer count"],
        ),
        ("vocab_size", serde_json::json!(0), vec!["vocabulary size"]),
        (
            "max_position_embeddings",
            serde_json::json!(1u64 << 40),
            vec!["context length"],
        ),
        (
            "num_key_value_heads",
            serde_json::json!(3),
            vec!["cannot be grouped"],
        ),
        (
            "num_attention_heads",
            serde_json::json!(-4),
            vec!["num_attention_heads"],
        ),
    ] {
        let folder = tiny_folder(dir.path(), key);
        let config_path = folder.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
        config[key] = value;
        std::fs::write(&config_path, config.to_string()).unwrap();
        assert_names(&load_error(dir.path(), &folder), &config_path, &words);
    }
}

#[test]
fn broken_folders_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tiny_folder(dir.path(), "notok");
    std::fs::remove_file(folder.join("tokenizer.json")).unwrap();
    assert_names(
        &load_error(dir.path(), &folder),
        &folder,
        &["tokenizer.json"],
    );

    let folder = tiny_folder(dir.path(), "escape");
    std::fs::write(
        folder.join("model.safetensors.index.json"),
        r#"{"weight_map": {"model.norm.weight": "../../etc/passwd"}}"#,
    )
    .unwrap();
    assert_names(
        &load_error(dir.path(), &folder),
        &folder.join("model.safetensors.index.json"),
        &["outside"],
    );

    let folder = tiny_folder(dir.path(), "badjson");
    std::fs::write(folder.join("config.json"), "{ not json").unwrap();
    assert_names(
        &load_error(dir.path(), &folder),
        &folder.join("config.json"),
        &["invalid JSON"],
    );

    let folder = tiny_folder(dir.path(), "arch");
    std::fs::write(folder.join("config.json"), r#"{"model_type": "rwkv"}"#).unwrap();
    assert_names(
        &load_error(dir.path(), &folder),
        &folder.join("config.json"),
        &["`rwkv`", "supported"],
    );

    let folder = tiny_folder(dir.path(), "shape");
    let mut w = common::hf_weights(&Tiny::default());
    w.insert(
        "model.norm.weight".into(),
        candle_core::Tensor::zeros(7, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&w, folder.join("model.safetensors")).unwrap();
    assert_names(
        &load_error(dir.path(), &folder),
        &folder.join("model.safetensors"),
        &["model.norm.weight", "shape"],
    );

    let folder = tiny_folder(dir.path(), "truncated");
    let st = folder.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    assert_names(&load_error(dir.path(), &folder), &st, &["safetensors"]);
}
