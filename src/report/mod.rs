//! Exports of an audit: `report.json`, `report.md`, a self-contained `report.html` with inline
//! SVG charts, and `generations.csv` with every prompt and both answers. Files are written
//! atomically (temporary file, fsync, rename). Every figure is worded by [`format`], the one
//! presentation layer the CLI and the GUI use too; the gate's verdict comes from
//! [`crate::audit::gate`] and is only rendered here.

mod csv;
pub mod format;
mod html;
mod json;
mod junit;
mod markdown;

use std::path::{Path, PathBuf};

pub use self::csv::to_csv;
pub use format::{headline, kappa, p_value, pct, points, truncate};
pub use json::to_json;
pub use junit::to_junit;
pub use markdown::to_markdown;

use crate::audit::AuditResult;
use crate::error::{Error, Result};
use crate::util::write_atomic;

/// Write every export into `dir`; returns the paths written.
pub fn write_all(r: &AuditResult, dir: &Path) -> Result<Vec<PathBuf>> {
    let json_text =
        serde_json::to_string_pretty(&to_json(r)).map_err(Error::json("report.json"))?;
    let files = [
        ("report.json", json_text),
        ("report.md", to_markdown(r)),
        ("report.html", html::render(r)),
        ("generations.csv", to_csv(r)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
