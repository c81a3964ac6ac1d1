//! Reading record files that people and other tools write: CSV with a header row (RFC 4180
//! quoting) and JSON lines. Label files and answers files both read through here, so both give
//! the same `line N: ...` errors.

use std::path::Path;

/// Fields of one record, by column name.
pub type Fields = Vec<(String, String)>;

/// How a record file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// A header row, then one record per row.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

/// Decide a record file's format: by its extension when that names one (`.jsonl`/`.json`,
/// `.csv`), otherwise by its first non-blank line (a JSON object means JSON lines). Also says
/// why, for error messages: a file read the wrong way otherwise fails with a puzzling
/// "the header has no `answer` column (found {"id": ...})".
pub fn detect_format(path: &Path, text: &str) -> (RecordFormat, &'static str) {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jsonl" | "json" | "ndjson") => (RecordFormat::JsonLines, "by its extension"),
        Some("csv") => (RecordFormat::Csv, "by its extension"),
        _ => {
            let first = text
                .trim_start_matches('\u{feff}')
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            if first.trim_start().starts_with('{') {
                (
                    RecordFormat::JsonLines,
                    "because its first line is a JSON object",
                )
            } else {
                (
                    RecordFormat::Csv,
                    "because its first line is not a JSON object",
                )
            }
        }
    }
}

/// Prefix `error` with the format the file was read as and why.
pub fn explain(format: RecordFormat, why: &str, error: &str) -> String {
    let name = match format {
        RecordFormat::Csv => "CSV",
        RecordFormat::JsonLines => "JSON lines",
    };
    format!("read as {name} ({why}): {error}")
}

/// Split CSV text into records of fields (RFC 4180: quoted fields may hold commas, doubled
/// quotes and line breaks), each with the line it starts on.
pub fn csv_records(text: &str) -> std::result::Result<Vec<(usize, Vec<String>)>, String> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = text.chars().peekable();
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                if fields.iter().any(|f| !f.trim().is_empty()) {
                    records.push((start_line, std::mem::take(&mut fields)));
                }
                fields.clear();
                line += 1;
                start_line = line;
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if quoted {
        return Err(format!("line {start_line}: a quoted field is never closed"));
    }
    fields.push(field);
    if fields.iter().any(|f| !f.trim().is_empty()) {
        records.push((start_line, fields));
    }
    Ok(records)
}

/// Read a CSV file with a header row into one value per data row: the header is trimmed,
/// lower-cased and must name `required`; each row must have as many fields as the header.
/// Shared by label files and answers files.
pub fn map_csv<T>(
    text: &str,
    required: &str,
    example_header: &str,
    mut record: impl FnMut(&Fields, usize) -> std::result::Result<T, String>,
) -> std::result::Result<Vec<T>, String> {
    let mut rows = csv_records(text)?.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(format!(
            "the file is empty (expected a header row such as {example_header})"
        ));
    };
    let original: Vec<&str> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}'))
        .collect();
    let header: Vec<String> = original.iter().map(|h| h.to_lowercase()).collect();
    if !header.iter().any(|h| h == required) {
        return Err(format!(
            "line 1: the header has no `{required}` column (found {})",
            original.join(", ")
        ));
    }
    rows.map(|(line, values)| {
        if values.len() != header.len() {
            return Err(format!(
                "line {line}: {} fields, but the header has {}",
                values.len(),
                header.len()
            ));
        }
        record(&header.iter().cloned().zip(values).collect(), line)
    })
    .collect()
}

/// Read JSON lines (blank lines skipped) into one value per object, with 1-based line numbers.
/// Shared by label files and answers files.
pub fn map_jsonl<T>(
    text: &str,
    mut record: impl FnMut(
        &serde_json::Map<String, serde_json::Value>,
        usize,
    ) -> std::result::Result<T, String>,
) -> std::result::Result<Vec<T>, String> {
    let mut records = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| format!("line {line}: invalid JSON: {e}"))?;
        let Some(object) = value.as_object() else {
            return Err(format!("line {line}: expected a JSON object"));
        };
        records.push(record(object, line)?);
    }
    Ok(records)
}
