//! The desktop workbench (feature `gui`). It drives the same engine functions as the CLI:
//! `audit::spawn` for runs, `audit::recompare` after a person overrules a verdict,
//! `report::write_all` for exports. Nothing here computes a figure the headless path cannot.
//! Everything slow (loading a model, file dialogs, the audit, recomputing, exporting) runs on
//! named threads; the frame only polls.
//!
//! # The rule views follow
//!
//! A view is a function `fn …_ui(ui, rt: &Runtime, [buffer: &mut …]) -> Vec<Command>`. It reads
//! the runtime state (result, jobs, tasks, runs, messages) through `&Runtime`, and it may change
//! in place only its own buffer: what its widgets edit (the setup panel's form, which is the saved
//! `Persisted`; the export field; the table's filters, search and row cache; the override note).
//! A buffer means nothing until a command reads it (`Run` reads the form, `Overrule` the note).
//! Everything else — starting or stopping work, switching view, selecting a row or a category
//! that other views show, the store, the result, the messages — is a [`Command`] the view
//! returns, and [`App`] applies them in one place (`App::apply`) after the frame is drawn.
//! Views never see `App`, so they cannot change it.
//!
//! # Layout
//!
//! `app` (the frame, `apply`, polling) sits on top and is the only module that names the views:
//! `chrome` (top and status bars), `setup`, `progress`, `overview`, `table`, `side_by_side`,
//! `judges`, `runs` and `toasts`; `setup` draws a server side with `server_picker`. Views use
//! `command`, `runtime`, `state` (with `side_form`), `widgets` and `format`; the runtime holds
//! `job`, `tasks`, `pack_shelf` and `card`. No module reaches back up.

mod app;
mod card;
mod chrome;
mod command;
mod format;
mod frame_stats;
mod job;
mod judges;
mod overview;
mod pack_shelf;
mod progress;
mod runs;
mod runtime;
mod server_listing;
mod server_picker;
mod setup;
mod side_by_side;
mod side_form;
mod state;
mod table;
mod tasks;
mod toasts;
mod widgets;

use eframe::egui;

pub use app::App;
pub use command::Command;
pub use side_form::ModelPlace;
pub use state::{DialogTarget, PendingCategories, Persisted, Settings, SideForm, View};

/// Open the workbench window; returns when it closes.
///
/// It draws with OpenGL (glow) by default: on machines without a GPU, Mesa's GL rasterizer
/// draws a frame of this app about five times faster than its Vulkan one (21 ms against 110 ms
/// measured under Xvfb, `ALIGNDIFF_FRAME_STATS=1`). `ALIGNDIFF_RENDERER=wgpu` picks wgpu; when
/// OpenGL cannot start, wgpu is tried.
pub fn run(store_dir: &std::path::Path) -> Result<(), String> {
    let wgpu_first = std::env::var("ALIGNDIFF_RENDERER").as_deref() == Ok("wgpu");
    let order = if wgpu_first {
        [eframe::Renderer::Wgpu, eframe::Renderer::Glow]
    } else {
        [eframe::Renderer::Glow, eframe::Renderer::Wgpu]
    };
    let mut errors = Vec::new();
    for renderer in order {
        let options = eframe::NativeOptions {
            renderer,
            viewport: egui::ViewportBuilder::default()
                .with_title("aligndiff")
                .with_inner_size([1400.0, 900.0])
                .with_min_inner_size([900.0, 600.0]),
            ..Default::default()
        };
        let dir = store_dir.to_path_buf();
        match eframe::run_native(
            "aligndiff",
            options,
            Box::new(move |cc| Ok(Box::new(App::new(cc, dir)))),
        ) {
            Ok(()) => return Ok(()),
            Err(e) => errors.push(format!("{renderer:?}: {e}")),
        }
    }
    Err(format!("cannot open the window ({})", errors.join("; ")))
}
