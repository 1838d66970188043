//! Calls that time out or take far too long, and runs whose active time is far beyond a
//! limit.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::{Span, SpanKind};

pub(crate) struct SlowSpan;

fn timeout_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\btimed?[ _-]?out\b|\btimeout(?:error|exception)?\b|\w*timeout\b|deadline[ _]exceeded|\betimedout\b|\b504\b.{0,20}gateway|gateway time-?out|took too long to respond|did not (?:respond|answer|complete) (?:in|within)",
        )
        .expect("valid regex")
    })
}

/// The timeout phrase in a failed span's error, if any.
fn timeout_of(span: &Span) -> Option<String> {
    let e = span.error.as_ref()?;
    let pattern = timeout_pattern();
    pattern
        .find(&e.message)
        .or_else(|| e.kind.as_deref().and_then(|k| pattern.find(k)))
        .map(|m| m.as_str().to_owned())
}

fn label(span: &Span) -> String {
    match (&span.tool, &span.llm) {
        (Some(t), _) => format!("tool `{}`", t.name),
        (None, Some(l)) => format!("model call `{}`", l.model().unwrap_or(span.name.as_str())),
        _ => format!("{} `{}`", span.kind.name(), span.name),
    }
}

/// Kinds whose duration is work done by the system (not a container, not a human).
fn is_work(span: &Span) -> bool {
    matches!(
        span.kind,
        SpanKind::Llm | SpanKind::Tool | SpanKind::Retrieval | SpanKind::Embedding
    ) || span.tool.is_some()
        || span.llm.is_some()
}

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

impl Detector for SlowSpan {
    fn id(&self) -> &'static str {
        "slow-span"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_span = params.f64("max_span_seconds", 120.0).max(1.0);
        let max_run = params.f64("max_run_seconds", 3600.0).max(1.0);
        let spans = &view.trace.spans;
        let mut hits = Vec::new();

