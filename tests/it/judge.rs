//! `pisama detect --judge` / `--judge-dry-run` against a local OpenAI-compatible stub
//! (wiremock on 127.0.0.1). Every run gets its own working folder, HOME, config and cache
//! folders, so nothing is read from or written to the user's.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::Run;

const AWS_KEY: &str = "AKIAQWERTYUIOPASDFGH";
const OPENAI_KEY: &str = "sk-proj-Zx81kQ29vLm44PqR7sTu0wYbNc3HdEfG";

/// A Who&When case with two planted secrets at step 3, failed code executions, and a
/// verifier that signs off anyway: several findings, some in the unsure band.
fn write_case(dir: &Path) -> String {
    write_case_labelled(dir, 1)
}

/// The case with the labelled mistake at `mistake_step` (labels are never input to detection).
fn write_case_labelled(dir: &Path, mistake_step: u32) -> String {
    let history: Vec<Value> = [
        ("Planner", "assistant", "Plan: load sales.csv, sum Q3 revenue, report it.".to_owned()),
        ("Coder", "assistant", "```python\nimport pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(df['revenue'].sum())\n```".to_owned()),
        ("Computer_terminal", "user", "exitcode: 1 (execution failed)\nCode output: KeyError: 'revenue'".to_owned()),
        ("Coder", "assistant", format!("Connecting with aws key {AWS_KEY} and api_key={OPENAI_KEY} to fetch Q3 only.")),
        ("Computer_terminal", "user", "exitcode: 1 (execution failed)\nKeyError: 'quarter'".to_owned()),
        ("Coder", "assistant", "The total revenue is 1200400, which answers the question. Task complete.".to_owned()),
        ("Verifier", "assistant", "Looks right. TERMINATE".to_owned()),
    ]
    .into_iter()
    .map(|(name, role, content)| json!({"name": name, "role": role, "content": content}))
    .collect();
    let doc = json!({
        "is_correct": false, "question": "What was the Q3 revenue in sales.csv?",
        "question_ID": "judge-cli-1", "level": "1", "ground_truth": "310200",
        "history": history, "mistake_agent": "Coder", "mistake_step": mistake_step.to_string(),
        "mistake_reason": "summed the wrong column", "system_prompt": {}
    });
    let path = dir.join("case.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

/// `pisama ARGS` in `dir`, with HOME and the XDG folders inside it and `env` set.
fn pisama_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pisama"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .stdin(Stdio::null());
    for var in [
        "PISAMA_JUDGE_BASE_URL",
        "PISAMA_JUDGE_MODEL",
        "PISAMA_JUDGE_API_KEY_ENV",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    crate::support::finish(&cmd.output().expect("run pisama"))
}

/// A stub on 127.0.0.1 that answers every chat completion with `content`.
struct Stub {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
}

impl Stub {
    fn answering(content: &str) -> Stub {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(MockServer::start());
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
            "model": "stub-model",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 800, "completion_tokens": 30, "total_tokens": 830}
        });
        runtime.block_on(
            Mock::given(method("POST"))
                .and(path("/v1/chat/completions"))
                .and(header("authorization", "Bearer test-judge-key"))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .mount(&server),
        );
        Stub { runtime, server }
    }

    fn url(&self) -> String {
        format!("{}/v1", self.server.uri())
    }

    fn requests(&self) -> Vec<wiremock::Request> {
        self.runtime
            .block_on(self.server.received_requests())
            .unwrap_or_default()
    }
}

#[test]
fn judge_without_configuration_is_a_clear_error_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let case = write_case(dir.path());
    let stub = Stub::answering(r#"{"decision":"confirm","severity":null,"reason":"x"}"#);
    let openai_base = stub.url();
    // The OpenAI variables point at the stub: a silent fallback would show up as a request.
    let env = [
        (
            "OPENAI_API_KEY",
            "sk-test-should-never-be-used-000000000000",
        ),
        ("OPENAI_BASE_URL", openai_base.as_str()),
    ];
    let r = pisama_in(dir.path(), &["detect", &case, "--judge"], &env);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("the judge is not configured"),
        "{}",
        r.stderr
    );
    for hint in [
        "base_url",
        "model",
        "api_key_env",
        "--judge-base-url",
        "OPENAI_API_KEY",
    ] {
        assert!(r.stderr.contains(hint), "missing {hint}: {}", r.stderr);
    }
    assert!(r.stdout.is_empty());
    // Half a configuration is no better.
    let r = pisama_in(
        dir.path(),
        &["detect", &case, "--judge", "--judge-model", "gpt-4o-mini"],
        &env,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("base_url, api_key_env missing"),
        "{}",
        r.stderr
    );
    // A named variable that is unset is named in the error.
    let r = pisama_in(
        dir.path(),
        &[
            "detect",
            &case,
            "--judge",
            "--judge-base-url",
            &openai_base,
            "--judge-model",
            "m",
            "--judge-api-key-env",
            "MY_UNSET_JUDGE_KEY",
        ],
        &env,
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("MY_UNSET_JUDGE_KEY"), "{}", r.stderr);
    assert_eq!(
        stub.requests().len(),
        0,
        "no request may reach any endpoint"
    );
    // Judge flags without --judge are refused rather than ignored.
    let r = pisama_in(
        dir.path(),
        &["detect", &case, "--judge-max-calls", "3"],
        &env,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}

