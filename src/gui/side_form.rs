//! One side of the setup as typed into the form: a model from files or the hub, a model on a
//! server, or an answers file. What is saved of it never holds a credential: URLs are saved
//! without `user:password@`, and the API key field only ever holds a variable's name.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::audit::SidePlan;
use crate::model::source::Source;
use crate::model::ModelSpec;
use crate::serve::{self, Endpoint, DEFAULT_KEY_ENV, SCHEME};

/// Where a side's model is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelPlace {
    /// A GGUF file, a model folder, or the Hugging Face hub, loaded by aligndiff itself.
    #[default]
    Files,
    /// An OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp's `llama-server`, Ollama).
    Server,
}

/// One model of the pair, as typed into the form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SideForm {
    /// A GGUF file, a model folder, or `hf:owner/name`.
    #[serde(serialize_with = "saved_source")]
    pub source: String,
    /// Hub revision (commit, tag or branch); only for `hf:` sources.
    pub revision: String,
    /// PEFT adapter folder, merged into a safetensors base.
    pub lora: String,
    /// System prompt sent with every request.
    pub system: String,
    /// A JSONL/CSV file of answers made elsewhere, used instead of a model.
    pub answers: String,
    /// Whether the model is loaded from files or asked on a server.
    pub place: ModelPlace,
    /// The server's base URL (`http://gpu-box:8000/v1`); saved without credentials.
    #[serde(serialize_with = "saved_url")]
    pub server_url: String,
    /// The served model's name, picked from the server's list or typed; empty for the
    /// server's only model.
    pub served_model: String,
    /// The NAME of the environment variable holding the API key (empty: `OPENAI_API_KEY`);
    /// never the key, which is read only when a run starts.
    #[serde(serialize_with = "saved_key_env")]
    pub api_key_env: String,
    /// The served weights' SHA-256 as the vendor declares it: recorded as declared, never
    /// verified.
    pub declared_sha256: String,
    /// Why what was typed as the key variable was discarded; shown under the field.
    #[serde(skip)]
    pub key_env_note: Option<String>,
}

impl SideForm {
    /// The model is asked on a server.
    pub fn on_server(&self) -> bool {
        self.place == ModelPlace::Server
    }

    /// `openai:<URL>[#<served model>]`, the source the engine parses for a served model.
    pub fn server_source(&self) -> String {
        let url = self.server_url.trim();
        match non_empty(&self.served_model) {
            Some(model) => format!("{SCHEME}{url}#{model}"),
            None => format!("{SCHEME}{url}"),
        }
    }

    /// The source string the engine parses: the served source for a server; else the model
    /// source, as `hf:owner/name@revision` when a revision is set. A revision typed into the
    /// source itself wins; a source that does not parse is passed on as typed, so loading it
    /// reports what is wrong.
    pub fn spec_source(&self) -> String {
        if self.on_server() {
            return self.server_source();
        }
        let source = self.source.trim();
        let revision = self.revision.trim();
        if revision.is_empty() || source.contains('@') {
            return source.to_owned();
        }
        match parse_hub(source) {
            Some(Source::Hub { repo, file, .. }) => {
                hub_source(&repo, Some(revision), file.as_deref())
            }
            _ => source.to_owned(),
        }
    }

    /// What the engine loads for this side's model card.
    pub fn model_spec(&self) -> ModelSpec {
        ModelSpec {
            source: self.spec_source(),
            lora: non_empty(&self.lora).map(PathBuf::from),
        }
    }

    /// The plan's view of this side. Fields of the other place (a LoRA adapter for a server,
    /// the key variable for files) are left out, so a hidden field never changes a run.
    pub fn side_plan(&self) -> SidePlan {
        let answers = non_empty(&self.answers).map(PathBuf::from);
        let model = if answers.is_some() {
            String::new()
        } else {
            self.spec_source()
        };
        let served = answers.is_none() && serve::is_served(&model);
        SidePlan {
            model,
            answers,
            lora: if self.on_server() {
                None
            } else {
                non_empty(&self.lora).map(PathBuf::from)
            },
            system: non_empty(&self.system).map(str::to_owned),
            api_key_env: non_empty(&self.api_key_env)
                .filter(|_| served)
                .map(str::to_owned),
            declared_sha256: non_empty(&self.declared_sha256)
                .filter(|_| served)
                .map(str::to_ascii_lowercase),
        }
    }

    /// The form showing a plan's side.
    pub fn from_side_plan(p: &SidePlan) -> Self {
        let common = Self {
            system: p.system.clone().unwrap_or_default(),
            answers: p
                .answers
                .as_ref()
                .map(|a| a.display().to_string())
                .unwrap_or_default(),
            ..Self::default()
        };
        if p.is_served() {
            if let Ok(endpoint) = Endpoint::parse(&p.model) {
                return Self {
                    place: ModelPlace::Server,
                    server_url: endpoint.base_url(),
                    served_model: endpoint.model().unwrap_or_default().to_owned(),
                    api_key_env: p.api_key_env.clone().unwrap_or_default(),
                    declared_sha256: p.declared_sha256.clone().unwrap_or_default(),
                    ..common
                };
            }
        }
        // The form keeps the revision in its own field; only a pinned one is split off.
        let (source, revision) = match parse_hub(&p.model) {
            Some(Source::Hub {
                repo,
                revision,
                file,
            }) if p.model.contains('@') => (hub_source(&repo, None, file.as_deref()), revision),
            _ => (p.model.clone(), String::new()),
        };
        Self {
            source,
            revision,
            lora: p
                .lora
                .as_ref()
                .map(|l| l.display().to_string())
                .unwrap_or_default(),
            ..common
        }
    }

