//! The review queue: which rows a person should read first, so that the answers they check
//! move the figures the most.
//!
//! A row's weight adds up what is at stake in it:
//!
//! | what | weight | why |
//! |---|---:|---|
//! | an answer speaks to the evaluator | 16 | the party under audit may be gaming the judge |
//! | an answer mixes a refusal with content | 8 | judges are fooled most by exactly this |
//! | the verdict flipped, refused → complied | 6 | each flip is one unit of McNemar's *b* and of the change |
//! | the verdict flipped, complied → refused | 5 | one unit of *c* |
//! | two judges disagree on an answer | 3 | one of them is wrong |
//! | a judge is unsure of an answer (evasive, cut off) | 2 | the text alone does not settle it |
//!
//! Rows a person has already ruled on (both answers overridden, or the ones that had reasons)
//! go to the end; rows with no reason keep pack order after the rest.

use serde::Serialize;

use super::result::{Flip, Row, RowSide};
use super::side::Side;
use crate::judge::{Label, Uncertainty};

/// Why a row is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReviewReason {
    /// One answer speaks to whoever grades it.
    AddressesJudge {
        /// Whose answer.
        side: Side,
    },
    /// One answer carries both a refusal (or warning) and substantive content.
    RefusalAndContent {
        /// Whose answer.
        side: Side,
    },
    /// The verdict changed between the models.
    Flip {
        /// Which way.
        flip: Flip,
    },
    /// Two judges label one answer differently.
    JudgesDisagree {
        /// Whose answer.
        side: Side,
    },
    /// A judge says the text does not settle its verdict.
    Uncertain {
        /// Whose answer.
        side: Side,
        /// Why.
        why: Uncertainty,
    },
}

impl ReviewReason {
    /// How much reading this row can move the figures (see the module table).
    pub fn weight(self) -> u32 {
        match self {
            Self::AddressesJudge { .. } => 16,
            Self::RefusalAndContent { .. } => 8,
            Self::Flip {
                flip: Flip::ToFulfill,
            } => 6,
            Self::Flip {
                flip: Flip::ToRefuse,
            } => 5,
            Self::JudgesDisagree { .. } => 3,
            Self::Uncertain { .. } => 2,
        }
    }

    /// A few words for a table cell.
    pub fn short(self) -> String {
        let side = |s: Side| match s {
            Side::Reference => "ref",
            Side::Candidate => "cand",
        };
        match self {
            Self::AddressesJudge { side: s } => format!("speaks to the evaluator ({})", side(s)),
            Self::RefusalAndContent { side: s } => format!("refusal + content ({})", side(s)),
            Self::Flip {
                flip: Flip::ToFulfill,
            } => "flip: refused → complied".to_owned(),
            Self::Flip {
                flip: Flip::ToRefuse,
            } => "flip: complied → refused".to_owned(),
            Self::JudgesDisagree { side: s } => format!("judges disagree ({})", side(s)),
            Self::Uncertain { side: s, why } => format!("{} ({})", why.describe(), side(s)),
        }
    }
}

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewItem {
    /// Index into [`AuditResult::rows`].
    pub row: usize,
    /// Sum of the reasons' weights.
    pub weight: u32,
    /// Why, heaviest first.
    pub reasons: Vec<ReviewReason>,
    /// A person has ruled on every answer of the row that had a reason.
    pub reviewed: bool,
}

/// Every reason to read `row`.
pub fn reasons(row: &Row) -> Vec<ReviewReason> {
    let mut out = Vec::new();
    for (side, s) in [
        (Side::Reference, &row.reference),
        (Side::Candidate, &row.candidate),
    ] {
        for flag in &s.flags {
            out.push(match flag {
                Uncertainty::AddressesJudge => ReviewReason::AddressesJudge { side },
                Uncertainty::RefusalAndContent => ReviewReason::RefusalAndContent { side },
                why => ReviewReason::Uncertain { side, why: *why },
            });
        }
        if judges_disagree(s) {
            out.push(ReviewReason::JudgesDisagree { side });
        }
    }
    if let Some(flip) = row.flip() {
        out.push(ReviewReason::Flip { flip });
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.weight()));
    out
}

/// Whether the judges that gave a refused/complied label on this answer do not all agree.
fn judges_disagree(s: &RowSide) -> bool {
    let mut labels = s
        .verdicts
        .iter()
        .filter_map(|v| v.label)
        .filter(|l| *l != Label::Unparsed);
    let Some(first) = labels.next() else {
        return false;
    };
    labels.any(|l| l != first)
}

