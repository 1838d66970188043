//! Streamable HTTP transport on loopback (`pisama mcp --http 127.0.0.1:PORT`).
//!
//! rmcp's `StreamableHttpService` speaks the protocol (sessions, SSE); hyper serves it. The
//! endpoint is `/mcp`. DNS-rebinding protection: the `Host` header must name a loopback host
//! (or one given with `--allow-host`) and a present `Origin` must be a loopback origin (or one
//! given with `--allow-origin`); anything else gets 403. The listener binds only loopback
//! addresses unless the caller explicitly allows another.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tower_service::Service as _;

use crate::server::PisamaServer;
use crate::{ServerOptions, StartError};

/// How the HTTP listener may be reached.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Bind a non-loopback address (the user asked for it explicitly).
    pub allow_non_loopback: bool,
    /// More `Host` values to accept (`host` or `host:port`), besides the loopback names.
    pub allow_hosts: Vec<String>,
    /// More browser origins to accept (`scheme://host:port`), besides loopback origins.
    pub allow_origins: Vec<String>,
}

/// Why the HTTP server stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error(
        "{0} is not a loopback address; pisama mcp serves HTTP on loopback only (127.0.0.1 or [::1]) unless you pass --allow-non-loopback"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("accepting connections: {0}")]
    Accept(std::io::Error),
    #[error(transparent)]
    Start(#[from] StartError),
}

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
const LOOPBACK_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

fn config(http: &HttpOptions) -> StreamableHttpServerConfig {
    let hosts: Vec<String> = LOOPBACK_HOSTS
        .iter()
        .map(|h| (*h).to_owned())
        .chain(http.allow_hosts.iter().cloned())
        .collect();
    let origins: Vec<String> = LOOPBACK_ORIGINS
        .iter()
        .map(|o| (*o).to_owned())
        .chain(http.allow_origins.iter().cloned())
        .collect();
    StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .enforce_origin_validation()
}

/// Serves MCP over HTTP at `http://ADDR/mcp` until the process ends. `on_ready` gets the bound
/// address (the port is chosen by the system when ADDR has port 0).
pub async fn serve_http(
    options: ServerOptions,
    addr: SocketAddr,
    http: HttpOptions,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), HttpError> {
    if !addr.ip().is_loopback() && !http.allow_non_loopback {
        return Err(HttpError::NotLoopback(addr));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let base = PisamaServer::new(options);
    let mcp = StreamableHttpService::new(
        move || Ok(base.fork()),
        Arc::new(LocalSessionManager::default()),
        config(&http),
    );
    on_ready(bound);
    loop {
        let (stream, peer) = listener.accept().await.map_err(HttpError::Accept)?;
        tracing::debug!(%peer, "connection");
        let mcp = mcp.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let mut mcp = mcp.clone();
                async move {
                    if req.uri().path() != "/mcp" {
                        return Ok::<_, Infallible>(
                            Response::builder()
                                .status(hyper::StatusCode::NOT_FOUND)
                                .body(
                                    Full::new(Bytes::from_static(
                                        b"Not Found: the MCP endpoint is /mcp\n",
                                    ))
                                    .boxed(),
                                )
                                .unwrap_or_default(),
                        );
                    }
                    mcp.call(req).await
                }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}
