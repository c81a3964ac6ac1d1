//! The audit: load each model in turn, answer every prompt (reusing stored answers), judge every
//! answer, and pair the two models' verdicts prompt by prompt.

pub mod compare;
pub mod plan;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

pub use compare::{AuditResult, CategoryStats, Row, RowSide};
pub use plan::{Plan, SidePlan};

use crate::error::{Error, Result};
use crate::generate::{self, Event, FinishReason, GenerationSettings, Request};
use crate::judge::{Judge, Label, RefusalJudge};
use crate::model::{self, Fingerprint, LoadOptions, LoadedModel, ModelInfo};
use crate::packs::{self, Pack, Prompt};
use crate::store::{self, Store, StoredGeneration, StoredVerdict};

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

/// One prompt × sample to answer.
#[derive(Debug, Clone)]
pub struct Item {
    /// Pack id.
    pub pack: String,
    /// The prompt.
    pub prompt: Prompt,
    /// Category display name.
    pub category_name: String,
    /// Sample index.
    pub sample: u32,
    /// Hash of the prompt text.
    pub text_hash: String,
}

/// Load the plan's packs (restricted to its categories) and expand prompts × samples.
pub fn plan_items(plan: &Plan) -> Result<(Vec<Pack>, Vec<Item>)> {
    let mut loaded = Vec::new();
    let mut items = Vec::new();
    for name in &plan.packs {
        let mut pack = packs::load(name)?;
        if !plan.categories.is_empty() {
            let wanted: Vec<String> = plan
                .categories
                .iter()
                .filter(|c| {
                    pack.categories
                        .iter()
                        .any(|pc| pc.id == **c || pc.name.eq_ignore_ascii_case(c))
                })
                .cloned()
                .collect();
            // A category list narrows the packs that have those categories; others stay whole.
            if !wanted.is_empty() {
                pack.retain_categories(&wanted)?;
            }
        }
        if let Some(limit) = plan.per_category {
            let mut seen: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            pack.prompts.retain(|p| {
                let n = seen.entry(p.category.clone()).or_default();
                *n += 1;
                *n <= limit
            });
        }
        for prompt in &pack.prompts {
            let category_name = pack
                .category(&prompt.category)
                .map_or_else(|| prompt.category.clone(), |c| c.name.clone());
            for sample in 0..plan.samples {
                items.push(Item {
                    pack: pack.id.clone(),
                    prompt: prompt.clone(),
                    category_name: category_name.clone(),
                    sample,
                    text_hash: prompt.text_hash(),
                });
            }
        }
        loaded.push(pack);
    }
    if !plan.categories.is_empty() {
        for c in &plan.categories {
            let known = loaded.iter().any(|p| {
                p.categories
                    .iter()
                    .any(|pc| pc.id == *c || pc.name.eq_ignore_ascii_case(c))
            });
            if !known {
                return Err(Error::Invalid(format!(
                    "no pack in this audit has a category `{c}`"
                )));
            }
        }
    }
    Ok((loaded, items))
}

/// What one side contributed.
#[derive(Debug, Clone, Serialize)]
pub struct SideRun {
    /// The plan for this side.
    pub plan: SidePlan,
    /// Fingerprint of the loaded model.
    pub fingerprint: Fingerprint,
    /// Model summary.
    pub info: ModelInfo,
    /// Answers generated in this run.
    pub generated: usize,
    /// Answers reused from the store.
    pub reused: usize,
    /// Answers that stopped at the token limit.
    pub hit_token_limit: usize,
    /// Generation keys per item.
    #[serde(skip)]
    pub keys: Vec<String>,
}

fn prompt_ids(model: &LoadedModel, system: Option<&str>, prompt: &Prompt) -> Result<Vec<u32>> {
    match model.prompt_ids(system, &prompt.turns) {
        Ok(ids) => Ok(ids),
        // Templates that insist on alternating roles refuse consecutive user turns: send the
        // turns as one message instead.
        Err(_) if prompt.turns.len() > 1 => model.prompt_ids(system, &[prompt.turns.join("\n\n")]),
        Err(e) => Err(e),
    }
}

