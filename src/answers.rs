//! Answers that came from elsewhere (a hosted API, another harness, a vendor's delivery), read
//! from a JSONL or CSV file so they can be judged and compared like the engine's own.
//!
//! Each record holds an `answer` and names its request by `id` and/or `prompt`; optional
//! fields: `category`, `model`, `system`, `pack`, `sample` (default 0). A CSV file needs a
//! header row; a JSONL file holds one object per line. A bad record is an error naming the
//! file, the line and the field.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::util::hash::hex_sha256;
use crate::util::records::{detect_format, explain, map_csv, map_jsonl, Fields, RecordFormat};

/// One answer read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRecord {
    /// Line in the file where the record starts (1-based).
    pub line: usize,
    /// The record's id (a pack prompt id when imported into an audit).
    pub id: Option<String>,
    /// The request text.
    pub prompt: Option<String>,
    /// The answer text (may be empty: an empty answer is still an answer).
    pub answer: String,
    /// Category, when given.
    pub category: Option<String>,
    /// Which model answered, when given.
    pub model: Option<String>,
    /// The system prompt it was given, when given.
    pub system: Option<String>,
    /// Pack id, when given (narrows matching by `id`).
    pub pack: Option<String>,
    /// Sample index.
    pub sample: u32,
}

/// An answers file, read and checked.
#[derive(Debug, Clone)]
pub struct AnswersFile {
    /// The file.
    pub path: PathBuf,
    /// SHA-256 of its bytes: the identity its answers are stored under.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Its records, in file order.
    pub records: Vec<AnswerRecord>,
}

/// The fields [`record_from`] reads.
const READ_FIELDS: [&str; 8] = [
    "id", "prompt", "answer", "category", "model", "system", "pack", "sample",
];

fn record_from(fields: &Fields, line: usize) -> std::result::Result<AnswerRecord, String> {
    let get = |name: &str| -> Option<&str> {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let non_empty = |name: &str| get(name).map(str::trim).filter(|v| !v.is_empty());
    let Some(answer) = get("answer") else {
        return Err(format!("line {line}: field `answer`: missing"));
    };
    let sample = match non_empty("sample") {
        Some(s) => s.parse::<u32>().map_err(|e| {
            format!("line {line}: field `sample`: `{s}` is not a whole number ({e})")
        })?,
        None => 0,
    };
    let record = AnswerRecord {
        line,
        id: non_empty("id").map(str::to_owned),
        prompt: get("prompt")
            .filter(|p| !p.trim().is_empty())
            .map(str::to_owned),
        answer: answer.to_owned(),
        category: non_empty("category").map(str::to_owned),
        model: non_empty("model").map(str::to_owned),
        system: get("system").map(str::to_owned),
        pack: non_empty("pack").map(str::to_owned),
        sample,
    };
    if record.id.is_none() && record.prompt.is_none() {
        return Err(format!(
            "line {line}: field `id`: missing (name the request with `id` or `prompt`)"
        ));
    }
    Ok(record)
}

fn parse_csv(text: &str) -> std::result::Result<Vec<AnswerRecord>, String> {
    map_csv(text, "answer", "id,prompt,answer", |fields, line| {
        record_from(fields, line)
    })
}

fn parse_jsonl(text: &str) -> std::result::Result<Vec<AnswerRecord>, String> {
    map_jsonl(text, |object, line| {
        let mut fields: Fields = Vec::with_capacity(object.len());
        for (k, v) in object {
            // Fields no record reads may hold anything (a labelled set's booleans and nested
            // readings); the ones it reads must be text.
            if !READ_FIELDS.iter().any(|f| k.eq_ignore_ascii_case(f)) {
                continue;
            }
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                serde_json::Value::Number(n) if k != "answer" && k != "prompt" => n.to_string(),
                other => {
                    return Err(format!(
                        "line {line}: field `{k}`: expected a string, found {other}"
                    ))
                }
            };
            fields.push((k.clone(), text));
        }
        record_from(&fields, line)
    })
}

