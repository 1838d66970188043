//! Conversions between the brain's types and the JSON the MCP surface speaks.

use pisama_brain::Record;
use pisama_brain::yaml::{Node, Value};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value as Json;

/// A frontmatter value as JSON.
pub(crate) fn node_to_json(node: &Node) -> Json {
    match &node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Str(s) => Json::String(s.clone()),
        Value::List(items) => Json::Array(items.iter().map(node_to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), node_to_json(v)))
                .collect(),
        ),
    }
}

/// A JSON value as frontmatter (floats become strings: the frontmatter has no floats).
pub(crate) fn json_to_node(value: &Json) -> Node {
    Node::new(match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Str(n.to_string()),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(json_to_node).collect()),
        Json::Object(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), json_to_node(v)))
                .collect(),
        ),
    })
}

/// Metadata of one record (no body).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct RecordMeta {
    pub(crate) id: String,
    /// `brain://record/<id>`.
    pub(crate) uri: String,
    pub(crate) kind: String,
    pub(crate) title: String,
    /// draft, proposed, changes_requested, approved, rejected or archived.
    pub(crate) review: String,
    pub(crate) revision: u32,
    /// The per-kind lifecycle value (decision outcome, spec phase, work state, ...).
    pub(crate) status: Option<String>,
    pub(crate) tags: Vec<String>,
    /// UTC, RFC 3339.
    pub(crate) updated: String,
    /// Relative to the repository root.
    pub(crate) path: String,
}

pub(crate) fn record_uri(id: &str) -> String {
    format!("brain://record/{id}")
}

pub(crate) fn meta_of(record: &Record, rel_path: &std::path::Path) -> RecordMeta {
    let id = record.id.to_string();
    RecordMeta {
        uri: record_uri(&id),
        id,
        kind: record.kind.name().to_owned(),
        title: record.title.clone(),
        review: record.review.name().to_owned(),
        revision: record.revision,
        status: record.status().map(str::to_owned),
        tags: record.tags.clone(),
        updated: pisama_brain::model::format_ts(record.updated),
        path: format!(
            "{}/{}",
            pisama_brain::store::BRAIN_DIR,
            rel_path.to_string_lossy().replace('\\', "/")
        ),
    }
}

/// What a brain write did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct WriteResult {
    pub(crate) id: String,
    pub(crate) uri: String,
    pub(crate) short_id: String,
    /// Relative to the repository root.
    pub(crate) path: String,
    pub(crate) revision: u32,
    pub(crate) review: String,
    /// True when the change went to `proposals/`: the approved text stays live until a human
    /// approves it.
    pub(crate) proposal: bool,
    /// Secrets replaced by `[REDACTED:…]` tags before writing.
    pub(crate) redactions: usize,
    pub(crate) rules: Vec<String>,
    /// False when the index step failed (the next read rebuilds it).
    pub(crate) indexed: bool,
    /// The journal event: created, revised, proposed, transitioned, archived, ...
    pub(crate) event: String,
}

impl From<pisama_brain::WriteOutcome> for WriteResult {
    fn from(o: pisama_brain::WriteOutcome) -> Self {
        WriteResult {
            uri: record_uri(&o.id),
            id: o.id,
            short_id: o.short_id,
            path: o.path,
            revision: o.revision,
            review: o.review.name().to_owned(),
            proposal: o.proposal,
            redactions: o.redactions,
            rules: o.rules,
            indexed: o.indexed,
            event: o.event,
        }
    }
}

pub(crate) fn write_text(o: &WriteResult) -> String {
    let mut s = format!(
        "{} {} r{} {}{} → {}",
        o.event,
        o.short_id,
        o.revision,
        o.review,
        if o.proposal {
            " (proposal; the approved text stays live until a human approves)"
        } else {
            ""
        },
        o.path
    );
    if o.redactions > 0 {
        s.push_str(&format!(
            "\nredacted {} secret(s): {}",
            o.redactions,
            o.rules.join(", ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_frontmatter_round_trip() {
        let v = serde_json::json!({"a": [1, "x", true, null], "b": {"c": "d"}});
        assert_eq!(node_to_json(&json_to_node(&v)), v);
        assert_eq!(
            node_to_json(&json_to_node(&serde_json::json!(1.5))),
            serde_json::json!("1.5")
        );
    }
}
