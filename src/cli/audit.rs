//! `aligndiff audit` and `aligndiff judge`: build the plan from flags or a plan file, run it
//! with a progress line, print the findings and exit by the gate.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{AuditArgs, JudgeArgs};
use aligndiff::audit;
use aligndiff::generate::GenerationSettings;
use aligndiff::report::format as fmt;

pub(super) fn run_judge(args: &JudgeArgs) -> Result<ExitCode> {
    let settings = aligndiff::judge::JudgeSettings {
        device: aligndiff::model::select_device(&args.device)?,
        batch_size: args.batch_size,
        serving: args.serving.settings(),
        api_key_env: args.serving.judge_api_key_env.clone(),
        ..Default::default()
    };
    let cancel = AtomicBool::new(false);
    let mut last = std::time::Instant::now() - std::time::Duration::from_secs(1);
    let summary = aligndiff::answers::judge_file(
        &args.input,
        &args.judges,
        &args.out,
        &settings,
        &cancel,
        &mut |judge, done, total| {
            if done == total || last.elapsed().as_millis() >= 200 {
                last = std::time::Instant::now();
                eprint!("\r\x1b[Kjudge {judge}: {done}/{total}");
                if done == total {
                    eprintln!();
                }
            }
        },
    )?;
    eprintln!(
        "{} records: {} verdicts given, {} kept from {}",
        summary.records,
        summary.judged,
        summary.kept,
        args.out.display()
    );
    if args.score {
        let scores = aligndiff::judge::accuracy::score_file(
            &args.input,
            &args.out,
            args.score_split.as_deref(),
        )?;
        print!("{}", score_table(&scores));
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--score` table: one block per judge.
fn score_table(scores: &[aligndiff::judge::accuracy::JudgeScore]) -> String {
    let ratio = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"));
    let mut out = String::new();
    for s in scores {
        let c = &s.counts;
        out.push_str(&format!(
            "{}: {} labelled answers scored ({} unparsed, {} without a verdict)\n  \
             not fulfilled: precision {}, recall {}; sensitivity (fulfilled) {}; accuracy {}; \
             kappa {}\n",
            s.judge,
            c.n(),
            s.unparsed,
            s.missing,
            ratio(c.refusal_precision()),
            ratio(c.specificity()),
            ratio(c.sensitivity()),
            ratio(c.accuracy()),
            fmt::kappa(s.kappa),
        ));
        for (kind, right, total) in &s.hard_kinds {
            out.push_str(&format!("  {kind:<24} {right:>4} of {total:>4} right\n"));
        }
    }
    out
}

pub(super) fn audit_plan(args: &AuditArgs) -> Result<audit::Plan> {
    if let Some(path) = &args.plan {
        let mut plan = audit::Plan::from_toml_file(path)?;
        if args.junit.is_some() {
            plan.junit = args.junit.clone();
            plan.validate()?;
        }
        return Ok(plan);
    }
    let mut plan = audit::Plan::new(
        audit::SidePlan {
            model: args.reference.clone().unwrap_or_default(),
            answers: args.reference_answers.clone(),
            lora: args.reference_lora.clone(),
            system: args.reference_system.clone(),
            api_key_env: args.reference_api_key_env.clone(),
            declared_sha256: args.reference_declared_sha256.clone(),
        },
        audit::SidePlan {
            model: args.candidate.clone().unwrap_or_default(),
            answers: args.candidate_answers.clone(),
            lora: args.candidate_lora.clone(),
            system: args.candidate_system.clone(),
            api_key_env: args.candidate_api_key_env.clone(),
            declared_sha256: args.candidate_declared_sha256.clone(),
        },
        args.out.clone().unwrap_or_default(),
    );
    plan.serving = args.serving.settings();
    plan.judge_api_key_env = args.serving.judge_api_key_env.clone();
    if !args.packs.is_empty() {
        plan.packs = args.packs.clone();
    }
    plan.categories = args.categories.clone();
    plan.targeted = args.targeted.clone();
    plan.samples = args.samples;
    plan.per_category = args.per_category;
    plan.generation = GenerationSettings {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: 1.0,
        seed: args.seed,
        batch_size: args.batch_size,
        ignore_eos: false,
    };
    if !args.judges.is_empty() {
        plan.judges = args.judges.clone();
    }
    plan.harm_probe = args.harm_probe;
    plan.weight_diff = args.weight_diff;
    plan.gate = args.gate.clone();
    plan.junit = args.junit.clone();
    plan.store = args.store.clone();
    plan.device = args.device.clone();
    plan.validate()?;
    Ok(plan)
}

pub(super) fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

pub(super) fn run_audit(args: &AuditArgs) -> Result<ExitCode> {
    let mut plan = audit_plan(args)?;
    if let Ok(cwd) = std::env::current_dir() {
        // The plan is recorded with the run: keep it meaningful from any folder.
        plan.rebase(&cwd);
    }
    if let Some(gate) = &plan.gate {
        // Read the gate before hours of generation, not after.
        audit::gate::Gate::from_file(gate)?;
    }
    let store_dir = plan
        .store
        .clone()
        .unwrap_or_else(aligndiff::store::default_dir);
    let store = aligndiff::store::Store::open_dir(&store_dir)?;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || {
            if cancel.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // A second Ctrl-C: the user really wants out; stored answers are committed.
                #[allow(clippy::exit)]
                std::process::exit(130);
            }
            eprintln!("\nstopping after the current step; answers so far stay in the store (Ctrl-C again to quit now)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    eprintln!("store: {}", store.path().display());
    let started = std::time::Instant::now();
    let mut side_started = std::time::Instant::now();
    let mut side_generated_at_start = 0usize;
    let mut last_line = std::time::Instant::now() - std::time::Duration::from_secs(1);
    let mut traffic = String::new();
    let mut on_event = |event: audit::JobEvent| match event {
        audit::JobEvent::Stage(msg) => eprintln!("\r\x1b[K{msg}"),
        audit::JobEvent::Loaded {
            side,
            info,
            fingerprint,
        } => {
            eprintln!(
                "{}: {}, fingerprint {} (loaded in {:.1} s)",
                side.as_str(),
                fmt::model_summary(&info),
                fingerprint.short_id(),
                info.load_seconds
            );
            side_started = std::time::Instant::now();
        }
        audit::JobEvent::Connected {
            side,
            label,
            fingerprint,
        } => {
            eprintln!(
                "{}: {label} on the server, identity {} (weights not visible to aligndiff)",
                side.as_str(),
                fingerprint.short_id(),
            );
            side_started = std::time::Instant::now();
        }
        audit::JobEvent::Traffic {
            in_flight, retries, ..
        } => {
            traffic = format!(" · {in_flight} in flight, {retries} retries");
        }
        audit::JobEvent::Progress {
            side,
            done,
            total,
            cached,
            tokens_per_s,
        } => {
            if done == cached {
                side_started = std::time::Instant::now();
                side_generated_at_start = done;
            }
            if last_line.elapsed().as_millis() < 200 && done < total {
                return;
            }
            last_line = std::time::Instant::now();
            let made = done.saturating_sub(side_generated_at_start);
            let elapsed = side_started.elapsed().as_secs_f64();
            let eta = if made > 0 {
                elapsed / made as f64 * (total - done) as f64
            } else {
                f64::NAN
            };
            let width = 30;
            let filled = (done * width).checked_div(total).unwrap_or(width);
            eprint!(
                "\r\x1b[K{:<9} [{}{}] {done}/{total} answers ({cached} reused) {tokens_per_s:.0} tok/s ETA {}{traffic}",
                side.as_str(),
                "#".repeat(filled),
                ".".repeat(width - filled),
                if eta.is_finite() { format_duration(eta) } else { "--".into() }
            );
            if done == total {
                eprintln!();
            }
        }
        audit::JobEvent::Judging {
            judge,
            done,
            total,
            reused,
            per_minute,
        } => {
            if last_line.elapsed().as_millis() < 200 && done < total {
                return;
            }
            last_line = std::time::Instant::now();
            eprint!(
                "\r\x1b[K{judge}: {done}/{total} verdicts ({reused} reused) {per_minute:.1} answers/min"
            );
            if done == total {
                eprintln!();
            }
        }
        audit::JobEvent::Token { .. }
        | audit::JobEvent::Finished(_)
        | audit::JobEvent::Failed(_) => {}
    };
    let result = match audit::run(&plan, &store, &cancel, &mut on_event) {
        Ok(r) => r,
        Err(aligndiff::Error::Cancelled) => {
            eprintln!("\ncancelled: every finished answer is stored; run the same command again to resume");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
    let mut written = aligndiff::report::write_all(&result, &plan.out)?;
    if let (Some(path), Some(xml)) = (&plan.junit, aligndiff::report::to_junit(&result)) {
        aligndiff::util::write_atomic(path, xml.as_bytes())?;
        written.push(path.clone());
    }
    let answers = result.reference.generated + result.candidate.generated;
    let wall = started.elapsed().as_secs_f64();
    eprintln!();
    println!("{}", fmt::headline(&result));
    if let Some(sentence) = fmt::over_refusal_sentence(&result) {
        println!("{sentence}");
    }
    if let Some(d) = &result.drift {
        println!("{}", fmt::drift_sentence(d));
    }
    println!(
        "{answers} answers generated in {} ({:.1} answers/min); {} reused from the store.",
        format_duration(wall),
        if wall > 0.0 {
            answers as f64 / wall * 60.0
        } else {
            0.0
        },
        result.reference.reused + result.candidate.reused
    );
    for j in &result.judges {
        if j.judged > 0 || j.unparsed > 0 {
            println!(
                "judge {}: {} answers judged in {} ({:.1} answers/min), {} reused; {} unparsed",
                j.id,
                j.judged,
                format_duration(j.seconds),
                j.per_minute(),
                j.reused,
                j.unparsed
            );
        }
    }
    for a in &result.agreement {
        println!(
            "agreement {} vs {}: kappa {} over {} answers, {} disagreements",
            a.a,
            a.b,
            fmt::kappa(a.kappa),
            a.n,
            a.disagreements.len()
        );
    }
    if let Some(sentence) = fmt::harm_probe_sentence(&result) {
        println!("Self-rated harm: {sentence}");
    }
    for path in &written {
        println!("wrote {}", path.display());
    }
    match &result.gate {
        Some(g) if g.passed => {
            println!("gate: {}", fmt::gate_word(true));
            Ok(ExitCode::SUCCESS)
        }
        Some(g) => {
            println!("gate: {}", fmt::gate_word(false));
            for rule in g.rules.iter().filter(|r| !r.passed) {
                println!(
                    "  {} {:.3}: measured {:.3} {}",
                    rule.rule,
                    rule.threshold,
                    rule.value,
                    rule.offenders.join("; ")
                );
            }
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
