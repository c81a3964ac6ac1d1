//! The detector's phrase lists, kept as data in `prompt-packs/judges/refusal-phrases.txt`
//! (compiled in) and read once, on first use.
//!
//! Reading never fails: every line is a `[name]` header, a `#` comment, a blank line or an
//! entry. What a careless edit could do (an unknown or missing list, an entry before the
//! first header, a duplicate) is collected in [`Phrases::problems`], and a unit test keeps
//! the shipped file free of them.

use std::sync::LazyLock;

/// The phrase file as shipped.
pub(super) const SOURCE: &str = include_str!("../../../prompt-packs/judges/refusal-phrases.txt");

/// The list names, in the order the rules text (and so the fingerprint) lists them.
pub(super) const LIST_NAMES: [&str; LISTS] = [
    "modal_prefixes",
    "modal_fillers",
    "request_verbs",
    "modal_exclusions",
    "refusal_phrases_en",
    "refusal_phrases_intl",
    "caution_phrases",
    "redirect_phrases",
    "apology_phrases_en",
    "apology_phrases_intl",
    "pivot_phrases",
    "filler_markers",
    "clause_negators",
    "mention_words",
    "mention_markers",
    "english_stopwords",
    "judge_address",
    "evasion_phrases",
];

/// How many lists the file holds.
const LISTS: usize = 18;

/// Every phrase list of the detector (normalised text: lower case, straight apostrophes,
/// ASCII punctuation). What each list is for is written above it in the phrase file.
#[derive(Debug, Default)]
pub(super) struct Phrases {
    /// The lists, in the order of [`LIST_NAMES`].
    lists: [Vec<&'static str>; LISTS],
    /// What is wrong with the file, one line each; empty for the shipped file.
    pub(super) problems: Vec<String>,
}

/// The shipped phrase lists.
pub(super) fn phrases() -> &'static Phrases {
    static PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::parse(SOURCE));
    &PHRASES
}

impl Phrases {
    /// Read a phrase file (see the header of `refusal-phrases.txt` for its format).
    pub(super) fn parse(source: &'static str) -> Self {
        let mut out = Self::default();
        let mut current: Option<usize> = None;
        let mut seen = [false; LISTS];
        for (n, raw) in source.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = LIST_NAMES.iter().position(|&known| known == name);
                match current {
                    Some(i) if seen[i] => out
                        .problems
                        .push(format!("line {}: list [{name}] appears twice", n + 1)),
                    Some(i) => seen[i] = true,
                    None => out
                        .problems
                        .push(format!("line {}: unknown list [{name}]", n + 1)),
                }
                continue;
            }
            let entry = line
                .strip_prefix('"')
                .and_then(|l| l.strip_suffix('"'))
                .unwrap_or(line);
            let Some(list) = current.and_then(|i| out.lists.get_mut(i)) else {
                out.problems
                    .push(format!("line {}: entry {entry:?} outside a list", n + 1));
                continue;
            };
            if entry.is_empty() {
                out.problems.push(format!("line {}: empty entry", n + 1));
            } else if list.contains(&entry) {
                out.problems
                    .push(format!("line {}: duplicate entry {entry:?}", n + 1));
            } else {
                list.push(entry);
            }
        }
        for (name, list) in LIST_NAMES.iter().zip(&out.lists) {
            if list.is_empty() {
                out.problems
                    .push(format!("list [{name}] is missing or empty"));
            }
        }
        out
    }

    /// Each list with its name, in the order of [`LIST_NAMES`].
    pub(super) fn named(&self) -> impl Iterator<Item = (&'static str, &[&'static str])> {
        LIST_NAMES
            .iter()
            .copied()
            .zip(self.lists.iter().map(Vec::as_slice))
    }

    fn list(&self, i: usize) -> &[&'static str] {
        self.lists.get(i).map_or(&[], Vec::as_slice)
    }

    /// First-person inability or unwillingness ("i can't").
    pub(super) fn modal_prefixes(&self) -> &[&'static str] {
        self.list(0)
    }
    /// Words allowed between a modal prefix and its verb.
    pub(super) fn modal_fillers(&self) -> &[&'static str] {
        self.list(1)
    }
    /// What a model refuses to do ("help", "provide").
    pub(super) fn request_verbs(&self) -> &[&'static str] {
        self.list(2)
    }
    /// Continuations that turn a modal prefix into something else ("help but").
    pub(super) fn modal_exclusions(&self) -> &[&'static str] {
        self.list(3)
    }
    /// Fixed English refusal phrases.
    pub(super) fn refusal_phrases_en(&self) -> &[&'static str] {
        self.list(4)
    }
    /// Fixed refusal phrases in other languages.
    pub(super) fn refusal_phrases_intl(&self) -> &[&'static str] {
        self.list(5)
    }
    /// Warnings and policy statements.
    pub(super) fn caution_phrases(&self) -> &[&'static str] {
        self.list(6)
    }
    /// Deflections to someone else.
    pub(super) fn redirect_phrases(&self) -> &[&'static str] {
        self.list(7)
    }
    /// Apologies and "as an AI" preambles in English.
    pub(super) fn apology_phrases_en(&self) -> &[&'static str] {
        self.list(8)
    }
    /// Apologies in other languages.
    pub(super) fn apology_phrases_intl(&self) -> &[&'static str] {
        self.list(9)
    }
    /// Offers of something else instead of the request.
    pub(super) fn pivot_phrases(&self) -> &[&'static str] {
        self.list(10)
    }
    /// Markers of moralising, empathy or pleasantry clauses.
    pub(super) fn filler_markers(&self) -> &[&'static str] {
        self.list(11)
    }
    /// Word sequences that negate a phrase or make it hypothetical.
    pub(super) fn clause_negators(&self) -> &[&'static str] {
        self.list(12)
    }
    /// A word right before a phrase that makes it a mention.
    pub(super) fn mention_words(&self) -> &[&'static str] {
        self.list(13)
    }
    /// Markers of a quotation or translation earlier in the sentence.
    pub(super) fn mention_markers(&self) -> &[&'static str] {
        self.list(14)
    }
    /// English function words.
    pub(super) fn english_stopwords(&self) -> &[&'static str] {
        self.list(15)
    }
    /// Words an answer addresses to whoever grades it ("note to the evaluator").
    pub(super) fn judge_address(&self) -> &[&'static str] {
        self.list(16)
    }
    /// Openings of answers that sidestep the request without a refusal phrase ("as an ai, i
    /// don't have personal opinions").
    pub(super) fn evasion_phrases(&self) -> &[&'static str] {
        self.list(17)
    }
}
