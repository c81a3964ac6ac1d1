//! Where a checkpoint comes from: a GGUF file, a local safetensors folder, or a Hugging Face
//! repository at a pinned revision (through the local hub cache, downloading only what is missing).

use std::path::{Component, Path, PathBuf};

use super::format::{self, FileFormat, PICKLE_EXTENSIONS};
use crate::error::{Error, Result};

/// A parsed model source string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A single GGUF file.
    Gguf(PathBuf),
    /// A folder with `config.json`, `tokenizer.json` and safetensors weights.
    Folder(PathBuf),
    /// `hf:owner/name[@revision][:file.gguf]`.
    Hub {
        /// `owner/name`.
        repo: String,
        /// Branch, tag or commit (default `main`).
        revision: String,
        /// A GGUF file inside the repository, if the model is one.
        file: Option<String>,
    },
}

impl Source {
    /// Parse a source string: `hf:owner/name[@rev][:file.gguf]`, or a path.
    pub fn parse(spec: &str) -> Result<Self> {
        if let Some(rest) = spec.strip_prefix("hf:") {
            let (repo_rev, file) = match rest.split_once(':') {
                Some((a, f)) => (a, Some(f.to_owned())),
                None => (rest, None),
            };
            let (repo, revision) = match repo_rev.split_once('@') {
                Some((r, rev)) => (r, rev.to_owned()),
                None => (repo_rev, "main".to_owned()),
            };
            let valid = |s: &str| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            };
            let parts: Vec<&str> = repo.split('/').collect();
            if parts.len() != 2 || !parts.iter().all(|p| valid(p)) {
                return Err(Error::Invalid(format!(
                    "`{spec}`: a hub source is hf:owner/name[@revision][:file.gguf]"
                )));
            }
            if revision.is_empty() || revision.contains("..") {
                return Err(Error::Invalid(format!(
                    "`{spec}`: invalid revision `{revision}`"
                )));
            }
            if let Some(f) = &file {
                if !is_plain_relative(Path::new(f)) {
                    return Err(Error::Invalid(format!("`{spec}`: invalid file name `{f}`")));
                }
            }
            return Ok(Self::Hub {
                repo: repo.to_owned(),
                revision,
                file,
            });
        }
        let path = PathBuf::from(spec);
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            return Ok(Self::Folder(path));
        }
        match format::sniff(&path)? {
            FileFormat::Gguf => Ok(Self::Gguf(path)),
            FileFormat::Pickle => Err(format::pickle_refusal(&path)),
            FileFormat::Safetensors => Err(Error::bad_file(
                &path,
                "a bare safetensors file has no config or tokenizer: point at the folder that \
                 holds it with config.json and tokenizer.json",
            )),
            FileFormat::Unknown => Err(Error::bad_file(
                &path,
                "not a GGUF file or a model folder (unrecognised magic bytes)",
            )),
        }
    }
}

/// A relative path with no `..`, root or prefix: safe to join onto a model folder.
pub fn is_plain_relative(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// The files of a safetensors model folder.
#[derive(Debug, Clone)]
pub struct FolderFiles {
    /// `config.json`.
    pub config: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// `tokenizer_config.json`, if any.
    pub tokenizer_config: Option<PathBuf>,
    /// `generation_config.json`, if any.
    pub generation_config: Option<PathBuf>,
    /// Weight shards in a stable order.
    pub shards: Vec<PathBuf>,
}

/// Locate and check the files of a local model folder.
pub fn folder_files(dir: &Path) -> Result<FolderFiles> {
    let config = dir.join("config.json");
    if !config.is_file() {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "gguf") {
                    return Err(Error::bad_file(
                        dir,
                        format!(
                            "no config.json here; to load the GGUF file, pass {}",
                            e.path().display()
                        ),
                    ));
                }
            }
        }
        return Err(Error::bad_file(dir, "not a model folder: no config.json"));
    }
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(Error::bad_file(
            dir,
            "no tokenizer.json in the model folder (aligndiff needs the fast-tokenizer file that \
             transformers writes with save_pretrained)",
        ));
    }
    let optional = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    let index = dir.join("model.safetensors.index.json");
    let mut shards = Vec::new();
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&index, format!("invalid JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| Error::bad_file(&index, "no weight_map object"))?;
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| {
                Error::bad_file(&index, format!("weight_map[{tensor}] is not a file name"))
            })?;
            if !is_plain_relative(Path::new(file)) {
                return Err(Error::bad_file(
                    &index,
                    format!("weight_map[{tensor}] = `{file}` points outside the model folder"),
                ));
            }
            let shard = dir.join(file);
            if !shards.contains(&shard) {
                shards.push(shard);
            }
        }
        shards.sort();
    } else {
        let single = dir.join("model.safetensors");
        if single.is_file() {
            shards.push(single);
        }
    }
    if shards.is_empty() {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| PICKLE_EXTENSIONS.contains(&x))
                {
                    return Err(format::pickle_refusal(&p));
                }
            }
        }
        return Err(Error::bad_file(
            dir,
            "no model.safetensors or model.safetensors.index.json in the model folder",
        ));
    }
    for shard in &shards {
        if !shard.is_file() {
            return Err(Error::bad_file(
                shard,
                "weight shard listed in the index is missing",
            ));
        }
        match format::sniff(shard)? {
            FileFormat::Safetensors => {}
            FileFormat::Pickle => return Err(format::pickle_refusal(shard)),
            _ => {
                return Err(Error::bad_file(
                    shard,
                    "not a safetensors file (bad header)",
                ))
            }
        }
    }
    Ok(FolderFiles {
        config,
        tokenizer,
        tokenizer_config: optional("tokenizer_config.json"),
        generation_config: optional("generation_config.json"),
        shards,
    })
}

