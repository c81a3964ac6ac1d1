//! Tokenizers rebuilt from GGUF metadata must match an independent implementation token for
//! token. The fixtures (tests/fixtures/tokenizer/*.json) hold a few hundred varied strings and
//! the ids another implementation produced for them; see the `produced_by` and `command` fields
//! and `scripts/fixtures/tokenizer_fixture.py`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aligndiff::model::gguf::GgufFile;
use aligndiff::model::TextTokenizer;

fn check(fixture: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer")
        .join(fixture);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let model = common::demo_model(doc["model_file"].as_str().unwrap());
    let gguf = GgufFile::open(&model).unwrap();
    let tok = TextTokenizer::from_gguf(&gguf).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(
        cases.len() >= 200,
        "{fixture} has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(text, false).unwrap();
        if got != want {
            failures.push(format!("{text:?}\n   want {want:?}\n   got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{fixture}: {} of {} strings differ from {}:\n{}",
        failures.len(),
        cases.len(),
        doc["produced_by"],
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn smollm2_tokenizer_matches_the_reference_implementation() {
    check("smollm2-135m.json");
}

#[test]
fn qwen25_tokenizer_matches_the_reference_implementation() {
    check("qwen2.5-coder-0.5b.json");
}

#[test]
fn gemma3_tokenizer_matches_the_reference_implementation() {
    check("gemma3-270m.json");
}
