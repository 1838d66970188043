//! Resources: mirrors of the tools for clients that attach context.
//!
//! `brain://index` (every record's metadata), `brain://record/{id}` (markdown, ids complete),
//! `brain://kind/{kind}`, `brain://pending`, `brain://context` (the approved digest within the
//! default budget), `brain://schema` (frontmatter JSON Schema) and `pisama://detectors`.

use std::hash::{Hash, Hasher};

use rmcp::ErrorData;
use rmcp::model::{CompleteRequestParams, Reference, Resource, ResourceContents, ResourceTemplate};
use serde_json::json;

use pisama_brain::model::{RELS, Review};
use pisama_brain::{Brain, Kind};

use crate::brain_tools::{ContextArgs, ListArgs, StrList, context_pack, list_records};
use crate::detect_tools::detector_list;
use crate::server::PisamaServer;

const JSON: &str = "application/json";
const MARKDOWN: &str = "text/markdown";

fn fixed() -> Vec<Resource> {
    vec![
        Resource::new("brain://index", "brain-index")
            .with_title("Brain index")
            .with_description("Metadata of every record in the project brain (JSON)")
            .with_mime_type(JSON),
        Resource::new("brain://pending", "brain-pending")
            .with_title("Review queue")
            .with_description("Records and proposals waiting for a human review (JSON)")
            .with_mime_type(JSON),
        Resource::new("brain://context", "brain-context")
            .with_title("Approved context digest")
            .with_description(
                "The approved project context within the default token budget (markdown)",
            )
            .with_mime_type(MARKDOWN),
        Resource::new("brain://schema", "brain-schema")
            .with_title("Record frontmatter schema")
            .with_description(
                "JSON Schema of brain record frontmatter, so agents write valid fields",
            )
            .with_mime_type(JSON),
        Resource::new("pisama://detectors", "detectors")
            .with_title("Detector catalogue")
            .with_description(
                "Every detector: id, title, tier, severity, category, MAST mode (JSON)",
            )
            .with_mime_type(JSON),
    ]
}

/// Concrete resources: the fixed ones, one per kind, and one per record.
pub(crate) fn list(server: &PisamaServer) -> Vec<Resource> {
    let mut out = fixed();
    for k in Kind::ALL {
        out.push(
            Resource::new(
                format!("brain://kind/{}", k.name()),
                format!("brain-kind-{}", k.name()),
            )
            .with_title(format!("Brain records of kind {}", k.name()))
            .with_mime_type(JSON),
        );
    }
    if let Ok(brain) = server.open_brain()
        && let Ok(cat) = brain.scan()
    {
        for e in &cat.entries {
            let r = &e.record;
            if matches!(r.review, Review::Archived | Review::Rejected) {
                continue;
            }
            out.push(
                Resource::new(format!("brain://record/{}", r.id), r.title.clone())
                    .with_title(r.title.clone())
                    .with_description(format!("{} ({}, r{})", r.kind, r.review, r.revision))
                    .with_mime_type(MARKDOWN),
            );
        }
    }
    out
}

pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("brain://record/{id}", "brain-record")
            .with_title("A brain record")
            .with_description("One record as markdown with frontmatter; `id` completes")
            .with_mime_type(MARKDOWN),
        ResourceTemplate::new("brain://kind/{kind}", "brain-kind")
            .with_title("Brain records of one kind")
            .with_description("Metadata of the records of a kind (JSON); `kind` completes")
            .with_mime_type(JSON),
    ]
}

fn not_found(uri: &str, why: &str) -> ErrorData {
    ErrorData::resource_not_found(format!("{why}: {uri}"), Some(json!({ "uri": uri })))
}

fn json_contents(uri: &str, value: &impl serde::Serialize) -> Result<ResourceContents, ErrorData> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(ResourceContents::text(text, uri).with_mime_type(JSON))
}

fn brain(server: &PisamaServer, uri: &str) -> Result<Brain, ErrorData> {
    server.open_brain().map_err(|e| not_found(uri, &e))
}

fn list_all(brain: &Brain, kind: Option<&str>, uri: &str) -> Result<ResourceContents, ErrorData> {
    let out = list_records(
        brain,
        &ListArgs {
            kind: kind.map(|k| StrList::One(k.to_owned())),
            review: None,
            status: None,
            updated_since: None,
            limit: Some(usize::MAX),
            cursor: None,
        },
    )
    .map_err(|e| not_found(uri, &e))?;
    json_contents(uri, &out)
}

