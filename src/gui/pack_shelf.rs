//! The prompt packs the setup offers, each read once on its own thread and kept for the session.

use std::collections::HashMap;

use poll_promise::Promise;

use crate::packs::{self, Pack};

enum PackSlot {
    Loading(Promise<Result<Pack, String>>),
    Ready(Box<Pack>),
    Failed(String),
}

/// Packs by the name the setup uses (a shipped name or a path): loading, read, or failed.
#[derive(Default)]
pub struct PackShelf {
    packs: HashMap<String, PackSlot>,
}

impl PackShelf {
    /// Some pack is still being read.
    pub fn loading(&self) -> bool {
        self.packs
            .values()
            .any(|p| matches!(p, PackSlot::Loading(_)))
    }

    /// Start reading every named pack not read yet.
    pub fn ensure(&mut self, names: impl IntoIterator<Item = String>) {
        for name in names {
            if self.packs.contains_key(&name) {
                continue;
            }
            let n = name.clone();
            let promise = Promise::spawn_thread("aligndiff-pack", move || {
                packs::load(&n).map_err(|e| e.to_string())
            });
            self.packs.insert(name, PackSlot::Loading(promise));
        }
    }

    /// Move finished pack reads into place.
    pub fn poll(&mut self) {
        for slot in self.packs.values_mut() {
            let PackSlot::Loading(p) = slot else { continue };
            let Some(outcome) = p.ready() else { continue };
            *slot = match outcome {
                Ok(pack) => PackSlot::Ready(Box::new(pack.clone())),
                Err(e) => PackSlot::Failed(e.clone()),
            };
        }
    }

    /// A pack, once read.
    pub fn pack(&self, name: &str) -> Option<&Pack> {
        match self.packs.get(name) {
            Some(PackSlot::Ready(p)) => Some(p),
            _ => None,
        }
    }

    /// Why a pack could not be read.
    pub fn pack_error(&self, name: &str) -> Option<&str> {
        match self.packs.get(name) {
            Some(PackSlot::Failed(e)) => Some(e),
            _ => None,
        }
    }

    /// The pack could not be read.
    pub fn pack_failed(&self, name: &str) -> bool {
        self.pack_error(name).is_some()
    }

    /// Forget a pack (before reading it again, or when it is removed).
    pub fn forget(&mut self, name: &str) {
        self.packs.remove(name);
    }
}
