//! The OpenAI text-completions wire format (`/v1/completions`): a prompt given to the model as
//! it is, with no chat template. Judges whose template is the whole prompt (ShieldGemma's, a
//! rubric with `format = "raw"`) go this way; vLLM, SGLang, TGI and llama.cpp's server take it.

use std::sync::atomic::AtomicBool;

use serde::Serialize;
use serde_json::Value;

use super::chat::{answer_from, first_choice, read_token_logprobs};
use super::chat::{ChatAnswer, TokenLogprobs, TopLogprob};
use super::client::Client;
use crate::error::{Error, Result};

/// A `/v1/completions` request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletionRequest {
    /// The served model name.
    pub model: String,
    /// The whole prompt, as the model reads it (the server adds a beginning-of-text token
    /// where the model wants one).
    pub prompt: String,
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
    /// Alternatives per position (this API's `logprobs` is a count, not a flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u8>,
    /// Always one choice per request.
    pub n: u32,
    /// Always false: answers are read whole.
    pub stream: bool,
}

/// Read a text-completions response body. Log-probabilities are read in either form servers
/// write: `logprobs.content` (llama.cpp, like chat completions) or the legacy `tokens`,
/// `token_logprobs` and `top_logprobs` lists (OpenAI, vLLM).
pub fn parse_completion_response(body: &str) -> std::result::Result<ChatAnswer, String> {
    let (json, choice) = first_choice(body)?;
    let text = match choice.get("text") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => return Err(format!("the completion's text is not text: {other}")),
    };
    let logprobs = match choice.get("logprobs") {
        Some(Value::Object(l)) => match (l.get("content"), l.get("tokens")) {
            (Some(Value::Array(items)), _) => Some(read_token_logprobs(items)?),
            (_, Some(Value::Array(_))) => Some(read_legacy_logprobs(l)?),
            _ => None,
        },
        _ => None,
    };
    Ok(answer_from(&json, &choice, text, logprobs))
}

/// The legacy form: parallel lists of tokens, their log-probabilities, and per position an
/// object from alternative token to log-probability.
fn read_legacy_logprobs(
    l: &serde_json::Map<String, Value>,
) -> std::result::Result<Vec<TokenLogprobs>, String> {
    let list = |name: &str| l.get(name).and_then(Value::as_array);
    let tokens = list("tokens").ok_or("unreadable logprobs: no `tokens` list")?;
    let chosen = list("token_logprobs");
    let tops = list("top_logprobs");
    let mut out = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let token = token
            .as_str()
            .ok_or_else(|| format!("unreadable logprobs: token {i} is not text"))?;
        let logprob = chosen
            .and_then(|c| c.get(i))
            .and_then(Value::as_f64)
            .unwrap_or(f64::NEG_INFINITY);
        let mut top_logprobs = Vec::new();
        if let Some(Value::Object(alternatives)) = tops.and_then(|t| t.get(i)) {
            for (alt, lp) in alternatives {
                let logprob = lp.as_f64().ok_or_else(|| {
                    format!("unreadable logprobs: alternative `{alt}` at {i} has no number")
                })?;
                top_logprobs.push(TopLogprob {
                    token: alt.clone(),
                    logprob,
                    bytes: None,
                });
            }
        }
        out.push(TokenLogprobs {
            token: token.to_owned(),
            logprob,
            bytes: None,
            top_logprobs,
        });
    }
    Ok(out)
}

impl Client {
    /// Ask for one text completion (retries, timeouts and errors as [`Client::chat`]).
    pub fn complete(
        &self,
        request: &CompletionRequest,
        what: &str,
        cancel: &AtomicBool,
    ) -> Result<ChatAnswer> {
        let body = serde_json::to_string(request).map_err(Error::json("a completion request"))?;
        let (mut answer, attempts, latency) = self.send(
            "POST",
            "/completions",
            Some(&body),
            what,
            cancel,
            &parse_completion_response,
        )?;
        answer.served.attempts = attempts;
        answer.latency = latency;
        if request.logprobs.is_some() && answer.logprobs.is_none() {
            return Err(self.error(
                what,
                "the server returned no logprobs though they were asked for; the judge's score \
                 reads them (vLLM, SGLang and llama.cpp's server return them)",
            ));
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_llama_cpp_and_legacy_logprobs_alike() {
        let llama = r#"{"choices":[{"text":" No","index":0,"finish_reason":"length",
            "logprobs":{"content":[{"id":1,"token":" No","logprob":-0.2,"bytes":[32,78,111],
            "top_logprobs":[{"id":1,"token":" No","logprob":-0.2,"bytes":[32,78,111]},
                            {"id":2,"token":" Yes","logprob":-1.8,"bytes":[32,89,101,115]}]}]}}],
            "model":"judge","object":"text_completion","usage":{"completion_tokens":1,"prompt_tokens":9}}"#;
        let legacy = r#"{"choices":[{"text":" No","index":0,"finish_reason":"length",
            "logprobs":{"tokens":[" No"],"token_logprobs":[-0.2],"text_offset":[0],
            "top_logprobs":[{" No":-0.2," Yes":-1.8}]}}],
            "model":"judge","object":"text_completion","usage":{"completion_tokens":1,"prompt_tokens":9}}"#;
        for body in [llama, legacy] {
            let a = parse_completion_response(body).unwrap();
            assert_eq!(a.text, " No");
            assert_eq!(a.served.server_model, "judge");
            assert_eq!(a.served.prompt_tokens, 9);
            let lp = a.logprobs.unwrap();
            assert_eq!(lp.len(), 1);
            assert_eq!(lp[0].token, " No");
            let mut alts: Vec<(String, f64)> = lp[0]
                .top_logprobs
                .iter()
                .map(|t| (t.token.clone(), t.logprob))
                .collect();
            alts.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(alts, [(" No".into(), -0.2), (" Yes".into(), -1.8)]);
        }
        let none = r#"{"choices":[{"text":"x","logprobs":null,"finish_reason":"stop"}]}"#;
        assert!(parse_completion_response(none).unwrap().logprobs.is_none());
    }

    #[test]
    fn the_request_sends_logprobs_as_a_count() {
        let r = CompletionRequest {
            model: "m".into(),
            prompt: "p".into(),
            max_tokens: 4,
            temperature: 0.0,
            top_p: 1.0,
            seed: Some(0),
            stop: Vec::new(),
            logprobs: Some(20),
            n: 1,
            stream: false,
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["logprobs"], 20);
        assert!(json.get("messages").is_none() && json.get("stop").is_none());
    }
}