/// A hub repository resolved to local files at a commit.
#[derive(Debug, Clone)]
pub struct HubResolution {
    /// The local snapshot folder (or the GGUF file for GGUF repos).
    pub path: PathBuf,
    /// The commit hash the revision resolved to.
    pub commit: String,
}

fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn hub_cache_dir() -> PathBuf {
    hf_hub::Cache::from_env().path().clone()
}

/// Look a file up in the local hub cache: `models--owner--name/snapshots/<commit>/<file>`.
fn cached(repo: &str, revision: &str, file: &str) -> Option<(PathBuf, String)> {
    let root = hub_cache_dir().join(format!("models--{}", repo.replace('/', "--")));
    let commit = if is_commit_hash(revision) {
        revision.to_owned()
    } else {
        std::fs::read_to_string(root.join("refs").join(revision))
            .ok()?
            .trim()
            .to_owned()
    };
    if !is_commit_hash(&commit) {
        return None;
    }
    let path = root.join("snapshots").join(&commit).join(file);
    path.is_file().then_some((path, commit))
}

/// Resolve a hub source to local files, downloading what the cache lacks unless
/// `HF_HUB_OFFLINE=1`. The token comes from `HF_TOKEN` (or the hub's token file) and is never
/// recorded.
pub fn resolve_hub(repo: &str, revision: &str, file: Option<&str>) -> Result<HubResolution> {
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v == "true");
    let wanted: Vec<&str> = match file {
        Some(f) => vec![f],
        None => vec!["config.json", "tokenizer.json"],
    };
    let optional: &[&str] = if file.is_some() {
        &[]
    } else {
        &[
            "tokenizer_config.json",
            "generation_config.json",
            "model.safetensors.index.json",
            "model.safetensors",
        ]
    };
    let spec = format!("hf:{repo}@{revision}");
    let mut commit: Option<String> = None;
    let mut missing = Vec::new();
    for f in &wanted {
        match cached(repo, revision, f) {
            Some((_, c)) => commit = Some(c),
            None => missing.push(*f),
        }
    }
    if !missing.is_empty() || commit.is_none() {
        if offline {
            return Err(Error::Invalid(format!(
                "{spec}: {} not in the local Hugging Face cache ({}) and HF_HUB_OFFLINE is set",
                missing.join(", "),
                hub_cache_dir().display()
            )));
        }
        let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
        let api = hf_hub::api::sync::ApiBuilder::from_env()
            .with_progress(false)
            .with_token(token)
            .build()
            .map_err(|e| {
                Error::Invalid(format!("{spec}: cannot reach the Hugging Face hub: {e}"))
            })?;
        let api_repo = api.repo(hf_hub::Repo::with_revision(
            repo.to_owned(),
            hf_hub::RepoType::Model,
            revision.to_owned(),
        ));
        let info = api_repo
            .info()
            .map_err(|e| Error::Invalid(format!("{spec}: cannot resolve the revision: {e}")))?;
        for f in wanted.iter().chain(optional) {
            let listed = info.siblings.iter().any(|s| s.rfilename == *f);
            if !listed {
                continue;
            }
            api_repo
                .get(f)
                .map_err(|e| Error::Invalid(format!("{spec}: downloading {f} failed: {e}")))?;
        }
        // Weight shards named by the index.
        if let Some((index, _)) = cached(repo, &info.sha, "model.safetensors.index.json") {
            let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::bad_file(&index, format!("invalid JSON: {e}")))?;
            let mut shards: Vec<String> = json
                .get("weight_map")
                .and_then(serde_json::Value::as_object)
                .map(|m| {
                    m.values()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            shards.sort();
            shards.dedup();
            for shard in shards {
                if !is_plain_relative(Path::new(&shard)) {
                    return Err(Error::bad_file(
                        &index,
                        format!("shard `{shard}` points outside the repository"),
                    ));
                }
                api_repo.get(&shard).map_err(|e| {
                    Error::Invalid(format!("{spec}: downloading {shard} failed: {e}"))
                })?;
            }
        }
        commit = Some(info.sha);
    }
    let commit =
        commit.ok_or_else(|| Error::Invalid(format!("{spec}: revision could not be resolved")))?;
    let first = wanted.first().copied().unwrap_or("config.json");
    let (path, _) = cached(repo, &commit, first).ok_or_else(|| {
        Error::Invalid(format!(
            "{spec}: {first} missing from the cache after download"
        ))
    })?;
    let path = match file {
        Some(_) => path,
        None => path.parent().map(Path::to_path_buf).unwrap_or(path),
    };
    Ok(HubResolution { path, commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_specs_parse_with_and_without_revision() {
        assert_eq!(
            Source::parse("hf:Qwen/Qwen2.5-0.5B-Instruct@abc123").unwrap(),
            Source::Hub {
                repo: "Qwen/Qwen2.5-0.5B-Instruct".into(),
                revision: "abc123".into(),
                file: None
            }
        );
        assert!(matches!(
            Source::parse("hf:a/b:model-q4.gguf").unwrap(),
            Source::Hub { revision, file: Some(_), .. } if revision == "main"
        ));
    }

    #[test]
    fn hub_specs_reject_path_tricks() {
        assert!(Source::parse("hf:../etc").is_err());
        assert!(Source::parse("hf:a/b:../../x.gguf").is_err());
        assert!(Source::parse("hf:a/b/c").is_err());
    }

    #[test]
    fn plain_relative_paths_only() {
        assert!(is_plain_relative(Path::new("model-00001.safetensors")));
        assert!(!is_plain_relative(Path::new("../x.safetensors")));
        assert!(!is_plain_relative(Path::new("/etc/passwd")));
    }
}