/// An audit's rows in the order a person should read them: heaviest first, rows already ruled on
/// last, rows with no reason after the rest in pack order. Every row appears once.
pub fn queue(rows: &[Row]) -> Vec<ReviewItem> {
    let mut items: Vec<ReviewItem> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let reasons = reasons(row);
            let reviewed = is_reviewed(row, &reasons);
            ReviewItem {
                row: i,
                weight: reasons.iter().map(|r| r.weight()).sum(),
                reasons,
                reviewed,
            }
        })
        .collect();
    items.sort_by_key(|item| {
        (
            item.reviewed,
            item.weight == 0,
            std::cmp::Reverse(item.weight),
            item.row,
        )
    });
    items
}

/// A person ruled on every answer the reasons name (both, for a flip), or on any answer of a
/// row with no reasons.
fn is_reviewed(row: &Row, reasons: &[ReviewReason]) -> bool {
    // A person ruled: an override, or a label from a `human:FILE` judge.
    let by_person = |s: &RowSide| {
        s.judged_by.is_person()
            || s.verdicts
                .iter()
                .any(|v| v.judge == crate::judge::HUMAN_ID && v.label.is_some())
    };
    let ruled = |side: Side| by_person(row.side(side));
    if reasons.is_empty() {
        return ruled(Side::Reference) || ruled(Side::Candidate);
    }
    reasons.iter().all(|r| match *r {
        ReviewReason::AddressesJudge { side }
        | ReviewReason::RefusalAndContent { side }
        | ReviewReason::JudgesDisagree { side }
        | ReviewReason::Uncertain { side, .. } => ruled(side),
        ReviewReason::Flip { .. } => ruled(Side::Reference) && ruled(Side::Candidate),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::result::{JudgeVerdict, JudgedBy};
    use crate::packs::PromptKind;

    fn side(label: Label, flags: &[Uncertainty], second: Option<Label>) -> RowSide {
        let mut verdicts = vec![JudgeVerdict {
            label: Some(label),
            ..JudgeVerdict::none("refusal")
        }];
        if let Some(l) = second {
            verdicts.push(JudgeVerdict {
                label: Some(l),
                ..JudgeVerdict::none("rubric")
            });
        }
        RowSide {
            label: Some(label),
            answer: "text".into(),
            judged_by: JudgedBy::Judge("refusal".into()),
            verdicts,
            flags: flags.to_vec(),
            ..RowSide::missing("k")
        }
    }

    fn row(id: &str, reference: RowSide, candidate: RowSide) -> Row {
        Row {
            pack: "pk".into(),
            prompt_id: id.into(),
            category: "x".into(),
            category_name: "X".into(),
            kind: PromptKind::Harmful,
            sample: 0,
            prompt: String::new(),
            reference,
            candidate,
        }
    }

    fn ids(rows: &[Row]) -> Vec<String> {
        queue(rows)
            .into_iter()
            .map(|item| rows[item.row].prompt_id.clone())
            .collect()
    }

    #[test]
    fn gaming_then_flips_then_disagreement_then_doubt_then_the_rest() {
        use Label::{Complied as C, Refused as R};
        let rows = vec![
            row("plain", side(R, &[], None), side(R, &[], None)),
            row(
                "doubt",
                side(R, &[], None),
                side(R, &[Uncertainty::Truncated], None),
            ),
            row("disagree", side(R, &[], None), side(R, &[], Some(C))),
            row("to-refuse", side(C, &[], None), side(R, &[], None)),
            row("to-fulfill", side(R, &[], None), side(C, &[], None)),
            row(
                "gaming",
                side(R, &[], None),
                side(R, &[Uncertainty::AddressesJudge], None),
            ),
        ];
        assert_eq!(
            ids(&rows),
            [
                "gaming",
                "to-fulfill",
                "to-refuse",
                "disagree",
                "doubt",
                "plain"
            ]
        );
    }

    #[test]
    fn rows_a_person_ruled_on_go_last() {
        use Label::{Complied as C, Refused as R};
        let ruled = |label| {
            let mut s = side(label, &[], None);
            s.judged_by = JudgedBy::Person;
            s
        };
        let rows = vec![
            row("plain", side(R, &[], None), side(R, &[], None)),
            row("ruled-flip", ruled(R), ruled(C)),
            row("half-ruled-flip", side(R, &[], None), ruled(C)),
            row("open-flip", side(R, &[], None), side(C, &[], None)),
        ];
        // A flip is settled only when a person has read both answers.
        assert_eq!(
            ids(&rows),
            ["half-ruled-flip", "open-flip", "plain", "ruled-flip"]
        );
    }
}
