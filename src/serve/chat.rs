//! The OpenAI chat-completions wire format, as much of it as an audit sends and reads, and what
//! one answer's response said (kept with the answer in the store).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::Finish;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_owned(),
            content: content.into(),
        }
    }
}

/// The messages of an audit prompt: the system prompt, if any, then the user's turns.
pub fn prompt_messages(system: Option<&str>, turns: &[String]) -> Vec<Message> {
    let mut messages = Vec::with_capacity(turns.len() + 1);
    if let Some(s) = system.filter(|s| !s.is_empty()) {
        messages.push(Message::new("system", s));
    }
    // Consecutive user turns go as one message, as the in-process engine does for templates
    // that insist on alternating roles: most servers' templates do.
    if !turns.is_empty() {
        messages.push(Message::new("user", turns.join("\n\n")));
    }
    messages
}

/// A `/v1/chat/completions` request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The served model name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Most tokens in the answer.
    pub max_tokens: usize,
    /// 0 is greedy.
    pub temperature: f64,
    /// Nucleus sampling mass.
    pub top_p: f64,
    /// Sampling seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stop strings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Ask for the chosen tokens' log-probabilities.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub logprobs: bool,
    /// How many alternatives per position (with `logprobs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u8>,
    /// Always one choice per request: samples are separate requests with their own seeds.
    pub n: u32,
    /// Always false: answers are read whole.
    pub stream: bool,
}

impl ChatRequest {
    /// A greedy request (temperature 0, seed 0, one choice, no logprobs, no stop strings): what
    /// judges, probes and benchmarks send; callers change the fields they need.
    pub fn greedy(model: impl Into<String>, messages: Vec<Message>, max_tokens: usize) -> Self {
        Self {
            model: model.into(),
            messages,
            max_tokens,
            temperature: 0.0,
            top_p: 1.0,
            seed: Some(0),
            stop: Vec::new(),
            logprobs: false,
            top_logprobs: None,
            n: 1,
            stream: false,
        }
    }
}

/// One alternative at an answer position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    /// The token's text.
    pub token: String,
    /// Its natural-log probability.
    pub logprob: f64,
    /// The token's bytes, when the server sends them (a token that ends inside a multi-byte
    /// character has `token: ""` but its bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
}

/// One answer position's token and alternatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprobs {
    /// The chosen token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f64,
    /// The chosen token's bytes, when the server sends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
    /// The most likely tokens at this position.
    #[serde(default)]
    pub top_logprobs: Vec<TopLogprob>,
}

/// What the server said about one answer, kept with it in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServedAnswer {
    /// The `model` field of the response.
    pub server_model: String,
    /// `system_fingerprint`, when the server sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// `finish_reason` as the server wrote it.
    pub finish_reason: String,
    /// `usage.prompt_tokens`.
    pub prompt_tokens: u32,
    /// `usage.completion_tokens`.
    pub completion_tokens: u32,
    /// Requests it took (1 when the first one answered).
    pub attempts: u32,
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    /// The answer's text.
    pub text: String,
    /// How it ended, in the store's terms.
    pub finish: Finish,
    /// The response's facts.
    pub served: ServedAnswer,
    /// Per-position log-probabilities, when asked for and given.
    pub logprobs: Option<Vec<TokenLogprobs>>,
    /// Time the server says it spent on the answer (llama.cpp's `timings`: prompt plus
    /// generation), when it says.
    pub server_time: Option<std::time::Duration>,
    /// From sending the request to having parsed the answer (the successful attempt).
    pub latency: std::time::Duration,
    /// Time this client spent on the request itself: writing its JSON and reading the answer's.
    pub client_time: std::time::Duration,
}

/// Read a chat-completions response body. Errors say what is missing; they are retried (a
/// truncated body is usually a broken connection).
pub fn parse_response(body: &str) -> Result<ChatAnswer, String> {
    let (json, choice) = first_choice(body)?;
    let message = choice
        .get("message")
        .ok_or("the response's choice has no message")?;
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => return Err(format!("the message content is not text: {other}")),
    };
    let logprobs = match choice.get("logprobs").and_then(|l| l.get("content")) {
        Some(Value::Array(items)) => Some(read_token_logprobs(items)?),
        _ => None,
    };
    Ok(answer_from(&json, &choice, text, logprobs))
}

