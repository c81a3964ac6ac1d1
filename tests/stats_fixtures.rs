//! Checks `aligndiff::stats` against reference values computed independently with
//! SciPy, statsmodels and scikit-learn by `scripts/fixtures/stats_fixtures.py`
//! (stored in `tests/fixtures/stats/stats.json`; see the script for how to
//! regenerate it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aligndiff::stats::*;
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/stats/stats.json");

/// Relative tolerance for ordinary values.
const REL: f64 = 1e-9;
/// Absolute tolerance near zero.
const ABS: f64 = 1e-12;
/// Tolerance on log10 p for p-values too small to compare directly.
const LOG10_TOL: f64 = 1e-6;

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).unwrap_or_else(|e| panic!("stats.json does not parse: {e}"))
}

fn section<'a>(root: &'a Value, name: &str) -> &'a [Value] {
    root[name]
        .as_array()
        .unwrap_or_else(|| panic!("section {name} is an array"))
}

fn f(case: &Value, key: &str) -> f64 {
    case[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number in {case}"))
}

fn u(case: &Value, key: &str) -> u64 {
    case[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is an unsigned integer in {case}"))
}

fn name(case: &Value) -> String {
    case["name"]
        .as_str()
        .or_else(|| case["source"].as_str())
        .map_or_else(|| case.to_string(), str::to_owned)
}

#[track_caller]
fn assert_close(got: f64, want: f64, what: &str) {
    let diff = (got - want).abs();
    assert!(
        diff <= ABS || diff <= REL * want.abs().max(got.abs()),
        "{what}: got {got:e}, want {want:e} (diff {diff:e})"
    );
}

fn counts(case: &Value) -> PairedCounts {
    PairedCounts {
        both_fulfilled: u(case, "both_fulfilled"),
        ref_refused_cand_fulfilled: u(case, "b"),
        ref_fulfilled_cand_refused: u(case, "c"),
        both_refused: u(case, "both_refused"),
    }
}

#[test]
fn fixture_has_expected_sections() {
    let root = fixture();
    for key in [
        "wilson",
        "mcnemar",
        "paired",
        "newcombe_published",
        "holm",
        "kappa",
        "kappa_binary",
        "bootstrap",
    ] {
        assert!(!section(&root, key).is_empty(), "{key} has cases");
    }
    assert_close(f(&root["meta"], "z"), Z_95, "z");
}

#[test]
fn wilson_matches_statsmodels() {
    let root = fixture();
    for case in section(&root, "wilson") {
        let (k, n) = (u(case, "successes"), u(case, "n"));
        let got = wilson(k, n);
        assert_close(got.low, f(case, "low"), &format!("wilson({k}, {n}).low"));
        assert_close(got.high, f(case, "high"), &format!("wilson({k}, {n}).high"));
    }
}

#[test]
fn mcnemar_matches_scipy_and_exact_arithmetic() {
    let root = fixture();
    for case in section(&root, "mcnemar") {
        let (b, c) = (u(case, "b"), u(case, "c"));
        let what = format!("{} (b={b}, c={c})", name(case));
        let got = mcnemar_exact(b, c);
        let want = f(case, "p_exact");
        let want_log10 = f(case, "log10_p");
        let got_log10 = mcnemar_exact_log10(b, c);
        assert!(
            (got_log10 - want_log10).abs() <= LOG10_TOL,
            "{what}: log10 p {got_log10} vs {want_log10}"
        );
        assert_eq!(got, mcnemar_exact(c, b), "{what}: symmetric");
        if want >= 1e-300 {
            assert_close(got, want, &what);
            assert_close(got, f(case, "p"), &format!("{what} vs scipy"));
            assert_close(
                got,
                f(case, "p_statsmodels"),
                &format!("{what} vs statsmodels"),
            );
        } else {
            // Subnormal or underflowed: only log10 is meaningful; p must still be tiny.
            assert!(got <= 1e-290, "{what}: {got:e}");
        }
    }
}

#[test]
fn paired_counts_and_newcombe_match_reference() {
    let root = fixture();
    for case in section(&root, "paired") {
        let what = name(case);
        let counts = counts(case);
        assert_eq!(counts.n(), u(case, "n"), "{what}: n");
        assert_close(
            counts.reference_rate(),
            f(case, "reference_rate"),
            &format!("{what}: reference_rate"),
        );
        assert_close(
            counts.candidate_rate(),
            f(case, "candidate_rate"),
            &format!("{what}: candidate_rate"),
        );
        assert_close(counts.delta(), f(case, "delta"), &format!("{what}: delta"));
        let ci = newcombe_paired_delta(&counts);
        assert_close(
            ci.low,
            f(case, "newcombe_low"),
            &format!("{what}: newcombe low"),
        );
        assert_close(
            ci.high,
            f(case, "newcombe_high"),
            &format!("{what}: newcombe high"),
        );

        // from_pairs reconstructs the same table.
        let pairs = [
            ((true, true), counts.both_fulfilled),
            ((false, true), counts.ref_refused_cand_fulfilled),
            ((true, false), counts.ref_fulfilled_cand_refused),
            ((false, false), counts.both_refused),
        ]
        .into_iter()
        .flat_map(|(pair, k)| (0..k).map(move |_| pair));
        assert_eq!(
            PairedCounts::from_pairs(pairs),
            counts,
            "{what}: from_pairs"
        );
    }
}

#[test]
fn newcombe_reproduces_published_limits() {
    let root = fixture();
    for case in section(&root, "newcombe_published") {
        let what = name(case);
        let decimals = i32::try_from(u(case, "decimals")).expect("small");
        let tol = 0.5 * 10_f64.powi(-decimals) + 1e-12;
        let ci = newcombe_paired_delta(&counts(case));
        assert!(
            (ci.low - f(case, "low")).abs() <= tol,
            "{what}: low {}",
            ci.low
        );
        assert!(
            (ci.high - f(case, "high")).abs() <= tol,
            "{what}: high {}",
            ci.high
        );
    }
}

#[test]
fn holm_matches_statsmodels() {
    let root = fixture();
    for case in section(&root, "holm") {
        let what = name(case);
        let raw: Vec<f64> = case["p"]
            .as_array()
            .expect("p")
            .iter()
            .map(|v| v.as_f64().expect("float"))
            .collect();
        let want: Vec<f64> = case["adjusted"]
            .as_array()
            .expect("adjusted")
            .iter()
            .map(|v| v.as_f64().expect("float"))
            .collect();
        let got = holm(&raw);
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-12, "{what}[{i}]: {g} vs {w}");
            assert!(g >= raw[i] && g <= 1.0, "{what}[{i}]: bounds");
        }
    }
}

