//! Models on a server: an OpenAI-compatible endpoint (vLLM, SGLang, TGI, llama.cpp's
//! `llama-server`, Ollama) answers the audit's prompts or a judge's, while the store, resume,
//! provenance and statistics stay those of local models.
//!
//! - [`endpoint`]: the `openai:<base URL>#<model>` source, credentials kept out of sight.
//! - [`client`]: one server: model list, chat completions, retries, timeouts, the API key.
//! - [`pool`]: many requests with a bounded number in flight.
//! - [`chat`]: the wire format and what a response said about its answer.
//! - [`completion`]: text completions, for prompts given to the model as they are.
//! - [`bench`]: answers per minute and the client's cost per request.

pub mod bench;
pub mod chat;
pub mod client;
pub mod completion;
pub mod endpoint;
pub mod pool;

use std::sync::atomic::AtomicBool;

pub use chat::{prompt_messages, ChatAnswer, ChatRequest, Message, ServedAnswer};
pub use client::{Client, ModelEntry, ServingSettings, Traffic};
pub use completion::CompletionRequest;
pub use endpoint::{is_served, public_source, Endpoint, DEFAULT_KEY_ENV, SCHEME};
pub use pool::{send_all, send_each, Job};

use crate::error::Result;
use crate::model::{Fingerprint, ServedIdentity};

/// A served model, found on its server.
#[derive(Debug)]
pub struct ServedModel {
    /// The client, bound to the endpoint.
    pub client: Client,
    /// The model-list entry of the model used.
    pub entry: ModelEntry,
    /// Its identity, under which its answers are stored.
    pub fingerprint: Fingerprint,
}

impl ServedModel {
    /// Parse `source`, ask the server for its models and pick the one named (or its only one).
    pub fn connect(
        source: &str,
        key_env: Option<&str>,
        settings: &ServingSettings,
        cancel: &AtomicBool,
    ) -> Result<Self> {
        let endpoint = Endpoint::parse(source)?;
        let client = Client::new(endpoint, key_env, settings.clone())?;
        let entry = client.resolve(cancel)?;
        let fingerprint = identity(client.endpoint(), &entry);
        Ok(Self {
            client,
            entry,
            fingerprint,
        })
    }

    /// The served model name requests carry.
    pub fn name(&self) -> &str {
        &self.entry.id
    }

    /// `openai:<base URL>#<model>`, without credentials.
    pub fn label(&self) -> String {
        self.client.endpoint().with_model(&self.entry.id).display()
    }
}

/// The identity answers of `entry` on `endpoint` are stored under: the backend, the base URL,
/// the served name and what the model list said of it (less the server's settings).
pub fn identity(endpoint: &Endpoint, entry: &ModelEntry) -> Fingerprint {
    Fingerprint::served(ServedIdentity {
        backend: "openai".into(),
        endpoint: endpoint.base_url(),
        served_model: entry.id.clone(),
        server_said: client::identity_fields(&entry.entry),
    })
}

/// Whether a server refused a request because the prompt and the answer do not fit the
/// model's context, as llama.cpp (`exceeds the available context size`), vLLM and OpenAI
/// (`maximum context length`), SGLang (`longer than the model's context length`) and TGI
/// (`must be <=`) word it. Only a refusal (HTTP 400 or 413) counts, never a failure retried
/// to the end.
pub fn is_context_overflow(error: &crate::error::Error) -> bool {
    match error {
        crate::error::Error::Served { message, .. } => is_context_overflow_message(message),
        _ => false,
    }
}

/// [`is_context_overflow`] on the message of an [`crate::error::Error::Served`].
pub fn is_context_overflow_message(message: &str) -> bool {
    let m = message.to_lowercase();
    let refused = m.contains("http 400") || m.contains("http 413");
    refused
        && !m.contains("gave up after")
        && [
            "context size",
            "context length",
            "context_length",
            "must be <=",
        ]
        .iter()
        .any(|w| m.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn context_overflows_are_told_from_other_refusals() {
        let served = |m: &str| Error::Served {
            endpoint: "http://h/v1".into(),
            message: m.into(),
        };
        for m in [
            "judging a-1: HTTP 400: request (3031 tokens) exceeds the available context size (2048 tokens), try increasing it",
            "x: HTTP 400: This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
            "x: HTTP 400: The input (5000 tokens) is longer than the model's context length (4096 tokens).",
            "x: HTTP 413: Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096",
        ] {
            assert!(is_context_overflow(&served(m)), "{m}");
        }
        for m in [
            "x: HTTP 400: unknown field `top_logprobs`",
            "x: HTTP 503: context size busy (gave up after 7 attempts)",
            "x: cannot connect (is the server running?)",
        ] {
            assert!(!is_context_overflow(&served(m)), "{m}");
        }
        assert!(!is_context_overflow(&Error::Invalid("context size".into())));
    }
}
