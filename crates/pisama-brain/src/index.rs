//! The search index: a tantivy index in `.brain/.index/` that is only a cache of the record
//! files. A manifest beside it (schema hash; per file: size, mtime, content hash, id) tells what
//! the index holds; it is rebuilt when missing, unreadable or from another schema, and synced
//! file by file when files changed behind its back (external edits, a crash before the index
//! step). Callers hold the brain's lock while writing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, STORED, STRING, Schema, TEXT,
    Value as _,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime, Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, Result};
use crate::journal::sha256_hex;
use crate::model::{Kind, Record, Review};
use crate::store::{Brain, write_atomic};

/// Bump when the way documents are built changes (the schema hash covers field changes).
const INDEX_VERSION: u32 = 1;
const WRITER_BUDGET: usize = 30_000_000;

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    kind: Field,
    review: Field,
    status: Field,
    title: Field,
    body: Field,
    headings: Field,
    tags: Field,
    tags_text: Field,
    paths: Field,
    paths_text: Field,
    links_to: Field,
    trust: Field,
    created: Field,
    updated: Field,
    path: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let date = DateOptions::from(tantivy::schema::INDEXED)
        .set_stored()
        .set_fast()
        .set_precision(DateTimePrecision::Seconds);
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED | FAST),
        review: b.add_text_field("review", STRING | STORED | FAST),
        status: b.add_text_field("status", STRING | STORED | FAST),
        title: b.add_text_field("title", TEXT | STORED),
        body: b.add_text_field("body", TEXT | STORED),
        headings: b.add_text_field("headings", TEXT),
        tags: b.add_text_field("tags", STRING | STORED | FAST),
        tags_text: b.add_text_field("tag", TEXT),
        paths: b.add_text_field("paths", STRING | STORED),
        paths_text: b.add_text_field("path_words", TEXT),
        links_to: b.add_text_field("links_to", STRING),
        trust: b.add_text_field("trust", STRING | STORED),
        created: b.add_date_field("created", date.clone()),
        updated: b.add_date_field("updated", date),
        path: b.add_text_field("file", STRING | STORED),
    };
    (b.build(), f)
}

/// A hash of the schema and the document-building version.
pub fn schema_hash() -> String {
    let (schema, _) = schema();
    let json = serde_json::to_string(&schema).unwrap_or_default();
    sha256_hex(format!("{INDEX_VERSION}\n{json}").as_bytes())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct FileState {
    size: u64,
    mtime_ns: u128,
    hash: String,
    /// The record id in the index, or empty when the file did not parse.
    id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    schema_hash: String,
    files: BTreeMap<String, FileState>,
}

/// What a freshness check did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub rebuilt: bool,
    pub reason: Option<String>,
    pub updated: usize,
    pub removed: usize,
    pub documents: u64,
}

/// An open index.
pub struct BrainIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    manifest: Manifest,
    manifest_path: PathBuf,
    rebuilt_reason: Option<String>,
}

/// Search arguments. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub kinds: Vec<Kind>,
    pub reviews: Vec<Review>,
    pub tags: Vec<String>,
    pub status: Vec<String>,
    pub limit: usize,
    pub offset: usize,
}

/// One search hit.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub review: String,
    pub status: Option<String>,
    pub score: f32,
    /// Plain text with `**` around matched words.
    pub snippet: String,
    /// Relative to the repository root.
    pub path: String,
}

fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

fn key(rel: &Path) -> String {
    rel.to_string_lossy().replace('\\', "/")
}

impl std::fmt::Debug for BrainIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrainIndex")
            .field("documents", &self.len())
            .field("manifest", &self.manifest_path)
            .finish_non_exhaustive()
    }
}

impl BrainIndex {
    fn dir(brain: &Brain) -> PathBuf {
        brain.dir().join(".index")
    }

