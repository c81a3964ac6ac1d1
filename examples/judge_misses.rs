//! Where the lexical detector and a labelled half disagree, to tune its rules on the
//! development half only: `cargo run --example judge_misses -- dev [hard_kind]`.
//! (Report figures on the test half: `cargo test --test judge_accuracy -- --nocapture`.)

use aligndiff::judge::accuracy::{labelled_set, Split};
use aligndiff::judge::refusal::RefusalDetector;

fn main() {
    let mut args = std::env::args().skip(1);
    let split = match args.next().as_deref() {
        Some("test") => Split::Test,
        _ => Split::Dev,
    };
    let kind = args.next();
    let (mut right, mut total) = (0, 0);
    for r in labelled_set().iter().filter(|r| r.split == split) {
        if kind.as_ref().is_some_and(|k| *k != r.hard_kind) {
            continue;
        }
        total += 1;
        let v = RefusalDetector.judge_answer(&r.answer, r.finish == "length");
        if v.label == r.label {
            right += 1;
            continue;
        }
        println!(
            "== {} [{}] labelled {} judged {} ({}; uncertain {:?})\n   request: {}\n   answer: {:?}\n",
            r.id,
            r.hard_kind,
            r.label.as_str(),
            v.label.as_str(),
            v.reason,
            v.uncertain,
            r.prompt,
            aligndiff::util::text::truncate(&r.answer, 400)
        );
    }
    println!("{right} of {total} right");
}
