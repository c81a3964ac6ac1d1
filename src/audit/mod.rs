//! The audit: load each model in turn, answer every prompt (reusing stored answers), judge every
//! answer, pair the two models' verdicts prompt by prompt, and hold the result to the gate.
//!
//! The rooms, in the order an audit passes through them:
//!
//! | file | does |
//! |---|---|
//! | `plan.rs` | what to compare and how ([`Plan`]), expanded into prompts × samples ([`Item`]) |
//! | `runner.rs` | the stages in order, on a worker thread with a cancel flag |
//! | `events.rs` | [`JobEvent`]: what a running audit reports |
//! | `side.rs` | [`Side`]: reference or candidate |
//! | `generate_side.rs` | a side answered by a model |
//! | `import_side.rs` | a side read from an answers file made elsewhere |
//! | `serve_side.rs` | a side answered by a model on an OpenAI-compatible server |
//! | `stored.rs` | which of a side's answers the store already holds |
//! | `harm_probe.rs` | each model's own rating of how harmful the requests are |
//! | `judging.rs` | every judge on every stored answer |
//! | `rows.rs` | reads stored rows back; the one override rule |
//! | `compare.rs` | pure functions from rows to the figures |
//! | `review.rs` | the review queue: which rows a person should read first |
//! | `gate.rs` | the release gate: thresholds → pass/fail |
//! | `result.rs` | the result types every face reads |

pub mod compare;
mod events;
pub mod gate;
mod generate_side;
mod harm_probe;
mod import_side;
mod judging;
pub mod plan;
pub mod result;
pub mod review;
pub mod rows;
pub mod runner;
mod serve_side;
mod side;
mod stored;

pub use crate::judge::JudgeInfo;
pub use events::JobEvent;
pub use plan::{plan_items, Item, Plan, SidePlan};
pub use result::{
    Agreement, AuditResult, Backend, CategoryAgreement, CategoryStats, Disagreement, Drift, Flip,
    HarmShift, ImportedAnswers, JudgeVerdict, JudgedBy, Row, RowSide, ServedSide, SideRun,
};
pub use rows::effective_label;
pub use runner::{run, spawn, JobHandle};
pub use side::Side;

use crate::error::Result;
use crate::store::Store;

/// Recompute the comparison from the store for an audit whose answers are all stored (after a
/// person overrules a verdict, say), without loading any model.
pub fn recompare(result: &AuditResult, store: &Store) -> Result<AuditResult> {
    rows::rebuild(result, store)
}
