//! The store on real SQLite files: reopening, migration, keys, overrides, bad files.

use super::*;

fn generation(key: &str) -> StoredGeneration {
    StoredGeneration {
        key: key.into(),
        model: "m".into(),
        system_prompt: String::new(),
        text_hash: "t".into(),
        settings: "greedy".into(),
        sample: 0,
        answer: "I can't help with that.".into(),
        finish: Finish::Stop,
        prompt_tokens: 10,
        answer_tokens: 7,
        provenance: "generated".into(),
    }
}

#[test]
fn answers_and_verdicts_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open_dir(dir.path()).unwrap();
        s.put_prompt("t", &["hi".into()]).unwrap();
        assert!(s.put_generation(&generation("k1")).unwrap());
        assert!(
            !s.put_generation(&generation("k1")).unwrap(),
            "a key is stored once"
        );
        s.put_verdict(&StoredVerdict {
            generation: "k1".into(),
            judge: "refusal".into(),
            judge_fingerprint: "jf".into(),
            label: "refused".into(),
            partial: false,
            score: None,
            reason: "phrase".into(),
            raw: None,
            judge_model: String::new(),
            template_sha256: String::new(),
            decoding: String::new(),
            uncertain: None,
        })
        .unwrap();
    }
    let s = Store::open_dir(dir.path()).unwrap();
    assert_eq!(
        s.generation("k1").unwrap().unwrap().answer,
        "I can't help with that."
    );
    assert_eq!(s.verdict("k1", "jf").unwrap().unwrap().label, "refused");
    assert_eq!(s.count_generations("m").unwrap(), 1);
}

#[test]
fn a_version_1_store_is_migrated_and_keeps_its_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aligndiff.sqlite");
    {
        // The version 1 schema, as released: verdicts without the judge's provenance.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '1');
             CREATE TABLE prompts (text_hash TEXT PRIMARY KEY, turns_json TEXT NOT NULL);
             CREATE TABLE generations (key TEXT PRIMARY KEY, model TEXT NOT NULL,
                system_prompt TEXT NOT NULL, text_hash TEXT NOT NULL REFERENCES prompts(text_hash),
                settings TEXT NOT NULL, sample INTEGER NOT NULL, answer TEXT NOT NULL,
                finish TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, answer_tokens INTEGER NOT NULL,
                provenance TEXT NOT NULL, created TEXT NOT NULL);
             CREATE TABLE verdicts (generation TEXT NOT NULL REFERENCES generations(key),
                judge TEXT NOT NULL, judge_fingerprint TEXT NOT NULL, label TEXT NOT NULL,
                partial INTEGER NOT NULL, score REAL, reason TEXT NOT NULL, raw TEXT,
                created TEXT NOT NULL, PRIMARY KEY (generation, judge_fingerprint));
             INSERT INTO prompts VALUES ('t', '[\"hi\"]');
             INSERT INTO generations VALUES ('k1', 'm', '', 't', 'greedy', 0, 'No.', 'stop', 3, 1,
                'generated', '2026-01-01T00:00:00Z');
             INSERT INTO verdicts VALUES ('k1', 'refusal', 'jf', 'refused', 0, NULL, 'phrase', NULL,
                '2026-01-01T00:00:00Z');",
        )
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let old = s.verdict("k1", "jf").unwrap().unwrap();
    assert_eq!(
        (old.label.as_str(), old.reason.as_str()),
        ("refused", "phrase")
    );
    assert_eq!(old.judge_model, "");
    assert_eq!(s.generation("k1").unwrap().unwrap().answer, "No.");
    s.put_verdict(&StoredVerdict {
        generation: "k1".into(),
        judge: "fulfillment@judge".into(),
        judge_fingerprint: "jf2".into(),
        label: "unparsed".into(),
        partial: false,
        score: None,
        reason: "no 0 or 1 in the output".into(),
        raw: Some("maybe".into()),
        judge_model: "model-fp".into(),
        template_sha256: "abc".into(),
        decoding: "greedy;max_new_tokens=8".into(),
        uncertain: None,
    })
    .unwrap();
    drop(s);
    // Reopening a migrated store is a no-op and keeps both verdicts.
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.verdict("k1", "jf2").unwrap().unwrap().template_sha256,
        "abc"
    );
    assert!(s.verdict("k1", "jf").unwrap().is_some());
    let version: String = s
        .conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
}

#[test]
fn harm_ratings_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_dir(dir.path()).unwrap();
    s.put_prompt("t", &["hi".into()]).unwrap();
    let h = StoredHarmRating {
        model: "m".into(),
        system_prompt: String::new(),
        text_hash: "t".into(),
        probe: "p".into(),
        rating: Some(6.5),
        digit_mass: 0.9,
        digit_probs: vec![0.1; 10],
        raw: "7".into(),
    };
    s.put_harm_rating(&h).unwrap();
    assert_eq!(s.harm_rating("m", "", "t", "p").unwrap(), Some(h));
    assert_eq!(s.harm_rating("m", "sys", "t", "p").unwrap(), None);
}

#[test]
fn generation_keys_depend_on_every_part() {
    let base = generation_key("m", "", "t", "greedy", 0);
    assert_ne!(base, generation_key("m2", "", "t", "greedy", 0));
    assert_ne!(base, generation_key("m", "sys", "t", "greedy", 0));
    assert_ne!(base, generation_key("m", "", "t2", "greedy", 0));
    assert_ne!(base, generation_key("m", "", "t", "greedy;n=2", 0));
    assert_ne!(base, generation_key("m", "", "t", "greedy", 1));
}

#[test]
fn overrides_are_validated_and_replaceable() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_dir(dir.path()).unwrap();
    s.put_prompt("t", &["hi".into()]).unwrap();
    s.put_generation(&generation("k")).unwrap();
    assert!(s.put_override("k", "maybe", "").is_err());
    s.put_override("k", "complied", "it did answer").unwrap();
    s.put_override("k", "refused", "on second look").unwrap();
    assert_eq!(s.override_for("k").unwrap().unwrap().0, "refused");
    s.clear_override("k").unwrap();
    assert!(s.override_for("k").unwrap().is_none());
}

#[test]
fn not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("aligndiff.sqlite");
    std::fs::write(
        &p,
        "this is not sqlite, it is text long enough to look like a header....",
    )
    .unwrap();
    let e = Store::open(&p).unwrap_err().to_string();
    assert!(e.contains("aligndiff.sqlite"), "{e}");
}

#[test]
fn an_unknown_finish_reason_in_the_store_is_an_error_not_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_dir(dir.path()).unwrap();
    s.put_prompt("t", &["hi".into()]).unwrap();
    s.put_generation(&generation("k")).unwrap();
    assert_eq!(s.generation("k").unwrap().unwrap().finish, Finish::Stop);
    s.conn
        .execute(
            "UPDATE generations SET finish = 'exploded' WHERE key = 'k'",
            [],
        )
        .unwrap();
    let e = s.generation("k").unwrap_err().to_string();
    assert!(e.contains("unknown finish reason `exploded`"), "{e}");
}

#[test]
fn utc_timestamps_are_iso_8601() {
    let t = now_utc();
    assert_eq!(t.len(), 20);
    assert!(t.starts_with("20") && t.ends_with('Z'));
}