/// The response as JSON and its first choice, or why not (not JSON, an error, no choices).
pub(super) fn first_choice(body: &str) -> Result<(Value, Value), String> {
    let json: Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "the response is not JSON ({e}): {}",
            crate::util::text::truncate(body, 120)
        )
    })?;
    if let Some(err) = json.get("error") {
        return Err(format!("the server answered with an error: {err}"));
    }
    let choice = json
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .cloned()
        .ok_or("the response has no choices")?;
    Ok((json, choice))
}

/// `logprobs.content` as chat completions (and llama.cpp's text completions) write it.
pub(super) fn read_token_logprobs(items: &[Value]) -> Result<Vec<TokenLogprobs>, String> {
    items
        .iter()
        .map(|i| serde_json::from_value::<TokenLogprobs>(i.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("unreadable logprobs: {e}"))
}

/// The answer: `text`, its logprobs, and what the response and its choice said about it.
pub(super) fn answer_from(
    json: &Value,
    choice: &Value,
    text: String,
    logprobs: Option<Vec<TokenLogprobs>>,
) -> ChatAnswer {
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let finish = match finish_reason.as_str() {
        "length" => Finish::Length,
        "content_filter" => Finish::Filtered,
        _ => Finish::Stop,
    };
    let usage = json.get("usage");
    let count = |field: &str| {
        usage
            .and_then(|u| u.get(field))
            .and_then(Value::as_u64)
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    ChatAnswer {
        text,
        finish,
        served: ServedAnswer {
            server_model: json
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            system_fingerprint: json
                .get("system_fingerprint")
                .and_then(Value::as_str)
                .map(str::to_owned),
            finish_reason,
            prompt_tokens: count("prompt_tokens"),
            completion_tokens: count("completion_tokens"),
            attempts: 1,
        },
        logprobs,
        server_time: json.get("timings").and_then(|t| {
            let ms = |f: &str| t.get(f).and_then(Value::as_f64);
            let total = ms("prompt_ms")? + ms("predicted_ms")?;
            (total.is_finite() && total >= 0.0)
                .then(|| std::time::Duration::from_secs_f64(total / 1e3))
        }),
        latency: std::time::Duration::ZERO,
        client_time: std::time::Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_openai_response() {
        let body = r#"{"choices":[{"finish_reason":"length","index":0,"message":{"role":"assistant","content":"Red, blue"},
            "logprobs":{"content":[{"id":1,"token":"Red","logprob":-0.1,"bytes":[82],"top_logprobs":[{"id":1,"token":"Red","logprob":-0.1}]}]}}],
            "created":1,"model":"smol","system_fingerprint":"b1-abc","object":"chat.completion",
            "usage":{"completion_tokens":2,"prompt_tokens":30,"total_tokens":32}}"#;
        let a = parse_response(body).unwrap();
        assert_eq!(a.text, "Red, blue");
        assert_eq!(a.finish, Finish::Length);
        assert_eq!(a.served.server_model, "smol");
        assert_eq!(a.served.system_fingerprint.as_deref(), Some("b1-abc"));
        assert_eq!(
            (a.served.prompt_tokens, a.served.completion_tokens),
            (30, 2)
        );
        let lp = a.logprobs.unwrap();
        assert_eq!(lp[0].top_logprobs[0].token, "Red");
    }

    #[test]
    fn garbage_and_errors_are_explained() {
        assert!(parse_response(r#"{"choices": [ {"mess"#)
            .unwrap_err()
            .contains("not JSON"));
        assert!(parse_response(r#"{"choices": []}"#)
            .unwrap_err()
            .contains("no choices"));
        assert!(parse_response(r#"{"error": {"message": "boom"}}"#)
            .unwrap_err()
            .contains("boom"));
    }

    #[test]
    fn messages_join_user_turns_and_skip_an_empty_system_prompt() {
        let m = prompt_messages(Some(""), &["a".into(), "b".into()]);
        assert_eq!(m, vec![Message::new("user", "a\n\nb")]);
        let m = prompt_messages(Some("be safe"), &["a".into()]);
        assert_eq!(m[0], Message::new("system", "be safe"));
    }
}