impl AnswersFile {
    /// Read an answers file: JSON lines or CSV, by extension or else by content
    /// ([`detect_format`]).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::bad_file(path, format!("answers must be UTF-8 text ({e})")))?;
        let (format, why) = detect_format(path, text);
        let records = match format {
            RecordFormat::JsonLines => parse_jsonl(text),
            RecordFormat::Csv => parse_csv(text),
        }
        .map_err(|e| Error::bad_file(path, explain(format, why, &e)))?;
        if records.is_empty() {
            return Err(Error::bad_file(path, "the file holds no answers"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            sha256: hex_sha256(&bytes),
            bytes: bytes.len() as u64,
            records,
        })
    }

    /// Fail on a field every record must have (`id`, `prompt`), naming the first record
    /// without it.
    pub fn require(&self, field: &str) -> Result<()> {
        for r in &self.records {
            let present = match field {
                "id" => r.id.is_some(),
                "prompt" => r.prompt.is_some(),
                _ => true,
            };
            if !present {
                return Err(Error::bad_file(
                    &self.path,
                    format!("line {}: field `{field}`: missing", r.line),
                ));
            }
        }
        Ok(())
    }
}

/// What [`judge_file`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JudgeFileSummary {
    /// Records in the input.
    pub records: usize,
    /// Verdicts given in this run.
    pub judged: usize,
    /// (id, judge) pairs already in the output file, kept and not judged again.
    pub kept: usize,
}

fn output_line(id: &str, judge: &str, v: &crate::judge::Verdict) -> String {
    let refused = match v.label {
        crate::judge::Label::Refused => Some(true),
        crate::judge::Label::Complied => Some(false),
        crate::judge::Label::Unparsed => None,
    };
    serde_json::json!({
        "id": id,
        "judge": judge,
        "refused": refused,
        "label": v.label.as_str(),
        "score": v.score,
        "raw": v.raw,
        "uncertain": v.uncertain.map(crate::judge::Uncertainty::as_str),
        "reason": v.reason,
    })
    .to_string()
}

/// Lines of an earlier output file, by (id, judge). A last line cut short (no line break, not
/// JSON) is dropped so it is judged again; any other bad line is an error naming it.
fn read_output(path: &Path) -> Result<Vec<((String, String), String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, raw) in lines.iter().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let last = i + 1 == lines.len();
        let parsed = serde_json::from_str::<serde_json::Value>(raw)
            .ok()
            .and_then(|v| {
                Some((
                    v.get("id")?.as_str()?.to_owned(),
                    v.get("judge")?.as_str()?.to_owned(),
                ))
            });
        match parsed {
            Some(pair) => out.push((pair, (*raw).to_owned())),
            None if last && !complete => {}
            None => {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "line {}: not a verdict line (a JSON object with `id` and `judge`); \
                         move the file away to judge from scratch",
                        i + 1
                    ),
                ))
            }
        }
    }
    Ok(out)
}

fn write_atomically(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    crate::util::write_atomic(path, text.as_bytes())
}

