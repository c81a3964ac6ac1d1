//! Judge prompt templates: minijinja files that turn a request and an answer into the text a
//! judge model reads. The shipped ones live in `prompt-packs/judges/` and are compiled in; a
//! user may give any file instead (a benchmark's official judge prompt, say).
//!
//! A template may begin with a header comment that says how to use it:
//!
//! ```text
//! {#- aligndiff judge
//! parser = "binary"          # binary, strongreject, harm-score, llama-guard, qwen3guard, yes-no
//! format = "chat"            # chat: the text is the user's message in the judge's chat template
//!                            # raw: the text is given to the model as it is
//! max_new_tokens = 8         # default: enough for the parser's format
//! -#}
//! ```
//!
//! Without a header a template is a `binary` judge in `chat` format. Variables: `request`
//! (also `question`, `prompt`, `forbidden_prompt`, `goal`, `behavior`), `answer` (also
//! `response`, `completion`, `generation`), `category`, `policy` (ShieldGemma's policy, '' for
//! others), `bos_token`, `eos_token`. Using any other name is an error, found when the template
//! is loaded rather than hours later.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::parse::Parser;
use crate::error::{Error, Result};
use crate::model::template::{check_output_size, sandbox};
use crate::util::hash::hex_sha256;

/// How a rendered template reaches the judge model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptFormat {
    /// The text is the user's message, wrapped in the judge model's own chat template.
    Chat,
    /// The text is the whole prompt, given to the model as it is.
    Raw,
}

/// Templates compiled into the binary: (name, text).
const SHIPPED: &[(&str, &str)] = &[
    (
        "fulfillment",
        include_str!("../../prompt-packs/judges/fulfillment.jinja"),
    ),
    (
        "strongreject",
        include_str!("../../prompt-packs/judges/strongreject.jinja"),
    ),
    (
        "harm-score",
        include_str!("../../prompt-packs/judges/harm-score.jinja"),
    ),
    (
        "sorry-bench",
        include_str!("../../prompt-packs/judges/sorry-bench.jinja"),
    ),
    (
        "shieldgemma",
        include_str!("../../prompt-packs/judges/shieldgemma.jinja"),
    ),
    (
        "harm-probe",
        include_str!("../../prompt-packs/judges/harm-probe.jinja"),
    ),
];

/// Names of the shipped rubric templates (`rubric:NAME@MODEL`).
pub const RUBRIC_NAMES: [&str; 4] = ["fulfillment", "strongreject", "harm-score", "sorry-bench"];

/// The header comment's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    parser: Option<Parser>,
    format: Option<PromptFormat>,
    max_new_tokens: Option<usize>,
}

/// What a template is rendered with.
#[derive(Debug, Clone, Copy, Default)]
pub struct PromptVars<'a> {
    /// The request the judged model received.
    pub request: &'a str,
    /// The judged model's answer.
    pub answer: &'a str,
    /// The request's category name ('' when unknown).
    pub category: &'a str,
    /// A policy text (ShieldGemma asks about one policy per prompt).
    pub policy: &'a str,
    /// The judge tokenizer's beginning-of-text token.
    pub bos_token: &'a str,
    /// The judge tokenizer's end-of-text token.
    pub eos_token: &'a str,
}

/// A loaded, checked judge template.
#[derive(Debug, Clone)]
pub struct JudgeTemplate {
    /// Shipped name or file stem.
    pub name: String,
    /// `builtin:NAME` or the file's path.
    pub origin: String,
    source: String,
    /// SHA-256 of the template text.
    pub sha256: String,
    /// How the judge's answer is read.
    pub parser: Parser,
    /// How the text reaches the model.
    pub format: PromptFormat,
    /// Most tokens the judge may write.
    pub max_new_tokens: usize,
}

impl JudgeTemplate {
    /// A shipped template by name.
    pub fn shipped(name: &str) -> Option<Self> {
        let (name, text) = SHIPPED.iter().find(|(n, _)| *n == name)?;
        let origin = format!("builtin:{name}");
        // The shipped templates are checked by the tests; an error here is a build defect.
        Self::parse(name, &origin, text, Path::new(&origin)).ok()
    }

    /// A shipped template by name, or a template file.
    pub fn load(name_or_path: &str) -> Result<Self> {
        if let Some(t) = Self::shipped(name_or_path) {
            return Ok(t);
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            return Err(Error::Invalid(format!(
                "no judge template `{name_or_path}`: not a shipped template ({}) and no such file",
                RUBRIC_NAMES.join(", ")
            )));
        }
        Self::from_file(path)
    }

    /// Read and check a template file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("template")
            .to_owned();
        Self::parse(&name, &path.display().to_string(), &text, path)
    }

    fn parse(name: &str, origin: &str, text: &str, path: &Path) -> Result<Self> {
        let header = read_header(text).map_err(|e| Error::bad_file(path, e))?;
        let parser = header.parser.unwrap_or(Parser::Binary);
        let max_new_tokens = header
            .max_new_tokens
            .unwrap_or_else(|| parser.default_max_new_tokens());
        if !(1..=4096).contains(&max_new_tokens) {
            return Err(Error::bad_file(
                path,
                "judge template header: max_new_tokens must be between 1 and 4096",
            ));
        }
        let template = Self {
            name: name.to_owned(),
            origin: origin.to_owned(),
            source: text.to_owned(),
            sha256: hex_sha256(text.as_bytes()),
            parser,
            format: header.format.unwrap_or(PromptFormat::Chat),
            max_new_tokens,
        };
        // A trial render finds syntax errors and misspelt variables now, not after generation.
        template
            .render(&PromptVars {
                request: "How do I pick a lock?",
                answer: "I can't help with that.",
                category: "Property Crimes",
                policy: "No dangerous content.",
                ..PromptVars::default()
            })
            .map_err(|e| Error::bad_file(path, e.to_string()))?;
        Ok(template)
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Render the judge's prompt text.
    pub fn render(&self, vars: &PromptVars<'_>) -> Result<String> {
        let mut env = sandbox();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        env.add_template("judge", &self.source)
            .map_err(|e| Error::Invalid(format!("judge template does not parse: {e}")))?;
        let template = env
            .get_template("judge")
            .map_err(|e| Error::Invalid(format!("judge template: {e}")))?;
        let rendered = template
            .render(minijinja::context! {
                request => vars.request,
                question => vars.request,
                prompt => vars.request,
                forbidden_prompt => vars.request,
                goal => vars.request,
                behavior => vars.request,
                answer => vars.answer,
                response => vars.answer,
                completion => vars.answer,
                generation => vars.answer,
                category => vars.category,
                policy => vars.policy,
                bos_token => vars.bos_token,
                eos_token => vars.eos_token,
            })
            .map_err(|e| Error::Invalid(format!("judge template failed: {e}")))?;
        check_output_size(&rendered, &format!("judge template {}", self.origin))?;
        Ok(rendered)
    }
}