fn judge_args<'a>(case: &'a str, url: &'a str, cache: &'a str) -> Vec<&'a str> {
    vec![
        "detect",
        case,
        "--format",
        "json",
        "--judge",
        "--judge-base-url",
        url,
        "--judge-model",
        "stub-model",
        "--judge-api-key-env",
        "PISAMA_TEST_JUDGE_KEY",
        "--judge-cache-dir",
        cache,
    ]
}

#[test]
fn judge_answers_are_applied_secrets_are_redacted_and_reruns_hit_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let case = write_case(dir.path());
    let cache = dir.path().join("judge-cache");
    let cache = cache.to_string_lossy();
    let stub = Stub::answering(
        r#"{"decision":"confirm","severity":null,"reason":"Step 4 failed and nobody mentioned it."}"#,
    );
    let url = stub.url();
    let env = [
        ("PISAMA_TEST_JUDGE_KEY", "test-judge-key"),
        ("OPENAI_ORG_ID", "org-must-not-be-sent"),
    ];
    let r = pisama_in(dir.path(), &judge_args(&case, &url, &cache), &env);
    assert_eq!(r.code, 1, "critical findings: {}", r.stderr);
    let doc = r.json();
    let trace = &doc["traces"][0];
    let escalations = trace["judge"]["escalations"].as_array().unwrap();
    assert!(!escalations.is_empty());
    assert!(
        escalations.iter().all(|e| e["outcome"] == "answered"),
        "{escalations:?}"
    );
    let reviewed: Vec<&Value> = trace["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.get("judge").is_some())
        .collect();
    assert_eq!(reviewed.len(), escalations.len());
    for f in &reviewed {
        assert_eq!(f["judge"]["decision"], "confirm");
        assert_eq!(f["judge"]["model"], "stub-model");
        assert_eq!(
            f["judge"]["reason"],
            "Step 4 failed and nobody mentioned it."
        );
        assert!(f["tier"] == "T1" || f["tier"] == "T2");
    }
    assert!(r.stderr.contains("request(s) sent"), "{}", r.stderr);

    let requests = stub.requests();
    assert_eq!(requests.len(), escalations.len());
    let mut saw_step_3 = false;
    for req in &requests {
        let body = String::from_utf8_lossy(&req.body);
        assert!(
            !body.contains(AWS_KEY) && !body.contains(OPENAI_KEY),
            "secret sent: {body}"
        );
        assert!(!body.contains("QWERTYUIOPASDFGH") && !body.contains("Zx81kQ29vLm44PqR7"));
        saw_step_3 |= body.contains("[REDACTED:aws_access_key:");
        assert!(!req.headers.contains_key("openai-organization"));
    }
    assert!(saw_step_3, "the step with the secrets was in an excerpt");

    // The same run again: every answer comes from the cache, nothing is sent.
    let r2 = pisama_in(dir.path(), &judge_args(&case, &url, &cache), &env);
    assert_eq!(r2.code, 1);
    let doc2 = r2.json();
    let esc2 = doc2["traces"][0]["judge"]["escalations"]
        .as_array()
        .unwrap();
    assert!(esc2.iter().all(|e| e["outcome"] == "cached"), "{esc2:?}");
    assert_eq!(doc2["traces"][0]["findings"], trace["findings"]);
    assert_eq!(
        stub.requests().len(),
        requests.len(),
        "the stub saw no new request"
    );
    assert!(r2.stderr.contains("0 request(s) sent"), "{}", r2.stderr);
}

