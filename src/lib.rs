//! aligndiff: what did this fine-tune do to the model's safety?
//!
//! The engine (everything here but `gui`) loads a reference and a candidate checkpoint,
//! answers the same prompt packs with both, judges every answer, and compares them with paired
//! statistics. It knows no screen: the CLI, the GUI and the tests call the same functions.

#![warn(missing_docs)]

pub mod answers;
pub mod audit;
pub mod bench;
pub mod error;
pub mod generate;
#[cfg(feature = "gui")]
pub mod gui;
pub mod judge;
pub mod model;
pub mod packs;
pub mod report;
pub mod serve;
pub mod stats;
pub mod store;
pub mod util;

pub use error::{Error, Result};