    /// Opens the index, rebuilding it from scratch when it is missing, unreadable or from
    /// another schema. Does not look at the record files (see [`BrainIndex::sync`]).
    pub fn open(brain: &Brain) -> Result<BrainIndex> {
        let dir = Self::dir(brain);
        let manifest_path = dir.join("manifest.json");
        let tantivy_dir = dir.join("tantivy");
        let (schema, fields) = schema();
        let want = schema_hash();
        let manifest: Option<Manifest> = std::fs::read(&manifest_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let reason = match &manifest {
            None if manifest_path.exists() => Some("the manifest is unreadable".to_owned()),
            None => Some("no index yet".to_owned()),
            Some(m) if m.schema_hash != want => Some("the index is from another schema".into()),
            Some(_) => None,
        };
        let opened = if reason.is_none() {
            MmapDirectory::open(&tantivy_dir)
                .map_err(|e| e.to_string())
                .and_then(|d| Index::open(d).map_err(|e| e.to_string()))
                .and_then(|i| {
                    if i.schema() == schema {
                        Ok(i)
                    } else {
                        Err("the stored schema differs".into())
                    }
                })
        } else {
            Err(reason.clone().unwrap_or_default())
        };
        let (index, manifest, rebuilt_reason) = match opened {
            Ok(i) => (i, manifest.unwrap_or_default(), None),
            Err(why) => {
                if tantivy_dir.exists() {
                    std::fs::remove_dir_all(&tantivy_dir)
                        .map_err(|e| Error::io(&tantivy_dir, e))?;
                }
                std::fs::create_dir_all(&tantivy_dir).map_err(|e| Error::io(&tantivy_dir, e))?;
                let d =
                    MmapDirectory::open(&tantivy_dir).map_err(|e| Error::Index(e.to_string()))?;
                let i = Index::create(d, schema, tantivy::IndexSettings::default())?;
                // Any old manifest describes an index that no longer exists.
                let _ = std::fs::remove_file(&manifest_path);
                (
                    i,
                    Manifest {
                        schema_hash: want,
                        files: BTreeMap::new(),
                    },
                    Some(why),
                )
            }
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(BrainIndex {
            index,
            reader,
            fields,
            manifest,
            manifest_path,
            rebuilt_reason,
        })
    }

    /// Whether the files match the manifest (stat only; hashes only for changed stats).
    pub fn is_fresh(&self, brain: &Brain) -> Result<bool> {
        if self.rebuilt_reason.is_some() {
            return Ok(false);
        }
        let files = brain.record_files()?;
        if files.len() != self.manifest.files.len() {
            return Ok(false);
        }
        for rel in files {
            let Some(state) = self.manifest.files.get(&key(&rel)) else {
                return Ok(false);
            };
            let abs = brain.dir().join(&rel);
            let meta = std::fs::metadata(&abs).map_err(|e| Error::io(&abs, e))?;
            if meta.len() != state.size || mtime_ns(&meta) != state.mtime_ns {
                let bytes = std::fs::read(&abs).map_err(|e| Error::io(&abs, e))?;
                if sha256_hex(&bytes) != state.hash {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Brings the index in line with every record file. The caller holds the write lock.
    pub fn sync(&mut self, brain: &Brain) -> Result<SyncReport> {
        let files = brain.record_files()?;
        let mut report = self.sync_inner(brain, &files, true)?;
        report.rebuilt = self.rebuilt_reason.is_some();
        report.reason = self.rebuilt_reason.take();
        Ok(report)
    }

    /// Updates the index for some files (written or removed). The caller holds the write lock.
    pub fn sync_paths(&mut self, brain: &Brain, rels: &[PathBuf]) -> Result<()> {
        if self.rebuilt_reason.is_some() {
            self.sync(brain)?;
            return Ok(());
        }
        self.sync_inner(brain, rels, false)?;
        Ok(())
    }

    fn sync_inner(&mut self, brain: &Brain, rels: &[PathBuf], full: bool) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let mut writer: Option<tantivy::IndexWriter<TantivyDocument>> = None;
        let mut seen = BTreeSet::new();
        for rel in rels {
            let k = key(rel);
            seen.insert(k.clone());
            let abs = brain.dir().join(rel);
            let meta = match std::fs::metadata(&abs) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if let Some(old) = self.manifest.files.remove(&k) {
                        self.delete(&mut writer, &old.id)?;
                        report.removed += 1;
                    }
                    continue;
                }
                Err(e) => return Err(Error::io(&abs, e)),
            };
            let old = self.manifest.files.get(&k).cloned();
            if let Some(o) = &old
                && o.size == meta.len()
                && o.mtime_ns == mtime_ns(&meta)
            {
                continue;
            }
            let bytes = std::fs::read(&abs).map_err(|e| Error::io(&abs, e))?;
            let hash = sha256_hex(&bytes);
            let mut state = FileState {
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
                hash: hash.clone(),
                id: String::new(),
            };
            if let Some(o) = &old
                && o.hash == hash
            {
                state.id.clone_from(&o.id);
                self.manifest.files.insert(k, state);
                continue;
            }
            if let Some(o) = &old {
                self.delete(&mut writer, &o.id)?;
            }
            let text = String::from_utf8_lossy(&bytes);
            match Record::parse(&text, &Path::new(".brain").join(rel)) {
                Ok(record) => {
                    let id = record.id.to_string();
                    self.delete(&mut writer, &id)?;
                    let doc = self.document(&record, &format!(".brain/{k}"));
                    self.writer(&mut writer)?.add_document(doc)?;
                    state.id = id;
                }
                Err(e) => tracing::debug!("not indexed: {e}"),
            }
            self.manifest.files.insert(k, state);
            report.updated += 1;
        }
        if full {
            let gone: Vec<String> = self
                .manifest
                .files
                .keys()
                .filter(|k| !seen.contains(*k))
                .cloned()
                .collect();
            for k in gone {
                if let Some(old) = self.manifest.files.remove(&k) {
                    self.delete(&mut writer, &old.id)?;
                    report.removed += 1;
                }
            }
        }
        let changed = writer.is_some();
        if let Some(mut w) = writer {
            w.commit()?;
            w.wait_merging_threads()?;
            self.reader.reload()?;
        }
        if changed
            || report.updated > 0
            || self.rebuilt_reason.is_some()
            || !self.manifest_path.exists()
        {
            let bytes =
                serde_json::to_vec(&self.manifest).map_err(|e| Error::Index(e.to_string()))?;
            write_atomic(&self.manifest_path, &bytes)?;
        }
        report.documents = self.reader.searcher().num_docs();
        Ok(report)
    }

    fn writer<'a>(
        &self,
        slot: &'a mut Option<tantivy::IndexWriter<TantivyDocument>>,
    ) -> Result<&'a mut tantivy::IndexWriter<TantivyDocument>> {
        if slot.is_none() {
            *slot = Some(self.index.writer_with_num_threads(1, WRITER_BUDGET)?);
        }
        slot.as_mut()
            .ok_or_else(|| Error::Index("index writer unavailable".into()))
    }

    fn delete(
        &self,
        slot: &mut Option<tantivy::IndexWriter<TantivyDocument>>,
        id: &str,
    ) -> Result<()> {
        if id.is_empty() {
            return Ok(());
        }
        self.writer(slot)?
            .delete_term(Term::from_field_text(self.fields.id, id));
        Ok(())
    }

    fn document(&self, r: &Record, path: &str) -> TantivyDocument {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, r.id.to_string());
        doc.add_text(f.kind, r.kind.name());
        doc.add_text(f.review, r.review.name());
        if let Some(s) = r.status() {
            doc.add_text(f.status, s);
        }
        doc.add_text(f.title, &r.title);
        doc.add_text(f.body, &r.body);
        let headings: Vec<&str> = r
            .body
            .lines()
            .filter(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim())
            .collect();
        doc.add_text(f.headings, headings.join("\n"));
        for t in &r.tags {
            doc.add_text(f.tags, t);
            doc.add_text(f.tags_text, t);
        }
        for p in &r.scope.paths {
            doc.add_text(f.paths, p);
            doc.add_text(f.paths_text, p);
        }
        for e in &r.scope.evidence {
            doc.add_text(f.paths_text, &e.path);
        }
        for l in &r.links {
            doc.add_text(f.links_to, &l.to);
        }
        if let Some(o) = &r.origin {
            doc.add_text(f.trust, o.trust.name());
        }
        doc.add_date(
            f.created,
            DateTime::from_timestamp_secs(r.created.as_second()),
        );
        doc.add_date(
            f.updated,
            DateTime::from_timestamp_secs(r.updated.as_second()),
        );
        doc.add_text(f.path, path);
        doc
    }

