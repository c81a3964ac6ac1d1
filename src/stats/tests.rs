//! Checks of every formula against published values and exact arithmetic.

use super::*;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) || (a - b).abs() <= 1e-15
}

#[test]
fn wilson_contains_estimate_and_stays_in_unit_interval() {
    for n in 0..=60_u64 {
        for k in 0..=n {
            let w = wilson(k, n);
            assert!(
                0.0 <= w.low && w.low <= w.high && w.high <= 1.0,
                "{k}/{n}: {w:?}"
            );
            if n > 0 {
                let p = k as f64 / n as f64;
                assert!(w.contains(p), "{k}/{n}: {w:?}");
                // Symmetry: k of n mirrors n - k of n.
                let m = wilson(n - k, n);
                assert!(
                    close(w.low, 1.0 - m.high, 1e-12) || (w.low - (1.0 - m.high)).abs() < 1e-15
                );
            }
        }
    }
    assert_eq!(
        wilson(0, 0),
        Interval {
            low: 0.0,
            high: 1.0
        }
    );
    assert_eq!(wilson(7, 3), wilson(3, 3));
    for &n in &[1_000_u64, 123_457, u64::MAX] {
        for &k in &[0, 1, n / 3, n - 1, n] {
            let w = wilson(k, n);
            assert!(0.0 <= w.low && w.low <= w.high && w.high <= 1.0);
        }
    }
}

#[test]
fn wilson_known_value() {
    // statsmodels proportion_confint(15, 148, method="wilson").
    let w = wilson(15, 148);
    assert!(
        (w.low - 0.062_4).abs() < 5e-5 && (w.high - 0.160_5).abs() < 5e-5,
        "{w:?}"
    );
}

#[test]
fn mcnemar_symmetric_bounded_and_edge_cases() {
    for b in 0..40_u64 {
        for c in 0..40_u64 {
            let p = mcnemar_exact(b, c);
            assert_eq!(p, mcnemar_exact(c, b));
            assert!((0.0..=1.0).contains(&p));
            if b == c {
                assert_eq!(p, 1.0);
            }
        }
    }
    assert_eq!(mcnemar_exact(0, 0), 1.0);
    assert_eq!(mcnemar_exact_log10(0, 0), 0.0);
    // P = 2 * 0.5^n for c = 0.
    assert!(close(mcnemar_exact(0, 30), 2.0 * 0.5_f64.powi(30), 1e-13));
    assert!(close(mcnemar_exact(1, 0), 1.0, 1e-15));
    // No underflow for representable tiny values; log10 for unrepresentable ones.
    let p = mcnemar_exact(247, 4);
    assert!(p > 0.0 && p < 1e-60);
    let l = mcnemar_exact_log10(5000, 0);
    assert!(
        close(l, (2.0_f64).log10() - 5000.0 * 2.0_f64.log10(), 1e-13),
        "{l}"
    );
    assert!(mcnemar_exact(1000, 0) > 0.0);
    // Huge inputs do not panic or overflow.
    let l = mcnemar_exact_log10(u64::MAX, 0);
    assert!(l.is_finite() && l < 0.0);
    let p = mcnemar_exact(u64::MAX, u64::MAX - 1);
    assert!((0.0..=1.0).contains(&p));
}

#[test]
fn mcnemar_matches_direct_sum_for_small_n() {
    for n in 1..=60_u32 {
        for k in 0..=n / 2 {
            let mut tail = 0.0_f64;
            let mut coef = 1.0_f64; // C(n, i)
            for i in 0..=k {
                if i > 0 {
                    coef = coef * f64::from(n - i + 1) / f64::from(i);
                }
                tail += coef;
            }
            let want = (2.0 * tail * 0.5_f64.powi(n as i32)).min(1.0);
            let got = mcnemar_exact(u64::from(k), u64::from(n - k));
            assert!(close(got, want, 1e-12), "k={k} n={n}: {got} vs {want}");
        }
    }
}

