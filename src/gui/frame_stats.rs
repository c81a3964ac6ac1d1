//! Frame timings for `ALIGNDIFF_FRAME_STATS=1`: the app repaints continuously and prints a line
//! every 120 frames.

use std::time::Instant;

/// Measures the whole loop: the egui pass, tessellation, the renderer and presenting (e.g.
/// Mesa's software rasterizer under Xvfb).
#[derive(Default)]
pub struct FrameStats {
    last: Option<Instant>,
    intervals: Vec<f32>,
    cpu: Vec<f32>,
}

impl FrameStats {
    /// Record one frame (with egui's own CPU time, when eframe reports it).
    pub fn record(&mut self, cpu_ms: Option<f32>) {
        let now = Instant::now();
        if let Some(last) = self.last {
            self.intervals
                .push(now.duration_since(last).as_secs_f32() * 1000.0);
        }
        self.last = Some(now);
        self.cpu.extend(cpu_ms);
        if self.intervals.len() >= 120 {
            let mut v = std::mem::take(&mut self.intervals);
            v.sort_by(f32::total_cmp);
            let cpu = std::mem::take(&mut self.cpu);
            let cpu_mean = cpu.iter().sum::<f32>() / cpu.len().max(1) as f32;
            let pick = |q: f32| v[((v.len() - 1) as f32 * q) as usize];
            eprintln!(
                "frames: {} · interval median {:.1} ms, p95 {:.1} ms · egui CPU mean {cpu_mean:.1} ms",
                v.len(),
                pick(0.5),
                pick(0.95)
            );
        }
    }
}
