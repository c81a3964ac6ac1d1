//! What a running audit reports: stages, loads, progress, judging, streamed text, the end.

use super::result::AuditResult;
use super::side::Side;
use crate::model::{Fingerprint, ModelInfo};

/// What the runner reports while it works.
#[derive(Debug, Clone)]
pub enum JobEvent {
    /// A new stage began.
    Stage(String),
    /// A model finished loading.
    Loaded {
        /// Which side.
        side: Side,
        /// Summary of the model.
        info: Box<ModelInfo>,
        /// Its fingerprint.
        fingerprint: Box<Fingerprint>,
    },
    /// A side's server answered its model list and the served model was found.
    Connected {
        /// Which side.
        side: Side,
        /// `openai:<base URL>#<model>`, without credentials.
        label: String,
        /// Its fingerprint (the served identity).
        fingerprint: Box<Fingerprint>,
    },
    /// Requests to a side's server: how many are out, how many were sent again.
    Traffic {
        /// Which side.
        side: Side,
        /// Requests sent and not yet answered.
        in_flight: usize,
        /// Requests sent again after a failure, so far.
        retries: usize,
        /// Answers received per minute in this run.
        per_minute: f64,
    },
    /// Answers done so far for a side.
    Progress {
        /// Which side.
        side: Side,
        /// Answers available (stored earlier or generated now).
        done: usize,
        /// Answers needed.
        total: usize,
        /// Of `done`, how many came from the store.
        cached: usize,
        /// Generated tokens per second in this run.
        tokens_per_s: f64,
    },
    /// Verdicts done so far by one judge (both models' answers together).
    Judging {
        /// The judge's id.
        judge: String,
        /// Answers with a verdict (stored earlier or given now).
        done: usize,
        /// Answers to judge.
        total: usize,
        /// Of `done`, how many came from the store.
        reused: usize,
        /// Answers judged per minute in this run.
        per_minute: f64,
    },
    /// Streamed text of an answer being generated.
    Token {
        /// Which side.
        side: Side,
        /// Index into the audit's items.
        item: usize,
        /// New text.
        delta: String,
    },
    /// The audit is complete.
    Finished(Box<AuditResult>),
    /// The audit stopped with an error (or was cancelled); stored answers stay stored.
    Failed(String),
}
