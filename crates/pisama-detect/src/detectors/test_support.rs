//! Builders shared by the detectors' unit tests.

use pisama_trace::{Payload, Span, SpanKind};

/// A model message of `agent` with an id (`m{seq}`) and a position.
pub(crate) fn said(agent: &str, seq: u32, text: &str) -> Span {
    Span {
        id: format!("m{seq}"),
        seq,
        kind: SpanKind::Llm,
        agent: Some(agent.to_owned()),
        output: Some(Box::new(Payload::text(text))),
        ..Span::default()
    }
}

/// A model message of `agent`, named after it.
pub(crate) fn message(agent: &str, text: &str) -> Span {
    Span {
        kind: SpanKind::Llm,
        name: agent.to_owned(),
        agent: Some(agent.to_owned()),
        output: Some(Box::new(Payload::text(text))),
        ..Span::default()
    }
}
