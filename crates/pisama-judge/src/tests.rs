//! The judge against a local OpenAI-compatible stub (wiremock on 127.0.0.1): confirm, reject,
//! attribution, malformed answers, timeouts, 429 then success, a 500 burst, budget
//! exhaustion, the cache, redaction, and the dry run.

#![allow(
    clippy::unwrap_used,
    clippy::many_single_char_names,
    reason = "test code: a failed unwrap is a failed test; t, r, s, j are the trace, report, settings, judgement throughout"
)]

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use pisama_detect::{
    Engine, EngineConfig, Evidence, Finding, JudgeDecision, Severity, Tier, TraceReport, Verdict,
};
use pisama_redact::Redactor;
use pisama_trace::{LoadOptions, Trace};

use crate::judge::Outcome;
use crate::settings::{ApiKey, Settings};
use crate::{Judge, TraceJudgement};

const AWS_KEY: &str = "AKIAQWERTYUIOPASDFGH";
const OPENAI_KEY: &str = "sk-proj-Zx81kQ29vLm44PqR7sTu0wYbNc3HdEfG";

/// A Who&When case with a planted secret at step 3.
fn trace() -> Trace {
    let history: Vec<Value> = [
        ("Planner", "assistant", "Plan: load sales.csv, sum Q3 revenue, report it."),
        ("Coder", "assistant", "```python\nimport pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(df['revenue'].sum())\n```"),
        ("Computer_terminal", "user", "exitcode: 0\nCode output: 1200400"),
        ("Coder", "assistant", &format!("Connecting with aws key {AWS_KEY} and api_key={OPENAI_KEY} to fetch Q3 only.")),
        ("Computer_terminal", "user", "exitcode: 1 (execution failed)\nKeyError: 'quarter'"),
        ("Coder", "assistant", "The total revenue is 1200400, which answers the question."),
        ("Verifier", "assistant", "Looks right. TERMINATE"),
    ]
    .iter()
    .map(|(name, role, content)| json!({"name": name, "role": role, "content": content}))
    .collect();
    let doc = json!({
        "is_correct": false,
        "question": "What was the Q3 revenue in sales.csv?",
        "question_ID": "judge-test-1",
        "level": "1",
        "ground_truth": "310200",
        "history": history,
        "mistake_agent": "Coder",
        "mistake_step": "1",
        "mistake_reason": "summed all quarters",
        "system_prompt": {}
    });
    let bytes = serde_json::to_vec(&doc).unwrap();
    let (_, mut traces) =
        pisama_trace::load::load_bytes("case.json", &bytes, &LoadOptions::default()).unwrap();
    traces.remove(0).trace
}

fn finding(trace: &Trace, detector: &str, step: u32, confidence: f64) -> Finding {
    let span = trace.spans.iter().find(|s| s.step == Some(step)).unwrap();
    Finding {
        detector: detector.to_owned(),
        title: format!("{detector} title"),
        category: "verification".into(),
        mast: None,
        trail: None,
        tier: Tier::T2,
        severity: Severity::Medium,
        confidence,
        summary: format!("{detector} at step {step}"),
        agent: span.agent.clone(),
        step: Some(step),
        evidence: vec![Evidence {
            span_id: span.id.clone(),
            step: Some(step),
            agent: span.agent.clone(),
            quote: span.output.as_ref().map(|p| p.text.clone()),
            line: None,
            pointer: None,
            note: "what the detector saw".into(),
        }],
        remediation: "fix it".into(),
        merged: Vec::new(),
        judge: None,
        raw_score: confidence,
    }
}

fn engine() -> Engine {
    Engine::new(&EngineConfig::default()).unwrap()
}

/// A report with these findings, scored by the engine's rules.
fn report(trace: &Trace, findings: Vec<Finding>) -> TraceReport {
    let engine = engine();
    let mut r = engine.run(trace);
    r.findings = findings;
    engine.rescore(trace, &mut r);
    r
}

fn settings(server: &MockServer) -> Settings {
    let mut s = Settings::new(
        &format!("{}/v1/", server.uri()),
        "stub-model",
        Some(ApiKey::new("test-key")),
    );
    s.timeout = Duration::from_secs(5);
    s.price = Some(crate::settings::Price {
        input_per_1k: 0.001,
        output_per_1k: 0.002,
        source: "config",
    });
    s
}

/// A live judge that asks about findings only.
fn findings_only(server: &MockServer) -> Judge {
    let mut s = settings(server);
    s.escalate.attribution = false;
    Judge::new(s, redactor()).unwrap()
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "stub-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940}
    })
}

fn answer(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(completion(content))
}

