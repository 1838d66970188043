//! `pisama mcp`: the Model Context Protocol server through which editors (Cursor, Claude
//! Desktop, Claude Code, Windsurf) reach detection and the project brain.
//!
//! - Tools: `pisama_detect`, `pisama_inspect`, `pisama_detectors`, `pisama_explain` and the brain
//!   tools of `brain.md` §5.6, each with a title, annotations, an input and an output schema,
//!   `structuredContent` and a short text rendering (`detect_tools.rs`, `brain_tools.rs`).
//! - Resources `brain://…` and `pisama://detectors` with completion of record ids and change
//!   notifications, also after external edits of `.brain/` (`resources.rs`, `watch.rs`).
//! - Prompts: the brain built-ins, one per approved `prompt` record, and `pisama_triage`
//!   (`prompts.rs`).
//! - Transports: stdio, and streamable HTTP on loopback with Host and Origin checks (`http.rs`).
//!
//! Invariants: the server reads files only under the allowed roots (`roots.rs`); detection and
//! every brain call run on blocking threads (`spawn_blocking`), never on the async runtime;
//! detection has limits (file size, spans, traces, time budget) that end in a tool error, not a
//! hung request; approvals need a human (elicitation confirmed by the user, otherwise
//! `pending_human` with the CLI command); no network beyond the loopback listener; logs go to
//! stderr and never contain trace payloads or record bodies.

#![recursion_limit = "256"]
#![allow(
    clippy::doc_markdown,
    clippy::format_push_string,
    reason = "doc comments of tool arguments become the descriptions clients show (values such as work_request read better without backticks there); text renderings are built line by line"
)]

mod brain_tools;
mod convert;
mod detect_tools;
mod http;
mod prompts;
mod resources;
mod roots;
mod server;
mod transport;
mod watch;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use http::{HttpError, HttpOptions, serve_http};
pub use server::PisamaServer;

/// What the server may read and how much work one request may cause.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The workspace root: relative paths resolve against it, the brain is `ROOT/.brain/`.
    pub root: PathBuf,
    /// More folders the server may read traces from.
    pub allow: Vec<PathBuf>,
    pub limits: Limits,
    /// How often `.brain/` is checked for external edits (for change notifications).
    pub watch_interval: Duration,
    /// Detection defaults from `pisama.toml` (detector selection, parameters, thresholds);
    /// a request's `detectors` replace `only`, its `exclude` adds to `exclude`.
    pub detection: pisama_detect::EngineConfig,
    /// Findings below this severity are left out unless a request says otherwise.
    pub min_severity: pisama_detect::Severity,
}

/// Bounds on one detection request. Each one, when hit, is a tool error that says which limit
/// and how to change it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest trace file read (bytes on disk).
    pub max_file_bytes: u64,
    /// Largest inline trace (`trace` argument, bytes).
    pub max_inline_bytes: usize,
    /// Most spans in one trace.
    pub max_spans: usize,
    /// Most traces in one request (a folder or a batch file).
    pub max_traces: usize,
    /// Wall-clock budget for one request (loading and detection).
    pub time_budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 256 * 1024 * 1024,
            max_inline_bytes: 16 * 1024 * 1024,
            max_spans: 1_000_000,
            max_traces: 10_000,
            time_budget: Duration::from_secs(120),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("workspace root {path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the workspace root would be the file-system root `/`; pass --root DIR (the repository the editor has open)"
    )]
    RootIsFilesystemRoot,
    #[error("{0}")]
    Transport(String),
}

impl ServerOptions {
    /// Options for a workspace with the default limits; `root` and `allow` are canonicalized.
    pub fn new(root: &Path, allow: &[PathBuf]) -> Result<ServerOptions, StartError> {
        let canon = |p: &Path| {
            std::fs::canonicalize(p).map_err(|source| StartError::Root {
                path: p.to_owned(),
                source,
            })
        };
        let root = canon(root)?;
        if root.parent().is_none() {
            return Err(StartError::RootIsFilesystemRoot);
        }
        let allow = allow
            .iter()
            .map(|p| canon(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ServerOptions {
            root,
            allow,
            limits: Limits::default(),
            watch_interval: Duration::from_secs(1),
            detection: pisama_detect::EngineConfig::default(),
            min_severity: pisama_detect::Severity::Low,
        })
    }
}

/// Serves one client over stdin/stdout until it disconnects. A client that closes the pipe
/// before `initialize` is a clean exit.
pub async fn serve_stdio(options: ServerOptions) -> Result<(), StartError> {
    let (stdin, stdout) = rmcp::transport::stdio();
    serve_io(options, stdin, stdout).await
}

/// Serves one client over any byte stream pair (newline-delimited JSON-RPC, as on stdio)
/// until it disconnects: `serve_stdio` uses it, and so do the fuzz target and tests that
/// drive the server through an in-memory pipe.
pub async fn serve_io<R, W>(options: ServerOptions, read: R, write: W) -> Result<(), StartError>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    use rmcp::ServiceExt;
    let server = PisamaServer::new(options);
    let transport = transport::AnswerUnknownMethods::new(
        rmcp::transport::async_rw::AsyncRwTransport::new_server(read, write),
    );
    let running = match server.serve(transport).await {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            if msg.contains("connection closed") {
                tracing::debug!("client closed the connection before initialize");
                return Ok(());
            }
            return Err(StartError::Transport(msg));
        }
    };
    running
        .waiting()
        .await
        .map_err(|e| StartError::Transport(e.to_string()))?;
    Ok(())
}