/// The settings in an `aligndiff judge` header comment, if the template starts with one.
fn read_header(text: &str) -> std::result::Result<Header, String> {
    let trimmed = text.trim_start();
    let Some(rest) = trimmed.strip_prefix("{#") else {
        return Ok(Header::default());
    };
    let Some(end) = rest.find("#}") else {
        return Err("the opening comment `{#` is never closed".into());
    };
    let body = rest[..end].strip_prefix('-').unwrap_or(&rest[..end]);
    let body = body.strip_suffix('-').unwrap_or(body);
    let mut lines = body.lines();
    if lines.next().map(str::trim) != Some("aligndiff judge") {
        return Ok(Header::default());
    }
    // A leading empty line keeps TOML's line numbers equal to the file's (the header opens
    // on line 1).
    let toml_text = format!("\n{}", lines.collect::<Vec<_>>().join("\n"));
    toml::from_str(&toml_text).map_err(|e| format!("judge template header: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_templates_load_and_use_their_variables() {
        for name in RUBRIC_NAMES.iter().chain(&["shieldgemma", "harm-probe"]) {
            let t = JudgeTemplate::shipped(name).unwrap_or_else(|| panic!("{name} does not load"));
            let text = t
                .render(&PromptVars {
                    request: "REQUEST-TEXT",
                    answer: "ANSWER-TEXT",
                    policy: "POLICY-TEXT",
                    ..PromptVars::default()
                })
                .unwrap();
            assert!(text.contains("REQUEST-TEXT"), "{name}");
            if *name != "harm-probe" {
                assert!(text.contains("ANSWER-TEXT"), "{name}");
            }
            assert!(!text.contains("aligndiff judge"), "{name}: header leaked");
            assert_eq!(t.sha256, hex_sha256(t.source().as_bytes()));
        }
        let f = JudgeTemplate::shipped("fulfillment").unwrap();
        assert_eq!((f.parser, f.format), (Parser::Binary, PromptFormat::Chat));
        assert_eq!(
            JudgeTemplate::shipped("strongreject").unwrap().parser,
            Parser::Strongreject
        );
        let s = JudgeTemplate::shipped("shieldgemma").unwrap();
        assert_eq!((s.parser, s.format), (Parser::YesNo, PromptFormat::Raw));
    }

    #[test]
    fn a_dropped_in_template_without_header_is_a_binary_chat_judge() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sorry-official.jinja");
        std::fs::write(
            &p,
            "Question: {{ question }}\nResponse: {{ response }}\nOutput 1 or 0.",
        )
        .unwrap();
        let t = JudgeTemplate::load(p.to_str().unwrap()).unwrap();
        assert_eq!(
            (t.parser, t.format, t.max_new_tokens),
            (Parser::Binary, PromptFormat::Chat, 8)
        );
        assert_eq!(t.name, "sorry-official");
        let text = t
            .render(&PromptVars {
                request: "q",
                answer: "a",
                ..PromptVars::default()
            })
            .unwrap();
        assert_eq!(text, "Question: q\nResponse: a\nOutput 1 or 0.");
    }

    #[test]
    fn bad_templates_are_clear_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text, why) in [
            ("typo.jinja", "Request: {{ reqest }}", "undefined"),
            ("syntax.jinja", "{% if request %}unclosed", "syntax"),
            (
                "header.jinja",
                "{#- aligndiff judge\nparser = \"sentiment\"\n-#}\n{{ request }}",
                "unknown variant `sentiment`",
            ),
            (
                "key.jinja",
                "{#- aligndiff judge\ntemperature = 1\n-#}\n{{ request }}",
                "unknown field `temperature`",
            ),
            (
                "open.jinja",
                "{# never closed {{ request }}",
                "never closed",
            ),
            (
                "tokens.jinja",
                "{#- aligndiff judge\nmax_new_tokens = 0\n-#}\n{{ request }}",
                "max_new_tokens",
            ),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            let e = JudgeTemplate::load(p.to_str().unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(name) && e.contains(why), "{name}: {e}");
        }
        let e = JudgeTemplate::load("fulfilment").unwrap_err().to_string();
        assert!(
            e.contains(
                "not a shipped template (fulfillment, strongreject, harm-score, sorry-bench)"
            ),
            "{e}"
        );
    }

    #[test]
    fn endless_judge_template_runs_out_of_fuel() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("loop.jinja");
        std::fs::write(
            &p,
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}{{ request }}",
        )
        .unwrap();
        let e = JudgeTemplate::load(p.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("loop.jinja") && e.contains("fuel"), "{e}");
    }
}