fn redactor() -> Redactor {
    Redactor::new(b"test", Vec::new(), Vec::new())
}

async fn review(judge: &mut Judge, trace: &Trace, report: &mut TraceReport) -> TraceJudgement {
    judge.review("case.json", trace, report, &engine()).await
}

fn outcomes(j: &TraceJudgement) -> Vec<Outcome> {
    j.escalations.iter().map(|e| e.outcome).collect()
}

#[tokio::test]
async fn confirm_keeps_the_finding_and_records_the_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer test-key"))
        .and(body_partial_json(json!({
            "model": "stub-model",
            "temperature": 0.0,
            "response_format": {"type": "json_schema", "json_schema": {"name": "finding_review", "strict": true}}
        })))
        .respond_with(answer(
            "```json\n{\"decision\":\"confirm\",\"severity\":null,\"reason\":\"Step 5 claims success after the failed run at step 4.\"}\n```",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let t = trace();
    let mut r = report(&t, vec![finding(&t, "unverified-success-claim", 5, 0.45)]);
    let mut judge = findings_only(&server);
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(outcomes(&j), [Outcome::Answered]);
    assert_eq!(j.escalations[0].decision, Some(JudgeDecision::Confirm));
    let f = &r.findings[0];
    let review = f.judge.as_ref().unwrap();
    assert_eq!(review.decision, JudgeDecision::Confirm);
    assert!(review.reason.contains("step 4"));
    assert_eq!(review.model, "stub-model");
    assert!((f.confidence - 0.7).abs() < 1e-9, "left the unsure band");
    let st = judge.stats();
    assert_eq!(
        (st.requests, st.answered, st.input_tokens, st.output_tokens),
        (1, 1, 900, 40)
    );
    assert!((st.cost_usd.unwrap() - (0.9 * 0.001 + 0.04 * 0.002)).abs() < 1e-12);
}

#[tokio::test]
async fn reject_moves_the_finding_to_dismissed_and_rescores() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            r#"{"decision":"reject","severity":null,"reason":"The retry at step 3 succeeded."}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let t = trace();
    let mut r = report(&t, vec![finding(&t, "tool-retry-storm", 3, 0.6)]);
    let before = r.score;
    assert!(before > 0.0);
    let mut judge = findings_only(&server);
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(j.escalations[0].decision, Some(JudgeDecision::Reject));
    assert!(r.findings.is_empty());
    assert_eq!(r.dismissed.len(), 1);
    assert_eq!(
        r.dismissed[0].judge.as_ref().unwrap().decision,
        JudgeDecision::Reject
    );
    assert!(r.score < before);
    assert_eq!(r.verdict, Verdict::Pass);
}

#[tokio::test]
async fn adjust_changes_the_severity_and_keeps_the_old_one() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            r#"{"decision":"adjust","severity":"high","reason":"The wrong total was reported as final."}"#,
        ))
        .mount(&server)
        .await;
    let t = trace();
    let mut r = report(&t, vec![finding(&t, "unverified-success-claim", 5, 0.5)]);
    let mut judge = findings_only(&server);
    review(&mut judge, &t, &mut r).await;
    let f = &r.findings[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(
        f.judge.as_ref().unwrap().severity_before,
        Some(Severity::Medium)
    );
}

#[tokio::test]
async fn attribution_names_agent_and_step_from_the_trace() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({
            "response_format": {"type": "json_schema", "json_schema": {"name": "failure_attribution"}}
        })))
        .respond_with(answer(
            r#"{"agent":"coder","step":1,"category":"FM-3.2","confidence":0.8,"reason":"The code sums every quarter, not Q3."}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let t = trace();
    // Score in the unsure band: the attribution is escalated.
    let mut r = report(&t, vec![finding(&t, "unverified-success-claim", 5, 0.55)]);
    assert_eq!(r.verdict, Verdict::Unsure);
    assert_eq!(r.attribution.as_ref().unwrap().step, Some(5));
    let mut s = settings(&server);
    s.escalate.findings = false;
    let mut judge = Judge::new(s, redactor()).unwrap();
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(j.escalations[0].target, "attribution");
    assert_eq!(j.escalations[0].decision, Some(JudgeDecision::Replace));
    let a = r.attribution.as_ref().unwrap();
    assert_eq!(
        a.agent.as_deref(),
        Some("Coder"),
        "spelling taken from the trace"
    );
    assert_eq!(a.step, Some(1));
    assert_eq!(a.tier, Tier::T3);
    assert_eq!(a.category, "FM-3.2");
    assert!(a.judge.as_ref().unwrap().reason.contains("Q3"));
}

#[tokio::test]
async fn attribution_naming_an_unknown_agent_is_ignored() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            r#"{"agent":"Nobody","step":1,"category":"x","confidence":0.9,"reason":"r"}"#,
        ))
        .mount(&server)
        .await;
    let t = trace();
    let mut r = report(&t, vec![finding(&t, "unverified-success-claim", 5, 0.55)]);
    let before = r.attribution.clone();
    let mut s = settings(&server);
    s.escalate.findings = false;
    let mut judge = Judge::new(s, redactor()).unwrap();
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(outcomes(&j), [Outcome::Malformed]);
    assert_eq!(r.attribution, before);
}

