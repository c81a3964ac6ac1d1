//! A blocking client for one OpenAI-compatible server: `/v1/models`, `/v1/chat/completions`,
//! retries with exponential backoff and jitter (429, 5xx, timeouts, dropped connections,
//! unreadable bodies), `Retry-After`, a per-request timeout, and errors that name the endpoint
//! and the prompt but never the API key.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chat::{parse_response, ChatAnswer, ChatRequest};
use super::endpoint::{Endpoint, DEFAULT_KEY_ENV};
use crate::error::{Error, Result};

/// How requests are sent: the same for every side and judge on a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServingSettings {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Seconds one request may take, from connecting to the last byte of the answer
    /// (`request_timeout` in a plan file works too).
    #[serde(alias = "request_timeout")]
    pub request_timeout_s: f64,
    /// Retries of one request after the first attempt.
    pub max_retries: u32,
}

impl Default for ServingSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            request_timeout_s: 600.0,
            max_retries: 6,
        }
    }
}

impl ServingSettings {
    /// Reject settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.concurrency == 0 || self.concurrency > 1024 {
            return Err(Error::Invalid(
                "concurrency must be between 1 and 1024 requests in flight".into(),
            ));
        }
        if !(self.request_timeout_s.is_finite() && self.request_timeout_s > 0.0) {
            return Err(Error::Invalid(
                "the request timeout must be a positive number of seconds".into(),
            ));
        }
        if self.max_retries > 100 {
            return Err(Error::Invalid("max_retries must be 100 or fewer".into()));
        }
        Ok(())
    }
}

/// An API key read from the environment. It is only ever written into a request header: its
/// `Debug` hides it and nothing else reads it.
#[derive(Clone)]
struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<hidden>)")
    }
}

/// Counters a run view shows: requests in flight and retries so far.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Requests sent and not yet answered.
    pub in_flight: AtomicUsize,
    /// Attempts after a first one failed.
    pub retries: AtomicUsize,
    /// Requests answered.
    pub answered: AtomicUsize,
    /// The most requests that were in flight at once.
    pub peak_in_flight: AtomicUsize,
}

impl Traffic {
    fn enter(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    }
}

/// The part of a model entry that identifies the model rather than the server's settings:
/// llama.cpp's per-slot `meta.n_ctx` and vLLM's `max_model_len` change with how the server was
/// started, not with what answers.
pub fn identity_fields(entry: &Value) -> Value {
    let mut v = entry.clone();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("max_model_len");
        if let Some(meta) = obj.get_mut("meta").and_then(Value::as_object_mut) {
            meta.remove("n_ctx");
        }
    }
    v
}

/// One model entry of `/v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The served model name.
    pub id: String,
    /// The entry as the server wrote it, less the fields that change from one request or
    /// restart to the next (`created`, vLLM's `permission` ids).
    pub entry: Value,
}

/// The client.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    endpoint: Endpoint,
    key: Option<ApiKey>,
    key_env: String,
    settings: ServingSettings,
    traffic: std::sync::Arc<Traffic>,
}

/// Why one attempt failed, and whether another may succeed.
enum Failure {
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Fatal(String),
}

/// First backoff delay; each retry doubles it, up to [`MAX_BACKOFF`], with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured; a server asking for more is waited on this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

