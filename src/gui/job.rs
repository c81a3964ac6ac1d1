//! A live audit as the workbench sees it: the audit thread's events folded into what the run view
//! shows, drained each frame without waiting.

use std::time::Instant;

use super::card::Card;
use crate::audit::{AuditResult, JobEvent, JobHandle, Side};

/// Counts for one side of a running audit.
#[derive(Debug, Clone, Copy)]
pub struct SideProgress {
    /// Answers ready, generated or reused.
    pub done: usize,
    /// Answers this side needs.
    pub total: usize,
    /// Answers taken from the store.
    pub cached: usize,
    /// Generation speed.
    pub tokens_per_s: f64,
}

/// Requests to a side's server, for a served model.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerTraffic {
    /// Requests sent and not yet answered.
    pub in_flight: usize,
    /// Requests sent again after a failure.
    pub retries: usize,
    /// Answers received per minute.
    pub per_minute: f64,
}

/// The answer being streamed in.
#[derive(Debug, Clone)]
pub struct StreamedAnswer {
    /// Which model answers.
    pub side: Side,
    /// Item index in the plan (into [`Job::prompts`]).
    pub item: usize,
    /// The text so far.
    pub text: String,
}

/// The judge at work.
#[derive(Debug, Clone)]
pub struct Judging {
    /// The judge's id.
    pub judge: String,
    /// Answers judged so far.
    pub done: usize,
    /// Answers to judge.
    pub total: usize,
    /// Verdicts taken from the store.
    pub reused: usize,
    /// Judging speed.
    pub per_minute: f64,
}

/// A live audit.
pub struct Job {
    /// The audit thread: its events and its stop flag.
    pub handle: JobHandle,
    /// When it started, for the rate and the estimate.
    pub started: Instant,
    /// Prompt texts by item index, to show what is being answered.
    pub prompts: Vec<String>,
    /// What the audit is doing now.
    pub stage: String,
    /// Counts per side (reference, candidate), once generation started.
    pub progress: [Option<SideProgress>; 2],
    /// Requests in flight and retries per side, for served models.
    pub traffic: [Option<ServerTraffic>; 2],
    /// The served model each side found on its server (`openai:URL#model`).
    pub served: [Option<String>; 2],
    /// The answer being streamed.
    pub stream: Option<StreamedAnswer>,
    /// The judge at work.
    pub judging: Option<Judging>,
    /// Stop was pressed; the audit ends after its current step.
    pub stopping: bool,
}

/// What a frame's events changed beyond the job's own counters.
#[derive(Default)]
pub struct JobUpdate {
    /// Models the audit loaded or found on their servers, for their cards.
    pub loaded: Vec<(Side, Card)>,
    /// The audit ended: its result, or why it stopped.
    pub ended: Option<Result<Box<AuditResult>, String>>,
}

/// Index of a side in per-side arrays: reference first.
pub fn side_index(side: Side) -> usize {
    match side {
        Side::Reference => 0,
        Side::Candidate => 1,
    }
}

impl Job {
    /// A job that has just been spawned.
    pub fn new(handle: JobHandle, prompts: Vec<String>) -> Self {
        Self {
            handle,
            started: Instant::now(),
            prompts,
            stage: "starting".into(),
            progress: [None, None],
            traffic: [None, None],
            served: [None, None],
            stream: None,
            judging: None,
            stopping: false,
        }
    }

    /// Take every event waiting on the channel, without blocking.
    pub fn drain(&mut self) -> JobUpdate {
        let mut update = JobUpdate::default();
        while let Ok(event) = self.handle.events.try_recv() {
            match event {
                JobEvent::Stage(s) => self.stage = s,
                JobEvent::Loaded {
                    side,
                    info,
                    fingerprint,
                } => update.loaded.push((side, Card::new(&info, &fingerprint))),
                JobEvent::Connected {
                    side,
                    label,
                    fingerprint,
                } => {
                    self.served[side_index(side)] = Some(label);
                    if let Some(card) = Card::from_fingerprint(&fingerprint) {
                        update.loaded.push((side, card));
                    }
                }
                JobEvent::Traffic {
                    side,
                    in_flight,
                    retries,
                    per_minute,
                } => {
                    self.traffic[side_index(side)] = Some(ServerTraffic {
                        in_flight,
                        retries,
                        per_minute,
                    });
                }
                JobEvent::Progress {
                    side,
                    done,
                    total,
                    cached,
                    tokens_per_s,
                } => {
                    self.progress[side_index(side)] = Some(SideProgress {
                        done,
                        total,
                        cached,
                        tokens_per_s,
                    });
                }
                JobEvent::Token { side, item, delta } => match &mut self.stream {
                    Some(s) if s.side == side && s.item == item => s.text.push_str(&delta),
                    _ => {
                        self.stream = Some(StreamedAnswer {
                            side,
                            item,
                            text: delta,
                        });
                    }
                },
                JobEvent::Judging {
                    judge,
                    done,
                    total,
                    reused,
                    per_minute,
                } => {
                    self.judging = Some(Judging {
                        judge,
                        done,
                        total,
                        reused,
                        per_minute,
                    });
                }
                JobEvent::Finished(r) => update.ended = Some(Ok(r)),
                JobEvent::Failed(e) => update.ended = Some(Err(e)),
            }
        }
        update
    }
}