#[test]
fn kappa_matches_sklearn() {
    let root = fixture();
    for case in section(&root, "kappa") {
        let what = name(case);
        let confusion: Vec<Vec<u64>> = case["confusion"]
            .as_array()
            .expect("confusion")
            .iter()
            .map(|row| {
                row.as_array()
                    .expect("row")
                    .iter()
                    .map(|v| v.as_u64().expect("count"))
                    .collect()
            })
            .collect();
        let got = cohen_kappa(&confusion);
        match case["kappa"].as_f64() {
            None => assert_eq!(got, None, "{what}"),
            Some(want) => assert_close(got.expect("defined"), want, &what),
        }
    }
}

#[test]
fn kappa_binary_matches_sklearn() {
    let root = fixture();
    for case in section(&root, "kappa_binary") {
        let what = name(case);
        let pairs: Vec<(bool, bool)> = case["pairs"]
            .as_array()
            .expect("pairs")
            .iter()
            .map(|p| (p[0].as_bool().expect("bool"), p[1].as_bool().expect("bool")))
            .collect();
        let (kappa, confusion) = cohen_kappa_binary(pairs);
        for (i, row) in confusion.iter().enumerate() {
            for (j, &count) in row.iter().enumerate() {
                assert_eq!(
                    Some(count),
                    case["confusion"][i][j].as_u64(),
                    "{what}: confusion[{i}][{j}]"
                );
            }
        }
        match case["kappa"].as_f64() {
            None => assert_eq!(kappa, None, "{what}"),
            Some(want) => assert_close(kappa.expect("defined"), want, &what),
        }
    }
}

#[test]
fn bootstrap_matches_python_port() {
    let root = fixture();
    for case in section(&root, "bootstrap") {
        let what = name(case);
        let replicates = u32::try_from(u(case, "replicates")).expect("fits u32");
        let ci = paired_bootstrap_delta(&counts(case), replicates, u(case, "seed"));
        assert_close(ci.low, f(case, "low"), &format!("{what}: low"));
        assert_close(ci.high, f(case, "high"), &format!("{what}: high"));
    }
}
