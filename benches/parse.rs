//! Parse throughput: pisama's loader (detection + adapter + normalization) beside bare
//! `serde_json::from_slice::<Value>` on the same bytes.
//!
//! Inputs, generated once into `.bench-data/` (git-ignored):
//! - `otlp-100mb.json`: ~100 MB of OTLP/JSON with GenAI attributes, written by this file's
//!   own deterministic generator;
//! - `incumbent-100k.json`: 100,000 spans in the incumbent's `{"spans": [...]}` format,
//!   written by `../shared/bench/gen/gen_trace.py` (skipped when Python or the generator is
//!   missing).
//!
//! Run: `cargo bench --bench parse` (the target is within 3× of bare `serde_json`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use divan::Bencher;
use divan::counter::BytesCount;
use pisama_trace::load::{LoadOptions, load_bytes};

/// The same allocator as the `pisama` binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".bench-data");
    std::fs::create_dir_all(&dir).expect("create .bench-data");
    dir
}

fn otlp_bytes() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| {
        let path = data_dir().join("otlp-100mb.json");
        if !path.exists() {
            std::fs::write(&path, generate_otlp(100_000_000)).expect("write OTLP data");
        }
        std::fs::read(&path).expect("read OTLP data")
    })
}

fn incumbent_bytes() -> Option<&'static [u8]> {
    static DATA: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    DATA.get_or_init(|| {
        let path = data_dir().join("incumbent-100k.json");
        if !path.exists() {
            let generator =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/gen/gen_trace.py");
            let ok = Command::new("python3")
                .arg(&generator)
                .args(["--spans", "100000", "--seed", "1", "--out"])
                .arg(&path)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None;
            }
        }
        std::fs::read(&path).ok()
    })
    .as_deref()
}

