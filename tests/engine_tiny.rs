//! The engine on tiny models built in code: loading paths agree, batching is exact, LoRA merges.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::AtomicBool;

use aligndiff::generate::{self, Event, FinishReason, GenerationSettings, Request};
use aligndiff::model::{self, LoadOptions, LoadedModel, ModelSpec};
use candle_core::quantized::GgmlDType;
use candle_core::Tensor;
use common::Tiny;

fn options(dir: &std::path::Path) -> LoadOptions {
    LoadOptions {
        hash_cache: Some(dir.join("hash-cache.json")),
        max_positions: 256,
        ..Default::default()
    }
}

fn load(dir: &std::path::Path, source: &std::path::Path) -> LoadedModel {
    model::load(&ModelSpec::new(source.to_str().unwrap()), &options(dir)).unwrap()
}

fn prompts(model: &LoadedModel) -> Vec<Request> {
    [
        "hi",
        "tell me the time",
        "the theory of the thing, at length and with detail",
        "x",
        "why?",
        "the the the",
        "a b c d e f g",
        "ok then",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| Request {
        prompt_ids: model.prompt_ids(None, &[p.to_string()]).unwrap(),
        seed_key: i as u64,
    })
    .collect()
}

fn run(model: &LoadedModel, requests: &[Request], settings: &GenerationSettings) -> Vec<Vec<u32>> {
    let (done, _) = generate::generate(
        model,
        requests,
        settings,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    done.into_iter().map(|c| c.token_ids).collect()
}

fn greedy(batch: usize, n: usize) -> GenerationSettings {
    GenerationSettings {
        max_new_tokens: n,
        batch_size: batch,
        ignore_eos: true,
        ..Default::default()
    }
}

#[test]
fn greedy_answers_are_identical_at_batch_1_and_batch_8() {
    let dir = tempfile::tempdir().unwrap();
    for family in common::Family::ALL {
        let t = Tiny::of(family);
        let path = common::write_gguf(
            &dir.path().join(format!("tiny-{family:?}.gguf")),
            &t,
            GgmlDType::Q8_0,
        );
        let m = load(dir.path(), &path);
        let reqs = prompts(&m);
        let one = run(&m, &reqs, &greedy(1, 24));
        let eight = run(&m, &reqs, &greedy(8, 24));
        let three = run(&m, &reqs, &greedy(3, 24));
        assert_eq!(one, eight, "{family:?}");
        assert_eq!(one, three, "{family:?}");
        assert!(one.iter().all(|a| a.len() == 24));
    }
    // Dense safetensors weights (candle's gemm) too.
    let t = Tiny::default();
    let folder = common::write_hf_folder(&dir.path().join("dense"), &t, &common::hf_weights(&t));
    let m = load(dir.path(), &folder);
    let reqs = prompts(&m);
    assert_eq!(
        run(&m, &reqs, &greedy(1, 24)),
        run(&m, &reqs, &greedy(8, 24)),
        "dense weights"
    );
}

#[test]
fn gguf_and_safetensors_layouts_of_the_same_weights_agree() {
    let dir = tempfile::tempdir().unwrap();
    for family in common::Family::ALL {
        let t = Tiny::of(family);
        let gguf = common::write_gguf(
            &dir.path().join(format!("m-{family:?}.gguf")),
            &t,
            GgmlDType::F32,
        );
        let folder = common::write_hf_folder(
            &dir.path().join(format!("hf-{family:?}")),
            &t,
            &common::hf_weights(&t),
        );
        let a = load(dir.path(), &gguf);
        let b = load(dir.path(), &folder);
        let ids = a
            .prompt_ids(Some("be nice"), &["the weather".into()])
            .unwrap();
        assert_eq!(
            ids,
            b.prompt_ids(Some("be nice"), &["the weather".into()])
                .unwrap()
        );
        let mut ca = a.transformer.new_cache();
        let mut cb = b.transformer.new_cache();
        let la = a.transformer.prefill(&ids, &mut ca).unwrap();
        let lb = b.transformer.prefill(&ids, &mut cb).unwrap();
        let diff = (la - lb)
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-3, "{family:?}: logits differ by {diff}");
        // The decode path agrees with prefill: feed the prompt's last token again both ways.
        let reqs = prompts(&a);
        assert_eq!(
            run(&a, &reqs, &greedy(4, 12)),
            run(&b, &reqs, &greedy(4, 12)),
            "{family:?}"
        );
    }
}

