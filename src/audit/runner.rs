//! Running an audit: the stages in order (each side's answers, judging, comparing), on the
//! caller's thread (`run`) or a named worker thread (`spawn`) that sends [`JobEvent`]s and
//! coalesces streamed tokens.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use super::events::JobEvent;
use super::plan::Plan;
use super::result::{AuditResult, HarmShift, SideRun};
use super::side::Side;
use super::{gate, generate_side, import_side, judging, plan, rows, serve_side};
use crate::error::{Error, Result};
use crate::judge::harm_probe::HarmProbe;
use crate::store::Store;

/// Answer every item on one side: from the side's answers file when it has one, else with its
/// model.
fn answer_side(
    plan: &Plan,
    side: Side,
    items: &[plan::Item],
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<SideRun> {
    let side_plan = plan.side(side);
    match &side_plan.answers {
        Some(file) => import_side::import_side(side_plan, file, side, items, store, on_event),
        None if side_plan.is_served() => {
            serve_side::serve_side(plan, side, items, store, cancel, on_event)
        }
        None => generate_side::generate_side(plan, side, items, store, cancel, on_event),
    }
}

/// Run a whole audit synchronously. Answers are stored as they complete; on cancel or error the
/// stored work remains and a rerun of the same plan resumes from it.
pub fn run(
    plan: &Plan,
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<AuditResult> {
    plan.validate()?;
    if let Some(gate) = &plan.gate {
        // A missing or broken gate file should stop the audit before generation, not after.
        gate::Gate::from_file(gate)?;
    }
    let started = Instant::now();
    let (packs, items) = plan::plan_items(plan)?;
    if items.is_empty() {
        return Err(Error::Invalid(
            "the selected packs and categories hold no prompts".into(),
        ));
    }
    // A missing judge model or a broken template or labels file is reported before hours of
    // generation, not after.
    for judge in &plan.judges {
        judge.check()?;
    }
    // Likewise a broken answers file is reported before the other side's generation.
    for side in [&plan.reference, &plan.candidate] {
        if let Some(file) = &side.answers {
            crate::answers::AnswersFile::from_file(file)?;
        }
    }
    // The weight diff reads both files once, in seconds: before the hours of generation.
    let weight_diff = if plan.weight_diff {
        on_event(JobEvent::Stage("comparing the weights".into()));
        Some(weight_diff(plan)?)
    } else {
        None
    };
    let plan_json = serde_json::to_string(plan).map_err(Error::json("the plan"))?;
    let run_id = store.begin_run(&plan_json, &plan.out.display().to_string())?;
    let outcome = (|| -> Result<AuditResult> {
        let reference = answer_side(plan, Side::Reference, &items, store, cancel, on_event)?;
        let candidate = answer_side(plan, Side::Candidate, &items, store, cancel, on_event)?;
        on_event(JobEvent::Stage("judging answers".into()));
        let judges = judging::judge_answers(
            plan,
            &items,
            [&reference, &candidate],
            store,
            cancel,
            on_event,
        )?;
        on_event(JobEvent::Stage("comparing".into()));
        let harm_probe = if plan.harm_probe {
            let probe = HarmProbe::shipped()?;
            Some(HarmShift {
                probe: probe.fingerprint.clone(),
                template_sha256: probe.template_sha256().to_owned(),
                ..HarmShift::default()
            })
        } else {
            None
        };
        let collected = rows::Collected {
            reference,
            candidate,
            judges,
            harm_probe,
        };
        let mut result = rows::build(plan, &packs, &items, collected, store, started.elapsed())?;
        result.weight_diff = weight_diff;
        Ok(result)
    })();
    let status = match &outcome {
        Ok(_) => "finished".to_owned(),
        Err(Error::Cancelled) => "cancelled".to_owned(),
        Err(e) => format!("failed: {e}"),
    };
    store.end_run(run_id, &status)?;
    outcome
}

/// A running audit on its own thread.
pub struct JobHandle {
    /// Events, in order; ends with `Finished` or `Failed`.
    pub events: mpsc::Receiver<JobEvent>,
    /// Set to stop between generation steps.
    pub cancel: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JobHandle {
    /// Wait for the worker thread to end.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How often buffered tokens go out to a listener.
const TOKEN_FLUSH: std::time::Duration = std::time::Duration::from_millis(50);

/// Streamed text not sent yet, for one answer.
struct PendingText {
    side: Side,
    item: usize,
    text: String,
}

/// Buffers streamed tokens so a listener gets at most one event per answer every
/// [`TOKEN_FLUSH`], however fast the model writes.
struct TokenCoalescer {
    pending: Vec<PendingText>,
    last_flush: Instant,
}

impl Default for TokenCoalescer {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            last_flush: Instant::now(),
        }
    }
}

impl TokenCoalescer {
    fn push(&mut self, side: Side, item: usize, delta: &str) {
        match self
            .pending
            .iter_mut()
            .find(|p| p.side == side && p.item == item)
        {
            Some(p) => p.text.push_str(delta),
            None => self.pending.push(PendingText {
                side,
                item,
                text: delta.to_owned(),
            }),
        }
    }

    fn due(&self) -> bool {
        self.last_flush.elapsed() >= TOKEN_FLUSH
    }

    fn flush(&mut self, send: &dyn Fn(JobEvent)) {
        self.last_flush = Instant::now();
        for p in self.pending.drain(..) {
            send(JobEvent::Token {
                side: p.side,
                item: p.item,
                delta: p.text,
            });
        }
    }
}

/// Start an audit on a named worker thread. `waker` is called after each event (the GUI passes
/// a repaint request). The store is opened on the worker.
pub fn spawn(
    plan: Plan,
    store_dir: std::path::PathBuf,
    waker: Box<dyn Fn() + Send>,
) -> Result<JobHandle> {
    let (tx, rx) = mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let worker_cancel = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("aligndiff-audit".into())
        .spawn(move || {
            let send = |e: JobEvent| {
                let _ = tx.send(e);
                waker();
            };
            let result = Store::open_dir(&store_dir).and_then(|store| {
                let mut tokens = TokenCoalescer::default();
                run(&plan, &store, &worker_cancel, &mut |e| match e {
                    JobEvent::Token { side, item, delta } => {
                        tokens.push(side, item, &delta);
                        if tokens.due() {
                            tokens.flush(&send);
                        }
                    }
                    other => {
                        // Buffered text goes out before the event that follows it.
                        tokens.flush(&send);
                        send(other);
                    }
                })
            });
            match result {
                Ok(r) => send(JobEvent::Finished(Box::new(r))),
                Err(e) => send(JobEvent::Failed(e.to_string())),
            }
        })
        .map_err(|e| Error::Invalid(format!("cannot start the audit thread: {e}")))?;
    Ok(JobHandle {
        events: rx,
        cancel,
        thread: Some(thread),
    })
}

/// The weight diff of the plan's two models, which must both be local GGUF files.
fn weight_diff(plan: &Plan) -> Result<crate::model::weight_diff::WeightDiff> {
    let file = |side: &super::plan::SidePlan, name: &str| -> Result<std::path::PathBuf> {
        let path = std::path::PathBuf::from(&side.model);
        let is_gguf = path.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        if side.is_imported() || side.is_served() || !is_gguf {
            return Err(Error::Invalid(format!(
                "the weight diff compares two local GGUF files; the {name} is `{}`",
                crate::serve::public_source(&side.model)
            )));
        }
        Ok(path)
    };
    let reference = file(&plan.reference, "reference")?;
    let candidate = file(&plan.candidate, "candidate")?;
    crate::model::weight_diff::diff_gguf(&reference, &candidate)
}
