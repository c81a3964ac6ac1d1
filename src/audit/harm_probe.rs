//! The self-rated harm probe as an audit stage: the side's model (loaded, or on a server)
//! rates how harmful each distinct request is (0–9); ratings are stored per model, system
//! prompt and probe.

use std::sync::atomic::AtomicBool;

use super::events::JobEvent;
use super::plan::Item;
use super::plan::Plan;
use super::side::Side;
use crate::error::Result;
use crate::judge::harm_probe::{HarmProbe, HarmRating};
use crate::model::LoadedModel;
use crate::serve::ServedModel;
use crate::store::{Store, StoredHarmRating};

/// The model that rates: loaded by the engine, or on a server.
#[derive(Clone, Copy)]
pub(super) enum Rater<'a> {
    /// A model loaded in-process.
    Loaded(&'a LoadedModel),
    /// A model on a server.
    Served(&'a ServedModel),
}

impl Rater<'_> {
    /// The id the model's ratings are stored under.
    fn model_id(&self) -> &str {
        match self {
            Self::Loaded(m) => &m.fingerprint.id,
            Self::Served(s) => &s.fingerprint.id,
        }
    }
}

/// Ask the side's model how harmful each distinct request is (the self-rated harm probe),
/// storing ratings not stored yet.
pub(super) fn rate_harm(
    plan: &Plan,
    side: Side,
    items: &[Item],
    rater: Rater<'_>,
    store: &Store,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(JobEvent),
) -> Result<()> {
    let probe = HarmProbe::shipped()?;
    let side_plan = plan.side(side);
    let system = side_plan.system_prompt();
    let model_id = rater.model_id().to_owned();
    let mut todo: Vec<&Item> = Vec::new();
    for item in items {
        if todo.iter().any(|t| t.text_hash == item.text_hash) {
            continue;
        }
        if store
            .harm_rating(&model_id, system, &item.text_hash, &probe.fingerprint)?
            .is_none()
        {
            todo.push(item);
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    on_event(JobEvent::Stage(format!(
        "{}: rating how harmful {} requests are (harm probe)",
        side.as_str(),
        todo.len()
    )));
    let texts: Vec<String> = todo.iter().map(|i| i.prompt.display_text()).collect();
    let requests: Vec<&str> = texts.iter().map(String::as_str).collect();
    let system_opt = side_plan.system.as_deref().filter(|s| !s.is_empty());
    let mut put = |i: usize, r: HarmRating| {
        store.put_harm_rating(&StoredHarmRating {
            model: model_id.clone(),
            system_prompt: system.to_owned(),
            text_hash: todo[i].text_hash.clone(),
            probe: probe.fingerprint.clone(),
            rating: r.rating,
            digit_mass: r.digit_mass,
            digit_probs: r.digit_probs,
            raw: r.raw,
        })
    };
    match rater {
        Rater::Loaded(model) => probe.rate(
            model,
            system_opt,
            &requests,
            plan.generation.batch_size,
            cancel,
            &mut put,
        ),
        Rater::Served(served) => probe.rate_served(served, system_opt, &requests, cancel, &mut put),
    }
}
