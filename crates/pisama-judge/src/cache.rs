//! The answer cache: one JSON file per request, named by the SHA-256 of the prompt version, the
//! model and the exact request body. The same trace, findings, model and prompt give the same
//! key, so a re-run sends nothing and costs nothing; any change to what would be sent (another
//! model, a new prompt version, other evidence) misses. Only answers that parsed are stored.
//!
//! Files are written atomically (temporary file in the same folder, then rename), so two runs
//! at once at worst both ask and one answer wins. A cache file that cannot be read or parsed is
//! a miss, never an error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::prompt::PROMPT_VERSION;

/// Format of the files; a file of another format is a miss.
const FORMAT: u32 = 1;

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) format: u32,
    pub(crate) prompt_version: String,
    pub(crate) model: String,
    /// The assistant's text, as received.
    pub(crate) content: String,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: PathBuf,
}

/// The cache key of a request body.
pub(crate) fn key(model: &str, body: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(b"pisama-judge-cache\0");
    h.update(PROMPT_VERSION.as_bytes());
    h.update(b"\0");
    h.update(model.as_bytes());
    h.update(b"\0");
    h.update(body.to_string().as_bytes());
    h.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl Cache {
    pub(crate) fn new(dir: &Path) -> Cache {
        Cache {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    pub(crate) fn get(&self, key: &str, model: &str) -> Option<Entry> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        let entry: Entry = serde_json::from_str(&text).ok()?;
        (entry.format == FORMAT && entry.prompt_version == PROMPT_VERSION && entry.model == model)
            .then_some(entry)
    }

    /// Stores an answer; a failure is logged and otherwise ignored (the cache is an
    /// optimisation, never a reason to fail a run).
    pub(crate) fn put(&self, key: &str, model: &str, content: &str, input: u64, output: u64) {
        let entry = Entry {
            format: FORMAT,
            prompt_version: PROMPT_VERSION.to_owned(),
            model: model.to_owned(),
            content: content.to_owned(),
            input_tokens: input,
            output_tokens: output,
        };
        if let Err(e) = self.write(key, &entry) {
            tracing::warn!(dir = %self.dir.display(), "judge cache: cannot store an answer: {e}");
        }
    }

    fn write(&self, key: &str, entry: &Entry) -> std::io::Result<()> {
        use std::io::Write as _;
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        serde_json::to_writer_pretty(&mut tmp, entry)?;
        tmp.write_all(b"\n")?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(key)).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(&dir.path().join("judge"));
        let body =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let k = key("m", &body);
        assert_eq!(k.len(), 64);
        assert_ne!(k, key("other", &body));
        assert!(cache.get(&k, "m").is_none());
        cache.put(&k, "m", "{\"decision\":\"confirm\"}", 10, 5);
        let e = cache.get(&k, "m").unwrap();
        assert_eq!((e.input_tokens, e.output_tokens), (10, 5));
        assert!(cache.get(&k, "other").is_none());
        std::fs::write(cache.path(&k), "not json").unwrap();
        assert!(cache.get(&k, "m").is_none());
    }
}