#[test]
fn dry_run_prints_what_would_be_sent_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let case = write_case(dir.path());
    let stub = Stub::answering("{}");
    let url = stub.url();
    std::fs::write(
        dir.path().join("pisama.toml"),
        format!(
            "[judge]\nbase_url = \"{url}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"UNSET_JUDGE_KEY\"\n\n[judge.budget]\nmax_calls = 2\n"
        ),
    )
    .unwrap();
    let r = pisama_in(dir.path(), &["detect", &case, "--judge-dry-run"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = &r.stdout;
    assert!(
        out.starts_with("pisama judge dry run: nothing was sent."),
        "{out}"
    );
    assert!(out.contains(&format!("POST {url}/chat/completions")));
    assert!(out.contains("$UNSET_JUDGE_KEY (NOT SET"));
    assert!(
        out.contains("price     $0.00015 / $0.0006 per 1k input / output tokens (price table)")
    );
    assert!(out.contains("request 1 of"));
    assert!(out.contains("\"response_format\""));
    assert!(
        out.contains("skipped: budget: max_calls (2) reached"),
        "{out}"
    );
    assert!(out.contains("total: 2 request(s) would be sent"), "{out}");
    assert!(!out.contains(AWS_KEY) && !out.contains(OPENAI_KEY));
    assert!(out.contains("[REDACTED:"));
    // JSON for scripts.
    let r = pisama_in(
        dir.path(),
        &["detect", &case, "--judge-dry-run", "-f", "json"],
        &[],
    );
    let doc = r.json();
    assert_eq!(doc["dry_run"], true);
    let reqs = doc["requests"].as_array().unwrap();
    assert_eq!(reqs[0]["status"], "send");
    assert_eq!(reqs[0]["body"]["model"], "gpt-4o-mini");
    assert!(reqs[0]["estimated_input_tokens"].as_u64().unwrap() > 100);
    assert_eq!(doc["totals"]["send"], 2);
    assert_eq!(stub.requests().len(), 0);
}

#[test]
fn eval_with_the_judge_reports_metrics_with_and_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write_case_labelled(&data, 5);
    // One answer that reads as both a finding review and an attribution: Coder at step 5,
    // where these labels put the mistake (T1/T2 alone name step 1).
    let stub = Stub::answering(
        r#"{"decision":"confirm","severity":null,"agent":"Coder","step":5,"category":"FM-3.3","confidence":0.9,"reason":"Step 5 reports a total the failed runs never produced."}"#,
    );
    let url = stub.url();
    std::fs::write(
        dir.path().join("pisama.toml"),
        format!(
            "[judge]\nbase_url = \"{url}\"\nmodel = \"stub-model\"\napi_key_env = \"PISAMA_TEST_JUDGE_KEY\"\n\n[judge.escalate]\nattribution_below = 1.0\n"
        ),
    )
    .unwrap();
    let env = [("PISAMA_TEST_JUDGE_KEY", "test-judge-key")];
    let r = pisama_in(
        dir.path(),
        &[
            "eval",
            "data",
            "--dataset",
            "who-and-when",
            "--judge",
            "-f",
            "json",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["metrics"]["step_exact"]["value"], 1.0, "{doc}");
    assert_eq!(
        doc["judge"]["metrics_without_judge"]["step_exact"]["value"],
        0.0
    );
    assert!(doc["judge"]["run"]["requests"].as_u64().unwrap() >= 1);
    assert_eq!(doc["cases"][0]["predicted_step"], 5);
    let text = pisama_in(
        dir.path(),
        &["eval", "data", "--dataset", "who-and-when", "--judge"],
        &env,
    );
    assert!(
        text.stdout
            .contains("without the judge (T1/T2 only, same cases)"),
        "{}",
        text.stdout
    );
}

#[test]
fn the_project_brains_redaction_rules_apply_to_what_the_judge_sends() {
    let dir = tempfile::tempdir().unwrap();
    let case = write_case(dir.path());
    let text = std::fs::read_to_string(&case).unwrap();
    std::fs::write(
        &case,
        text.replace("Q3 only.", "Q3 only, session intk_ab12cd34."),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join(".brain")).unwrap();
    std::fs::write(
        dir.path().join(".brain/brain.toml"),
        "schema_version = 1\n\n[redaction]\nmode = \"redact\"\nkey = \"project-key\"\ndeny = [{ name = \"internal_token\", pattern = '\\bintk_[a-z0-9]{8}\\b' }]\n",
    )
    .unwrap();
    let r = pisama_in(
        dir.path(),
        &[
            "detect",
            &case,
            "--judge-dry-run",
            "--judge-base-url",
            "http://127.0.0.1:9/v1",
            "--judge-model",
            "m",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("intk_ab12cd34"), "{}", r.stdout);
    assert!(
        r.stdout.contains("[REDACTED:internal_token:"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(AWS_KEY));
}

#[test]
fn readme_documents_the_dry_run() {
    let readme = std::fs::read_to_string(crate::support::root().join("README.md")).unwrap();
    assert!(readme.contains("--judge-dry-run"));
    assert!(readme.contains("pisama judge dry run: nothing was sent."));
}