#[tokio::test]
async fn malformed_answer_is_ignored_and_the_t1_t2_result_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            "I think the finding is probably right, hard to say.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let t = trace();
    let mut r = report(&t, vec![finding(&t, "tool-retry-storm", 3, 0.5)]);
    let before = r.clone();
    let mut judge = findings_only(&server);
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(outcomes(&j), [Outcome::Malformed]);
    assert!(
        j.escalations[0]
            .detail
            .as_ref()
            .unwrap()
            .contains("no JSON object")
    );
    assert_eq!(r.findings, before.findings);
    assert_eq!((r.score, r.verdict), (before.score, before.verdict));
    assert_eq!(judge.stats().malformed, 1);
}

#[tokio::test]
async fn timeout_fails_the_escalation_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            answer(r#"{"decision":"reject","severity":null,"reason":"late"}"#)
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let t = trace();
    let mut r = report(&t, vec![finding(&t, "tool-retry-storm", 3, 0.5)]);
    let mut s = settings(&server);
    s.escalate.attribution = false;
    s.timeout = Duration::from_millis(300);
    let mut judge = Judge::new(s, redactor()).unwrap();
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(outcomes(&j), [Outcome::Failed]);
    assert_eq!(
        j.escalations[0].detail.as_deref(),
        Some("no answer within the timeout")
    );
    assert_eq!(r.findings.len(), 1);
    assert!(r.findings[0].judge.is_none());
}

#[tokio::test]
async fn rate_limit_then_success_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "error": {"message": "slow down", "type": "rate_limit_error", "param": null, "code": null}
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(answer(
            r#"{"decision":"confirm","severity":null,"reason":"ok"}"#,
        ))
        .mount(&server)
        .await;
    let t = trace();
    let mut r = report(&t, vec![finding(&t, "tool-retry-storm", 3, 0.5)]);
    let mut judge = findings_only(&server);
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(outcomes(&j), [Outcome::Answered]);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert_eq!(judge.stats().requests, 1, "a retried request counts once");
}

#[tokio::test]
async fn server_error_burst_stops_the_judge_within_its_limits() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
        .mount(&server)
        .await;
    let t = trace();
    let findings = (1..=5)
        .map(|step| finding(&t, "tool-retry-storm", step, 0.5))
        .collect();
    let mut r = report(&t, findings);
    let mut s = settings(&server);
    s.max_retries = 1;
    s.stop_after_failures = 2;
    s.escalate.per_trace = 10;
    let mut judge = Judge::new(s, redactor()).unwrap();
    let before = r.findings.clone();
    let j = review(&mut judge, &t, &mut r).await;
    // Two escalations fail (each tried twice), then the judge stops; the rest are skipped.
    assert_eq!(
        outcomes(&j),
        [
            Outcome::Failed,
            Outcome::Failed,
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::Skipped
        ]
    );
    assert!(
        j.escalations[0]
            .detail
            .as_ref()
            .unwrap()
            .contains("HTTP 500")
    );
    assert!(
        j.escalations[2]
            .detail
            .as_ref()
            .unwrap()
            .contains("stopped after 2 failed")
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
    assert_eq!(r.findings, before);
    assert!(judge.stats().stopped.is_some());
}

#[tokio::test]
async fn budget_exhaustion_skips_and_reports_the_rest() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            r#"{"decision":"confirm","severity":null,"reason":"ok"}"#,
        ))
        .expect(2)
        .mount(&server)
        .await;
    let t = trace();
    let findings = (1..=4)
        .map(|step| finding(&t, "tool-retry-storm", step, 0.5))
        .collect();
    let mut r = report(&t, findings);
    let mut s = settings(&server);
    s.budget.max_calls = 2;
    s.escalate.per_trace = 10;
    // The attribution is asked about too, and skipped like the rest.
    s.escalate.attribution_below = 1.0;
    let mut judge = Judge::new(s, redactor()).unwrap();
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(
        outcomes(&j),
        [
            Outcome::Answered,
            Outcome::Answered,
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::Skipped
        ]
    );
    for e in &j.escalations[2..] {
        assert!(
            e.detail.as_ref().unwrap().contains("budget: max_calls (2)"),
            "{e:?}"
        );
    }
    assert_eq!(judge.stats().skipped, 3);
    // The cost limit is checked before sending, too.
    let mut s = settings(&server);
    s.budget.max_cost_usd = Some(0.000_001);
    let mut judge = Judge::new(s, redactor()).unwrap();
    let mut r = report(&t, vec![finding(&t, "tool-retry-storm", 3, 0.5)]);
    let j = review(&mut judge, &t, &mut r).await;
    assert!(
        j.escalations[0]
            .detail
            .as_ref()
            .unwrap()
            .contains("max_cost_usd")
    );
}

