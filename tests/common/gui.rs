//! Driving the workbench with `egui_kittest`: harnesses, waiting for background work, saving a
//! rendered frame. Shared by `tests/gui.rs` and `examples/screenshots.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use aligndiff::gui::App;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

/// Tiny random models answer with arbitrary characters (U+FFFD among them), as real models
/// answer in scripts the bundled fonts lack: those draw as boxes. The app's own text is checked
/// for missing glyphs by the snapshot of the empty workbench.
pub fn harness(app: App) -> Harness<'static, App> {
    Harness::builder()
        .with_size([1400.0, 900.0])
        .with_theme(egui::Theme::Dark)
        .allow_missing_glyphs()
        .build_eframe(move |cc| {
            App::configure(&cc.egui_ctx);
            app
        })
}

/// A harness that renders with wgpu, for snapshots and screenshots.
pub fn wgpu_harness(app: App, glyph_check: bool) -> Harness<'static, App> {
    let mut builder = Harness::builder()
        .with_size([1400.0, 900.0])
        .with_theme(egui::Theme::Dark);
    if !glyph_check {
        builder = builder.allow_missing_glyphs();
    }
    builder.wgpu().build_eframe(move |cc| {
        App::configure(&cc.egui_ctx);
        app
    })
}

/// Step frames (the audit and other work run on their own threads) until `done` holds.
pub fn wait_until(
    h: &mut Harness<'_, App>,
    what: &str,
    done: impl Fn(&mut Harness<'_, App>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(h) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; messages: {:?}; failure: {:?}; running: {}",
            h.state().toasts(),
            h.state().failure(),
            h.state().running()
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.step();
}

/// A few frames for a new layout to settle (widget positions come from the previous frame).
pub fn settle(h: &mut Harness<'_, App>) {
    for _ in 0..4 {
        h.step();
    }
}

/// Focus the `nth` field labelled `label` and type `text` into it.
pub fn type_into(h: &mut Harness<'_, App>, label: &str, nth: usize, text: &str) {
    h.get_all_by_label(label).nth(nth).unwrap().focus();
    h.step();
    h.get_all_by_label(label).nth(nth).unwrap().type_text(text);
    h.step();
}

/// Click every message away.
pub fn dismiss_toasts(h: &mut Harness<'_, App>) {
    while let Some(t) = h.state().toasts().first().cloned() {
        h.get_by_label(&t).click();
        settle(h);
    }
}

/// Render the current frame into `dir/name` (PNG).
pub fn save(h: &mut Harness<'_, App>, dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    h.render().unwrap().save(dir.join(name)).unwrap();
}
