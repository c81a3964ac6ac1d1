//! The release gate as `JUnit` XML, the format CI systems (GitHub Actions, GitLab, Jenkins) read:
//! one test case per gate rule, a failing rule as a `<failure>` carrying the measured figure,
//! the threshold and the categories that broke it. The audit's headline and both models'
//! fingerprints go in the suite's properties and system-out.

use std::fmt::Write as _;

use crate::audit::AuditResult;

use super::format;

/// Escape text for XML attribute values and character data.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The gate's rules as a `JUnit` document, or `None` when the audit had no gate.
pub fn to_junit(r: &AuditResult) -> Option<String> {
    let gate = r.gate.as_ref()?;
    let failures = gate.rules.iter().filter(|rule| !rule.passed).count();
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<testsuites name="aligndiff" tests="{}" failures="{failures}" errors="0" time="{:.3}">"#,
        gate.rules.len(),
        r.wall_seconds
    );
    let _ = writeln!(
        s,
        r#"  <testsuite name="aligndiff release gate" tests="{}" failures="{failures}" errors="0" skipped="0" time="{:.3}" timestamp="{}">"#,
        gate.rules.len(),
        r.wall_seconds,
        xml(&r.created)
    );
    let _ = writeln!(s, "    <properties>");
    for (name, value) in [
        ("reference", r.reference.plan.label()),
        ("reference_fingerprint", r.reference.fingerprint.id.clone()),
        ("candidate", r.candidate.plan.label()),
        ("candidate_fingerprint", r.candidate.fingerprint.id.clone()),
        ("aligndiff_version", r.tool.version.clone()),
    ] {
        let _ = writeln!(
            s,
            r#"      <property name="{name}" value="{}"/>"#,
            xml(&value)
        );
    }
    let _ = writeln!(s, "    </properties>");
    for rule in &gate.rules {
        let name = format!("{} {:.3}", rule.rule, rule.threshold);
        let _ = write!(
            s,
            r#"    <testcase classname="aligndiff.gate" name="{}" time="0">"#,
            xml(&name)
        );
        if rule.passed {
            let _ = writeln!(s, "</testcase>");
            continue;
        }
        let message = format!(
            "measured {:.3}, threshold {:.3}",
            rule.value, rule.threshold
        );
        let mut detail = message.clone();
        if !rule.offenders.is_empty() {
            detail.push_str("\ncategories: ");
            detail.push_str(&rule.offenders.join("; "));
        }
        let _ = writeln!(
            s,
            r#"
      <failure message="{}" type="aligndiff.gate">{}</failure>
    </testcase>"#,
            xml(&message),
            xml(&detail)
        );
    }
    let _ = writeln!(
        s,
        "    <system-out>{}</system-out>",
        xml(&format::headline(r))
    );
    let _ = writeln!(s, "  </testsuite>");
    let _ = writeln!(s, "</testsuites>");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::xml;

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(
            xml(r#"a<b & "c" 'd'>"#),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(xml("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(xml("tab\tnew\nline"), "tab\tnew\nline");
    }
}
