//! The weight diff on tiny in-code models: identical files, a re-quantised file and a differently
//! trained model must each read as such, and `audit --weight-diff` puts it in report.json.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aligndiff::model::weight_diff::{diff_gguf, Change};
use candle_core::quantized::GgmlDType;
use common::Tiny;

#[test]
fn identical_requantised_and_retrained_files_read_differently() {
    let dir = tempfile::tempdir().unwrap();
    let base = Tiny::default();
    let f32_file = common::write_gguf(&dir.path().join("f32.gguf"), &base, GgmlDType::F32);
    let q8 = common::write_gguf(&dir.path().join("q8.gguf"), &base, GgmlDType::Q8_0);
    let q8_again = common::write_gguf(&dir.path().join("q8b.gguf"), &base, GgmlDType::Q8_0);
    let other = common::write_gguf(
        &dir.path().join("other.gguf"),
        &Tiny {
            seed: 99,
            ..Tiny::default()
        },
        GgmlDType::Q8_0,
    );

    let same = diff_gguf(&q8, &q8_again).unwrap();
    assert_eq!(same.trained + same.quantization, 0);
    assert_eq!(same.identical, same.tensors.len());
    assert_eq!(same.overall_relative_norm, 0.0);
    assert_eq!(same.layers.len(), base.layers);

    // The same weights stored as F32 and as Q8_0: every changed tensor is within what
    // re-encoding costs, and the difference is small.
    let requantised = diff_gguf(&f32_file, &q8).unwrap();
    assert_eq!(requantised.trained, 0, "{:#?}", requantised.tensors);
    assert!(requantised.quantization > 0);
    assert!(requantised.overall_relative_norm < 0.02);
    for t in &requantised.tensors {
        if t.change == Change::Quantization {
            assert_eq!(t.reference_type, "F32");
            assert_eq!(t.candidate_type, "Q8_0");
            assert!(t.quantization_floor.is_some());
        }
    }

    // Another model of the same shape: every weight matrix changed beyond quantization.
    let retrained = diff_gguf(&q8, &other).unwrap();
    assert!(
        retrained.trained >= 7 * base.layers,
        "{:#?}",
        retrained.tensors
    );
    assert!(retrained.overall_relative_norm > 0.5);
    assert!(retrained.layers.iter().all(|l| l.trained_tensors > 0));
}

#[test]
fn files_of_different_shapes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::write_gguf(
        &dir.path().join("a.gguf"),
        &Tiny::default(),
        GgmlDType::Q8_0,
    );
    let b = common::write_gguf(
        &dir.path().join("b.gguf"),
        &Tiny {
            ffn: 128,
            ..Tiny::default()
        },
        GgmlDType::Q8_0,
    );
    let err = diff_gguf(&a, &b).unwrap_err().to_string();
    assert!(err.contains("not the same architecture"), "{err}");
}
