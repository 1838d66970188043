//! Replays every input in `tests/fuzz-regressions/<target>/` through the same check as the
//! fuzz target of that name (`fuzz/fuzz_targets/<target>.rs`, run by `scripts/fuzz.sh`). A
//! crash the fuzzer finds is copied there and stays fixed. The folders also hold hand-made
//! hostile inputs, so this test has something to replay from the start.

use std::path::Path;
use std::sync::LazyLock;

use pisama_brain::model::Record;
use pisama_detect::{Engine, EngineConfig};
use pisama_trace::Format;
use pisama_trace::load::{LoadOptions, load_bytes};

use crate::support::{files_under, root};

static ENGINE: LazyLock<Engine> =
    LazyLock::new(|| Engine::new(&EngineConfig::default()).unwrap_or_else(|e| panic!("{e}")));

fn load_auto(data: &[u8]) {
    let _ = load_bytes("fuzz-input", data, &LoadOptions::default());
}

fn load_as_format(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let options = LoadOptions {
        format: Some(Format::ALL[usize::from(selector) % Format::ALL.len()]),
        ..LoadOptions::default()
    };
    let _ = load_bytes("fuzz-input", rest, &options);
}

fn detect(data: &[u8]) {
    let Ok((_, traces)) = load_bytes("fuzz-input", data, &LoadOptions::default()) else {
        return;
    };
    for loaded in &traces {
        let report = ENGINE.run(&loaded.trace);
        assert!(
            report.diagnostics.is_empty(),
            "a detector panicked: {:?}",
            report.diagnostics
        );
    }
}

fn brain_record(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(".brain/decisions/fuzz.md");
    if let Ok(record) = Record::parse(text, path) {
        let rendered = record.to_markdown();
        let again = Record::parse(&rendered, path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.to_markdown(), rendered, "render is stable");
    }
}

/// A fuzz target's check, by the target's name.
type Target = (&'static str, fn(&[u8]));

/// Raw JSON-RPC lines after a handshake; the server must still answer a ping afterwards.
fn mcp_request(data: &[u8]) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    const HANDSHAKE: &str = concat!(
        r#"{"jsonrpc":"2.0","id":"fuzz-init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}}"#,
        "\n",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "\n"
    );
    const PING: &str = concat!(
        r#"{"jsonrpc":"2.0","id":"fuzz-ping","method":"ping"}"#,
        "\n"
    );
    let workspace = tempfile::tempdir().unwrap();
    let options = pisama_mcp::ServerOptions::new(workspace.path(), &[]).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let data = data.to_vec();
    runtime.block_on(async move {
        let (client, server_side) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server_side);
        let server = tokio::spawn(pisama_mcp::serve_io(options, server_read, server_write));
        let (client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(HANDSHAKE.as_bytes()).await.unwrap();
        client_write.write_all(&data).await.unwrap();
        client_write.write_all(b"\n").await.unwrap();
        client_write.write_all(PING.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(client_read).lines();
        let answered = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(r#""id":"fuzz-ping""#) {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(matches!(answered, Ok(true)), "no answer to the ping");
        drop(client_write);
        drop(lines);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    });
}

#[test]
fn fuzz_regressions_stay_fixed() {
    let targets: [Target; 5] = [
        ("load_auto", load_auto),
        ("load_as_format", load_as_format),
        ("detect", detect),
        ("brain_record", brain_record),
        ("mcp_request", mcp_request),
    ];
    let mut replayed = 0;
    let mut failures = Vec::new();
    for (target, check) in targets {
        let dir = root().join("tests/fuzz-regressions").join(target);
        for file in files_under(&dir) {
            if file.file_name().is_some_and(|n| n == "README.md") {
                continue;
            }
            let data = std::fs::read(&file).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{target}: {}: {message}", file.display()));
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no regression inputs found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
