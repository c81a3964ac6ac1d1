//! Models on a server: an OpenAI-compatible endpoint (vLLM, SGLang, TGI, llama.cpp's
//! `llama-server`, Ollama) answers the audit's prompts or a judge's, while the store, resume,
//! provenance and statistics stay those of local models.
//!
//! - [`endpoint`]: the `openai:<base URL>#<model>` source, credentials kept out of sight.
//! - [`client`]: one server: model list, chat completions, retries, timeouts, the API key.
//! - [`pool`]: many requests with a bounded number in flight.
//! - [`chat`]: the wire format and what a response said about its answer.

pub mod chat;
pub mod client;
pub mod endpoint;
pub mod pool;

use std::sync::atomic::AtomicBool;

pub use chat::{prompt_messages, ChatAnswer, ChatRequest, Message, ServedAnswer};
pub use client::{Client, ModelEntry, ServingSettings, Traffic};
pub use endpoint::{is_served, public_source, Endpoint, DEFAULT_KEY_ENV, SCHEME};
pub use pool::{send_all, Job};

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
