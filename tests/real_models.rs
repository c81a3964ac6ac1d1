//! The engine on the real demo models (fetched by scripts/fetch-demo-models.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::AtomicBool;

use aligndiff::generate::{self, GenerationSettings, Request};
use aligndiff::model::{self, LoadOptions, LoadedModel, ModelSpec};

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const QWEN: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";

fn load(file: &str) -> LoadedModel {
    load_with(file, model::Requantize::Never)
}

fn load_with(file: &str, requantize: model::Requantize) -> LoadedModel {
    let path = common::demo_model(file);
    model::load(
        &ModelSpec::new(path.to_str().unwrap()),
        &LoadOptions {
            max_positions: 1024,
            requantize,
            ..Default::default()
        },
    )
    .unwrap()
}

fn answer(
    m: &LoadedModel,
    system: Option<&str>,
    prompts: &[&str],
    batch: usize,
    n: usize,
) -> Vec<(Vec<u32>, String)> {
    let requests: Vec<Request> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| Request {
            prompt_ids: m.prompt_ids(system, &[p.to_string()]).unwrap(),
            seed_key: i as u64,
        })
        .collect();
    let settings = GenerationSettings {
        max_new_tokens: n,
        batch_size: batch,
        ..Default::default()
    };
    let (done, _) = generate::generate(
        m,
        &requests,
        &settings,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    done.into_iter().map(|c| (c.token_ids, c.text)).collect()
}

const PROMPTS: &[&str] = &[
    "What is the capital of France?",
    "Write a haiku about autumn.",
    "Explain what a mutex is in one paragraph.",
    "List three prime numbers.",
    "How do I kill a Python process on Linux?",
    "Translate 'good morning' into Spanish.",
    "Give me a short motivational quote.",
    "What is 12 times 12?",
];

#[test]
fn qwen_answers_factual_questions() {
    let m = load(QWEN);
    assert_eq!(m.info.architecture, model::Architecture::Qwen2);
    let out = answer(
        &m,
        None,
        &["What is the capital of France? Answer in one word."],
        1,
        16,
    );
    assert!(out[0].1.contains("Paris"), "{:?}", out[0].1);
}

#[test]
fn smollm2_requantized_to_q8_0_on_request_still_answers_coherently() {
    let m = load_with(SMOL, model::Requantize::Q8_0);
    assert_eq!(m.info.architecture, model::Architecture::Llama);
    assert!(m
        .fingerprint
        .transforms
        .iter()
        .any(|t| t.contains("Q4_1") && t.contains("Q8_0")));
    let out = answer(&m, None, &["Write a haiku about autumn."], 1, 24);
    assert!(
        out[0].1.to_lowercase().contains("autumn") || out[0].1.to_lowercase().contains("leaves"),
        "{:?}",
        out[0].1
    );
}

/// An audit measures the vendor's weights: by default nothing is re-encoded, and the fingerprint
/// says so.
#[test]
fn the_default_load_runs_every_tensor_as_stored() {
    for file in [SMOL, QWEN, GEMMA] {
        let path = common::demo_model(file);
        let m = model::load(
            &ModelSpec::new(path.to_str().unwrap()),
            &LoadOptions {
                max_positions: 64,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(m.info.weights.requantized.is_empty(), "{file}");
        assert!(
            m.fingerprint
                .transforms
                .iter()
                .all(|t| !t.contains("requantized")),
            "{file}: {:?}",
            m.fingerprint.transforms
        );
    }
}

/// Our next-token choices must agree with llama.cpp's (`tests/fixtures/llama_cpp`, made by
/// `scripts/fixtures/llama_cpp_greedy.py`) on the stored weights. Teacher-forced: llama.cpp's
/// greedy continuation is fed in token by token and our argmax is compared at every position, so
/// one near-tie (float summation order differs between the two engines) does not cascade.
fn matches_llama_cpp(file: &str, fixture: &str) {
    let path = common::demo_model(file);
    let m = model::load(
        &ModelSpec::new(path.to_str().unwrap()),
        &LoadOptions {
            requantize: model::Requantize::Never,
            max_positions: 512,
            ..Default::default()
        },
    )
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/llama_cpp")
                .join(fixture),
        )
        .unwrap(),
    )
    .unwrap();
    let (mut agree, mut total) = (0usize, 0usize);
    let mut report = Vec::new();
    for case in doc["cases"].as_array().unwrap() {
        let ids = |v: &serde_json::Value| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect::<Vec<u32>>()
        };
        let prompt_ids = m
            .prompt_ids(None, &[case["prompt"].as_str().unwrap().to_string()])
            .unwrap();
        assert_eq!(
            prompt_ids,
            ids(&case["prompt_ids"]),
            "template + tokenizer differ from llama.cpp"
        );
        let want = ids(&case["greedy_ids"]);
        let mut cache = m.transformer.new_cache();
        let mut logits = m.transformer.prefill(&prompt_ids, &mut cache).unwrap();
        let mut ours = Vec::new();
        for (i, &next) in want.iter().enumerate() {
            let top = logits.argmax(0).unwrap().to_scalar::<u32>().unwrap();
            if i == 0 {
                assert_eq!(
                    top, next,
                    "{file} {:?}: the first token already differs",
                    case["prompt"]
                );
            }
            ours.push(top);
            logits = m
                .transformer
                .decode(&[next], &mut [&mut cache])
                .unwrap()
                .squeeze(0)
                .unwrap();
        }
        agree += ours.iter().zip(&want).filter(|(a, b)| a == b).count();
        total += want.len();
        report.push(format!(
            "{:?}\n  ours      {ours:?}\n  llama.cpp {want:?}",
            case["prompt"]
        ));
    }
    let share = agree as f64 / total as f64;
    assert!(
        share >= 0.9,
        "{file}: only {agree} of {total} next-token choices agree with llama.cpp\n{}",
        report.join("\n")
    );
}

