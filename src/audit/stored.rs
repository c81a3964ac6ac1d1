//! Which of a side's answers the store already holds: the key of every item under the side's
//! model identity, the items still to answer, and the stored ones that hit the token limit.

use super::plan::Item;
use crate::error::Result;
use crate::store::{self, Finish, Store};

/// A side's items against the store.
pub(super) struct Stored {
    /// The generation key of every item.
    pub keys: Vec<String>,
    /// Indices of the items with no stored answer.
    pub todo: Vec<usize>,
    /// Stored answers that stopped at the token limit (counted as they are found, not by a
    /// second read).
    pub hit_token_limit: usize,
}

/// Record every item's prompt and look up its answer under `model` (a fingerprint id), the
/// system prompt and the answer-affecting settings.
pub(super) fn find(
    store: &Store,
    model: &str,
    system: &str,
    settings_key: &str,
    items: &[Item],
) -> Result<Stored> {
    let keys: Vec<String> = items
        .iter()
        .map(|i| store::generation_key(model, system, &i.text_hash, settings_key, i.sample))
        .collect();
    let mut todo = Vec::new();
    let mut hit_token_limit = 0;
    for (index, item) in items.iter().enumerate() {
        store.put_prompt(&item.text_hash, &item.prompt.turns)?;
        match store.generation(&keys[index])? {
            Some(g) => hit_token_limit += usize::from(g.finish == Finish::Length),
            None => todo.push(index),
        }
    }
    Ok(Stored {
        keys,
        todo,
        hit_token_limit,
    })
}
