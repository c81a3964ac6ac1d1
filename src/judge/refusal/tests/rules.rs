//! Tests of the rules' identity (pinned fingerprint) and of the phrase file.

use std::collections::HashSet;

use super::super::*;

// --- identity ----------------------------------------------------------------------------

/// The judge's fingerprint with rules v3, as stored beside every verdict it gave. A change to
/// a phrase, a threshold, the id or the version changes it; then bump
/// [`RefusalDetector::VERSION`] and pin the new values here and in [`KNOWN_RULES`] (verdicts
/// stored under the old fingerprint are not reused).
const FINGERPRINT: &str = "edfb39caf9ade4a230f38d72fb3638c76265793bf24458c690a42e671b5dfe43";

/// SHA-256 of the rules text without its first (`refusal-lexical vN`) line, per version: the
/// rules each version stands for.
const KNOWN_RULES: &[(&str, &str)] = &[
    (
        "2",
        "c2d4fb5f6e6a097dcd90bf38dce2d66b5d8a209aebacba2227744f5144f01a95",
    ),
    (
        "3",
        "43fac3b82e7cd1e84b73cd35d9e93d5dd6835c2d9bb8802247094f6561bb8f16",
    ),
];

fn rules_body_sha256(rules: &str) -> String {
    let body = rules.split_once('\n').map_or("", |(_, body)| body);
    crate::util::hash::hex_sha256(body.as_bytes())
}

#[test]
fn fingerprint_is_pinned() {
    let judge = crate::judge::RefusalJudge::default();
    assert_eq!(
        crate::judge::Judge::fingerprint(&judge),
        FINGERPRINT,
        "the refusal judge's fingerprint changed: stored verdicts will not be reused"
    );
    assert!(RefusalDetector
        .rules_text()
        .starts_with("refusal-lexical v3\n"));
}

#[test]
fn changed_rules_need_a_new_version() {
    let body = rules_body_sha256(&RefusalDetector.rules_text());
    let pinned = KNOWN_RULES
        .iter()
        .find(|(version, _)| *version == RefusalDetector::VERSION)
        .map(|(_, sha)| *sha);
    assert_eq!(
        pinned,
        Some(body.as_str()),
        "the rules differ from those pinned for version {}: bump VERSION and pin them",
        RefusalDetector::VERSION
    );
    for (version, sha) in KNOWN_RULES {
        assert!(
            *version == RefusalDetector::VERSION || *sha != body,
            "these rules were already version {version}"
        );
    }
}

/// The file's entries, read without the module's parser: `(list, entry)` in file order.
fn entries_of(source: &str) -> Vec<(String, String)> {
    let mut list = String::new();
    let mut out = Vec::new();
    for line in source.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            list = line[1..line.len() - 1].to_owned();
        } else if line.len() >= 2 && line.starts_with('"') && line.ends_with('"') {
            out.push((list.clone(), line[1..line.len() - 1].to_owned()));
        } else {
            out.push((list.clone(), line.to_owned()));
        }
    }
    out
}

#[test]
fn rules_text_lists_every_phrase_of_the_file_and_every_threshold() {
    let rules = RefusalDetector.rules_text();
    let mut sections: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    let mut current = "";
    for line in rules.lines().skip(1) {
        if line.starts_with('[') && line.ends_with(']') {
            current = &line[1..line.len() - 1];
        }
        sections.entry(current).or_default().push(line);
    }
    let entries = entries_of(phrases::SOURCE);
    assert!(entries.len() > 400, "only {} phrases", entries.len());
    for (list, entry) in &entries {
        assert!(
            sections
                .get(list.as_str())
                .is_some_and(|s| s.contains(&entry.as_str())),
            "phrase {entry:?} of [{list}] is not in the rules text"
        );
    }
    let names: HashSet<&str> = entries.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(names.len(), phrases::LIST_NAMES.len());
    // Headers and entries of the file, the bare endings, the thresholds: nothing else.
    assert_eq!(
        rules.lines().count(),
        1 + names.len() + entries.len() + 6 + 1 + 9
    );
    for (name, value) in [
        ("substantial_content", SUBSTANTIAL_CONTENT),
        ("substantial_list_items", SUBSTANTIAL_LIST_ITEMS),
        ("list_min_content", LIST_MIN_CONTENT),
        ("substantial_code", SUBSTANTIAL_CODE),
        ("min_other_content", MIN_OTHER_CONTENT),
        ("opening_content", OPENING_CONTENT),
        ("mixed_content", MIXED_CONTENT),
        ("repetitive_min", REPETITIVE_MIN),
        ("quoted_only_letters", QUOTED_ONLY_LETTERS),
    ] {
        assert!(rules.contains(&format!("\n{name}={value}\n")), "{name}");
    }
}

#[test]
fn dropping_any_phrase_changes_the_rules_text() {
    let full = rules_text_of(phrases::phrases());
    let lines: Vec<&str> = phrases::SOURCE.lines().collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let mut without = lines.clone();
        without.remove(i);
        let source: &'static str = without.join("\n").leak();
        assert_ne!(
            rules_text_of(&phrases::Phrases::parse(source)),
            full,
            "line {} ({line}) is not part of the rules",
            i + 1
        );
        checked += 1;
    }
    assert!(checked > 400);
}

// --- the phrase file -----------------------------------------------------------------------

#[test]
fn phrase_file_parses_without_problems() {
    let phrases = phrases::phrases();
    assert!(phrases.problems.is_empty(), "{:#?}", phrases.problems);
    for (name, list) in phrases.named() {
        assert!(!list.is_empty(), "[{name}] is empty");
    }
    assert!(phrases.modal_fillers().contains(&"really "));
    assert!(phrases.modal_fillers().contains(&", in good conscience, "));
    assert!(phrases.refusal_phrases_intl().contains(&"我无法提供"));
}

#[test]
fn phrase_file_has_no_duplicate_entries() {
    let mut seen = HashSet::new();
    for (list, entry) in entries_of(phrases::SOURCE) {
        assert!(!entry.is_empty(), "empty entry in [{list}]");
        assert!(
            seen.insert((list.clone(), entry.clone())),
            "[{list}] has {entry:?} twice"
        );
    }
}

#[test]
fn phrase_file_problems_are_reported() {
    let parsed = phrases::Phrases::parse(
        "stray\n[modal_prefixes]\ni can't\ni can't\n\"\"\n[no_such_list]\nx\n[modal_prefixes]\n",
    );
    let problems = parsed.problems.join("\n");
    for needle in [
        "line 1: entry \"stray\" outside a list",
        "line 4: duplicate entry \"i can't\"",
        "line 5: empty entry",
        "line 6: unknown list [no_such_list]",
        "line 7: entry \"x\" outside a list",
        "line 8: list [modal_prefixes] appears twice",
        "list [request_verbs] is missing or empty",
    ] {
        assert!(problems.contains(needle), "{needle:?} not in {problems}");
    }
    assert_eq!(parsed.modal_prefixes(), ["i can't"]);
}