/// Reads one resource (blocking: files and the index).
pub(crate) fn read(server: &PisamaServer, uri: &str) -> Result<ResourceContents, ErrorData> {
    match uri {
        "pisama://detectors" => {
            let list = detector_list().map_err(|e| ErrorData::internal_error(e, None))?;
            json_contents(uri, &list)
        }
        "brain://schema" => json_contents(uri, &frontmatter_schema()),
        "brain://index" => list_all(&brain(server, uri)?, None, uri),
        "brain://pending" => {
            let b = brain(server, uri)?;
            let pending = b.pending().map_err(|e| not_found(uri, &e.to_string()))?;
            let items: Vec<_> = pending
                .iter()
                .map(|(e, p)| {
                    json!({
                        "id": e.record.id.to_string(),
                        "uri": format!("brain://record/{}", e.record.id),
                        "kind": e.record.kind.name(),
                        "title": e.record.title,
                        "review": e.record.review.name(),
                        "revision": e.record.revision,
                        "proposal_revision": p.as_ref().map(|p| p.record.revision),
                        "diff": p.as_ref().map(|p| pisama_brain::unified_diff(
                            &e.record.to_markdown(), &p.record.to_markdown(), "approved", "proposal")),
                        "command": format!("pisama brain approve {} (or reject / request-changes)", e.record.short_id()),
                    })
                })
                .collect();
            json_contents(uri, &json!({ "pending": items }))
        }
        "brain://context" => {
            let b = brain(server, uri)?;
            let pack = context_pack(
                &b,
                &ContextArgs {
                    task: None,
                    paths: None,
                    kinds: None,
                    budget_tokens: None,
                    include_unapproved: false,
                },
            )
            .map_err(|e| not_found(uri, &e))?;
            let mut text = String::new();
            for i in &pack.items {
                text.push_str(&i.text);
            }
            if text.is_empty() {
                text = "(no approved context yet)\n".into();
            }
            Ok(ResourceContents::text(text, uri).with_mime_type(MARKDOWN))
        }
        _ => {
            if let Some(id) = uri.strip_prefix("brain://record/") {
                let b = brain(server, uri)?;
                let e = b.get(id).map_err(|e| not_found(uri, &e.to_string()))?;
                return Ok(
                    ResourceContents::text(e.record.to_markdown(), uri).with_mime_type(MARKDOWN)
                );
            }
            if let Some(kind) = uri.strip_prefix("brain://kind/") {
                let k: Kind = kind.parse().map_err(|e: String| not_found(uri, &e))?;
                return list_all(&brain(server, uri)?, Some(k.name()), uri);
            }
            Err(not_found(uri, "no such resource"))
        }
    }
}

/// A cheap fingerprint of what a subscriber has seen.
pub(crate) fn hash_of(contents: &ResourceContents) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(contents)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

