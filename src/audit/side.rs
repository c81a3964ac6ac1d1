//! Which model of the pair an answer, a verdict or an event belongs to.

use serde::Serialize;

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
