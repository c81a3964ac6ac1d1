//! `openai:<base URL>[#<served model name>]`: where a served model is, with any credentials in
//! the URL kept apart so that nothing recorded (store, report, plan, log, error) carries them.

use std::fmt;

use crate::error::{Error, Result};

/// The prefix of a served model's source.
pub const SCHEME: &str = "openai:";

/// The environment variable an API key is read from unless a side names another.
pub const DEFAULT_KEY_ENV: &str = "OPENAI_API_KEY";

/// Whether a model source names a served model.
pub fn is_served(source: &str) -> bool {
    source.trim_start().starts_with(SCHEME)
}

/// A parsed `openai:` source.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    scheme: String,
    /// `host[:port]`, without credentials.
    authority: String,
    /// The path up to and including `/v1`, without a trailing slash.
    path: String,
    /// `user:password` from the URL, used as HTTP basic authentication; never displayed.
    userinfo: Option<String>,
    /// The served model name after `#`, if given.
    model: Option<String>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deliberately not derived: the credentials must not reach a log through `{:?}`.
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url())
            .field("model", &self.model)
            .field("credentials", &self.userinfo.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl Endpoint {
    /// Parse `openai:http(s)://[user:pass@]host[:port][/path][#model]`.
    pub fn parse(source: &str) -> Result<Self> {
        let source = source.trim();
        let Some(rest) = source.strip_prefix(SCHEME) else {
            return Err(Error::Invalid(format!(
                "a served model is written {SCHEME}<base URL>#<model>, e.g. \
                 {SCHEME}http://127.0.0.1:8000/v1#vendor-ft"
            )));
        };
        // Errors below never quote `source` whole: it may hold credentials.
        let (url, model) = match rest.split_once('#') {
            Some((u, m)) => (u, Some(m.trim())),
            None => (rest, None),
        };
        if model == Some("") {
            return Err(Error::Invalid(format!(
                "{SCHEME}…#: no served model name after `#` (leave `#` out to use the server's only model)"
            )));
        }
        let Some((scheme, after)) = url.split_once("://") else {
            return Err(Error::Invalid(format!(
                "{SCHEME}{}: the base URL must start with http:// or https://",
                strip_credentials_text(url)
            )));
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(Error::Invalid(format!(
                "{SCHEME}{}: unsupported scheme `{scheme}` (http or https)",
                strip_credentials_text(url)
            )));
        }
        let (authority_full, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        let (userinfo, authority) = match authority_full.rsplit_once('@') {
            Some((u, a)) => (Some(u.to_owned()), a),
            None => (None, authority_full),
        };
        if authority.is_empty()
            || !authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(c))
        {
            return Err(Error::Invalid(format!(
                "{SCHEME}{scheme}://{authority}: not a host[:port]"
            )));
        }
        if let Some((_, port)) = authority.rsplit_once(':') {
            if !authority.ends_with(']') && port.parse::<u16>().is_err() {
                return Err(Error::Invalid(format!(
                    "{SCHEME}{scheme}://{authority}: the port `{port}` is not a number"
                )));
            }
        }
        if path.contains('?') {
            return Err(Error::Invalid(format!(
                "{SCHEME}{scheme}://{authority}…: the base URL takes no query string (give an \
                 API key through an environment variable)"
            )));
        }
        let path = path.trim_end_matches('/').to_owned();
        Ok(Self {
            scheme,
            authority: authority.to_ascii_lowercase(),
            path,
            userinfo,
            model: model.map(str::to_owned),
        })
    }

    /// The base URL without credentials, e.g. `http://127.0.0.1:8000/v1`.
    pub fn base_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path)
    }

    /// `host:port` (or `host`), as the identity of the server.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The served model name given after `#`.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The same endpoint with the served model set.
    pub fn with_model(&self, model: &str) -> Self {
        Self {
            model: Some(model.to_owned()),
            ..self.clone()
        }
    }

    /// The URL of `route` (`/models`, `/chat/completions`) under the base URL.
    pub fn url(&self, route: &str) -> String {
        format!("{}{route}", self.base_url())
    }

    /// Whether the URL held `user:password@` credentials (which a saved setup must not keep).
    pub fn has_credentials(&self) -> bool {
        self.userinfo.is_some()
    }

    /// Credentials from the URL, for basic authentication.
    pub(super) fn userinfo(&self) -> Option<&str> {
        self.userinfo.as_deref()
    }

    /// The source string without credentials: what the store, reports and logs show.
    pub fn display(&self) -> String {
        match &self.model {
            Some(m) => format!("{SCHEME}{}#{m}", self.base_url()),
            None => format!("{SCHEME}{}", self.base_url()),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// `scheme://user:pass@host/…` → `scheme://host/…`, for text that may be a URL.
fn strip_credentials_text(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.rsplit_once('@').map_or(url, |(_, h)| h).to_owned(),
    }
}

/// A model source as it may be recorded: an `openai:` source loses any credentials in its URL;
/// every other source is returned as it is.
pub fn public_source(source: &str) -> String {
    if is_served(source) {
        match Endpoint::parse(source) {
            Ok(e) => e.display(),
            Err(_) => format!(
                "{SCHEME}{}",
                strip_credentials_text(source.trim().trim_start_matches(SCHEME))
            ),
        }
    } else {
        source.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_url_model_and_keeps_credentials_out_of_display() {
        let e = Endpoint::parse("openai:https://bob:s3cret@GPU-box:8000/v1/#vendor-ft").unwrap();
        assert_eq!(e.base_url(), "https://gpu-box:8000/v1");
        assert_eq!(e.model(), Some("vendor-ft"));
        assert_eq!(e.authority(), "gpu-box:8000");
        assert_eq!(e.userinfo(), Some("bob:s3cret"));
        assert_eq!(e.display(), "openai:https://gpu-box:8000/v1#vendor-ft");
        assert!(!format!("{e:?}").contains("s3cret"));
        assert_eq!(e.url("/models"), "https://gpu-box:8000/v1/models");
    }

    #[test]
    fn model_is_optional_and_names_may_hold_slashes() {
        let e = Endpoint::parse("openai:http://127.0.0.1:8000/v1").unwrap();
        assert_eq!(e.model(), None);
        let e = Endpoint::parse("openai:http://h/v1#meta-llama/Llama-3.1-8B-Instruct").unwrap();
        assert_eq!(e.model(), Some("meta-llama/Llama-3.1-8B-Instruct"));
    }

    #[test]
    fn bad_sources_are_errors_that_do_not_quote_credentials() {
        for bad in [
            "openai:ftp://u:topsecret@h/v1",
            "openai:u:topsecret@h/v1",
            "openai:http://u:topsecret@h:80x/v1",
            "openai:http://u:topsecret@h/v1?key=topsecret",
            "openai:http://h/v1#",
            "openai:http:///v1",
        ] {
            let e = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("topsecret"), "{bad}: {e}");
        }
    }

    #[test]
    fn public_source_strips_credentials() {
        assert_eq!(
            public_source("openai:http://a:b@h:1/v1#m"),
            "openai:http://h:1/v1#m"
        );
        assert_eq!(public_source("openai:ftp://a:b@h/v1"), "openai:ftp://h/v1");
        assert_eq!(public_source("models/x.gguf"), "models/x.gguf");
        assert!(is_served(" openai:http://h"));
        assert!(!is_served("hf:a/b"));
    }
}