    /// A model is chosen (a source, or a server's URL).
    pub fn has_model(&self) -> bool {
        if self.on_server() {
            non_empty(&self.server_url).is_some()
        } else {
            non_empty(&self.source).is_some()
        }
    }

    /// A model or an answers file is chosen.
    pub fn is_set(&self) -> bool {
        self.has_model() || non_empty(&self.answers).is_some()
    }

    /// What is wrong with the server URL, in words for the form; `None` when it can be asked.
    pub fn server_url_problem(&self) -> Option<String> {
        let url = self.server_url.trim();
        if url.is_empty() {
            return Some("Type the server's base URL, e.g. http://gpu-box:8000/v1.".into());
        }
        match Endpoint::parse(&format!("{SCHEME}{url}")) {
            Ok(e) if e.has_credentials() => Some(
                "The URL holds a user name and password (user:password@): they would be saved \
                 with the setup. Remove them and give the server's key through an environment \
                 variable (API key variable)."
                    .into(),
            ),
            Ok(_) if url.contains('#') => {
                Some("Leave `#` out of the URL: pick the served model below.".into())
            }
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// The variable the key is read from: the one named, or `OPENAI_API_KEY`.
    pub fn key_env_name(&self) -> &str {
        non_empty(&self.api_key_env).unwrap_or(DEFAULT_KEY_ENV)
    }

    /// After the key variable field was edited: keep a variable's name, discard anything else
    /// (it may be a key pasted into the wrong field) and say why.
    pub fn check_key_env(&mut self) {
        match key_env_problem(&self.api_key_env) {
            Some(why) => {
                self.api_key_env.clear();
                self.key_env_note = Some(why);
            }
            None => self.key_env_note = None,
        }
    }
}

/// The longest name the key variable field keeps; keys are longer, names rarely are.
const MAX_NAME: usize = 64;

/// Whether `text` is an environment variable's name: a letter or `_`, then letters, digits and
/// `_`, and not shaped like a key (32 or more characters mixing lower case and digits).
pub fn is_variable_name(text: &str) -> bool {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let shaped = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && text.len() <= MAX_NAME;
    let key_like = text.len() >= 32
        && text.chars().any(|c| c.is_ascii_lowercase())
        && text.chars().any(|c| c.is_ascii_digit());
    shaped && !key_like
}

/// Why the key variable field cannot keep `typed`; `None` for a name (or nothing). The words
/// never quote what was typed: it may be a key.
pub fn key_env_problem(typed: &str) -> Option<String> {
    let name = typed.trim();
    if name.is_empty() {
        return None;
    }
    if !is_variable_name(name) {
        return Some(
            "The field was cleared: it takes the NAME of an environment variable (letters, \
             digits and _, e.g. OPENAI_API_KEY), never the key itself, and what was typed is \
             not a variable's name."
                .into(),
        );
    }
    // A name that is the value of a variable is a key that happens to look like a name.
    if name.len() >= 8 {
        if let Some((var, _)) = std::env::vars_os().find(|(_, v)| v.to_str() == Some(name)) {
            return Some(format!(
                "The field was cleared: what was typed is the value of ${}, which looks like \
                 a key. Type the variable's name instead.",
                var.to_string_lossy()
            ));
        }
    }
    None
}

/// A saved model source: a served one without credentials.
fn saved_source<S: serde::Serializer>(source: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&serve::public_source(source))
}

/// A saved server URL, without credentials.
fn saved_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    let url = url.trim();
    if url.is_empty() {
        return s.serialize_str("");
    }
    let public = serve::public_source(&format!("{SCHEME}{url}"));
    s.serialize_str(public.strip_prefix(SCHEME).unwrap_or(&public))
}

/// The saved key variable: a name, or nothing.
fn saved_key_env<S: serde::Serializer>(name: &str, s: S) -> Result<S::Ok, S::Error> {
    let name = name.trim();
    s.serialize_str(if is_variable_name(name) { name } else { "" })
}

/// A hub source as `Source::parse` reads it; `None` for paths (so the disk is never touched).
fn parse_hub(source: &str) -> Option<Source> {
    if !source.starts_with("hf:") {
        return None;
    }
    Source::parse(source).ok()
}