#[test]
fn paired_counts_from_pairs_and_rates() {
    let pairs = [
        (true, true),
        (false, true),
        (false, true),
        (true, false),
        (false, false),
    ];
    let c = PairedCounts::from_pairs(pairs);
    assert_eq!(
        c,
        PairedCounts {
            both_fulfilled: 1,
            ref_refused_cand_fulfilled: 2,
            ref_fulfilled_cand_refused: 1,
            both_refused: 1
        }
    );
    assert_eq!(c.n(), 5);
    assert!(close(c.reference_rate(), 0.4, 1e-15));
    assert!(close(c.candidate_rate(), 0.6, 1e-15));
    assert!(close(c.delta(), 0.2, 1e-15));
    let empty = PairedCounts::default();
    assert_eq!(
        (
            empty.n(),
            empty.reference_rate(),
            empty.candidate_rate(),
            empty.delta()
        ),
        (0, 0.0, 0.0, 0.0)
    );
}

#[test]
fn newcombe_reproduces_published_examples() {
    // (e, f, g, h, low, high, decimals) with e..h in Newcombe's notation.
    let cases: [(u64, u64, u64, u64, f64, f64, i32); 4] = [
        (20, 12, 2, 16, 0.0562, 0.3292, 4),   // Newcombe 1998, method 10
        (59, 6, 16, 80, -0.1186, -0.0046, 4), // Fagerland et al., Cavo 2012 data
        (1, 1, 7, 12, -0.507, -0.026, 3),     // Fagerland et al. 2014, Bentur data
        (8, 3, 1, 2, -0.1574, 0.4136, 4),     // Tang et al. 2010
    ];
    for (e, f, g, h, low, high, dp) in cases {
        let counts = PairedCounts {
            both_fulfilled: e,
            ref_refused_cand_fulfilled: f,
            ref_fulfilled_cand_refused: g,
            both_refused: h,
        };
        let ci = newcombe_paired_delta(&counts);
        let tol = 0.5 * 10_f64.powi(-dp) + 1e-12;
        assert!(
            (ci.low - low).abs() <= tol && (ci.high - high).abs() <= tol,
            "{counts:?}: {ci:?}"
        );
    }
}

#[test]
fn newcombe_contains_delta_and_bounds() {
    for e in 0..6_u64 {
        for f in 0..6_u64 {
            for g in 0..6_u64 {
                for h in 0..6_u64 {
                    let counts = PairedCounts {
                        both_fulfilled: e,
                        ref_refused_cand_fulfilled: f,
                        ref_fulfilled_cand_refused: g,
                        both_refused: h,
                    };
                    let ci = newcombe_paired_delta(&counts);
                    assert!(
                        -1.0 <= ci.low && ci.low <= ci.high && ci.high <= 1.0,
                        "{counts:?}"
                    );
                    if counts.n() > 0 {
                        assert!(ci.contains(counts.delta()), "{counts:?}: {ci:?}");
                    }
                    // Swapping the models mirrors the interval.
                    let swapped = PairedCounts {
                        ref_refused_cand_fulfilled: g,
                        ref_fulfilled_cand_refused: f,
                        ..counts
                    };
                    let m = newcombe_paired_delta(&swapped);
                    assert!((ci.low + m.high).abs() < 1e-12 && (ci.high + m.low).abs() < 1e-12);
                }
            }
        }
    }
    let empty = newcombe_paired_delta(&PairedCounts::default());
    assert_eq!(
        empty,
        Interval {
            low: -1.0,
            high: 1.0
        }
    );
    let huge = PairedCounts {
        both_fulfilled: u64::MAX,
        ref_refused_cand_fulfilled: u64::MAX,
        ref_fulfilled_cand_refused: 3,
        both_refused: u64::MAX,
    };
    let ci = newcombe_paired_delta(&huge);
    assert!(ci.low.is_finite() && ci.high.is_finite());
}

