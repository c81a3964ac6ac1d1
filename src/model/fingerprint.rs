//! What exactly was loaded: path, size and SHA-256 of every file, plus the hub revision.
//! Hashes are cached by (path, size, modification time) so a 10 GB model is hashed once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One file's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Role of the file: `weights`, `tokenizer`, `config`, `adapter`, ...
    pub role: String,
    /// Absolute path as loaded.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// The identity of a loaded model: files, hub revision and load-time transformations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Every file that went into the model.
    pub files: Vec<FileDigest>,
    /// Hub commit hash, for `hf:` sources.
    pub revision: Option<String>,
    /// SHA-256 of the chat template text.
    pub template_sha256: String,
    /// Load-time transformations that change the numbers (requantization, LoRA merge scale).
    pub transforms: Vec<String>,
    /// For a model on a server: what identifies it (aligndiff sees no files then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<ServedIdentity>,
    /// SHA-256 over all of the above: the key generations are cached under.
    pub id: String,
}

/// What identifies a model answered by a server (an `openai:` source): the endpoint, the served
/// name and what the server's model list says about it. The weights themselves are out of
/// reach: nothing here proves which weights the server loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServedIdentity {
    /// The API family: `openai`.
    pub backend: String,
    /// The base URL, without credentials.
    pub endpoint: String,
    /// The served model name requests use.
    pub served_model: String,
    /// The server's `/v1/models` entry for it, less fields that change between requests.
    pub server_said: serde_json::Value,
}

impl Fingerprint {
    /// Combine file digests and settings into a fingerprint with a stable id.
    pub fn new(
        files: Vec<FileDigest>,
        revision: Option<String>,
        template_sha256: String,
        transforms: Vec<String>,
    ) -> Self {
        let mut h = Sha256::new();
        // Paths are left out of the id: the same bytes moved elsewhere are the same model.
        for f in &files {
            h.update(f.role.as_bytes());
            h.update([0]);
            h.update(f.sha256.as_bytes());
            h.update([0]);
        }
        h.update(revision.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
        h.update(template_sha256.as_bytes());
        for t in &transforms {
            h.update([0]);
            h.update(t.as_bytes());
        }
        let id = crate::util::hash::hex(&h.finalize());
        Self {
            files,
            revision,
            template_sha256,
            transforms,
            served: None,
            id,
        }
    }

    /// The fingerprint of a served model: its id covers the endpoint, the served name and the
    /// server's description (in a canonical JSON form), so a restarted server that describes
    /// the same model the same way keeps its stored answers.
    pub fn served(identity: ServedIdentity) -> Self {
        let text = [
            "served-model",
            &identity.backend,
            &identity.endpoint,
            &identity.served_model,
            &canonical_json(&identity.server_said),
        ]
        .join("\u{0}");
        Self {
            files: Vec::new(),
            revision: None,
            template_sha256: String::new(),
            transforms: Vec::new(),
            id: crate::util::hash::hex_sha256(text.as_bytes()),
            served: Some(identity),
        }
    }

    /// The first 12 hex digits of the id, for display.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// JSON with object keys sorted at every level, whatever order the server wrote them in.
pub fn canonical_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

/// Where aligndiff keeps caches: `$ALIGNDIFF_CACHE`, else `$XDG_CACHE_HOME/aligndiff`, else
/// `~/.cache/aligndiff`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ALIGNDIFF_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("aligndiff");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache").join("aligndiff"))
        .unwrap_or_else(|| std::env::temp_dir().join("aligndiff-cache"))
}

/// A persistent map from (path, size, mtime) to SHA-256.
#[derive(Debug)]
pub struct HashCache {
    file: Option<PathBuf>,
    entries: BTreeMap<String, String>,
}

impl HashCache {
    /// Open the cache stored at `file` (created on first save); `None` keeps it in memory only.
    pub fn open(file: Option<PathBuf>) -> Self {
        let entries = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Self { file, entries }
    }

    /// The default on-disk cache.
    pub fn default_location() -> Self {
        Self::open(Some(cache_dir().join("hash-cache.json")))
    }

    fn key(path: &Path, meta: &std::fs::Metadata) -> String {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("{}|{}|{}", path.display(), meta.len(), mtime)
    }

    /// Digest of `path`, hashing it only if it changed since it was last seen.
    pub fn digest(&mut self, role: &str, path: &Path) -> Result<FileDigest> {
        let path = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        let key = Self::key(&path, &meta);
        let sha256 = match self.entries.get(&key) {
            Some(sha) => sha.clone(),
            None => {
                let sha = sha256_file(&path)?;
                self.entries.insert(key, sha.clone());
                self.save();
                sha
            }
        };
        Ok(FileDigest {
            role: role.to_owned(),
            path: path.display().to_string(),
            bytes: meta.len(),
            sha256,
        })
    }

    fn save(&self) {
        // The cache is an optimisation: failing to write it only costs a re-hash next time.
        let Some(file) = &self.file else { return };
        if let Ok(text) = serde_json::to_string(&self.entries) {
            let _ = crate::util::write_atomic(file, text.as_bytes());
        }
    }
}

/// Stream a file through SHA-256.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::util::hash::hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn cache_is_reused_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.bin");
        std::fs::write(&p, b"abc").unwrap();
        let mut cache = HashCache::open(Some(dir.path().join("cache.json")));
        let first = cache.digest("weights", &p).unwrap();
        // Reopen from disk: the entry is there.
        let reopened = HashCache::open(Some(dir.path().join("cache.json")));
        assert_eq!(reopened.entries.len(), 1);
        std::fs::write(&p, b"abcd").unwrap();
        let second = cache.digest("weights", &p).unwrap();
        assert_ne!(first.sha256, second.sha256);
        assert_eq!(second.bytes, 4);
    }

    #[test]
    fn fingerprint_id_ignores_paths_but_not_transforms() {
        let f = |path: &str| FileDigest {
            role: "weights".into(),
            path: path.into(),
            bytes: 3,
            sha256: "aa".into(),
        };
        let a = Fingerprint::new(vec![f("/a")], None, "t".into(), vec![]);
        let b = Fingerprint::new(vec![f("/b")], None, "t".into(), vec![]);
        let c = Fingerprint::new(
            vec![f("/a")],
            None,
            "t".into(),
            vec!["requantize Q4_1->Q8_0".into()],
        );
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }
}