    /// Number of documents.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ranked search: BM25 over title (3×), tags (2×), headings (1.5×), body and path words;
    /// lenient parsing (`+must`, `-not`, `"phrases"`, `field:term`); filters as exact terms.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let mut parser = QueryParser::for_index(
            &self.index,
            vec![f.title, f.body, f.headings, f.tags_text, f.paths_text],
        );
        parser.set_field_boost(f.title, 3.0);
        parser.set_field_boost(f.tags_text, 2.0);
        parser.set_field_boost(f.headings, 1.5);
        let text_query: Box<dyn Query> = if q.text.trim().is_empty() {
            Box::new(AllQuery)
        } else {
            parser.parse_query_lenient(&q.text).0
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query.box_clone())];
        let any_of = |field: Field, values: Vec<String>| -> Box<dyn Query> {
            Box::new(BooleanQuery::new(
                values
                    .into_iter()
                    .map(|v| {
                        (
                            Occur::Should,
                            Box::new(TermQuery::new(
                                Term::from_field_text(field, &v),
                                IndexRecordOption::Basic,
                            )) as Box<dyn Query>,
                        )
                    })
                    .collect(),
            ))
        };
        if !q.kinds.is_empty() {
            clauses.push((
                Occur::Must,
                any_of(
                    f.kind,
                    q.kinds.iter().map(|k| k.name().to_owned()).collect(),
                ),
            ));
        }
        if !q.reviews.is_empty() {
            clauses.push((
                Occur::Must,
                any_of(
                    f.review,
                    q.reviews.iter().map(|r| r.name().to_owned()).collect(),
                ),
            ));
        }
        if !q.status.is_empty() {
            clauses.push((Occur::Must, any_of(f.status, q.status.clone())));
        }
        for t in &q.tags {
            clauses.push((Occur::Must, any_of(f.tags, vec![t.clone()])));
        }
        let query = BooleanQuery::new(clauses);
        let limit = if q.limit == 0 { 10 } else { q.limit };
        let top = searcher.search(
            &query,
            &TopDocs::with_limit(limit)
                .and_offset(q.offset)
                .order_by_score(),
        )?;
        let mut snippets = SnippetGenerator::create(&searcher, &*text_query, f.body)?;
        snippets.set_max_num_chars(160);
        let mut hits = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let get = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let snippet = snippets.snippet_from_doc(&doc);
            let mut text = String::new();
            let frag = snippet.fragment();
            let mut last = 0;
            for r in snippet.highlighted() {
                text.push_str(&frag[last..r.start]);
                text.push_str("**");
                text.push_str(&frag[r.start..r.end]);
                text.push_str("**");
                last = r.end;
            }
            text.push_str(&frag[last..]);
            if text.trim().is_empty() {
                let body = get(f.body);
                text = body.chars().take(160).collect();
            }
            let status = get(f.status);
            hits.push(Hit {
                id: get(f.id),
                kind: get(f.kind),
                title: get(f.title),
                review: get(f.review),
                status: (!status.is_empty()).then_some(status),
                score,
                snippet: text.split_whitespace().collect::<Vec<_>>().join(" "),
                path: get(f.path),
            });
        }
        Ok(hits)
    }

    /// Every indexed id (for `check`: the index must match the files).
    pub fn ids(&self) -> Result<BTreeSet<String>> {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as usize;
        let top = searcher.search(&AllQuery, &TopDocs::with_limit(n.max(1)).order_by_score())?;
        let mut out = BTreeSet::new();
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            if let Some(id) = doc.get_first(self.fields.id).and_then(|v| v.as_str()) {
                out.insert(id.to_owned());
            }
        }
        Ok(out)
    }
}

impl Brain {
    /// Opens the index and makes it match the files, taking the locks it needs: shared to
    /// check, exclusive to update.
    pub fn fresh_index(&self) -> Result<(BrainIndex, SyncReport)> {
        {
            let _shared = self.lock_shared()?;
            let ix = BrainIndex::open(self)?;
            if ix.rebuilt_reason.is_none() && ix.is_fresh(self)? {
                let documents = ix.len();
                return Ok((
                    ix,
                    SyncReport {
                        documents,
                        ..SyncReport::default()
                    },
                ));
            }
        }
        let _lock = self.lock()?;
        let mut ix = BrainIndex::open(self)?;
        let report = ix.sync(self)?;
        Ok((ix, report))
    }

    /// Rebuilds the index from the files, from scratch.
    pub fn reindex(&self) -> Result<SyncReport> {
        let _lock = self.lock()?;
        let dir = self.dir().join(".index");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let mut ix = BrainIndex::open(self)?;
        let mut r = ix.sync(self)?;
        r.reason = Some("requested".into());
        Ok(r)
    }

    /// Search with a fresh index.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>> {
        let (ix, _) = self.fresh_index()?;
        ix.search(q)
    }
}
