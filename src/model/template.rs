//! Chat templates (Jinja, from `tokenizer_config.json` or GGUF metadata) rendered in a sandbox:
//! minijinja with a fuel limit and an output-size cap, so a hostile template cannot hang or
//! exhaust the machine.

use crate::util::hash::hex_sha256;
use serde::Serialize;

use crate::error::{Error, Result};

/// Instructions a template may execute before it is stopped.
const FUEL: u64 = 2_000_000;
/// Largest prompt a template may produce.
const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// End-of-turn markers of common chat formats.
const END_OF_TURN_MARKERS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
    "<|endoftext|>",
    "<|end_of_text|>",
];

/// One chat message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with the given role.
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.to_owned(),
            content: content.to_owned(),
        }
    }
}

/// A model's chat template.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: Option<String>,
    /// SHA-256 of the template text (of the empty string when the model has none).
    pub sha256: String,
    /// Where it came from.
    pub origin: String,
}

impl ChatTemplate {
    /// Wrap template text from `origin`.
    pub fn new(source: Option<String>, origin: &str) -> Self {
        let sha256 = hex_sha256(source.as_deref().unwrap_or("").as_bytes());
        Self {
            source,
            sha256,
            origin: if origin.is_empty() {
                "none".into()
            } else {
                origin.into()
            },
        }
    }

    /// Whether the model ships a template.
    pub fn is_present(&self) -> bool {
        self.source.is_some()
    }

    /// The template text.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// End-of-turn marker strings the template emits.
    pub fn end_of_turn_markers(&self) -> Vec<&'static str> {
        let Some(src) = &self.source else {
            return Vec::new();
        };
        END_OF_TURN_MARKERS
            .iter()
            .copied()
            .filter(|m| src.contains(m))
            .collect()
    }

    /// Render a conversation as the model expects it, ready for the assistant's turn.
    pub fn render(&self, messages: &[Message], bos_token: &str, eos_token: &str) -> Result<String> {
        let Some(source) = &self.source else {
            // No template (a base model): the plain text of the turns.
            return Ok(messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n\n"));
        };
        let mut env = sandbox();
        env.add_template("chat", source).map_err(|e| {
            Error::Invalid(format!(
                "chat template ({}) does not parse: {e}",
                self.origin
            ))
        })?;
        let template = env
            .get_template("chat")
            .map_err(|e| Error::Invalid(format!("chat template ({}): {e}", self.origin)))?;
        let messages: Vec<minijinja::Value> = messages
            .iter()
            .map(|m| {
                minijinja::Value::from_pairs([
                    ("role", m.role.as_str()),
                    ("content", m.content.as_str()),
                ])
            })
            .collect();
        let rendered = template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => bos_token,
                eos_token => eos_token,
            })
            .map_err(|e| Error::Invalid(format!("chat template ({}) failed: {e}", self.origin)))?;
        check_output_size(&rendered, &format!("chat template ({})", self.origin))?;
        Ok(rendered)
    }
}

/// A minijinja environment for untrusted templates: a fuel limit, Python string methods as in
/// Hugging Face templates, `raise_exception` as an error, and a fixed `strftime_now`.
pub(crate) fn sandbox() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_function("strftime_now", |_fmt: String| "01 Jan 2026".to_string());
    env
}

/// Refuse a rendered template larger than the output cap; `what` names the template.
pub(crate) fn check_output_size(rendered: &str, what: &str) -> Result<()> {
    if rendered.len() > MAX_OUTPUT_BYTES {
        return Err(Error::Invalid(format!(
            "{what} produced {} bytes, more than the {MAX_OUTPUT_BYTES}-byte cap",
            rendered.len()
        )));
    }
    Ok(())
}

/// The messages for one prompt: an optional system prompt, then the user turns. Earlier
/// assistant turns of a multi-turn prompt are given as `assistant_turns`.
pub fn conversation(
    system: Option<&str>,
    user_turns: &[String],
    assistant_turns: &[String],
) -> Vec<Message> {
    let mut messages = Vec::with_capacity(user_turns.len() * 2 + 1);
    if let Some(system) = system.filter(|s| !s.is_empty()) {
        messages.push(Message::new("system", system));
    }
    for (i, turn) in user_turns.iter().enumerate() {
        messages.push(Message::new("user", turn));
        if let Some(answer) = assistant_turns.get(i) {
            messages.push(Message::new("assistant", answer));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_renders_system_and_user_turns() {
        let t = ChatTemplate::new(Some(CHATML.into()), "test");
        let out = t
            .render(
                &conversation(Some("Be brief."), &["Hi".into()], &[]),
                "",
                "",
            )
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(t.end_of_turn_markers(), vec!["<|im_end|>"]);
    }

    #[test]
    fn endless_template_runs_out_of_fuel() {
        let t = ChatTemplate::new(
            Some(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
                    .into(),
            ),
            "hostile",
        );
        let err = t.render(&[Message::new("user", "hi")], "", "").unwrap_err();
        assert!(
            err.to_string().contains("fuel") || err.to_string().contains("failed"),
            "{err}"
        );
    }

    #[test]
    fn python_string_methods_work_as_in_hf_templates() {
        let t = ChatTemplate::new(
            Some("{{ messages[0]['content'].strip().upper() }}".into()),
            "pycompat",
        );
        assert_eq!(
            t.render(&[Message::new("user", "  hi ")], "", "").unwrap(),
            "HI"
        );
    }

    #[test]
    fn raise_exception_becomes_an_error() {
        let t = ChatTemplate::new(
            Some("{{ raise_exception('roles must alternate') }}".into()),
            "x",
        );
        let err = t.render(&[], "", "").unwrap_err();
        assert!(err.to_string().contains("roles must alternate"), "{err}");
    }
}