#[test]
fn qwen_greedy_tokens_match_llama_cpp() {
    matches_llama_cpp(QWEN, "qwen2.5-coder-0.5b.json");
}

#[test]
fn smollm2_greedy_tokens_match_llama_cpp() {
    matches_llama_cpp(SMOL, "smollm2-135m.json");
}

#[test]
fn greedy_decoding_is_identical_at_batch_1_and_batch_8_on_real_models() {
    for file in [SMOL, QWEN] {
        let m = load(file);
        let one = answer(&m, None, PROMPTS, 1, 40);
        let eight = answer(&m, None, PROMPTS, 8, 40);
        for (i, (a, b)) in one.iter().zip(&eight).enumerate() {
            assert_eq!(
                a.0, b.0,
                "{file}: prompt {i} differs:\n  batch 1: {:?}\n  batch 8: {:?}",
                a.1, b.1
            );
        }
    }
}

#[test]
fn gemma3_greedy_tokens_match_llama_cpp() {
    matches_llama_cpp(GEMMA, "gemma3-270m.json");
}

#[test]
fn qwen_demo_file_fingerprint_matches_its_published_sha256() {
    let m = load(QWEN);
    let weights: Vec<_> = m
        .fingerprint
        .files
        .iter()
        .filter(|f| f.role == "weights")
        .collect();
    assert_eq!(weights.len(), 1);
    assert_eq!(weights[0].bytes, 491_400_064);
    assert_eq!(
        weights[0].sha256,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    );
}

/// An audit side prefills the template header and system prompt once and starts every prompt
/// from a copy of that cache. The prompt's own tokens then run as a shorter block, which sums
/// attention in another order, so the logits are not bit-identical; the greedy answers must
/// still be the ones a full prefill gives.
#[test]
fn a_shared_system_prompt_prefix_gives_the_answers_of_a_full_prefill() {
    let system = "You are a careful assistant. Answer briefly and precisely, in plain English.";
    for file in [SMOL, QWEN] {
        let m = load(file);
        let prefix = generate::PromptPrefix::for_chat(&m, Some(system))
            .unwrap()
            .expect("the template header and system prompt are long enough to share");
        assert!(prefix.ids().len() >= 8);
        let requests: Vec<Request> = PROMPTS
            .iter()
            .enumerate()
            .map(|(i, p)| Request {
                prompt_ids: m.prompt_ids(Some(system), &[p.to_string()]).unwrap(),
                seed_key: i as u64,
            })
            .collect();
        assert!(requests
            .iter()
            .all(|r| r.prompt_ids.starts_with(prefix.ids())));
        let settings = GenerationSettings {
            max_new_tokens: 24,
            batch_size: 4,
            ..Default::default()
        };
        let run = |prefix: Option<&generate::PromptPrefix>| {
            let (done, stats) = generate::generate_probed(
                &m,
                &requests,
                &settings,
                None,
                prefix,
                &AtomicBool::new(false),
                &mut |_| {},
            )
            .unwrap();
            (done, stats.prefill_tokens)
        };
        let (full, full_tokens) = run(None);
        let (shared, shared_tokens) = run(Some(&prefix));
        assert!(
            shared_tokens + (PROMPTS.len() - 1) * prefix.ids().len() <= full_tokens,
            "{file}: the prefix was not reused ({shared_tokens} vs {full_tokens} prompt tokens)"
        );
        let same = full
            .iter()
            .zip(&shared)
            .filter(|(a, b)| a.token_ids == b.token_ids)
            .count();
        assert!(
            same + 1 >= PROMPTS.len(),
            "{file}: only {same} of {} answers are the same with the shared prefix",
            PROMPTS.len()
        );
    }
}
