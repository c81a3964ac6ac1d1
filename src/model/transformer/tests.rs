//! The forward pass on tiny in-code weights: masks, caches, batch invariance.

use super::*;

#[test]
fn causal_mask_hides_future_and_out_of_window_positions() {
    let m = causal_mask(4, 0, Some(2), &Device::Cpu)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(m[0][0], 0.0);
    assert!(m[0][1].is_infinite());
    assert_eq!(m[3][2], 0.0);
    assert_eq!(m[3][3], 0.0);
    assert!(
        m[3][1].is_infinite(),
        "position 1 is outside a window of 2 seen from 3"
    );
}

#[test]
fn causal_mask_after_cached_positions_sees_them_within_the_window() {
    let m = causal_mask(2, 3, Some(2), &Device::Cpu)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    // Row 0 is position 3: it sees positions 2 and 3 only.
    assert_eq!(
        m[0].iter().map(|x| x.is_finite()).collect::<Vec<_>>(),
        [false, false, true, true, false]
    );
    assert_eq!(
        m[1].iter().map(|x| x.is_finite()).collect::<Vec<_>>(),
        [false, false, false, true, true]
    );
    let full = causal_mask(2, 3, None, &Device::Cpu)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(full[0].iter().filter(|x| x.is_finite()).count(), 4);
}

#[test]
fn dot_matches_naive_sum_on_odd_lengths() {
    let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
    let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    assert!((dot(&a, &b) - naive).abs() < 1e-4);
}