/// Judge every record of an answers file with every judge, writing one JSONL line per record
/// and judge to `out`: lines are appended as verdicts arrive, and the finished file is put in
/// input order. (id, judge) pairs already in `out` are kept and not judged again. Model judges
/// load one at a time, sized for the file's longest record (`settings.max_positions` is not
/// used). `on_progress(judge, done, total)` follows each judge.
pub fn judge_file(
    input: &Path,
    specs: &[crate::judge::JudgeSpec],
    out: &Path,
    settings: &crate::judge::JudgeSettings,
    cancel: &std::sync::atomic::AtomicBool,
    on_progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<JudgeFileSummary> {
    use std::io::Write;

    crate::judge::spec::check_list(specs)?;
    for spec in specs {
        if matches!(spec, crate::judge::JudgeSpec::Human { .. }) {
            return Err(Error::Invalid(format!(
                "judge `{}`: human labels name an audit's answers (by store key or prompt and side); \
                 use them with `aligndiff audit --judge human:FILE`",
                spec.id()
            )));
        }
        spec.check()?;
    }
    let file = AnswersFile::from_file(input)?;
    file.require("id")?;
    file.require("prompt")?;
    for (i, r) in file.records.iter().enumerate() {
        if let Some(earlier) = file.records[..i].iter().find(|e| e.id == r.id) {
            return Err(Error::bad_file(
                input,
                format!(
                    "line {}: field `id`: `{}` is already on line {}",
                    r.line,
                    r.id.as_deref().unwrap_or(""),
                    earlier.line
                ),
            ));
        }
    }
    let mut done = read_output(out)?;
    // Start from a clean file holding only whole lines, then append.
    write_atomically(
        out,
        &done.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
    )?;
    let kept = done.len();
    // (id, judge) -> index into `done`; later lines of a pair win, as a rerun would write.
    let mut index: std::collections::HashMap<(String, String), usize> = done
        .iter()
        .enumerate()
        .map(|(k, (pair, _))| (pair.clone(), k))
        .collect();
    let longest = file
        .records
        .iter()
        .map(|r| r.prompt.as_deref().map_or(0, str::len) + r.answer.len())
        .max()
        .unwrap_or(0);
    let settings = crate::judge::JudgeSettings {
        // A token is at least one byte; the rest is room for the template and the verdict.
        max_positions: (longest + 4096).min(32_768),
        ..settings.clone()
    };
    let ids = crate::judge::spec::unique_ids(specs);
    let mut judged = 0usize;
    for (spec, judge_id) in specs.iter().zip(&ids) {
        let todo: Vec<&AnswerRecord> = file
            .records
            .iter()
            .filter(|r| {
                let id = r.id.clone().unwrap_or_default();
                !index.contains_key(&(id, judge_id.clone()))
            })
            .collect();
        let total = file.records.len();
        on_progress(judge_id, total - todo.len(), total);
        if todo.is_empty() {
            continue;
        }
        let mut judge = crate::judge::build_cancellable(spec, &settings, cancel)?;
        let inputs: Vec<crate::judge::JudgeInput<'_>> = todo
            .iter()
            .map(|r| crate::judge::JudgeInput {
                prompt_id: r.id.as_deref().unwrap_or(""),
                sample: r.sample,
                category: r.category.as_deref().unwrap_or(""),
                request: r.prompt.as_deref().unwrap_or(""),
                answer: &r.answer,
                ..crate::judge::JudgeInput::default()
            })
            .collect();
        let mut appender = std::fs::OpenOptions::new()
            .append(true)
            .open(out)
            .map_err(|e| Error::io(out, e))?;
        let mut given = 0usize;
        judge.judge_batch(&inputs, cancel, &mut |i, v| {
            let id = inputs[i].prompt_id;
            let line = output_line(id, judge_id, &v);
            writeln!(appender, "{line}")
                .and_then(|()| appender.flush())
                .map_err(|e| Error::io(out, e))?;
            index.insert((id.to_owned(), judge_id.clone()), done.len());
            done.push(((id.to_owned(), judge_id.clone()), line));
            given += 1;
            on_progress(judge_id, total - todo.len() + given, total);
            Ok(())
        })?;
        judged += given;
        drop(judge);
    }
    // Input order, judges in the order given; lines for records no longer in the input stay,
    // at the end.
    let mut ordered = Vec::with_capacity(done.len());
    let mut used = vec![false; done.len()];
    for r in &file.records {
        let id = r.id.clone().unwrap_or_default();
        for judge_id in &ids {
            if let Some(&k) = index.get(&(id.clone(), judge_id.clone())) {
                used[k] = true;
                ordered.push(done[k].1.clone());
            }
        }
    }
    for (k, (_, line)) in done.iter().enumerate() {
        // Lines for records or judges not in this run are kept, at the end: nothing is lost.
        if !used[k] {
            ordered.push(line.clone());
        }
    }
    write_atomically(out, &ordered)?;
    Ok(JudgeFileSummary {
        records: file.records.len(),
        judged,
        kept,
    })
}