        // 1. Timeouts, grouped by what timed out.
        let mut timeouts: Vec<(usize, String)> = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            if s.kind == SpanKind::Human {
                continue;
            }
            if let Some(q) = timeout_of(s) {
                timeouts.push((i, q));
            }
        }
        // Only report the deepest span of a timeout chain: a parent failing because its child
        // timed out is the same event.
        timeouts.retain(|(i, _)| {
            !view
                .children(*i)
                .iter()
                .any(|c| timeout_of(&spans[*c]).is_some())
        });
        let mut groups: Vec<(String, Vec<(usize, String)>)> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for (i, q) in timeouts {
            let key = label(&spans[i]);
            if let Some(&g) = group_of.get(&key) {
                groups[g].1.push((i, q));
            } else {
                group_of.insert(key.clone(), groups.len());
                groups.push((key, vec![(i, q)]));
            }
        }
        // The last successful call of each kind, to tell whether a timeout was recovered from.
        let mut last_ok: HashMap<String, usize> = HashMap::new();
        if !groups.is_empty() {
            for (i, s) in spans.iter().enumerate() {
                if s.status == pisama_trace::Status::Ok && (s.tool.is_some() || s.llm.is_some()) {
                    last_ok.insert(label(s), i);
                }
            }
        }
        for (what, group) in groups {
            let n = group.len();
            let (first, quote) = group[0].clone();
            let recovered = last_ok.get(&what).is_some_and(|&k| k > first);
            let message = |i: usize| {
                spans[i]
                    .error
                    .as_ref()
                    .map_or_else(|| quote.clone(), |e| e.message.clone())
            };
            let mut evidence = vec![HitEvidence::quoted(first, "timed out", message(first))];
            if n > 1 {
                let last = group[n - 1].0;
                evidence.push(HitEvidence::quoted(
                    last,
                    format!("timeout {n} of {n}"),
                    message(last),
                ));
            }
            hits.push(Hit {
                score: (0.7 + 0.08 * (n as f64 - 1.0)).min(0.95),
                // A timeout the run got past (the same call later succeeded) cost time, not
                // the result.
                severity: Some(if recovered {
                    Severity::Low
                } else if n >= 3 {
                    Severity::High
                } else {
                    Severity::Medium
                }),
                summary: format!(
                    "{what} timed out{}{}",
                    if n > 1 {
                        format!(" {n} times")
                    } else {
                        String::new()
                    },
                    if recovered {
                        "; a later call succeeded"
                    } else {
                        ""
                    }
                ),
                at: Some(first),
                evidence,
                ..Hit::default()
            });
        }

        // 2. Individual calls slower than the limit (reported times only).
        let mut slow: Vec<(usize, f64)> = spans
            .iter()
            .enumerate()
            .filter(|(_, s)| is_work(s) && !s.time_inferred && timeout_of(s).is_none())
            .filter_map(|(i, s)| match (s.start_ns, s.end_ns) {
                (Some(a), Some(b)) if b > a => Some((i, secs(b - a))),
                _ => None,
            })
            .filter(|&(_, d)| d > max_span)
            .collect();
        if !slow.is_empty() {
            slow.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let (worst, d) = slow[0];
            let ratio = d / max_span;
            let evidence = slow
                .iter()
                .take(3)
                .map(|&(i, d)| HitEvidence::new(i, format!("took {d:.0}s")))
                .collect();
            hits.push(Hit {
                score: (1.0 - 0.6 / ratio).clamp(0.4, 0.95),
                severity: Some(if ratio >= 5.0 {
                    Severity::Medium
                } else {
                    Severity::Low
                }),
                summary: format!(
                    "{} took {d:.0}s (limit {max_span:.0}s){}",
                    label(&spans[worst]),
                    if slow.len() > 1 {
                        format!("; {} calls exceeded the limit", slow.len())
                    } else {
                        String::new()
                    }
                ),
                at: Some(worst),
                evidence,
                ..Hit::default()
            });
        }

        // 3. The run's active time: the union of work intervals, so waiting for a human or an
        //    idle session overnight does not count.
        let mut intervals: Vec<(i64, i64, usize)> = spans
            .iter()
            .enumerate()
            .filter(|(_, s)| is_work(s) && !s.time_inferred)
            .filter_map(|(i, s)| match (s.start_ns, s.end_ns) {
                (Some(a), Some(b)) if b > a => Some((a, b, i)),
                _ => None,
            })
            .collect();
        intervals.sort_unstable();
        let mut active: i64 = 0;
        let mut cur: Option<(i64, i64)> = None;
        let mut crossed: Option<usize> = None;
        let limit_ns = (max_run * 1e9) as i64;
        for &(a, b, i) in &intervals {
            match cur {
                Some((s, e)) if a <= e => cur = Some((s, e.max(b))),
                Some((s, e)) => {
                    active += e - s;
                    cur = Some((a, b));
                }
                None => cur = Some((a, b)),
            }
            if crossed.is_none() && active + cur.map_or(0, |(s, e)| e - s) > limit_ns {
                crossed = Some(i);
            }
        }
        if let Some((s, e)) = cur {
            active += e - s;
        }
        if active > limit_ns {
            let ratio = secs(active) / max_run;
            let wall = view.trace.duration_ns().map(secs);
            hits.push(Hit {
                score: (1.0 - 0.5 / ratio).clamp(0.5, 0.95),
                severity: Some(if ratio >= 3.0 {
                    Severity::Medium
                } else {
                    Severity::Low
                }),
                summary: format!(
                    "the run spent {:.0} minutes in model and tool calls (limit {:.0}){}",
                    secs(active) / 60.0,
                    max_run / 60.0,
                    wall.map_or(String::new(), |w| format!(
                        ", {:.0} minutes wall time",
                        w / 60.0
                    ))
                ),
                at: crossed,
                evidence: crossed
                    .map(|c| vec![HitEvidence::new(c, "the run passed its time limit here")])
                    .unwrap_or_default(),
                ..Hit::default()
            });
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::{ErrorInfo, Status, ToolCall, Trace};

    fn tool(start_s: i64, dur_s: i64, err: Option<&str>) -> Span {
        Span {
            kind: SpanKind::Tool,
            name: "fetch".to_owned(),
            tool: Some(Box::new(ToolCall {
                name: "fetch".to_owned(),
                ..ToolCall::default()
            })),
            start_ns: Some(start_s * 1_000_000_000),
            end_ns: Some((start_s + dur_s) * 1_000_000_000),
            status: if err.is_some() {
                Status::Error
            } else {
                Status::Ok
            },
            error: (err.map(|m| ErrorInfo {
                message: m.to_owned(),
                ..ErrorInfo::default()
            }))
            .map(Box::new),
            ..Span::default()
        }
    }

    fn run(spans: Vec<Span>) -> Vec<Hit> {
        let t = Trace {
            spans,
            ..Trace::default()
        };
        SlowSpan.detect(&TraceView::new(&t), &Params::default())
    }

    #[test]
    fn quiet_on_empty_and_fast() {
        assert!(run(vec![]).is_empty());
        assert!(run(vec![tool(0, 3, None), tool(5, 2, Some("404 not found"))]).is_empty());
    }

    #[test]
    fn timeouts_group() {
        let hits = run(vec![
            tool(0, 30, Some("ReadTimeout: timed out")),
            tool(40, 30, Some("ReadTimeout: timed out")),
        ]);
        assert_eq!(hits.len(), 1);
        assert!(hits[0].summary.contains("2 times"));
    }

    #[test]
    fn slow_and_long_runs() {
        let hits = run(vec![tool(0, 600, None)]);
        assert_eq!(hits.len(), 1);
        // Idle gaps between calls do not count toward the run's active time.
        let spans: Vec<Span> = (0..10).map(|k| tool(k * 100_000, 60, None)).collect();
        assert!(run(spans).is_empty());
        let spans: Vec<Span> = (0..40).map(|k| tool(k * 110, 100, None)).collect();
        let hits = run(spans);
        assert_eq!(hits.len(), 1);
        assert!(hits[0].summary.contains("minutes"));
    }
}
