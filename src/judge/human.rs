//! Labels people gave, imported from a CSV or JSONL file, as a judge of their own (`human`).
//!
//! Each record names an answer and says whether it `refused` or `complied`:
//!
//! - by its store key: `key,label` (the `key` column of an audit's answers), or
//! - by prompt and side: `prompt_id,side,label`, optionally with `pack` and `sample`
//!   (default 0); `side` is `reference` or `candidate`.
//!
//! `label` is `refused`/`refusal`/`0` or `complied`/`fulfilled`/`1` (SORRY-Bench's scores); an
//! optional `note` is kept as the verdict's reason. A CSV file needs a header row; a JSONL file
//! holds one object per line with the same fields. A bad record is an error naming the file and
//! line.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Judge, JudgeInfo, JudgeInput, Label, Verdict};
use crate::error::{Error, Result};
use crate::util::hash::hex_sha256;
use crate::util::records::{detect_format, explain, map_csv, map_jsonl, Fields, RecordFormat};

/// One labelled answer.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRecord {
    /// Store key of the answer, when given.
    pub key: Option<String>,
    /// Pack id, when given.
    pub pack: Option<String>,
    /// Prompt id, when the answer is named by prompt and side.
    pub prompt_id: Option<String>,
    /// Sample index.
    pub sample: u32,
    /// `reference` or `candidate`.
    pub side: Option<String>,
    /// The person's verdict.
    pub label: Label,
    /// Their note.
    pub note: String,
    /// Line in the file (1-based).
    pub line: usize,
}

impl LabelRecord {
    fn matches(&self, input: &JudgeInput<'_>) -> bool {
        if let Some(key) = &self.key {
            return !input.key.is_empty() && key == input.key;
        }
        self.prompt_id.as_deref() == Some(input.prompt_id)
            && self.side.as_deref() == Some(input.side)
            && self.sample == input.sample
            && self.pack.as_deref().is_none_or(|p| p == input.pack)
    }

    fn same_answer(&self, other: &Self) -> bool {
        self.key == other.key
            && self.pack == other.pack
            && self.prompt_id == other.prompt_id
            && self.sample == other.sample
            && self.side == other.side
    }
}

/// A labels file, read and checked.
#[derive(Debug, Clone)]
pub struct HumanLabels {
    /// The file.
    pub path: PathBuf,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its records.
    pub records: Vec<LabelRecord>,
}

fn parse_label(value: &str) -> Option<Label> {
    match value.trim().to_lowercase().as_str() {
        "refused" | "refusal" | "0" => Some(Label::Refused),
        "complied" | "fulfilled" | "1" => Some(Label::Complied),
        _ => None,
    }
}