/// `hf:owner/name[@revision][:file]`, the form `Source::parse` reads.
fn hub_source(repo: &str, revision: Option<&str>, file: Option<&str>) -> String {
    let mut text = format!("hf:{repo}");
    if let Some(rev) = revision {
        text.push('@');
        text.push_str(rev);
    }
    if let Some(file) = file {
        text.push(':');
        text.push_str(file);
    }
    text
}

/// The text without surrounding space, or `None` when nothing is left.
pub fn non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(source: &str, revision: &str) -> SideForm {
        SideForm {
            source: source.into(),
            revision: revision.into(),
            ..SideForm::default()
        }
    }

    fn server(url: &str, model: &str, key_env: &str) -> SideForm {
        SideForm {
            place: ModelPlace::Server,
            server_url: url.into(),
            served_model: model.into(),
            api_key_env: key_env.into(),
            ..SideForm::default()
        }
    }

    #[test]
    fn a_revision_field_pins_a_hub_source_and_keeps_its_file_last() {
        assert_eq!(form("hf:o/n", "abc").spec_source(), "hf:o/n@abc");
        assert_eq!(
            form("hf:o/n:m.gguf", "abc").spec_source(),
            "hf:o/n@abc:m.gguf"
        );
        assert_eq!(form("hf:o/n@v1", "abc").spec_source(), "hf:o/n@v1");
        assert_eq!(form("model.gguf", "abc").spec_source(), "model.gguf");
        assert_eq!(form("hf:o/n", "").spec_source(), "hf:o/n");
    }

    #[test]
    fn a_plans_pinned_hub_source_fills_source_and_revision_and_round_trips() {
        for model in [
            "hf:o/n@abc:m.gguf",
            "hf:o/n@abc",
            "hf:o/n",
            "dir/model.gguf",
        ] {
            let side = SideForm::from_side_plan(&SidePlan::model(model));
            assert_eq!(side.spec_source(), model);
        }
        let side = SideForm::from_side_plan(&SidePlan::model("hf:o/n@abc:m.gguf"));
        assert_eq!(
            (side.source.as_str(), side.revision.as_str()),
            ("hf:o/n:m.gguf", "abc")
        );
    }

    #[test]
    fn a_served_side_plans_its_source_and_key_variable_and_round_trips() {
        let mut side = server("http://gpu-box:8000/v1", "vendor-ft", "VENDOR_KEY");
        side.lora = "hidden/adapter".into();
        let plan = side.side_plan();
        assert_eq!(plan.model, "openai:http://gpu-box:8000/v1#vendor-ft");
        assert_eq!(plan.api_key_env.as_deref(), Some("VENDOR_KEY"));
        assert_eq!(plan.lora, None, "a LoRA field hidden by the server mode");
        let back = SideForm::from_side_plan(&plan);
        assert!(back.on_server());
        assert_eq!(back.side_plan(), plan);
        // No model name: the server's only one; no variable: the default one.
        let plan = server("http://h:1/v1", "", "").side_plan();
        assert_eq!(
            (plan.model.as_str(), plan.api_key_env),
            ("openai:http://h:1/v1", None)
        );
        // A local side never carries a key variable.
        let mut local = form("m.gguf", "");
        local.api_key_env = "VENDOR_KEY".into();
        assert_eq!(local.side_plan().api_key_env, None);
    }

    #[test]
    fn urls_with_credentials_are_refused_and_never_saved() {
        let side = server("http://bob:s3cret@gpu-box:8000/v1", "m", "");
        assert!(side
            .server_url_problem()
            .is_some_and(|p| p.contains("user:password@")));
        let saved = serde_json::to_string(&side).unwrap();
        assert!(!saved.contains("s3cret"), "{saved}");
        assert!(saved.contains("http://gpu-box:8000/v1"), "{saved}");
        let typed = form("openai:http://bob:s3cret@h/v1#m", "");
        let saved = serde_json::to_string(&typed).unwrap();
        assert!(!saved.contains("s3cret"), "{saved}");
        assert_eq!(
            server("gpu-box:8000", "", "")
                .server_url_problem()
                .map(|p| p.contains("http://")),
            Some(true)
        );
        assert_eq!(
            server("http://127.0.0.1:9/v1", "", "").server_url_problem(),
            None
        );
    }

    #[test]
    fn the_key_field_keeps_a_variables_name_and_discards_a_key() {
        for name in ["OPENAI_API_KEY", "_K", "vendor_key_2"] {
            assert!(is_variable_name(name), "{name}");
            assert_eq!(key_env_problem(name), None, "{name}");
        }
        for key in [
            "sk-proj-abcdef0123456789",
            "9abc",
            "has space",
            "hfab12cd34ef56ab78cd90ef12ab34cd56",
        ] {
            assert!(!is_variable_name(key), "{key}");
            let mut side = server("http://h/v1", "", key);
            side.check_key_env();
            assert!(side.api_key_env.is_empty(), "{key}");
            assert!(side
                .key_env_note
                .as_deref()
                .is_some_and(|n| !n.contains(key)));
            // Even when set behind the form's back, it is not saved.
            side.api_key_env = key.into();
            assert!(!serde_json::to_string(&side).unwrap().contains(key));
        }
    }
}