#[tokio::test]
async fn second_run_is_answered_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace();
    let first = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            r#"{"decision":"confirm","severity":null,"reason":"cached reason"}"#,
        ))
        .expect(1)
        .mount(&first)
        .await;
    let mut s = settings(&first);
    s.escalate.attribution = false;
    s.cache_dir = Some(dir.path().join("judge"));
    let mut judge = Judge::new(s.clone(), redactor()).unwrap();
    let mut r1 = report(&t, vec![finding(&t, "tool-retry-storm", 3, 0.5)]);
    assert_eq!(
        outcomes(&review(&mut judge, &t, &mut r1).await),
        [Outcome::Answered]
    );

    // Same request, another endpoint that must not be called.
    let second = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&second)
        .await;
    s.base_url = format!("{}/v1", second.uri());
    let mut judge = Judge::new(s.clone(), redactor()).unwrap();
    let mut r2 = report(&t, vec![finding(&t, "tool-retry-storm", 3, 0.5)]);
    let j = review(&mut judge, &t, &mut r2).await;
    assert_eq!(outcomes(&j), [Outcome::Cached]);
    assert_eq!(r2.findings, r1.findings);
    assert_eq!((judge.stats().requests, judge.stats().cached), (0, 1));
    assert_eq!(judge.stats().cost_usd, Some(0.0));

    // Another model misses.
    s.model = "other-model".into();
    let mut judge = Judge::dry_run(s, redactor());
    let mut r3 = report(&t, vec![finding(&t, "tool-retry-storm", 3, 0.5)]);
    assert_eq!(
        outcomes(&review(&mut judge, &t, &mut r3).await),
        [Outcome::Planned]
    );
}

#[tokio::test]
async fn planted_secrets_never_reach_the_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            r#"{"decision":"confirm","severity":null,"reason":"ok"}"#,
        ))
        .mount(&server)
        .await;
    let t = trace();
    // The secret is in the evidence quote and in the excerpt, for both kinds of question.
    let mut r = report(&t, vec![finding(&t, "secret-leak", 3, 0.5)]);
    let mut s = settings(&server);
    s.escalate.attribution_below = 1.0;
    let mut judge = Judge::new(s, redactor()).unwrap();
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(j.escalations.len(), 2);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for req in &requests {
        let body = String::from_utf8_lossy(&req.body);
        assert!(
            !body.contains(AWS_KEY) && !body.contains(OPENAI_KEY),
            "{body}"
        );
        assert!(!body.contains("QWERTYUIOPASDFGH") && !body.contains("Zx81kQ29vLm44"));
        assert!(body.contains("[REDACTED:aws_access_key:"), "{body}");
        assert!(!has_header(req, "openai-organization"));
    }
    assert!(judge.stats().redactions >= 4);
}

fn has_header(req: &Request, name: &str) -> bool {
    req.headers.contains_key(name)
}

#[tokio::test]
async fn dry_run_plans_exactly_what_it_would_send_and_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let t = trace();
    let mut r = report(&t, vec![finding(&t, "secret-leak", 3, 0.5)]);
    let before = r.clone();
    let mut s = settings(&server);
    s.budget.max_calls = 1;
    let mut judge = Judge::dry_run(s.clone(), redactor());
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(outcomes(&j), [Outcome::Planned, Outcome::Skipped]);
    assert_eq!(r.findings, before.findings);
    let plan = judge.plan();
    assert_eq!(plan.len(), 2);
    assert_eq!((plan[0].status, plan[1].status), ("send", "skipped"));
    assert!(plan[0].estimated_input_tokens > 100);
    assert!(plan[0].estimated_cost_usd.unwrap() > 0.0);
    assert!(plan[0].redactions >= 2);
    // The planned body is the request the live judge sends, byte for byte.
    let live = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            r#"{"decision":"confirm","severity":null,"reason":"ok"}"#,
        ))
        .mount(&live)
        .await;
    s.base_url = format!("{}/v1", live.uri());
    s.escalate.attribution = false;
    let mut judge_live = Judge::new(s, redactor()).unwrap();
    let mut r = before.clone();
    review(&mut judge_live, &t, &mut r).await;
    let sent: Value =
        serde_json::from_slice(&live.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent, plan[0].body);
    let text = plan[0].body.to_string();
    assert!(!text.contains(AWS_KEY));
}