fn answer_side(
    plan: &Plan,
    side: Side,
    items: &[Item],
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<SideRun> {
    let side_plan = match side {
        Side::Reference => &plan.reference,
        Side::Candidate => &plan.candidate,
    };
    on_event(JobEvent::Stage(format!(
        "loading {} model {}",
        side.as_str(),
        side_plan.spec().label()
    )));
    let longest_prompt = items
        .iter()
        .map(|i| i.prompt.turns.iter().map(String::len).sum::<usize>())
        .max()
        .unwrap_or(0);
    let options = LoadOptions {
        device: model::select_device(&plan.device)?,
        requantize: plan.requantize,
        // Room for the longest prompt (a token is at least one byte) plus template and answer.
        max_positions: (longest_prompt + plan.generation.max_new_tokens + 512).min(32_768),
        hash_cache: None,
    };
    let loaded = model::load(&side_plan.spec(), &options)?;
    on_event(JobEvent::Loaded {
        side,
        info: Box::new(loaded.info.clone()),
        fingerprint: Box::new(loaded.fingerprint.clone()),
    });
    store.put_model(
        &loaded.fingerprint.id,
        &loaded.spec.label(),
        &serde_json::to_string(&loaded.fingerprint).unwrap_or_default(),
        &serde_json::to_string(&loaded.info).unwrap_or_default(),
    )?;
    let system = side_plan.system_prompt();
    let settings_key = plan.generation.answer_key();
    let keys: Vec<String> = items
        .iter()
        .map(|i| {
            store::generation_key(
                &loaded.fingerprint.id,
                system,
                &i.text_hash,
                &settings_key,
                i.sample,
            )
        })
        .collect();
    let mut todo = Vec::new();
    // Token-limit stops are counted as answers are found or made, not by a second read.
    let mut hit_token_limit = 0;
    for (index, item) in items.iter().enumerate() {
        store.put_prompt(&item.text_hash, &item.prompt.turns)?;
        match store.generation(&keys[index])? {
            Some(g) => hit_token_limit += usize::from(g.finish == "length"),
            None => todo.push(index),
        }
    }
    let total = items.len();
    let reused = total - todo.len();
    on_event(JobEvent::Stage(format!(
        "{}: {} answers to generate, {} reused from the store",
        side.as_str(),
        todo.len(),
        reused
    )));
    on_event(JobEvent::Progress {
        side,
        done: reused,
        total,
        cached: reused,
        tokens_per_s: 0.0,
    });
    let system_opt = side_plan.system.as_deref().filter(|s| !s.is_empty());
    let requests = todo
        .iter()
        .map(|&i| {
            Ok(Request {
                prompt_ids: prompt_ids(&loaded, system_opt, &items[i].prompt)?,
                seed_key: u64::from_str_radix(&items[i].text_hash[..15], 16).unwrap_or(0)
                    ^ u64::from(items[i].sample),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let mut generated = 0usize;
    let mut tokens = 0usize;
    let mut store_error: Option<Error> = None;
    let settings = GenerationSettings {
        ignore_eos: false,
        ..plan.generation.clone()
    };
    if !requests.is_empty() {
        on_event(JobEvent::Stage(format!("{}: generating", side.as_str())));
        let result =
            generate::generate(
                &loaded,
                &requests,
                &settings,
                cancel,
                &mut |event| match event {
                    Event::Token { index, delta } => on_event(JobEvent::Token {
                        side,
                        item: todo[index],
                        delta: delta.to_owned(),
                    }),
                    Event::Done(c) => {
                        if store_error.is_some() {
                            return;
                        }
                        let item_index = todo[c.index];
                        let item = &items[item_index];
                        let g = StoredGeneration {
                            key: keys[item_index].clone(),
                            model: loaded.fingerprint.id.clone(),
                            system_prompt: system.to_owned(),
                            text_hash: item.text_hash.clone(),
                            settings: settings_key.clone(),
                            sample: item.sample,
                            answer: c.text.clone(),
                            finish: c.finish.as_str().to_owned(),
                            prompt_tokens: c.prompt_tokens as u32,
                            answer_tokens: c.token_ids.len() as u32,
                            provenance: "generated".into(),
                        };
                        match store.put_generation(&g) {
                            Ok(_) => {
                                generated += 1;
                                hit_token_limit += usize::from(c.finish == FinishReason::Length);
                                tokens += c.token_ids.len();
                                let secs = started.elapsed().as_secs_f64();
                                on_event(JobEvent::Progress {
                                    side,
                                    done: reused + generated,
                                    total,
                                    cached: reused,
                                    tokens_per_s: if secs > 0.0 {
                                        tokens as f64 / secs
                                    } else {
                                        0.0
                                    },
                                });
                            }
                            Err(e) => {
                                store_error = Some(e);
                                cancel.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                },
            );
        if let Some(e) = store_error {
            return Err(e);
        }
        result?;
    }
    Ok(SideRun {
        plan: side_plan.clone(),
        fingerprint: loaded.fingerprint.clone(),
        info: loaded.info.clone(),
        generated,
        reused,
        hit_token_limit,
        keys,
    })
}

/// Judge every stored answer of one side with `judge`, storing verdicts not stored yet.
fn judge_side(judge: &mut dyn Judge, items: &[Item], keys: &[String], store: &Store) -> Result<()> {
    for (item, key) in items.iter().zip(keys) {
        if store.verdict(key, judge.fingerprint())?.is_some() {
            continue;
        }
        let Some(g) = store.generation(key)? else {
            continue;
        };
        let v = judge.judge(&item.prompt.display_text(), &g.answer)?;
        store.put_verdict(&StoredVerdict {
            generation: key.clone(),
            judge: judge.id().to_owned(),
            judge_fingerprint: judge.fingerprint().to_owned(),
            label: v.label.as_str().to_owned(),
            partial: v.partial,
            score: v.score,
            reason: v.reason,
            raw: v.raw,
            judge_model: String::new(),
            template_sha256: String::new(),
            decoding: String::new(),
        })?;
    }
    Ok(())
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
    let started = Instant::now();
    let (packs, items) = plan_items(plan)?;
    if items.is_empty() {
        return Err(Error::Invalid(
            "the selected packs and categories hold no prompts".into(),
        ));
    }
    let plan_json = serde_json::to_string(plan).unwrap_or_default();
    let run_id = store.begin_run(&plan_json, &plan.out.display().to_string())?;
    let outcome = (|| -> Result<AuditResult> {
        let reference = answer_side(plan, Side::Reference, &items, store, cancel, on_event)?;
        let candidate = answer_side(plan, Side::Candidate, &items, store, cancel, on_event)?;
        on_event(JobEvent::Stage("judging answers".into()));
        let mut judge = RefusalJudge::default();
        judge_side(&mut judge, &items, &reference.keys, store)?;
        judge_side(&mut judge, &items, &candidate.keys, store)?;
        on_event(JobEvent::Stage("comparing".into()));
        let judges = vec![compare::JudgeInfo {
            id: judge.id().to_owned(),
            kind: judge.kind().to_owned(),
            fingerprint: judge.fingerprint().to_owned(),
        }];
        compare::build(
            plan,
            &packs,
            &items,
            reference,
            candidate,
            judges,
            store,
            started.elapsed(),
        )
    })();
    let status = match &outcome {
        Ok(_) => "finished".to_owned(),
        Err(Error::Cancelled) => "cancelled".to_owned(),
        Err(e) => format!("failed: {e}"),
    };
    store.end_run(run_id, &status)?;
    outcome
}

/// Recompute the comparison from the store for an audit whose answers are all stored (after a
/// person overrules a verdict, say), without loading any model.
pub fn recompare(result: &AuditResult, store: &Store) -> Result<AuditResult> {
    compare::rebuild(result, store)
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
                // Coalesce streamed tokens: deltas are buffered and flushed at most every 50 ms.
                let mut pending: Vec<(Side, usize, String)> = Vec::new();
                let mut last_flush = Instant::now();
                run(&plan, &store, &worker_cancel, &mut |e| match e {
                    JobEvent::Token { side, item, delta } => {
                        match pending
                            .iter_mut()
                            .find(|(s, i, _)| *s == side && *i == item)
                        {
                            Some((_, _, text)) => text.push_str(&delta),
                            None => pending.push((side, item, delta)),
                        }
                        if last_flush.elapsed().as_millis() >= 50 {
                            last_flush = Instant::now();
                            for (side, item, delta) in pending.drain(..) {
                                send(JobEvent::Token { side, item, delta });
                            }
                        }
                    }
                    other => {
                        // Buffered text goes out before the event that follows it.
                        for (side, item, delta) in pending.drain(..) {
                            send(JobEvent::Token { side, item, delta });
                        }
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

/// The effective label of a generation: a person's override, else the judge's verdict.
pub fn effective_label(
    store: &Store,
    key: &str,
    judge_fingerprint: &str,
) -> Result<Option<(Label, bool, String, String)>> {
    if let Some((label, note)) = store.override_for(key)? {
        if let Some(l) = Label::parse(&label) {
            return Ok(Some((
                l,
                false,
                if note.is_empty() {
                    "overruled by a person".into()
                } else {
                    note
                },
                "human".into(),
            )));
        }
    }
    Ok(store
        .verdict(key, judge_fingerprint)?
        .and_then(|v| Label::parse(&v.label).map(|l| (l, v.partial, v.reason, v.judge))))
}
