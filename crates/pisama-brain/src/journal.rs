//! The journal: append-only JSON lines, one file per month, each line carrying the SHA-256 of
//! the line before it in the same file (`prev`), so an edited or removed line is visible.
//! Appends happen only under the brain's lock.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One journal line. Field order is the serialization order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub ts: String,
    /// created, revised, proposed, approved, `changes_requested`, rejected, archived, redacted,
    /// linked, transitioned, imported, withdrawn.
    pub event: String,
    pub id: String,
    pub revision: u32,
    pub content_hash: String,
    pub actor: String,
    pub via: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Redaction rule names and counts (never values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, usize>,
    pub prev: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The journal folder of a brain.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(dir: PathBuf) -> Self {
        Journal { dir }
    }

    fn month_file(&self, ts: Timestamp) -> PathBuf {
        self.dir.join(format!("{}.jsonl", ts.strftime("%Y-%m")))
    }

    /// Appends an event, filling in `ts` (if empty) and `prev`. The caller holds the lock.
    pub fn append(&self, mut event: Event) -> Result<Event> {
        let now = Timestamp::now();
        if event.ts.is_empty() {
            event.ts = now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        }
        let path = self.month_file(now);
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let existing = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut prefix = Vec::new();
        if !existing.is_empty() && !existing.ends_with(b"\n") {
            // A torn last line (a crash mid-append): close it so the next line stays whole;
            // `verify` reports the torn line.
            prefix.push(b'\n');
        }
        event.prev = last_line(&existing).map(sha256_hex).unwrap_or_default();
        let mut line = serde_json::to_vec(&event).map_err(|e| Error::Index(e.to_string()))?;
        let mut buf = prefix;
        buf.append(&mut line);
        buf.push(b'\n');
        file.write_all(&buf).map_err(|e| Error::io(&path, e))?;
        file.sync_data().map_err(|e| Error::io(&path, e))?;
        Ok(event)
    }

    /// Every event, oldest month first, in file order.
    pub fn events(&self) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        for path in self.files()? {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let ev: Event = serde_json::from_str(line).map_err(|e| Error::Journal {
                    path: path.clone(),
                    line: i + 1,
                    message: e.to_string(),
                })?;
                out.push(ev);
            }
        }
        Ok(out)
    }

    fn files(&self) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "jsonl") {
                files.push(p);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Checks every month file's chain; returns the number of events.
    pub fn verify(&self) -> Result<usize> {
        let mut n = 0;
        for path in self.files()? {
            n += verify_file(&path)?;
        }
        Ok(n)
    }
}

fn last_line(bytes: &[u8]) -> Option<&[u8]> {
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if trimmed.is_empty() {
        return None;
    }
    let start = trimmed
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    Some(&trimmed[start..])
}

fn verify_file(path: &Path) -> Result<usize> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut prev: Option<&[u8]> = None;
    let mut n = 0;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let err = |message: String| Error::Journal {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let ev: Event =
            serde_json::from_slice(line).map_err(|e| err(format!("not a journal event: {e}")))?;
        let expected = prev.map(sha256_hex).unwrap_or_default();
        if ev.prev != expected {
            return Err(err(format!(
                "chain broken: `prev` is {:?}, the previous line hashes to {expected:?}",
                ev.prev
            )));
        }
        prev = Some(line);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str) -> Event {
        Event {
            ts: String::new(),
            event: "created".into(),
            id: id.into(),
            revision: 0,
            content_hash: "h".into(),
            actor: "human:a".into(),
            via: "cli".into(),
            note: None,
            rules: BTreeMap::new(),
            prev: String::new(),
        }
    }

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("journal"));
        for i in 0..5 {
            j.append(ev(&format!("R{i}"))).unwrap();
        }
        assert_eq!(j.verify().unwrap(), 5);
        assert_eq!(j.events().unwrap().len(), 5);
        let file = j.files().unwrap().remove(0);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("\"R2\"", "\"R9\"")).unwrap();
        let e = j.verify().unwrap_err().to_string();
        assert!(e.contains(":4: chain broken"), "{e}");
    }
}
