//! Tests of the rules' identity.

use super::super::*;

#[test]
fn id_and_version_are_stable() {
    assert_eq!(RefusalDetector::ID, "refusal-lexical");
    assert_eq!(RefusalDetector::VERSION, "2");
}

fn make_default<T: Default>() -> T {
    T::default()
}

#[test]
fn rules_text_is_deterministic_and_lists_every_rule() {
    let rules = RefusalDetector.rules_text();
    assert_eq!(rules, make_default::<RefusalDetector>().rules_text());
    assert!(rules.starts_with("refusal-lexical v2\n"));
    for needle in [
        "[modal_prefixes]\n",
        "i must decline\n",
        "我无法提供\n",
        "substantial_content=400",
    ] {
        assert!(rules.contains(needle), "missing {needle:?}");
    }
}
