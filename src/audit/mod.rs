//! The audit: load each model in turn, answer every prompt (reusing stored answers), judge every
//! answer, pair the two models' verdicts prompt by prompt, and hold the result to the gate.
//!
//! The rooms, in the order an audit passes through them:
//!
//! | file | does |
//! |---|---|
//! | `plan.rs` | what to compare and how ([`Plan`]), expanded into prompts × samples ([`Item`]) |
//! | `runner.rs` | the stages in order, on a worker thread with [`JobEvent`]s and a cancel flag |
//! | `generate_side.rs` | a side answered by a model |
//! | `import_side.rs` | a side read from an answers file made elsewhere |
//! | `harm_probe.rs` | each model's own rating of how harmful the requests are |
//! | `judging.rs` | every judge on every stored answer |
//! | `rows.rs` | reads stored rows back; the one override rule |
//! | `compare.rs` | pure functions from rows to the figures |
//! | `gate.rs` | the release gate: thresholds → pass/fail |
//! | `result.rs` | the result types every face reads |

pub mod compare;
pub mod gate;
mod generate_side;
mod harm_probe;
mod import_side;
mod judging;
pub mod plan;
pub mod result;
pub mod rows;
pub mod runner;

use serde::Serialize;

pub use crate::judge::JudgeInfo;
pub use plan::{plan_items, Item, Plan, SidePlan};
pub use result::{
    Agreement, AuditResult, CategoryAgreement, CategoryStats, Disagreement, Drift, Flip, HarmShift,
    ImportedAnswers, JudgeVerdict, JudgedBy, Row, RowSide, SideRun,
};
pub use rows::effective_label;
pub use runner::{run, spawn, JobEvent, JobHandle};

use crate::error::Result;
use crate::store::Store;

/// Which model of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The aligned starting point.
    Reference,
    /// The model under audit.
    Candidate,
}

impl Side {
    /// `reference` or `candidate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Candidate => "candidate",
        }
    }
}

/// Recompute the comparison from the store for an audit whose answers are all stored (after a
/// person overrules a verdict, say), without loading any model.
pub fn recompare(result: &AuditResult, store: &Store) -> Result<AuditResult> {
    rows::rebuild(result, store)
}

/// Compute every figure of `result` from its rows and hold it to the plan's gate file.
fn conclude(result: &mut AuditResult) -> Result<()> {
    compare::summarise(result)?;
    result.gate = match &result.plan.gate {
        Some(path) => Some(gate::evaluate(&gate::Gate::from_file(path)?, result)),
        None => None,
    };
    Ok(())
}
