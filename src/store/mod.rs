//! The run store: one SQLite database (WAL) holding model fingerprints, prompts, generations,
//! verdicts and runs. Every answer is committed as soon as it exists, so a killed audit resumes
//! where it stopped, and a second candidate audited against the same reference reuses the
//! reference's answers.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

mod records;

pub use records::{
    generation_key, Finish, RunRecord, StoredGeneration, StoredHarmRating, StoredVerdict,
};

use crate::error::{Error, Result};

/// Version 2 added the judge's model, template and decoding to every verdict, and the
/// self-rated harm probe's ratings; [`migrate`] brings a version 1 store up to date.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    fingerprint TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    fingerprint_json TEXT NOT NULL,
    info_json TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS prompts (
    text_hash TEXT PRIMARY KEY,
    turns_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    system_prompt TEXT NOT NULL,
    text_hash TEXT NOT NULL REFERENCES prompts(text_hash),
    settings TEXT NOT NULL,
    sample INTEGER NOT NULL,
    answer TEXT NOT NULL,
    finish TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    answer_tokens INTEGER NOT NULL,
    provenance TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_by_model ON generations(model);
CREATE TABLE IF NOT EXISTS verdicts (
    generation TEXT NOT NULL REFERENCES generations(key),
    judge TEXT NOT NULL,
    judge_fingerprint TEXT NOT NULL,
    label TEXT NOT NULL,
    partial INTEGER NOT NULL,
    score REAL,
    reason TEXT NOT NULL,
    raw TEXT,
    created TEXT NOT NULL,
    judge_model TEXT NOT NULL DEFAULT '',
    template_sha256 TEXT NOT NULL DEFAULT '',
    decoding TEXT NOT NULL DEFAULT '',
    uncertain TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (generation, judge_fingerprint)
);
CREATE TABLE IF NOT EXISTS harm_ratings (
    model TEXT NOT NULL,
    system_prompt TEXT NOT NULL,
    text_hash TEXT NOT NULL REFERENCES prompts(text_hash),
    probe TEXT NOT NULL,
    rating REAL,
    digit_mass REAL NOT NULL,
    digit_probs_json TEXT NOT NULL,
    raw TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (model, system_prompt, text_hash, probe)
);
CREATE TABLE IF NOT EXISTS overrides (
    generation TEXT PRIMARY KEY REFERENCES generations(key),
    label TEXT NOT NULL,
    note TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS served_answers (
    generation TEXT PRIMARY KEY REFERENCES generations(key),
    response_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    out_dir TEXT NOT NULL
);
";

/// Current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Where the store lives by default: `$ALIGNDIFF_DATA`, else `$XDG_DATA_HOME/aligndiff`, else
/// `~/.local/share/aligndiff`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ALIGNDIFF_DATA") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("aligndiff");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".local/share/aligndiff"))
        .unwrap_or_else(|| PathBuf::from("aligndiff-data"))
}

/// Bring a store of an older schema version up to [`SCHEMA_VERSION`] in one transaction, keeping
/// every row. Version 1 → 2: verdicts gain `judge_model`, `template_sha256` and `decoding`
/// (empty for the verdicts already stored, which all came from the lexical refusal judge); the
/// `harm_ratings` table is created by the schema itself.
fn migrate(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    if from < 2 {
        let columns: Vec<String> = {
            let mut stmt = tx.prepare("SELECT name FROM pragma_table_info('verdicts')")?;
            let names = stmt.query_map([], |r| r.get(0))?;
            names.collect::<rusqlite::Result<_>>()?
        };
        for column in ["judge_model", "template_sha256", "decoding"] {
            if !columns.iter().any(|c| c == column) {
                tx.execute_batch(&format!(
                    "ALTER TABLE verdicts ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"
                ))?;
            }
        }
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
        [SCHEMA_VERSION.to_string()],
    )?;
    tx.commit()
}

/// Columns added after schema version 2 without a version bump: additive, with defaults, so an
/// older aligndiff still opens (and writes) the store. Added on open when missing.
/// A store opened read-only keeps its columns; reads then see none of the added ones' values. Two
/// processes adding the same column race harmlessly: the loser's "duplicate column" is ignored.
fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Ok(());
    }
    if !has_column(conn, "verdicts", "uncertain")? {
        match conn
            .execute_batch("ALTER TABLE verdicts ADD COLUMN uncertain TEXT NOT NULL DEFAULT ''")
        {
            Err(e) if e.to_string().contains("duplicate column") => {}
            other => other?,
        }
    }
    Ok(())
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |r| r.get::<_, String>(0))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Whether `verdicts` has the `uncertain` column (a read-only store from before it lacks it).
    has_uncertain: bool,
}