fn record_from(fields: &Fields, line: usize) -> std::result::Result<LabelRecord, String> {
    let get = |name: &str| -> Option<&str> {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let at = |why: String| format!("line {line}: {why}");
    let Some(label_text) = get("label") else {
        return Err(at("no `label`".into()));
    };
    let Some(label) = parse_label(label_text) else {
        return Err(at(format!(
            "unknown label `{label_text}` (expected refused, complied, 0 or 1)"
        )));
    };
    let side = get("side").map(str::to_lowercase);
    if let Some(s) = side.as_deref() {
        if s != "reference" && s != "candidate" {
            return Err(at(format!(
                "unknown side `{s}` (expected reference or candidate)"
            )));
        }
    }
    let sample = match get("sample") {
        Some(s) => s
            .parse::<u32>()
            .map_err(|e| at(format!("sample `{s}` is not a whole number ({e})")))?,
        None => 0,
    };
    let record = LabelRecord {
        key: get("key").map(str::to_owned),
        pack: get("pack").map(str::to_owned),
        prompt_id: get("prompt_id").map(str::to_owned),
        sample,
        side,
        label,
        note: get("note").unwrap_or("").to_owned(),
        line,
    };
    if record.key.is_none() && (record.prompt_id.is_none() || record.side.is_none()) {
        return Err(at(
            "name the answer with `key`, or with `prompt_id` and `side`".into(),
        ));
    }
    Ok(record)
}

fn parse_csv(text: &str) -> std::result::Result<Vec<LabelRecord>, String> {
    map_csv(text, "label", "prompt_id,side,label", |fields, line| {
        record_from(fields, line)
    })
}

fn parse_jsonl(text: &str) -> std::result::Result<Vec<LabelRecord>, String> {
    map_jsonl(text, |object, line| {
        let fields: Fields = object
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        record_from(&fields, line)
    })
}

impl HumanLabels {
    /// Read a labels file: JSON lines or CSV, by extension or else by content.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|e| Error::bad_file(path, format!("labels must be UTF-8 text ({e})")))?;
        let (format, why) = detect_format(path, &text);
        let records = match format {
            RecordFormat::JsonLines => parse_jsonl(&text),
            RecordFormat::Csv => parse_csv(&text),
        }
        .map_err(|e| Error::bad_file(path, explain(format, why, &e)))?;
        if records.is_empty() {
            return Err(Error::bad_file(path, "the file holds no labels"));
        }
        for (i, r) in records.iter().enumerate() {
            if let Some(earlier) = records[..i]
                .iter()
                .find(|e| e.same_answer(r) && e.label != r.label)
            {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "line {}: labels the same answer as line {} differently",
                        r.line, earlier.line
                    ),
                ));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            sha256: hex_sha256(&bytes),
            records,
        })
    }

    /// The label for an answer, if the file has one.
    pub fn find(&self, input: &JudgeInput<'_>) -> Option<&LabelRecord> {
        self.records.iter().find(|r| r.matches(input))
    }

    /// Records that match none of `inputs` (labels for answers not in this audit).
    pub fn unmatched(&self, inputs: &[JudgeInput<'_>]) -> usize {
        self.records
            .iter()
            .filter(|r| !inputs.iter().any(|i| r.matches(i)))
            .count()
    }
}

/// Imported human labels as a [`Judge`]; answers without a label get no verdict.
#[derive(Debug, Clone)]
pub struct HumanJudge {
    labels: HumanLabels,
    info: JudgeInfo,
}

impl HumanJudge {
    /// Read the labels file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let labels = HumanLabels::from_file(path)?;
        let info = JudgeInfo {
            id: super::HUMAN_ID.into(),
            kind: super::JudgeKind::Human,
            spec: format!("human:{}", path.display()),
            fingerprint: format!("human:{}", labels.sha256),
            ..JudgeInfo::default()
        };
        Ok(Self { labels, info })
    }

    /// The labels.
    pub fn labels(&self) -> &HumanLabels {
        &self.labels
    }
}

impl Judge for HumanJudge {
    fn info(&self) -> &JudgeInfo {
        &self.info
    }