impl Client {
    /// A client for `endpoint`, with the key from `key_env` (default `OPENAI_API_KEY`). A
    /// missing variable means no key: local servers usually need none.
    pub fn new(
        endpoint: Endpoint,
        key_env: Option<&str>,
        settings: ServingSettings,
    ) -> Result<Self> {
        settings.validate()?;
        let key_env = key_env
            .filter(|k| !k.trim().is_empty())
            .unwrap_or(DEFAULT_KEY_ENV)
            .trim()
            .to_owned();
        if !key_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::Invalid(format!(
                "`{key_env}` is not an environment variable name (give the variable's name, not the key)"
            )));
        }
        let key = std::env::var(&key_env)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(|k| ApiKey(k.trim().to_owned()));
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10).min(settings_timeout(&settings)))
            .timeout(settings_timeout(&settings))
            .max_idle_connections(settings.concurrency.max(4) * 2)
            .max_idle_connections_per_host(settings.concurrency.max(4) * 2)
            .user_agent(concat!("aligndiff/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            agent,
            endpoint,
            key,
            key_env,
            settings,
            traffic: std::sync::Arc::default(),
        })
    }

    /// The same client (key, endpoint, connection pool) with another concurrency and fresh
    /// counters.
    pub fn with_concurrency(&self, concurrency: usize) -> Result<Self> {
        let settings = ServingSettings {
            concurrency,
            ..self.settings.clone()
        };
        settings.validate()?;
        Ok(Self {
            agent: self.agent.clone(),
            endpoint: self.endpoint.clone(),
            key: self.key.clone(),
            key_env: self.key_env.clone(),
            settings,
            traffic: std::sync::Arc::default(),
        })
    }

    /// The endpoint (credentials hidden when displayed).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The environment variable the key came from (or would have).
    pub fn key_env(&self) -> &str {
        &self.key_env
    }

    /// Whether a key was found.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// The sending settings.
    pub fn settings(&self) -> &ServingSettings {
        &self.settings
    }

    /// The live counters.
    pub fn traffic(&self) -> &std::sync::Arc<Traffic> {
        &self.traffic
    }

    fn request(&self, method: &str, route: &str) -> ureq::Request {
        let mut r = self.agent.request(method, &self.endpoint.url(route));
        if let Some(key) = &self.key {
            r = r.set("Authorization", &format!("Bearer {}", key.0));
        } else if let Some(user) = self.endpoint.userinfo() {
            r = r.set(
                "Authorization",
                &format!("Basic {}", base64(user.as_bytes())),
            );
        }
        r
    }

    /// Remove the key and any URL credentials from text that came back from the server.
    fn scrub(&self, text: &str) -> String {
        let mut t = text.to_owned();
        if let Some(k) = &self.key {
            t = t.replace(&k.0, "<api key>");
        }
        if let Some(u) = self.endpoint.userinfo() {
            t = t.replace(u, "<credentials>");
        }
        t
    }

    pub(super) fn error(&self, what: &str, why: &str) -> Error {
        Error::Served {
            endpoint: self.endpoint.base_url(),
            message: self.scrub(&format!("{what}: {why}")),
        }
    }

    /// One attempt: the body of a 2xx answer, or why not.
    fn attempt(
        &self,
        method: &str,
        route: &str,
        body: Option<&str>,
    ) -> std::result::Result<String, Failure> {
        let req = self.request(method, route);
        let result = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(b),
            None => req.call(),
        };
        match result {
            Ok(resp) => resp.into_string().map_err(|e| Failure::Retry {
                why: format!("the answer broke off while being read ({e})"),
                after: None,
            }),
            Err(ureq::Error::Status(code, resp)) => {
                let after = resp
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s).min(MAX_RETRY_AFTER));
                let text = resp.into_string().unwrap_or_default();
                let detail = error_detail(&text);
                let why = format!(
                    "HTTP {code}{}",
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {detail}")
                    }
                );
                match code {
                    408 | 409 | 425 | 429 | 500..=599 => Err(Failure::Retry { why, after }),
                    401 | 403 => {
                        Err(Failure::Fatal(format!(
                        "{why} (the server refused the credentials; the key is read from ${}{})",
                        self.key_env,
                        if self.key.is_some() { "" } else { ", which is not set" }
                    )))
                    }
                    _ => Err(Failure::Fatal(why)),
                }
            }
            Err(ureq::Error::Transport(t)) => Err(Failure::Retry {
                why: transport_words(&t),
                after: None,
            }),
        }
    }

    /// Send with retries. `what` names the request in errors (`prompt sorry44/1-3`).
    pub(super) fn send<T>(
        &self,
        method: &str,
        route: &str,
        body: Option<&str>,
        what: &str,
        cancel: &AtomicBool,
        parse: &dyn Fn(&str) -> std::result::Result<T, String>,
    ) -> Result<(T, u32, Duration)> {
        let mut attempt = 0u32;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            attempt += 1;
            let sent = Instant::now();
            self.traffic.enter();
            let outcome = self
                .attempt(method, route, body)
                .and_then(|text| parse(&text).map_err(|why| Failure::Retry { why, after: None }));
            self.traffic.in_flight.fetch_sub(1, Ordering::Relaxed);
            let (why, after) = match outcome {
                Ok(answer) => {
                    self.traffic.answered.fetch_add(1, Ordering::Relaxed);
                    return Ok((answer, attempt, sent.elapsed()));
                }
                Err(Failure::Fatal(why)) => return Err(self.error(what, &why)),
                Err(Failure::Retry { why, after }) => (why, after),
            };
            if attempt > self.settings.max_retries {
                return Err(self.error(
                    what,
                    &format!(
                        "{why} (gave up after {attempt} attempt{})",
                        if attempt == 1 { "" } else { "s" }
                    ),
                ));
            }
            self.traffic.retries.fetch_add(1, Ordering::Relaxed);
            let delay = after.unwrap_or_else(|| backoff(attempt));
            sleep_unless_cancelled(delay, cancel)?;
        }
    }

    /// Ask for one answer.
    pub fn chat(
        &self,
        request: &ChatRequest,
        what: &str,
        cancel: &AtomicBool,
    ) -> Result<ChatAnswer> {
        let encode = Instant::now();
        let body = serde_json::to_string(request).map_err(Error::json("a chat request"))?;
        let encoding = encode.elapsed();
        let parsing = std::sync::Mutex::new(Duration::ZERO);
        let (mut answer, attempts, latency) = self.send(
            "POST",
            "/chat/completions",
            Some(&body),
            what,
            cancel,
            &|text: &str| {
                let t = Instant::now();
                let parsed = parse_response(text);
                if let Ok(mut p) = parsing.lock() {
                    *p = t.elapsed();
                }
                parsed
            },
        )?;
        answer.served.attempts = attempts;
        answer.latency = latency;
        answer.client_time = encoding + parsing.into_inner().unwrap_or_default();
        if request.logprobs && answer.logprobs.is_none() {
            return Err(self.error(
                what,
                "the server returned no logprobs though they were asked for; the guard score and \
                 the harm probe read them (vLLM, SGLang and llama.cpp's server return them)",
            ));
        }
        Ok(answer)
    }

    /// `GET /models`.
    pub fn models(&self, cancel: &AtomicBool) -> Result<Vec<ModelEntry>> {
        let (json, _, _) = self.send(
            "GET",
            "/models",
            None,
            "listing the served models (GET /models)",
            cancel,
            &|text| {
                serde_json::from_str::<Value>(text)
                    .map_err(|e| format!("the model list is not JSON ({e})"))
            },
        )?;
        let data = json
            .get("data")
            .or_else(|| json.get("models"))
            .and_then(Value::as_array)
            .ok_or_else(|| self.error("GET /models", "the answer has no `data` list of models"))?;
        let mut entries = Vec::new();
        for item in data {
            let Some(id) = item
                .get("id")
                .or_else(|| item.get("model"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let mut entry = item.clone();
            if let Some(obj) = entry.as_object_mut() {
                for volatile in ["created", "permission"] {
                    obj.remove(volatile);
                }
            }
            entries.push(ModelEntry {
                id: id.to_owned(),
                entry,
            });
        }
        if entries.is_empty() {
            return Err(self.error("GET /models", "the server lists no models"));
        }
        // llama.cpp's server lists each model under `data` and again under `models`: `data`
        // is read first and is enough.
        Ok(entries)
    }

    /// The served model this endpoint names: the one after `#`, or the server's only one.
    pub fn resolve(&self, cancel: &AtomicBool) -> Result<ModelEntry> {
        let entries = self.models(cancel)?;
        let names = || {
            entries
                .iter()
                .map(|e| format!("`{}`", e.id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.endpoint.model() {
            Some(wanted) => {
                if let Some(e) = entries.iter().find(|e| e.id == wanted) {
                    return Ok(e.clone());
                }
                // SGLang lists only the base model and takes an adapter as `base:adapter`.
                if let Some(base) = entries.iter().find(|e| {
                    wanted
                        .strip_prefix(e.id.as_str())
                        .is_some_and(|rest| rest.len() > 1 && rest.starts_with(':'))
                }) {
                    let mut entry = base.entry.clone();
                    if let Some(obj) = entry.as_object_mut() {
                        obj.insert(
                            "adapter".into(),
                            Value::String(wanted[base.id.len() + 1..].to_owned()),
                        );
                    }
                    return Ok(ModelEntry {
                        id: wanted.to_owned(),
                        entry,
                    });
                }
                Err(self.error(
                    &format!("served model `{wanted}`"),
                    &format!("the server does not serve it; it serves {}", names()),
                ))
            }
            None if entries.len() == 1 => Ok(entries[0].clone()),
            None => Err(self.error(
                "choosing the served model",
                &format!(
                    "the server serves {} models ({}); name one after `#`, e.g. {}#{}",
                    entries.len(),
                    names(),
                    self.endpoint.display(),
                    entries[0].id
                ),
            )),
        }
    }
}

fn settings_timeout(s: &ServingSettings) -> Duration {
    Duration::from_secs_f64(s.request_timeout_s)
}

/// The delay before retry `attempt` (1-based): doubling from [`FIRST_BACKOFF`], capped, with
/// "full jitter" between half and all of it so that many clients do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let nanos = Instant::now().elapsed().as_nanos() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into());
    // SplitMix64 of the clock: enough to spread retries, no random crate needed.
    let mut z = nanos.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let fraction = 0.5 + 0.5 * (z >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(fraction)
}

fn sleep_unless_cancelled(delay: Duration, cancel: &AtomicBool) -> Result<()> {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    Ok(())
}

/// The message in an error body (`{"error": {"message": …}}`), else the body's start.
fn error_detail(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|j| {
        let e = j.get("error")?;
        Some(
            e.get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_owned),
        )
    });
    let text = from_json.unwrap_or_else(|| body.trim().to_owned());
    crate::util::text::truncate(&text, 300)
}

fn transport_words(t: &ureq::Transport) -> String {
    use ureq::ErrorKind;
    let what = match t.kind() {
        ErrorKind::ConnectionFailed => "cannot connect (is the server running?)",
        ErrorKind::Dns => "the host name does not resolve",
        ErrorKind::Io => "the connection failed or timed out",
        ErrorKind::TooManyRedirects => "too many redirects",
        ErrorKind::BadHeader => "the server sent a malformed header",
        ErrorKind::BadStatus => "the server sent a malformed status line",
        _ => "the request failed",
    };
    match t.message() {
        Some(m) => format!("{what} ({m})"),
        None => match std::error::Error::source(t) {
            Some(s) => format!("{what} ({s})"),
            None => what.to_owned(),
        },
    }
}

/// Standard base64 (for basic authentication from URL credentials).
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let base = FIRST_BACKOFF
                .saturating_mul(1u32 << (attempt - 1).min(16))
                .min(MAX_BACKOFF);
            assert!(d >= base / 2 && d <= base, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn the_key_is_hidden_from_debug_and_scrubbed_from_errors() {
        let key = ApiKey("sk-very-secret".into());
        assert!(!format!("{key:?}").contains("very-secret"));
        let client = Client {
            agent: ureq::agent(),
            endpoint: Endpoint::parse("openai:http://u:pw@127.0.0.1:9/v1#m").unwrap(),
            key: Some(key),
            key_env: "K".into(),
            settings: ServingSettings::default(),
            traffic: std::sync::Arc::default(),
        };
        let e = client
            .error("prompt x", "server said sk-very-secret and u:pw")
            .to_string();
        assert!(!e.contains("sk-very-secret") && !e.contains("u:pw"), "{e}");
        assert!(e.contains("http://127.0.0.1:9/v1"), "{e}");
        assert!(!format!("{client:?}").contains("very-secret"));
    }

    #[test]
    fn settings_are_checked() {
        assert!(ServingSettings::default().validate().is_ok());
        for bad in [
            ServingSettings {
                concurrency: 0,
                ..Default::default()
            },
            ServingSettings {
                request_timeout_s: 0.0,
                ..Default::default()
            },
            ServingSettings {
                max_retries: 1000,
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
