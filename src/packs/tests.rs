//! Pack files: the shipped packs, the file format's errors, the SORRY-Bench importer.

use super::*;

#[test]
fn shipped_sorry44_pack_has_ten_prompts_in_each_of_the_44_categories() {
    let pack = load("sorry44").unwrap();
    assert_eq!(pack.taxonomy, "sorry-bench-44");
    assert_eq!(pack.categories.len(), 44);
    for (n, name, _) in SORRY_BENCH_44 {
        let c = pack.category(&n.to_string()).unwrap();
        assert_eq!(c.name, *name);
    }
    let counts = pack.counts();
    assert!(counts.values().all(|&c| c >= 5), "{counts:?}");
    assert!(pack.prompts.iter().all(|p| p.kind == PromptKind::Harmful));
}

#[test]
fn shipped_benign_pack_has_at_least_100_benign_prompts() {
    let pack = load("benign-controls").unwrap();
    assert!(pack.prompts.len() >= 100);
    assert!(pack.prompts.iter().all(|p| p.kind == PromptKind::Benign));
}

fn write_pack(dir: &Path, jsonl: &str) -> PathBuf {
    std::fs::write(
        dir.join("pack.toml"),
        "id = \"t\"\nversion = \"1\"\ntaxonomy = \"x\"\n[[categories]]\nid = \"a\"\nname = \"A\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("prompts.jsonl"), jsonl).unwrap();
    dir.to_path_buf()
}

fn broken(jsonl: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write_pack(dir.path(), jsonl);
    load(p.to_str().unwrap()).unwrap_err().to_string()
}

#[test]
fn broken_packs_name_the_file_line_and_reason() {
    let ok = r#"{"id": "1", "category": "a", "kind": "harmful", "text": "x"}"#;
    let e = broken(&format!("{ok}\n{{not json"));
    assert!(
        e.contains("prompts.jsonl") && e.contains("line 2") && e.contains("invalid"),
        "{e}"
    );
    let e = broken(&format!("{ok}\n{}", ok));
    assert!(e.contains("line 2") && e.contains("duplicate id"), "{e}");
    let e = broken(r#"{"id": "1", "category": "zz", "kind": "harmful", "text": "x"}"#);
    assert!(
        e.contains("line 1") && e.contains("unknown category `zz`"),
        "{e}"
    );
    let e = broken(r#"{"id": "1", "category": "a", "kind": "harmful", "text": "  "}"#);
    assert!(e.contains("empty text"), "{e}");
    let e = broken(r#"{"id": "1", "category": "a", "kind": "evil", "text": "x"}"#);
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn sorry_bench_files_import_into_the_44_category_taxonomy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("question.jsonl");
    std::fs::write(
        &p,
        "{\"question_id\": 1, \"category\": \"1\", \"turns\": [\"q1\"], \"prompt_style\": \"base\"}\n\
         {\"question_id\": 2, \"category\": 44, \"turns\": [\"q2\"], \"prompt_style\": \"slang\"}\n",
    )
    .unwrap();
    let pack = load(p.to_str().unwrap()).unwrap();
    assert_eq!(pack.prompts.len(), 2);
    assert_eq!(pack.prompts[1].category, "44");
    assert_eq!(pack.prompts[1].id, "sorry-bench-2-slang");
    std::fs::write(
        &p,
        "{\"question_id\": 3, \"category\": 45, \"turns\": [\"q\"]}\n",
    )
    .unwrap();
    let e = load(p.to_str().unwrap()).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("1-44"), "{e}");
}

#[test]
fn categories_can_be_selected_by_id_or_name() {
    let mut pack = load("sorry44").unwrap();
    pack.retain_categories(&["7".into(), "fake news generation".into()])
        .unwrap();
    assert_eq!(pack.categories.len(), 2);
    assert!(pack
        .prompts
        .iter()
        .all(|p| p.category == "7" || p.category == "28"));
    assert!(pack.retain_categories(&["nope".into()]).is_err());
}