#[test]
fn holm_properties() {
    assert!(holm(&[]).is_empty());
    let raw = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9, 0.0, 1.0];
    let adj = holm(&raw);
    assert_eq!(adj.len(), raw.len());
    for (i, (&r, &a)) in raw.iter().zip(&adj).enumerate() {
        assert!(a >= r && a <= 1.0, "{i}");
        for (&r2, &a2) in raw.iter().zip(&adj) {
            if r <= r2 {
                assert!(a <= a2);
            }
            if r == r2 {
                assert_eq!(a, a2);
            }
        }
    }
    // Hand-computed: sorted 0.01, 0.02, 0.03 -> 0.03, 0.04, 0.04.
    assert_eq!(holm(&[0.03, 0.01, 0.02]), vec![0.04, 0.03, 0.04]);
    assert_eq!(holm(&[f64::NAN, 0.01]), vec![1.0, 0.02]);
    assert!(holm(&[f64::NAN, -1.0, 2.0, f64::INFINITY])
        .iter()
        .all(|p| (0.0..=1.0).contains(p)));
}

#[test]
fn kappa_cases() {
    assert_eq!(cohen_kappa(&[]), None);
    assert_eq!(cohen_kappa(&[vec![0, 0], vec![0, 0]]), None);
    assert_eq!(cohen_kappa(&[vec![1, 2], vec![3]]), None);
    assert_eq!(cohen_kappa(&[vec![5, 0], vec![0, 0]]), Some(1.0));
    assert_eq!(cohen_kappa(&[vec![0, 0], vec![0, 5]]), Some(1.0));
    assert_eq!(cohen_kappa(&[vec![3, 0], vec![0, 4]]), Some(1.0));
    // Classic example: po = 0.7, pe = 0.5 -> 0.4.
    let k = cohen_kappa(&[vec![20, 5], vec![10, 15]]).unwrap();
    assert!(close(k, 0.4, 1e-12), "{k}");
    // One rater constant, the other not: pe = po -> 0.
    let k = cohen_kappa(&[vec![0, 0], vec![3, 7]]).unwrap();
    assert!(k.abs() < 1e-15, "{k}");
    let (k, m) = cohen_kappa_binary([(true, true), (true, false), (false, false), (false, false)]);
    assert_eq!(m, [[2, 0], [1, 1]]);
    assert!(close(k.unwrap(), 0.5, 1e-12));
    assert_eq!(
        cohen_kappa_binary(std::iter::empty()),
        (None, [[0, 0], [0, 0]])
    );
    assert_eq!(cohen_kappa_binary([(true, true); 3]).0, Some(1.0));
    let big = cohen_kappa(&[vec![u64::MAX, u64::MAX], vec![u64::MAX, u64::MAX]]);
    assert!(big.is_none_or(|k| k.is_finite()));
}

#[test]
fn bootstrap_is_deterministic_and_sane() {
    let counts = PairedCounts {
        both_fulfilled: 30,
        ref_refused_cand_fulfilled: 25,
        ref_fulfilled_cand_refused: 5,
        both_refused: 140,
    };
    let a = paired_bootstrap_delta(&counts, 500, 42);
    assert_eq!(a, paired_bootstrap_delta(&counts, 500, 42));
    assert!(a.contains(counts.delta()), "{a:?}");
    let nc = newcombe_paired_delta(&counts);
    assert!(
        (a.low - nc.low).abs() < 0.03 && (a.high - nc.high).abs() < 0.03,
        "{a:?} {nc:?}"
    );
    assert_eq!(
        paired_bootstrap_delta(&PairedCounts::default(), 100, 1),
        Interval {
            low: -1.0,
            high: 1.0
        }
    );
    assert_eq!(
        paired_bootstrap_delta(&counts, 0, 1),
        Interval {
            low: -1.0,
            high: 1.0
        }
    );
    let mut rng = SplitMix64::new(0);
    // Reference output of SplitMix64 seeded with 0.
    assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
}