    fn judge_batch(
        &mut self,
        inputs: &[JudgeInput<'_>],
        cancel: &AtomicBool,
        on_verdict: &mut dyn FnMut(usize, Verdict) -> Result<()>,
    ) -> Result<()> {
        let file = self
            .labels
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        for (i, input) in inputs.iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let Some(r) = self.labels.find(input) else {
                continue;
            };
            on_verdict(
                i,
                Verdict {
                    label: r.label,
                    partial: false,
                    uncertain: None,
                    score: None,
                    reason: if r.note.is_empty() {
                        format!("labelled by a person ({file} line {})", r.line)
                    } else {
                        format!("labelled by a person ({file} line {}): {}", r.line, r.note)
                    },
                    raw: None,
                },
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(prompt_id: &'a str, side: &'a str, sample: u32) -> JudgeInput<'a> {
        JudgeInput {
            key: "",
            pack: "sorry44",
            prompt_id,
            sample,
            side,
            ..JudgeInput::default()
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn csv_labels_by_prompt_and_side_or_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "labels.csv",
            "prompt_id,side,sample,label,note\n\
             7-1,candidate,0,complied,\"gave the steps, all of them\"\n\
             7-1,reference,,0,\n\
             \"7-2\",candidate,1,refused,\"said \"\"no\"\"\nand left\"\n",
        );
        let labels = HumanLabels::from_file(&p).unwrap();
        assert_eq!(labels.records.len(), 3);
        assert_eq!(labels.records[2].line, 4);
        assert_eq!(labels.records[2].note, "said \"no\"\nand left");
        let mut judge = HumanJudge::from_file(&p).unwrap();
        let inputs = [
            input("7-1", "candidate", 0),
            input("7-1", "reference", 0),
            input("7-2", "candidate", 1),
            input("7-2", "candidate", 0),
        ];
        let mut got = Vec::new();
        judge
            .judge_batch(&inputs, &AtomicBool::new(false), &mut |i, v| {
                got.push((i, v.label, v.reason));
                Ok(())
            })
            .unwrap();
        assert_eq!(got.len(), 3, "the unlabelled answer gets no verdict");
        assert_eq!(got[0].1, Label::Complied);
        assert_eq!(
            got[0].2,
            "labelled by a person (labels.csv line 2): gave the steps, all of them"
        );
        assert_eq!(got[1].1, Label::Refused);
        assert_eq!(labels.unmatched(&inputs), 0);
        assert!(judge.fingerprint().starts_with("human:"));

        let keyed = write(dir.path(), "keys.csv", "key,label\nabc123,1\n");
        let labels = HumanLabels::from_file(&keyed).unwrap();
        let mut i = input("x", "candidate", 0);
        assert!(labels.find(&i).is_none());
        i.key = "abc123";
        assert_eq!(labels.find(&i).unwrap().label, Label::Complied);
    }

    #[test]
    fn jsonl_labels_read_the_same_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "labels.jsonl",
            "{\"prompt_id\": \"7-1\", \"side\": \"candidate\", \"label\": 1}\n\n\
             {\"prompt_id\": \"7-1\", \"side\": \"reference\", \"sample\": 0, \"label\": \"refused\", \"pack\": \"sorry44\"}\n",
        );
        let labels = HumanLabels::from_file(&p).unwrap();
        assert_eq!(labels.records[1].line, 3);
        assert_eq!(
            labels.find(&input("7-1", "candidate", 0)).unwrap().label,
            Label::Complied
        );
        assert_eq!(
            labels.find(&input("7-1", "reference", 0)).unwrap().label,
            Label::Refused
        );
        assert_eq!(labels.unmatched(&[input("7-1", "reference", 0)]), 1);
    }

    #[test]
    fn bad_labels_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text, why) in [
            (
                "a.csv",
                "prompt_id,side,label\n1,candidate,complied\n2,candidate,maybe\n",
                "line 3: unknown label `maybe`",
            ),
            (
                "b.csv",
                "prompt_id,side\n1,candidate\n",
                "line 1: the header has no `label` column",
            ),
            (
                "c.csv",
                "prompt_id,label\n1,1\n",
                "line 2: name the answer with `key`, or with `prompt_id` and `side`",
            ),
            (
                "d.csv",
                "prompt_id,side,label\n1,candidate\n",
                "line 2: 2 fields, but the header has 3",
            ),
            (
                "e.csv",
                "prompt_id,side,label\n1,vendor,1\n",
                "line 2: unknown side `vendor`",
            ),
            (
                "f.csv",
                "prompt_id,side,label,sample\n1,candidate,1,first\n",
                "line 2: sample `first`",
            ),
            (
                "g.csv",
                "prompt_id,side,label\n1,candidate,\"1\n",
                "a quoted field is never closed",
            ),
            (
                "h.csv",
                "prompt_id,side,label\n1,candidate,1\n2,candidate,0\n1,candidate,0\n",
                "line 4: labels the same answer as line 2 differently",
            ),
            ("i.csv", "", "the file is empty"),
            (
                "j.jsonl",
                "{\"prompt_id\": \"1\", \"side\": \"candidate\", \"label\": 1}\n{oops}\n",
                "line 2: invalid JSON",
            ),
            ("k.jsonl", "[1, 2]\n", "line 1: expected a JSON object"),
            ("l.jsonl", "{\"key\": \"k\"}\n", "line 1: no `label`"),
            ("m.jsonl", "\n\n", "holds no labels"),
        ] {
            let p = write(dir.path(), name, text);
            let e = HumanLabels::from_file(&p).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(why), "{name}: {e}");
        }
    }
}
