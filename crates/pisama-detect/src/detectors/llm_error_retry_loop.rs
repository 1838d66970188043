//! Model calls failing one after another (provider errors, `fetch failed`, rate limits) while
//! the agent keeps retrying.

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::SpanKind;

pub(crate) struct LlmErrorRetryLoop;

impl Detector for LlmErrorRetryLoop {
    fn id(&self) -> &'static str {
        "llm-error-retry-loop"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_failures = params.usize("min_failures", 2).max(2);
        let llm: Vec<usize> = (0..view.len())
            .filter(|&i| view.span(i).kind == SpanKind::Llm)
            .collect();
        let mut hits = Vec::new();
        let mut i = 0;
        while i < llm.len() {
            if !view.failed(llm[i]) {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < llm.len() && view.failed(llm[j]) {
                j += 1;
            }
            let run = &llm[i..j];
            if run.len() >= min_failures {
                let recovered = j < llm.len();
                let message = view
                    .span(run[0])
                    .error
                    .as_ref()
                    .map_or_else(|| "model call failed".to_owned(), |e| e.message.clone());
                hits.push(Hit {
                    score: 1.0
                        - 0.6f64.powi(run.len() as i32 - 1) * if recovered { 1.0 } else { 0.5 },
                    severity: Some(if recovered {
                        Severity::Medium
                    } else {
                        Severity::High
                    }),
                    summary: format!(
                        "{} model calls failed in a row ({message}){}",
                        run.len(),
                        if recovered {
                            ""
                        } else {
                            " and the run never got a successful call again"
                        }
                    ),
                    at: Some(run[0]),
                    evidence: run
                        .iter()
                        .take(4)
                        .map(|&k| HitEvidence::new(k, "failed model call"))
                        .collect(),
                    ..Hit::default()
                });
            }
            i = j;
        }
        hits
    }
}