#[tokio::test]
async fn long_traces_are_windowed_around_the_evidence() {
    let t = {
        let history: Vec<Value> = (0..400)
            .map(|i| {
                json!({"name": if i % 2 == 0 { "Coder" } else { "Computer_terminal" },
                       "role": "assistant",
                       "content": format!("message number {i} {}", "filler text ".repeat(40))})
            })
            .collect();
        let doc = json!({"is_correct": false, "question": "q", "question_ID": "long", "level": "1",
            "ground_truth": "x", "history": history, "mistake_agent": "Coder", "mistake_step": "1",
            "mistake_reason": "r", "system_prompt": {}});
        let bytes = serde_json::to_vec(&doc).unwrap();
        pisama_trace::load::load_bytes("long.json", &bytes, &LoadOptions::default())
            .unwrap()
            .1
            .remove(0)
            .trace
    };
    let server = MockServer::start().await;
    let mut s = settings(&server);
    s.escalate.attribution = false;
    let mut judge = Judge::dry_run(s.clone(), redactor());
    let mut r = report(&t, vec![finding(&t, "tool-retry-storm", 200, 0.5)]);
    review(&mut judge, &t, &mut r).await;
    let plan = &judge.plan()[0];
    assert!(plan.estimated_input_tokens <= s.budget.max_input_tokens_per_call);
    let user = plan.body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("message number 200 "));
    assert!(user.contains("message number 196 ") && user.contains("message number 204 "));
    assert!(!user.contains("message number 10 ") && !user.contains("message number 390 "));
    assert!(user.contains("windowed around the evidence"));
    assert!(user.contains("not shown"));
}

#[tokio::test]
async fn a_rejected_key_is_not_retried_and_stops_the_judge() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}
        })))
        .mount(&server)
        .await;
    let t = trace();
    let findings = (1..=3)
        .map(|step| finding(&t, "tool-retry-storm", step, 0.5))
        .collect();
    let mut r = report(&t, findings);
    let mut s = settings(&server);
    s.stop_after_failures = 1;
    let mut judge = Judge::new(s, redactor()).unwrap();
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(j.escalations[0].outcome, Outcome::Failed);
    assert!(
        j.escalations[0]
            .detail
            .as_ref()
            .unwrap()
            .contains("HTTP 401: Incorrect API key provided")
    );
    assert!(
        j.escalations[1..]
            .iter()
            .all(|e| e.outcome == Outcome::Skipped)
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[test]
fn response_format_and_token_limit_follow_the_settings() {
    use crate::settings::{ResponseMode, TokenLimitField};
    let mut s = Settings::new("http://127.0.0.1:1/v1", "m", None);
    let messages = crate::prompt::Messages {
        system: "sys".into(),
        user: "user".into(),
    };
    let body = |s: &Settings| {
        serde_json::to_value(
            crate::client::request(s, &messages, crate::answer::finding_schema()).unwrap(),
        )
        .unwrap()
    };
    let b = body(&s);
    assert_eq!(b["response_format"]["type"], "json_schema");
    assert_eq!(b["max_tokens"], 400);
    assert!(b.get("max_completion_tokens").is_none());
    s.response_format = ResponseMode::JsonObject;
    s.token_limit_field = TokenLimitField::MaxCompletionTokens;
    let b = body(&s);
    assert_eq!(b["response_format"], json!({"type": "json_object"}));
    assert_eq!(b["max_completion_tokens"], 400);
    assert!(b.get("max_tokens").is_none());
    s.response_format = ResponseMode::None;
    assert!(body(&s).get("response_format").is_none());
}

#[tokio::test]
async fn configured_headers_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("anthropic-workspace-id", "ws-123"))
        .respond_with(answer(
            r#"{"decision":"confirm","severity":null,"reason":"ok"}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let t = trace();
    let mut r = report(&t, vec![finding(&t, "tool-retry-storm", 3, 0.5)]);
    let mut s = settings(&server);
    s.escalate.attribution = false;
    s.headers
        .insert("anthropic-workspace-id".into(), "ws-123".into());
    let mut judge = Judge::new(s, redactor()).unwrap();
    let j = review(&mut judge, &t, &mut r).await;
    assert_eq!(outcomes(&j), [Outcome::Answered]);
}