impl Store {
    /// Open (or create) the store `aligndiff.sqlite` in `dir`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Self::open(&dir.join("aligndiff.sqlite"))
    }

    /// Open (or create) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let err = |e: rusqlite::Error| Error::bad_file(path, format!("store: {e}"));
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        let _mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(err)?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) if v == "1" => migrate(&conn, 1).map_err(err)?,
            Some(v) => {
                return Err(Error::bad_file(
                    path,
                    format!("store schema version {v} is newer than this aligndiff understands ({SCHEMA_VERSION})"),
                ))
            }
        }
        add_columns(&conn).map_err(err)?;
        let has_uncertain = has_column(&conn, "verdicts", "uncertain").map_err(err)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            has_uncertain,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: &rusqlite::Error) -> Error {
        Error::bad_file(&self.path, format!("store: {e}"))
    }

    /// Record a model (first sighting wins).
    pub fn put_model(
        &self,
        fingerprint: &str,
        label: &str,
        fingerprint_json: &str,
        info_json: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO models (fingerprint, label, fingerprint_json, info_json, first_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(fingerprint) DO NOTHING",
                params![fingerprint, label, fingerprint_json, info_json, now_utc()],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// Record a prompt's text.
    pub fn put_prompt(&self, text_hash: &str, turns: &[String]) -> Result<()> {
        let turns_json = serde_json::to_string(turns).map_err(Error::json("a prompt's turns"))?;
        self.conn
            .execute(
                "INSERT INTO prompts (text_hash, turns_json) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![text_hash, turns_json],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// Store an answer; returns false if one was already stored under its key.
    pub fn put_generation(&self, g: &StoredGeneration) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "INSERT INTO generations (key, model, system_prompt, text_hash, settings, sample, answer,
                    finish, prompt_tokens, answer_tokens, provenance, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT(key) DO NOTHING",
                params![
                    g.key,
                    g.model,
                    g.system_prompt,
                    g.text_hash,
                    g.settings,
                    g.sample,
                    g.answer,
                    g.finish,
                    g.prompt_tokens,
                    g.answer_tokens,
                    g.provenance,
                    now_utc()
                ],
            )
            .map_err(|e| self.err(&e))?;
        Ok(n == 1)
    }

    /// Store an answer from a server together with what the server said about it (model,
    /// fingerprint, usage), in one transaction; returns false if one was already stored.
    pub fn put_served_generation(&self, g: &StoredGeneration, response_json: &str) -> Result<bool> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.err(&e))?;
        let new = self.put_generation(g)?;
        if new {
            tx.execute(
                "INSERT INTO served_answers (generation, response_json) VALUES (?1, ?2)
                 ON CONFLICT(generation) DO NOTHING",
                params![g.key, response_json],
            )
            .map_err(|e| self.err(&e))?;
        }
        tx.commit().map_err(|e| self.err(&e))?;
        Ok(new)
    }

    /// What the server said about the answer under `key` (JSON), for served answers.
    pub fn served_answer(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT response_json FROM served_answers WHERE generation = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// The stored answer under `key`.
    pub fn generation(&self, key: &str) -> Result<Option<StoredGeneration>> {
        self.conn
            .query_row(
                "SELECT key, model, system_prompt, text_hash, settings, sample, answer, finish,
                        prompt_tokens, answer_tokens, provenance
                 FROM generations WHERE key = ?1",
                [key],
                |r| {
                    Ok(StoredGeneration {
                        key: r.get(0)?,
                        model: r.get(1)?,
                        system_prompt: r.get(2)?,
                        text_hash: r.get(3)?,
                        settings: r.get(4)?,
                        sample: r.get(5)?,
                        answer: r.get(6)?,
                        finish: r.get(7)?,
                        prompt_tokens: r.get(8)?,
                        answer_tokens: r.get(9)?,
                        provenance: r.get(10)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// Store a verdict (replacing one by the same judge fingerprint).
    pub fn put_verdict(&self, v: &StoredVerdict) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO verdicts (generation, judge, judge_fingerprint, label, partial,
                    score, reason, raw, created, judge_model, template_sha256, decoding, uncertain)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    v.generation,
                    v.judge,
                    v.judge_fingerprint,
                    v.label,
                    v.partial,
                    v.score,
                    v.reason,
                    v.raw,
                    now_utc(),
                    v.judge_model,
                    v.template_sha256,
                    v.decoding,
                    v.uncertain.map_or("", crate::judge::Uncertainty::as_str)
                ],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// The verdict a judge (by fingerprint) gave a generation.
    pub fn verdict(
        &self,
        generation: &str,
        judge_fingerprint: &str,
    ) -> Result<Option<StoredVerdict>> {
        self.conn
            .query_row(
                if self.has_uncertain {
                    "SELECT generation, judge, judge_fingerprint, label, partial, score, reason, raw,
                            judge_model, template_sha256, decoding, uncertain
                     FROM verdicts WHERE generation = ?1 AND judge_fingerprint = ?2"
                } else {
                    "SELECT generation, judge, judge_fingerprint, label, partial, score, reason, raw,
                            judge_model, template_sha256, decoding, ''
                     FROM verdicts WHERE generation = ?1 AND judge_fingerprint = ?2"
                },
                [generation, judge_fingerprint],
                |r| {
                    Ok(StoredVerdict {
                        generation: r.get(0)?,
                        judge: r.get(1)?,
                        judge_fingerprint: r.get(2)?,
                        label: r.get(3)?,
                        partial: r.get(4)?,
                        score: r.get(5)?,
                        reason: r.get(6)?,
                        raw: r.get(7)?,
                        judge_model: r.get(8)?,
                        template_sha256: r.get(9)?,
                        decoding: r.get(10)?,
                        uncertain: crate::judge::Uncertainty::parse(&r.get::<_, String>(11)?),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// Store a harm rating (replacing one under the same key).
    pub fn put_harm_rating(&self, h: &StoredHarmRating) -> Result<()> {
        let probs =
            serde_json::to_string(&h.digit_probs).map_err(Error::json("digit probabilities"))?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO harm_ratings (model, system_prompt, text_hash, probe, rating,
                    digit_mass, digit_probs_json, raw, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    h.model,
                    h.system_prompt,
                    h.text_hash,
                    h.probe,
                    h.rating,
                    h.digit_mass,
                    probs,
                    h.raw,
                    now_utc()
                ],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// The harm rating a model (with a system prompt) gave a prompt under a probe.
    pub fn harm_rating(
        &self,
        model: &str,
        system_prompt: &str,
        text_hash: &str,
        probe: &str,
    ) -> Result<Option<StoredHarmRating>> {
        self.conn
            .query_row(
                "SELECT model, system_prompt, text_hash, probe, rating, digit_mass, digit_probs_json, raw
                 FROM harm_ratings WHERE model = ?1 AND system_prompt = ?2 AND text_hash = ?3 AND probe = ?4",
                [model, system_prompt, text_hash, probe],
                |r| {
                    let probs: String = r.get(6)?;
                    Ok(StoredHarmRating {
                        model: r.get(0)?,
                        system_prompt: r.get(1)?,
                        text_hash: r.get(2)?,
                        probe: r.get(3)?,
                        rating: r.get(4)?,
                        digit_mass: r.get(5)?,
                        digit_probs: serde_json::from_str(&probs).map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(
                                6,
                                rusqlite::types::Type::Text,
                                Box::new(e),
                            )
                        })?,
                        raw: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// A person's override of the verdict on a generation, if any: (label, note).
    pub fn override_for(&self, generation: &str) -> Result<Option<(String, String)>> {
        self.conn
            .query_row(
                "SELECT label, note FROM overrides WHERE generation = ?1",
                [generation],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// Record a person's verdict on a generation (`refused` or `complied`), with a note.
    pub fn put_override(&self, generation: &str, label: &str, note: &str) -> Result<()> {
        if label != "refused" && label != "complied" {
            return Err(Error::Invalid(format!(
                "override label must be refused or complied, not `{label}`"
            )));
        }
        self.conn
            .execute(
                "INSERT OR REPLACE INTO overrides (generation, label, note, created) VALUES (?1, ?2, ?3, ?4)",
                params![generation, label, note, now_utc()],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// Remove a person's override.
    pub fn clear_override(&self, generation: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM overrides WHERE generation = ?1", [generation])
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// Number of answers stored for a model.
    pub fn count_generations(&self, model: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM generations WHERE model = ?1",
                [model],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(&e))
    }

    /// Start a run record; returns its id.
    pub fn begin_run(&self, plan_json: &str, out_dir: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO runs (started, status, plan_json, out_dir) VALUES (?1, 'running', ?2, ?3)",
                params![now_utc(), plan_json, out_dir],
            )
            .map_err(|e| self.err(&e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Close a run record with a status (`finished`, `cancelled`, `failed: ...`).
    pub fn end_run(&self, id: i64, status: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET finished = ?1, status = ?2 WHERE id = ?3",
                params![now_utc(), status, id],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// Every recorded run with its plan, newest first.
    pub fn run_records(&self) -> Result<Vec<RunRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started, finished, status, plan_json, out_dir FROM runs ORDER BY id DESC",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(RunRecord {
                    id: r.get(0)?,
                    started: r.get(1)?,
                    finished: r.get(2)?,
                    status: r.get(3)?,
                    plan_json: r.get(4)?,
                    out_dir: r.get(5)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(&e))
    }
}

#[cfg(test)]
mod tests;