/// Completion values for `completion/complete`.
pub(crate) fn complete(server: &PisamaServer, req: &CompleteRequestParams) -> Vec<String> {
    let prefix = req.argument.value.trim().to_ascii_uppercase();
    let kinds = || -> Vec<String> {
        Kind::ALL
            .iter()
            .map(|k| k.name().to_owned())
            .filter(|k| k.to_ascii_uppercase().starts_with(&prefix))
            .collect()
    };
    let ids = |only: Option<Kind>| -> Vec<String> {
        let Ok(b) = server.open_brain() else {
            return Vec::new();
        };
        let Ok(cat) = b.scan() else {
            return Vec::new();
        };
        let mut v: Vec<(jiff::Timestamp, String)> = cat
            .entries
            .iter()
            .filter(|e| only.is_none_or(|k| e.record.kind == k))
            .filter(|e| !matches!(e.record.review, Review::Archived | Review::Rejected))
            .map(|e| (e.record.updated, e.record.id.to_string()))
            .filter(|(_, id)| id.starts_with(&prefix) || id.ends_with(&prefix))
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.0));
        v.into_iter().map(|(_, id)| id).collect()
    };
    match &req.r#ref {
        Reference::Resource(r) => match (r.uri.as_str(), req.argument.name.as_str()) {
            ("brain://record/{id}", "id") => ids(None),
            ("brain://kind/{kind}", "kind") => kinds(),
            _ => Vec::new(),
        },
        Reference::Prompt(p) => match (p.name.as_str(), req.argument.name.as_str()) {
            ("brain_plan_from_spec", "spec_id") => ids(Some(Kind::Spec)),
            (_, "kind") => kinds(),
            (_, "id") => ids(None),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The JSON Schema of record frontmatter, built from the brain's own tables.
pub(crate) fn frontmatter_schema() -> serde_json::Value {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let reviews: Vec<&str> = Review::ALL.iter().map(|r| r.name()).collect();
    let mut per_kind = Vec::new();
    for k in Kind::ALL {
        if let Some((field, values)) = k.status_field() {
            per_kind.push(json!({
                "if": {"properties": {"kind": {"const": k.name()}}},
                "then": {"properties": {field: {"enum": values}}}
            }));
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:pisama:schema:brain-frontmatter:1",
        "title": "pisama brain record frontmatter",
        "description": "The YAML frontmatter of a `.brain/` record. Tools set id, revision, timestamps, authors, approval and redactions; agents provide kind, title, body, tags, links, scope and the per-kind fields.",
        "type": "object",
        "required": ["id", "kind", "title", "review", "revision", "created", "updated"],
        "properties": {
            "id": {"type": "string", "description": "ULID, immutable, also in the file name"},
            "kind": {"enum": kinds},
            "title": {"type": "string"},
            "review": {"enum": reviews, "description": "Only a human moves a record to approved, rejected or changes_requested"},
            "revision": {"type": "integer", "minimum": 0, "description": "Increments on every approved change"},
            "created": {"type": "string", "format": "date-time"},
            "updated": {"type": "string", "format": "date-time"},
            "authors": {"type": "array", "items": {"type": "string", "description": "human:NAME or agent:NAME"}},
            "approved_by": {"type": "string"},
            "approved_at": {"type": "string", "format": "date-time"},
            "origin": {"type": "object", "properties": {
                "actor": {"enum": ["agent", "human", "import"]},
                "client": {"type": "string"},
                "trust": {"enum": ["direct_user", "model_inference", "tool_output", "imported"]}
            }},
            "tags": {"type": "array", "items": {"type": "string"}},
            "scope": {"type": "object", "properties": {
                "paths": {"type": "array", "items": {"type": "string", "description": "A path glob inside the repository"}},
                "evidence": {"type": "array", "items": {"type": "object", "required": ["path"], "properties": {
                    "path": {"type": "string"}, "lines": {"type": "string", "description": "e.g. 10-42"}, "blob": {"type": "string", "description": "git blob hash"}
                }}}
            }},
            "links": {"type": "array", "items": {"type": "object", "required": ["rel", "to"], "properties": {
                "rel": {"enum": RELS},
                "to": {"type": "string", "description": "A record id or path:<path>"}
            }}},
            "review_by": {"type": "string", "format": "date"},
            "sync": {"enum": ["local", "eligible", "synced"]},
            "redactions": {"type": "integer", "minimum": 0},
            "memory_type": {"enum": pisama_brain::model::MEMORY_TYPES},
            "confidence": {"enum": pisama_brain::model::CONFIDENCE},
            "outcome": {"enum": pisama_brain::model::OUTCOMES},
            "phase": {"enum": pisama_brain::model::PHASES},
            "state": {"enum": pisama_brain::model::WORK_STATES},
            "verdict": {"enum": pisama_brain::model::VERDICTS},
            "requirements": {"type": "array", "items": {"type": "object", "required": ["id", "text"], "properties": {
                "id": {"type": "string", "description": "R1, R2, ..."}, "text": {"type": "string"},
                "acceptance": {"type": "array", "items": {"type": "string", "description": "WHEN … THE SYSTEM SHALL …"}}
            }}},
            "steps": {"type": "array", "items": {"type": "object", "required": ["id", "title"], "properties": {
                "id": {"type": "string", "description": "S1, S2, ..."}, "title": {"type": "string"},
                "status": {"enum": pisama_brain::model::STEP_STATES},
                "depends_on": {"type": "array", "items": {"type": "string"}},
                "requirement": {"type": "string"}
            }}},
            "arguments": {"type": "array", "description": "prompt records: the template's {{arguments}}", "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "description": {"type": "string"}, "required": {"type": "boolean"}
            }}},
            "mcp_prompt": {"type": "boolean"}
        },
        "allOf": per_kind
    })
}
