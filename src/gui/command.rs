//! What a view asks the app to do. Views return these; `App::apply` carries them out after the
//! frame is drawn, the one place where the audit, the store and the app's state change.

use super::state::{DialogTarget, View};
use crate::audit::{Plan, Side};
use crate::judge::Label;

/// Something a panel asks the app to do; applied once per frame, after drawing.
#[must_use]
#[derive(Debug, Clone)]
pub enum Command {
    /// Open a file or folder dialog for a field.
    Browse(DialogTarget),
    /// Load a model (in the background) to show its card.
    Inspect(Side),
    /// Ask a side's server (in the background) for the models it serves.
    ListModels(Side),
    /// Start an audit with the current setup.
    Run,
    /// Start an audit with an earlier run's plan (answers already stored are reused).
    Resume(Box<Plan>),
    /// Copy an earlier run's plan into the setup.
    LoadPlan(Box<Plan>),
    /// Stop the running audit; stored answers stay stored.
    Stop,
    /// Switch view.
    Show(View),
    /// Filter the table to one category (or none).
    FilterCategory(Option<String>),
    /// Select a row of the table.
    Select(usize),
    /// Close the selected row: the table takes the whole height again.
    Deselect,
    /// Fold the setup panel away (or bring it back) to give results the width.
    ToggleSetup,
    /// Show a row side by side, clearing the filters that would hide it.
    OpenRow(usize),
    /// A person overrules (or, with `None`, restores) one side's verdict of a row.
    Overrule {
        /// Row index in the result.
        row: usize,
        /// Which answer.
        side: Side,
        /// The person's label; `None` removes the override.
        label: Option<Label>,
    },
    /// Forget an opened pack file (no longer offered or selected).
    ForgetPackFile(String),
    /// Write the reports into the export folder.
    Export,
    /// Copy text to the clipboard.
    Copy(String),
    /// Reread the list of runs.
    RefreshRuns,
    /// Hide one message (its index in the list shown this frame).
    DismissToast(usize),
}
