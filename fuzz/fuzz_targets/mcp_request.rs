//! The MCP request path: after a normal handshake, the fuzz input is written to the server as
//! raw JSON-RPC lines (tool calls, resource reads, prompts, garbage), then a `ping`. The
//! server must not panic and must still answer the ping: one bad request never takes the
//! session down.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const HANDSHAKE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":"fuzz-init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}}"#,
    "\n",
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    "\n"
);
const PING: &str = concat!(r#"{"jsonrpc":"2.0","id":"fuzz-ping","method":"ping"}"#, "\n");

/// One workspace for the whole run (a temporary folder with an empty brain), so tool calls
/// that read or write stay inside it.
static WORKSPACE: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("temporary workspace"));

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
});

fuzz_target!(|data: &[u8]| {
    let mut options = pisama_mcp::ServerOptions::new(WORKSPACE.path(), &[]).expect("options");
    options.limits.time_budget = Duration::from_secs(5);
    options.limits.max_inline_bytes = 1 << 20;
    RUNTIME.block_on(async move {
        let (client, server_side) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server_side);
        let server = tokio::spawn(pisama_mcp::serve_io(options, server_read, server_write));
        let (client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(HANDSHAKE.as_bytes()).await.expect("write");
        client_write.write_all(data).await.expect("write");
        client_write.write_all(b"\n").await.expect("write");
        client_write.write_all(PING.as_bytes()).await.expect("write");
        let mut lines = BufReader::new(client_read).lines();
        let answered = tokio::time::timeout(Duration::from_secs(15), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(r#""id":"fuzz-ping""#) {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(answered, Ok(true)),
            "the server did not answer a ping after the input ({answered:?})"
        );
        drop(client_write);
        drop(lines);
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    });
});
