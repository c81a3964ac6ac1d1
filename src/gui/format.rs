//! The workbench's own small text helpers (digests, sizes, durations), gathered so each is written
//! once. Figures of the audit (rates, points, p-values) are worded by `crate::report`, not here.

pub use crate::util::hash::short_hash as short;

/// A file size in kB, MB or GB (decimal units, as file managers show them).
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

/// A duration in seconds as `1 h 2 min`, `3 min 4 s` or `5 s`; `—` when unknown.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "—".into();
    }
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The text with its first letter in upper case.
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The first line of a text, cut at 240 characters, for one-line table cells.
pub fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > 240 {
        line.chars().take(240).collect::<String>() + "…"
    } else {
        line.to_owned()
    }
}

/// The last component of a path (a model file's name), or the whole text when it has none.
pub fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned())
}

/// A served model's source (`openai:<URL>#<model>`) as `model on URL`; `None` for other sources.
pub fn served_name(source: &str) -> Option<String> {
    let endpoint = crate::serve::Endpoint::parse(source).ok()?;
    Some(match endpoint.model() {
        Some(model) => format!("{model} on {}", endpoint.base_url()),
        None => endpoint.base_url(),
    })
}

/// A model source in a list of runs: a served model as `model on host:port`, a file by its name.
pub fn source_name(source: &str) -> String {
    match crate::serve::Endpoint::parse(source) {
        Ok(e) => match e.model() {
            Some(model) => format!("{model} on {}", e.authority()),
            None => e.authority().to_owned(),
        },
        Err(_) => file_name(source),
    }
}

/// `1 retry`, `2 retries`: a count with its noun.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_largest_whole_unit() {
        assert_eq!(duration(f64::NAN), "—");
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(125.0), "2 min 5 s");
        assert_eq!(duration(3725.0), "1 h 2 min");
    }

    #[test]
    fn digests_shorten_to_twelve_digits_and_short_text_stays() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
        assert_eq!(file_name("/models/a.gguf"), "a.gguf");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
    }

    #[test]
    fn served_models_read_as_a_name_on_a_server() {
        let source = "openai:http://127.0.0.1:8080/v1#smol";
        assert_eq!(
            served_name(source).as_deref(),
            Some("smol on http://127.0.0.1:8080/v1")
        );
        assert_eq!(source_name(source), "smol on 127.0.0.1:8080");
        assert_eq!(source_name("/models/a.gguf"), "a.gguf");
        assert_eq!(served_name("/models/a.gguf"), None);
        assert_eq!(count(1, "retry", "retries"), "1 retry");
        assert_eq!(count(0, "retry", "retries"), "0 retries");
    }
}