#[test]
fn decode_steps_match_a_full_prefill_of_the_longer_sequence() {
    // Prefill (candle attention with a causal/sliding-window mask) and decode (per-sequence host
    // attention over the cache) must compute the same thing, including Gemma's window.
    let dir = tempfile::tempdir().unwrap();
    for family in common::Family::ALL {
        let t = Tiny::of(family);
        let m = load(
            dir.path(),
            &common::write_gguf(
                &dir.path().join(format!("{family:?}.gguf")),
                &t,
                GgmlDType::F32,
            ),
        );
        let ids = m
            .prompt_ids(None, &["the cat sat on the mat".into()])
            .unwrap();
        assert!(ids.len() > 3 * common::GEMMA_WINDOW);
        // Prefill half, then decode the rest token by token.
        let half = ids.len() / 2;
        let mut cache = m.transformer.new_cache();
        m.transformer.prefill(&ids[..half], &mut cache).unwrap();
        let mut stepped = None;
        for &id in &ids[half..] {
            stepped = Some(
                m.transformer
                    .decode(&[id], &mut [&mut cache])
                    .unwrap()
                    .squeeze(0)
                    .unwrap(),
            );
        }
        let mut fresh = m.transformer.new_cache();
        let full = m.transformer.prefill(&ids, &mut fresh).unwrap();
        let diff = (stepped.unwrap() - full)
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            diff < 1e-4,
            "{family:?}: decode and prefill disagree by {diff}"
        );
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_seed_dependent() {
    let dir = tempfile::tempdir().unwrap();
    let m = load(
        dir.path(),
        &common::write_gguf(
            &dir.path().join("m.gguf"),
            &Tiny::default(),
            GgmlDType::Q8_0,
        ),
    );
    let reqs = prompts(&m);
    let sampled = |seed: u64, batch: usize| {
        run(
            &m,
            &reqs,
            &GenerationSettings {
                temperature: 1.0,
                top_p: 0.9,
                seed,
                ..greedy(batch, 16)
            },
        )
    };
    assert_eq!(sampled(42, 1), sampled(42, 8));
    assert_ne!(sampled(42, 4), sampled(43, 4));
}

#[test]
fn generation_stops_at_end_tokens_and_reports_why() {
    let dir = tempfile::tempdir().unwrap();
    let m = load(
        dir.path(),
        &common::write_gguf(&dir.path().join("m.gguf"), &Tiny::default(), GgmlDType::F32),
    );
    let reqs = prompts(&m);
    // Make the first greedy token of prompt 0 a stop token: the answer must then be empty.
    let mut cache = m.transformer.new_cache();
    let logits = m
        .transformer
        .prefill(&reqs[0].prompt_ids, &mut cache)
        .unwrap();
    let first = logits.argmax(0).unwrap().to_scalar::<u32>().unwrap();
    let mut stopping = m;
    stopping.tokenizer.stop_ids = vec![first];
    let (done, _) = generate::generate(
        &stopping,
        &reqs[..1],
        &greedy(1, 10).with_eos(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(done[0].finish, FinishReason::Stop);
    assert!(done[0].token_ids.is_empty());
    stopping.tokenizer.stop_ids = vec![];
    let (done, _) = generate::generate(
        &stopping,
        &reqs[..1],
        &greedy(1, 10).with_eos(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(done[0].finish, FinishReason::Length);
    assert_eq!(done[0].token_ids.len(), 10);
}

trait WithEos {
    fn with_eos(self) -> Self;
}
impl WithEos for GenerationSettings {
    fn with_eos(self) -> Self {
        Self {
            ignore_eos: false,
            ..self
        }
    }
}

#[test]
fn streamed_text_adds_up_to_the_answer_and_cancel_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let m = load(
        dir.path(),
        &common::write_gguf(&dir.path().join("m.gguf"), &Tiny::default(), GgmlDType::F32),
    );
    let reqs = prompts(&m);
    let mut streamed = vec![String::new(); reqs.len()];
    let (done, _) = generate::generate(
        &m,
        &reqs,
        &greedy(3, 12),
        &AtomicBool::new(false),
        &mut |e| {
            if let Event::Token { index, delta } = e {
                streamed[index].push_str(delta);
            }
        },
    )
    .unwrap();
    for c in &done {
        assert_eq!(streamed[c.index], c.text);
    }
    // Cancel after the first finished answer: the call returns Cancelled, having reported it.
    let cancel = AtomicBool::new(false);
    let mut finished = 0;
    let err = generate::generate(&m, &reqs, &greedy(1, 6), &cancel, &mut |e| {
        if let Event::Done(_) = e {
            finished += 1;
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .unwrap_err();
    assert!(matches!(err, aligndiff::Error::Cancelled));
    assert_eq!(finished, 1);
}

#[test]
fn lora_adapter_is_merged_with_alpha_over_r_and_fingerprinted() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tiny::default();
    let base = common::hf_weights(&t);
    let base_dir = common::write_hf_folder(&dir.path().join("base"), &t, &base);
    // A rank-2 adapter on q_proj and v_proj of layer 0, alpha 8: scale 4.
    let (r, alpha) = (2usize, 8.0f64);
    let adapter_dir = dir.path().join("adapter");
    std::fs::create_dir_all(&adapter_dir).unwrap();
    std::fs::write(
        adapter_dir.join("adapter_config.json"),
        serde_json::json!({"r": r, "lora_alpha": alpha, "target_modules": ["q_proj", "v_proj"], "peft_type": "LORA"}).to_string(),
    )
    .unwrap();
    let mut merged = base.clone();
    let mut adapter = std::collections::HashMap::new();
    for (i, module) in ["q_proj", "v_proj"].iter().enumerate() {
        let name = format!("model.layers.0.self_attn.{module}.weight");
        let (out, inp) = base[&name].dims2().unwrap();
        let a = Tensor::arange(0f32, (r * inp) as f32, &candle_core::Device::Cpu)
            .unwrap()
            .reshape((r, inp))
            .unwrap()
            .affine(0.001, -0.01 * i as f64)
            .unwrap();
        let b = Tensor::arange(0f32, (out * r) as f32, &candle_core::Device::Cpu)
            .unwrap()
            .reshape((out, r))
            .unwrap()
            .affine(-0.002, 0.05)
            .unwrap();
        let delta = (b.matmul(&a).unwrap() * (alpha / r as f64)).unwrap();
        merged.insert(name.clone(), (&base[&name] + delta).unwrap());
        let peft = format!("base_model.model.model.layers.0.self_attn.{module}");
        adapter.insert(format!("{peft}.lora_A.weight"), a);
        adapter.insert(format!("{peft}.lora_B.weight"), b);
    }
    candle_core::safetensors::save(&adapter, adapter_dir.join("adapter_model.safetensors"))
        .unwrap();
    let merged_dir = common::write_hf_folder(&dir.path().join("merged"), &t, &merged);

    let with_lora = model::load(
        &ModelSpec {
            source: base_dir.to_str().unwrap().into(),
            lora: Some(adapter_dir.clone()),
        },
        &options(dir.path()),
    )
    .unwrap();
    let plain = load(dir.path(), &base_dir);
    let reference = load(dir.path(), &merged_dir);
    let ids = plain.prompt_ids(None, &["the thing".into()]).unwrap();
    let logits = |m: &LoadedModel| {
        let mut c = m.transformer.new_cache();
        m.transformer.prefill(&ids, &mut c).unwrap()
    };
    let max_diff = |a: Tensor, b: Tensor| {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert!(max_diff(logits(&with_lora), logits(&reference)) < 1e-4);
    assert!(
        max_diff(logits(&with_lora), logits(&plain)) > 1e-3,
        "the adapter must change the model"
    );
    assert!(with_lora
        .fingerprint
        .files
        .iter()
        .any(|f| f.role == "adapter"));
    assert!(with_lora
        .fingerprint
        .transforms
        .iter()
        .any(|t| t.contains("scale=4")));
    assert_ne!(with_lora.fingerprint.id, plain.fingerprint.id);
}

#[test]
fn fingerprint_lists_every_file_with_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tiny::default();
    let folder = common::write_hf_folder(&dir.path().join("hf"), &t, &common::hf_weights(&t));
    let m = load(dir.path(), &folder);
    let roles: Vec<&str> = m
        .fingerprint
        .files
        .iter()
        .map(|f| f.role.as_str())
        .collect();
    assert_eq!(roles, ["config", "tokenizer", "config", "weights"]);
    for f in &m.fingerprint.files {
        let bytes = std::fs::read(&f.path).unwrap();
        assert_eq!(f.bytes, bytes.len() as u64);
        assert_eq!(f.sha256, aligndiff::util::hash::hex_sha256(&bytes));
    }
    assert_eq!(
        m.fingerprint.template_sha256,
        aligndiff::util::hash::hex_sha256(common::CHATML.as_bytes())
    );
}

#[test]
fn hub_source_resolves_offline_from_the_local_cache_and_records_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tiny::default();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo_dir = dir.path().join("hf/hub/models--acme--tiny-chat");
    let snapshot = common::write_hf_folder(
        &repo_dir.join("snapshots").join(commit),
        &t,
        &common::hf_weights(&t),
    );
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/v1.0"), commit).unwrap();
    // SAFETY of the environment: this test binary sets HF_HOME for this test only; no other test
    // in this file reads it.
    std::env::set_var("HF_HOME", dir.path().join("hf"));
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let m = model::load(
        &ModelSpec::new("hf:acme/tiny-chat@v1.0"),
        &options(dir.path()),
    )
    .unwrap();
    assert_eq!(m.fingerprint.revision.as_deref(), Some(commit));
    assert!(m.fingerprint.files.iter().all(|f| f
        .path
        .starts_with(snapshot.canonicalize().unwrap().to_str().unwrap())));
    let err = model::load(&ModelSpec::new("hf:acme/other@main"), &options(dir.path())).unwrap_err();
    assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");
}

#[test]
fn probe_reads_the_first_non_blank_answer_token_the_same_at_any_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_gguf(
        &dir.path().join("tiny.gguf"),
        &Tiny::default(),
        GgmlDType::Q8_0,
    );
    let m = load(dir.path(), &path);
    // Byte tokens: the id of a byte is its value. Two classes of letters and one of digits.
    let probe = generate::Probe {
        classes: vec![
            (b'a'..=b'm').map(u32::from).collect(),
            (b'n'..=b'z').map(u32::from).collect(),
            (b'0'..=b'9').map(u32::from).collect(),
        ],
        max_skip: 3,
    };
    let requests: Vec<Request> = (0..120)
        .map(|i| Request {
            prompt_ids: m
                .prompt_ids(None, &[format!("question {i}: {}", "why ".repeat(i % 7))])
                .unwrap(),
            seed_key: i as u64,
        })
        .collect();
    let probed = |batch: usize| {
        generate::generate_probed(
            &m,
            &requests,
            &greedy(batch, 5),
            Some(&probe),
            None,
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap()
        .0
    };
    let one = probed(1);
    assert_eq!(
        one,
        probed(8),
        "readings differ between batch 1 and batch 8"
    );
    let blank = |id: u32| m.tokenizer.decode(&[id]).unwrap().trim().is_empty();
    let mut skipped = 0;
    for (c, r) in one.iter().zip(&requests) {
        let reading = c
            .probe
            .as_ref()
            .expect("every answer reaches a readable token");
        assert!(reading.position <= probe.max_skip);
        assert!(c.token_ids[..reading.position].iter().all(|&t| blank(t)));
        if reading.position < probe.max_skip {
            assert!(!blank(c.token_ids[reading.position]));
        }
        skipped += usize::from(reading.position > 0);
        // The same probabilities from a fresh prefill of the prompt plus the skipped tokens.
        let mut ids = r.prompt_ids.clone();
        ids.extend_from_slice(&c.token_ids[..reading.position]);
        let mut cache = m.transformer.new_cache();
        let logits = m.transformer.prefill(&ids, &mut cache).unwrap();
        let expected = generate::class_probs(&logits, &probe.classes).unwrap();
        for (got, want) in reading.class_probs.iter().zip(&expected) {
            assert!(
                (got - want).abs() <= 1e-4 * want.max(1e-6),
                "{got} vs {want}"
            );
        }
        assert!(reading.class_probs.iter().sum::<f64>() <= 1.0 + 1e-9);
    }
    assert!(
        skipped > 0,
        "no answer began with whitespace: the skipping path went untested"
    );
}

#[test]
fn extending_a_cached_prefix_matches_a_full_prefill() {
    let dir = tempfile::tempdir().unwrap();
    for family in common::Family::ALL {
        let path = common::write_gguf(
            &dir.path().join(format!("tiny-{family:?}.gguf")),
            &Tiny::of(family),
            GgmlDType::Q8_0,
        );
        let m = load(dir.path(), &path);
        let ids = m
            .prompt_ids(None, &["the theory of the thing, at length".to_string()])
            .unwrap();
        // Longer than Gemma's 5-token window on both sides of the split.
        let split = 9;
        assert!(ids.len() > split + common::GEMMA_WINDOW);
        let mut whole = m.transformer.new_cache();
        let full = m.transformer.prefill(&ids, &mut whole).unwrap();
        let mut cache = m.transformer.new_cache();
        m.transformer.prefill(&ids[..split], &mut cache).unwrap();
        let extended = m.transformer.extend(&ids[split..], &mut cache).unwrap();
        assert_eq!(cache.len(), ids.len());
        let (a, b) = (
            full.to_vec1::<f32>().unwrap(),
            extended.to_vec1::<f32>().unwrap(),
        );
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-3, "{family:?}: logits differ by {worst}");
        // The caches continue the same way.
        let next = |c: &mut model::SeqCache| m.transformer.decode(&[42], &mut [c]).unwrap();
        let (x, y) = (next(&mut whole), next(&mut cache));
        let gap = (x - y)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(gap < 1e-3, "{family:?}: next step differs by {gap}");
        // A prompt that shares the prefix gets the same answer through generate.
        let prefix = generate::PromptPrefix::new(&m, ids[..split].to_vec()).unwrap();
        let request = [Request {
            prompt_ids: ids.clone(),
            seed_key: 0,
        }];
        let plain = run(&m, &request, &greedy(1, 6));
        let (cached, stats) = generate::generate_probed(
            &m,
            &request,
            &greedy(1, 6),
            None,
            Some(&prefix),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            stats.prefill_tokens,
            ids.len() - split,
            "only the rest is computed"
        );
        assert_eq!(plain[0], cached[0].token_ids, "{family:?}");
    }
}
