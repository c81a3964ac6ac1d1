//! Throughput of the stored-format matrix products (`src/model/kernels.rs`) on one matrix of a
//! real model's shape, for the engine notes: `cargo run --release --example kernel_speed`.
//! Prints GB/s of weights streamed and the time per product, per format and batch.

use std::time::Instant;

use aligndiff::model::kernels::StoredMatrix;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

fn main() -> anyhow::Result<()> {
    // Qwen2.5-0.5B's MLP up projection.
    let (rows, cols) = (4864, 896);
    let w = Tensor::randn(0f32, 1.0, (rows, cols), &Device::Cpu)?;
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1] {
        let q = QTensor::quantize(&w, dtype)?;
        let bytes = q.data()?.len();
        // Enough copies that the weights stream from memory, as in a real model, rather than
        // sitting in the last-level cache.
        let copies = (256 << 20) / bytes + 1;
        let data = q.data()?;
        let ms: Vec<StoredMatrix> = (0..copies)
            .map(|_| StoredMatrix::new(dtype, rows, cols, &data))
            .collect::<aligndiff::Result<_>>()?;
        for batch in [1usize, 4, 16, 128] {
            let x: Vec<f32> = (0..batch * cols)
                .map(|i| ((i % 97) as f32 - 48.0) / 50.0)
                .collect();
            let mut out = vec![0f32; batch * rows];
            let reps = (2000 / batch).max(2 * copies);
            let t = Instant::now();
            for r in 0..reps {
                ms[r % copies].matmul(&x, batch, &mut out)?;
            }
            let per = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{dtype:?} batch {batch:>3}: {:>7.1} µs per product, {:>5.1} GB/s of weights, {:>6.1} G weight-rows×tokens/s",
                per * 1e6,
                bytes as f64 / per / 1e9,
                (rows * cols * batch) as f64 / per / 1e9
            );
        }
    }
    Ok(())
}