fn options() -> LoadOptions {
    // Read whole, as a file of this size is: the point is parse speed, not streaming.
    LoadOptions {
        stream_threshold: 512 * 1024 * 1024,
        ..LoadOptions::default()
    }
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn otlp_serde_json_value(bencher: Bencher) {
    let bytes = otlp_bytes();
    bencher.counter(BytesCount::new(bytes.len())).bench(|| {
        serde_json::from_slice::<serde_json::Value>(divan::black_box(bytes)).expect("valid JSON")
    });
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn otlp_pisama_load(bencher: Bencher) {
    let bytes = otlp_bytes();
    bencher.counter(BytesCount::new(bytes.len())).bench(|| {
        let (_, traces) =
            load_bytes("otlp-100mb.json", divan::black_box(bytes), &options()).expect("loads");
        traces.len()
    });
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn incumbent_100k_serde_json_value(bencher: Bencher) {
    let Some(bytes) = incumbent_bytes() else {
        return;
    };
    bencher.counter(BytesCount::new(bytes.len())).bench(|| {
        serde_json::from_slice::<serde_json::Value>(divan::black_box(bytes)).expect("valid JSON")
    });
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn incumbent_100k_pisama_load(bencher: Bencher) {
    let Some(bytes) = incumbent_bytes() else {
        return;
    };
    bencher.counter(BytesCount::new(bytes.len())).bench(|| {
        let (_, traces) =
            load_bytes("incumbent-100k.json", divan::black_box(bytes), &options()).expect("loads");
        traces.len()
    });
}

/// Deterministic OTLP/JSON with GenAI attributes: traces of 40 spans (an orchestrator agent,
/// a delegated agent, chat calls with messages, tool calls with arguments and results, a few
/// errors), until `target` bytes.
fn generate_otlp(target: usize) -> String {
    const TOOLS: [&str; 6] = [
        "web_search",
        "fetch_page",
        "read_file",
        "run_sql",
        "calculator",
        "send_email",
    ];
    const MODELS: [&str; 3] = ["gpt-4.1-mini", "claude-sonnet-4", "gpt-4o"];
    let mut out = String::with_capacity(target + 1_000_000);
    out.push_str(r#"{"resourceSpans":["#);
    let mut trace_no: u64 = 0;
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    while out.len() < target {
        if trace_no > 0 {
            out.push(',');
        }
        let trace_id = format!(
            "{:016x}{:016x}",
            trace_no.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            trace_no
        );
        out.push_str(r#"{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"bench-agents"}}]},"scopeSpans":[{"scope":{"name":"bench","version":"1.0"},"spans":["#);
        let base: u64 = 1_767_225_600_000_000_000 + trace_no * 60_000_000_000;
        for i in 0..40u64 {
            if i > 0 {
                out.push(',');
            }
            let span_id = format!("{:016x}", trace_no * 64 + i + 1);
            let (parent, op, name_suffix, agent) = match i {
                0 => (
                    String::new(),
                    "invoke_agent",
                    "Orchestrator",
                    "Orchestrator",
                ),
                1..=19 => (
                    format!("{:016x}", trace_no * 64 + 1),
                    if i % 3 == 1 { "chat" } else { "execute_tool" },
                    "",
                    "Orchestrator",
                ),
                20 => (
                    format!("{:016x}", trace_no * 64 + 1),
                    "invoke_agent",
                    "Researcher",
                    "Researcher",
                ),
                _ => (
                    format!("{:016x}", trace_no * 64 + 21),
                    if i % 3 == 0 { "chat" } else { "execute_tool" },
                    "",
                    "Researcher",
                ),
            };
            let start = base + i * 1_000_000_000;
            let end = start + 800_000_000 + (next() % 400_000_000);
            let model = MODELS[(next() % 3) as usize];
            let tool = TOOLS[(next() % 6) as usize];
            let failed = next() % 17 == 0;
            let name = match op {
                "chat" => format!("chat {model}"),
                "execute_tool" => format!("execute_tool {tool}"),
                _ => format!("invoke_agent {name_suffix}"),
            };
            let _ = write!(
                out,
                r#"{{"traceId":"{trace_id}","spanId":"{span_id}","parentSpanId":"{parent}","name":"{name}","kind":{kind},"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[{{"key":"gen_ai.operation.name","value":{{"stringValue":"{op}"}}}},{{"key":"gen_ai.agent.name","value":{{"stringValue":"{agent}"}}}}"#,
                kind = if op == "execute_tool" || op == "invoke_agent" {
                    1
                } else {
                    3
                },
            );
            match op {
                "chat" => {
                    let _ = write!(
                        out,
                        r#",{{"key":"gen_ai.provider.name","value":{{"stringValue":"openai"}}}},{{"key":"gen_ai.request.model","value":{{"stringValue":"{model}"}}}},{{"key":"gen_ai.usage.input_tokens","value":{{"intValue":"{inp}"}}}},{{"key":"gen_ai.usage.output_tokens","value":{{"intValue":"{outp}"}}}},{{"key":"gen_ai.input.messages","value":{{"stringValue":"[{{\"role\":\"user\",\"parts\":[{{\"type\":\"text\",\"content\":\"Find the population of city {n} and compare it with last year's census figures, citing sources.\"}}]}}]"}}}},{{"key":"gen_ai.output.messages","value":{{"stringValue":"[{{\"role\":\"assistant\",\"parts\":[{{\"type\":\"tool_call\",\"id\":\"call_{span_id}\",\"name\":\"{tool}\",\"arguments\":{{\"query\":\"population city {n}\"}}}}],\"finish_reason\":\"tool_call\"}}]"}}}}]"#,
                        inp = 500 + next() % 3000,
                        outp = 20 + next() % 400,
                        n = next() % 1000,
                    );
                }
                "execute_tool" => {
                    let _ = write!(
                        out,
                        r#",{{"key":"gen_ai.tool.name","value":{{"stringValue":"{tool}"}}}},{{"key":"gen_ai.tool.call.id","value":{{"stringValue":"call_{span_id}"}}}},{{"key":"gen_ai.tool.call.arguments","value":{{"stringValue":"{{\"query\":\"population city {n}\"}}"}}}},{{"key":"gen_ai.tool.call.result","value":{{"stringValue":"City {n} had {p} inhabitants in the last census; the figure rose by {g} percent."}}}}]"#,
                        n = next() % 1000,
                        p = next() % 9_000_000,
                        g = next() % 9,
                    );
                }
                _ => out.push(']'),
            }
            if failed && op == "execute_tool" {
                let _ = write!(
                    out,
                    r#","events":[{{"timeUnixNano":"{end}","name":"exception","attributes":[{{"key":"exception.type","value":{{"stringValue":"TimeoutError"}}}},{{"key":"exception.message","value":{{"stringValue":"upstream timed out after 30s"}}}}]}}],"status":{{"code":2,"message":"upstream timed out after 30s"}}}}"#
                );
            } else {
                out.push_str(r#","status":{"code":1}}"#);
            }
        }
        out.push_str("]}]}");
        trace_no += 1;
    }
    out.push_str("]}");
    out
}
