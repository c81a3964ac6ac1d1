//! What the workbench holds while it runs and never saves: background work, the live audit, the
//! result and the messages. Views read it; only `App` changes it (see the rule in `gui/mod.rs`).

use std::path::PathBuf;

use super::card::Card;
use super::job::{side_index, Job};
use super::pack_shelf::PackShelf;
use super::server_listing::ServerListing;
use super::tasks::Tasks;
use super::toasts::Toast;
use crate::audit::{AuditResult, Side};
use crate::store::RunRecord;

/// Runtime state: everything that is not the saved setup or a view's own buffers.
pub struct Runtime {
    /// The store's folder.
    pub store_dir: PathBuf,
    /// Dialogs, model cards being loaded, recomputing, exporting, the runs list.
    pub tasks: Tasks,
    /// The prompt packs the setup offers.
    pub packs: PackShelf,
    /// Each side's model card (reference, candidate), or why it could not be made.
    pub cards: [Option<Result<Card, String>>; 2],
    /// What each side's server listed when last asked (reference, candidate).
    pub listings: [Option<ServerListing>; 2],
    /// The audit running now.
    pub job: Option<Job>,
    /// The last result shown.
    pub result: Option<AuditResult>,
    /// Bumped whenever `result` changes, so derived lists know to recompute.
    pub result_generation: u64,
    /// Runs recorded in the store, newest first.
    pub runs: Vec<RunRecord>,
    /// Why the store's runs could not be read.
    pub runs_error: Option<String>,
    /// Messages in the corner.
    pub toasts: Vec<Toast>,
    /// The last run's error, shown until the next run.
    pub failure: Option<String>,
    /// egui's CPU time for the last frame.
    pub frame_ms: Option<f32>,
}

impl Runtime {
    /// Nothing loaded yet, with the store in `store_dir`.
    pub fn new(store_dir: PathBuf) -> Self {
        Self {
            store_dir,
            tasks: Tasks::default(),
            packs: PackShelf::default(),
            cards: [None, None],
            listings: [None, None],
            job: None,
            result: None,
            result_generation: 0,
            runs: Vec::new(),
            runs_error: None,
            toasts: Vec::new(),
            failure: None,
            frame_ms: None,
        }
    }

    /// An audit is running.
    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// One side's model card.
    pub fn card(&self, side: Side) -> Option<&Result<Card, String>> {
        self.cards[side_index(side)].as_ref()
    }

    /// What one side's server listed when last asked.
    pub fn listing(&self, side: Side) -> Option<&ServerListing> {
        self.listings[side_index(side)].as_ref()
    }
}
