//! `pisama mcp` as a client sees it: JSON-RPC lines over the real binary's stdio, and raw HTTP
//! requests to `--http` on loopback (Host and Origin checks). The in-process tests in
//! `crates/pisama-mcp` cover every tool, resource and prompt; these check the wiring.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{pisama, root};

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::copy(
        root().join("fixtures/detectors/tool-retry-storm/positive/search-storm.json"),
        dir.path().join("run.json"),
    )
    .unwrap();
    dir
}

fn spawn(args: &[&str], home: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pisama"))
        .args(args)
        .env("HOME", home)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends JSON-RPC messages one per line and collects the responses by id (they may come out
/// of order), then closes stdin and waits for a clean exit.
fn stdio_session(dir: &std::path::Path, messages: &[Value]) -> Vec<Value> {
    let root = dir.to_str().unwrap();
    let mut child = spawn(&["mcp", "--root", root], dir);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON-RPC ({e}): {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let expected = messages.iter().filter(|m| m.get("id").is_some()).count();
    for m in messages {
        writeln!(stdin, "{m}").unwrap();
    }
    stdin.flush().unwrap();
    let mut responses = Vec::new();
    while responses.len() < expected {
        let v = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a response within 60 s");
        if v.get("id").is_some() {
            responses.push(v);
        }
    }
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "pisama mcp exited with {status}");
    responses
}

fn by_id(responses: &[Value], id: i64) -> &Value {
    responses
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no response with id {id}: {responses:?}"))
}

#[test]
fn stdio_session_with_the_real_binary() {
    let dir = workspace();
    let responses = stdio_session(
        dir.path(),
        &[
            // Unknown methods get -32601, even before initialize (the Python SDK probes).
            json!({"jsonrpc": "2.0", "id": 0, "method": "bogus/probe"}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "0"}}}),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "pisama_detect", "arguments": {"path": "run.json"}, "_meta": {"progressToken": "p1"}}}),
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "pisama_detect", "arguments": {"path": "../../etc/passwd"}}}),
            json!({"jsonrpc": "2.0", "id": 5, "method": "other/unknown", "params": {}}),
            json!({"jsonrpc": "2.0", "id": 6, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "brain_status", "arguments": {}}}),
        ],
    );
    assert_eq!(by_id(&responses, 0)["error"]["code"], -32601);
    let init = &by_id(&responses, 1)["result"];
    assert_eq!(init["serverInfo"]["name"], "pisama");
    assert_eq!(init["protocolVersion"], "2025-06-18");
    let tools = by_id(&responses, 2)["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 16);
    let detect = &by_id(&responses, 3)["result"];
    assert_eq!(detect["isError"], false);
    assert_eq!(detect["structuredContent"]["traces"][0]["verdict"], "fail");
    let refused = &by_id(&responses, 4)["result"];
    assert_eq!(refused["isError"], true);
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("outside the allowed roots")
    );
    assert_eq!(by_id(&responses, 5)["error"]["code"], -32601);
    assert!(by_id(&responses, 6)["result"].is_object());
    let status = &by_id(&responses, 7)["result"]["structuredContent"];
    assert!(status["brain"].is_null(), "{status}");
}

#[test]
fn a_closed_stdin_before_initialize_is_a_clean_exit() {
    let dir = workspace();
    let run = crate::support::pisama_stdin(&["mcp", "--root", dir.path().to_str().unwrap()], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn http_binds_loopback_only() {
    let run = pisama(&["mcp", "--http", "0.0.0.0:0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a loopback address"),
        "{}",
        run.stderr
    );
}

/// A running `pisama mcp --http 127.0.0.1:0`, stopped on drop.
struct HttpServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_server() -> HttpServer {
    let dir = workspace();
    let mut child = spawn(
        &[
            "mcp",
            "--root",
            dir.path().to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port = line
        .trim()
        .rsplit_once("127.0.0.1:")
        .and_then(|(_, rest)| rest.trim_end_matches("/mcp").parse().ok())
        .unwrap_or_else(|| panic!("no listening line: {line:?}"));
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink);
    });
    HttpServer {
        child,
        port,
        _dir: dir,
    }
}

/// One HTTP/1.1 POST of an `initialize` request; returns the status line and the body.
fn post_initialize(port: u16, host: &str, origin: Option<&str>) -> (String, String) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "0"}}}).to_string();
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(o) = origin {
        req.push_str("Origin: ");
        req.push_str(o);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(req.as_bytes()).unwrap();
    // The server may keep an SSE stream open: read until the JSON-RPC reply shows up.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&got);
        if text.contains("\"serverInfo\"") || (text.contains("\r\n\r\n") && !text.contains(" 200 "))
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn http_checks_host_and_origin() {
    let server = http_server();
    let port = server.port;
    let local = format!("127.0.0.1:{port}");
    let (status, body) = post_initialize(port, &local, None);
    assert!(status.contains(" 200 "), "{status}\n{body}");
    assert!(body.contains("\"pisama\""), "{body}");
    let (status, _) = post_initialize(port, &local, Some(&format!("http://localhost:{port}")));
    assert!(status.contains(" 200 "), "{status}");
    // DNS rebinding: a foreign Host or Origin is refused.
    let (status, body) = post_initialize(port, "evil.example.com", None);
    assert!(status.contains(" 403 "), "{status}\n{body}");
    let (status, body) = post_initialize(port, &local, Some("https://evil.example.com"));
    assert!(status.contains(" 403 "), "{status}\n{body}");
    assert!(body.contains("Origin"), "{body}");
}

#[test]
fn mcp_json_launches_a_real_subcommand() {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("mcp.json")).unwrap()).unwrap();
    let server = &config["mcpServers"]["pisama"];
    assert_eq!(server["command"], "pisama");
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mut help = args.clone();
    help.push("--help");
    let run = pisama(&help);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("--http"));
}

#[test]
fn detection_follows_the_workspace_pisama_toml() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("pisama.toml"),
        "[detect]\nexclude = [\"tool-retry-storm\"]\n",
    )
    .unwrap();
    let responses = stdio_session(
        dir.path(),
        &[
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "0"}}}),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "pisama_detect", "arguments": {"path": "run.json"}}}),
        ],
    );
    let out = &by_id(&responses, 2)["result"]["structuredContent"];
    let findings = out["traces"][0]["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["detector"] != "tool-retry-storm"),
        "{out}"
    );
    // A broken configuration stops the server at startup with the file named.
    std::fs::write(
        dir.path().join("pisama.toml"),
        "[detect]\nexclude = [\"no-such\"]\n",
    )
    .unwrap();
    let run = crate::support::pisama_stdin(&["mcp", "--root", dir.path().to_str().unwrap()], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("pisama.toml") && run.stderr.contains("no-such"),
        "{}",
        run.stderr
    );
}
