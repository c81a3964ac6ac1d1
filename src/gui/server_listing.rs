//! A server's model list, asked for off the UI thread: what the setup form's server picker and
//! the background tasks share.

use std::sync::atomic::AtomicBool;

use super::card::Card;
use super::side_form::SideForm;
use crate::serve::{self, Client, Endpoint, ServingSettings, SCHEME};

/// One model a server lists, with its card.
#[derive(Debug, Clone)]
pub struct ServedEntry {
    /// The served model name.
    pub id: String,
    /// What the server said about it, as a card.
    pub card: Card,
}

/// What a server answered when asked for its models.
#[derive(Debug, Clone)]
pub struct ServerListing {
    /// The URL asked, as typed (trimmed): the listing holds while the form shows this URL.
    pub url: String,
    /// The served models, or why none could be listed (the message names the endpoint).
    pub models: Result<Vec<ServedEntry>, String>,
}

impl ServerListing {
    /// The listed models, when the listing is of `form`'s URL and succeeded.
    pub fn models_for(&self, form: &SideForm) -> Option<&[ServedEntry]> {
        (self.url == form.server_url.trim())
            .then_some(self.models.as_deref().ok())
            .flatten()
    }
}

/// The list is asked for once and briefly: the analyst presses the button again if it failed.
fn listing_settings() -> ServingSettings {
    ServingSettings {
        concurrency: 1,
        request_timeout_s: 15.0,
        max_retries: 0,
    }
}

/// Ask the server at `url` for its models. Blocks: run it off the UI thread.
pub fn list_models(url: &str, key_env: Option<&str>) -> ServerListing {
    ServerListing {
        url: url.to_owned(),
        models: entries(url, key_env),
    }
}

fn entries(url: &str, key_env: Option<&str>) -> Result<Vec<ServedEntry>, String> {
    let endpoint = Endpoint::parse(&format!("{SCHEME}{url}")).map_err(|e| e.to_string())?;
    let client =
        Client::new(endpoint.clone(), key_env, listing_settings()).map_err(|e| e.to_string())?;
    let listed = client
        .models(&AtomicBool::new(false))
        .map_err(|e| e.to_string())?;
    Ok(listed
        .into_iter()
        .map(|e| ServedEntry {
            card: Card::served(
                &endpoint.base_url(),
                &e.id,
                &e.entry,
                &serve::identity(&endpoint, &e),
            ),
            id: e.id,
        })
        .collect())
}
