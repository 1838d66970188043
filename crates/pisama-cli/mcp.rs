//! `pisama mcp`: the MCP server for editors, over stdio (default) or streamable HTTP on
//! loopback. The server itself is the `pisama-mcp` library; this module parses the flags,
//! builds the async runtime and reports startup errors.

#![allow(
    clippy::print_stderr,
    reason = "the listening address is for the person who started it"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::{Exit, Failure, config, detect};

#[derive(Debug, Args)]
#[command(
    after_help = "Editors start it over stdio; see the README (\"MCP server\") for Cursor, Claude Desktop and Claude Code.\n\nExamples:\n  pisama mcp\n  pisama mcp --root ~/src/my-agent\n  pisama mcp --http 127.0.0.1:8766          # then http://127.0.0.1:8766/mcp\n  npx @modelcontextprotocol/inspector --cli --method tools/list -- pisama mcp"
)]
pub(crate) struct McpArgs {
    /// Serve streamable HTTP at ADDR (endpoint /mcp) instead of stdio; loopback only, e.g. 127.0.0.1:8766
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,

    /// Workspace root: traces are read under it and the brain is ROOT/.brain (default: the nearest folder with .brain/ or .git above the current one)
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Another folder the server may read traces from (repeatable)
    #[arg(long = "allow", value_name = "DIR")]
    allow: Vec<PathBuf>,

    /// Detection configuration (default: ROOT/pisama.toml, then the user config folder's pisama/pisama.toml)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Largest trace file a request may read, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024 * 1024)]
    max_file_size: u64,

    /// Largest inline trace (the `trace` argument), in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    max_inline_bytes: usize,

    /// Most spans in one trace
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    max_spans: usize,

    /// Most traces in one request
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_traces: usize,

    /// Wall-clock budget of one detection request, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    time_budget: f64,

    /// With --http: allow binding an address that is not loopback (then also set --allow-host)
    #[arg(long, requires = "http")]
    allow_non_loopback: bool,

    /// With --http: another accepted Host header (`host` or `host:port`), besides localhost, 127.0.0.1 and `::1`
    #[arg(long = "allow-host", value_name = "HOST", requires = "http")]
    allow_hosts: Vec<String>,

    /// With --http: another accepted browser Origin (`scheme://host:port`), besides loopback origins
    #[arg(long = "allow-origin", value_name = "ORIGIN", requires = "http")]
    allow_origins: Vec<String>,
}

pub(crate) fn run(args: &McpArgs) -> Result<Exit, Failure> {
    let cwd = std::env::current_dir()?;
    let root = args
        .root
        .clone()
        .unwrap_or_else(|| pisama_brain::Brain::discover(&cwd));
    let mut options = pisama_mcp::ServerOptions::new(&root, &args.allow)
        .map_err(|e| Failure::input(e.to_string()))?;
    // The same detection settings as `pisama detect` run in the workspace.
    let workspace_config = options.root.join("pisama.toml");
    let config = config::load(args.config.as_deref().or_else(|| {
        workspace_config
            .is_file()
            .then_some(workspace_config.as_path())
    }))?;
    options.detection = detect::engine_config(&[], &[], &config, false);
    options.min_severity = detect::resolve_min_severity(None, &config)?;
    pisama_detect::Engine::new(&options.detection)
        .map_err(|e| detect::config_error(&config, &e))?;
    if !(args.time_budget.is_finite() && args.time_budget > 0.0) {
        return Err(Failure::input(
            "--time-budget must be a positive number of seconds",
        ));
    }
    options.limits = pisama_mcp::Limits {
        max_file_bytes: args.max_file_size,
        max_inline_bytes: args.max_inline_bytes,
        max_spans: args.max_spans,
        max_traces: args.max_traces,
        time_budget: Duration::from_secs_f64(args.time_budget),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::from(anyhow::anyhow!("async runtime: {e}")))?;
    let result = runtime.block_on(async {
        match args.http {
            None => pisama_mcp::serve_stdio(options)
                .await
                .map_err(|e| Failure::from(anyhow::anyhow!("{e}"))),
            Some(addr) => {
                let http = pisama_mcp::HttpOptions {
                    allow_non_loopback: args.allow_non_loopback,
                    allow_hosts: args.allow_hosts.clone(),
                    allow_origins: args.allow_origins.clone(),
                };
                pisama_mcp::serve_http(options, addr, http, |bound| {
                    eprintln!("pisama mcp: listening on http://{bound}/mcp");
                })
                .await
                .map_err(|e| match e {
                    pisama_mcp::HttpError::NotLoopback(_) => Failure::input(e.to_string()),
                    other => Failure::from(anyhow::anyhow!("{other}")),
                })
            }
        }
    });
    // stdin reads cannot be cancelled; do not wait for the runtime's blocking threads.
    runtime.shutdown_background();
    result.map(|()| Exit::Ok)
}
