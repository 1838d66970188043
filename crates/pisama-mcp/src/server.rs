//! The server object: shared options, per-connection session state, `initialize`, and the
//! `ServerHandler` methods that are not tools (resources, prompts, completion, logging, roots).

#![allow(
    deprecated,
    reason = "logging, roots and resources/subscribe are deprecated in rmcp 3.11 (SEP-2577) but are what today's clients speak"
)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, LoggingLevel,
    LoggingMessageNotificationParam, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, tool_handler};
use serde::Serialize;

use pisama_brain::{Actor, Brain};

use crate::roots::{Roots, root_from_uri};
use crate::{ServerOptions, prompts, resources, watch};

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) options: ServerOptions,
    /// The tools, with their schemas; built on first use, not before `initialize` answers.
    tools: OnceLock<ToolRouter<PisamaServer>>,
    /// The first sentence of the `instructions`, computed once (it lists files, parses none).
    pub(crate) brain_summary: OnceLock<String>,
}

/// "The project brain in … holds N record file(s) (…)": counts `.md` files per kind folder,
/// without opening the brain (no config, no redaction rules), so `initialize` stays fast.
fn brain_summary(root: &std::path::Path) -> String {
    let dir = root.join(pisama_brain::store::BRAIN_DIR);
    if !dir.join("brain.toml").is_file() {
        return "This workspace has no project brain yet (a human runs `pisama brain init` to create one).".to_owned();
    }
    let mut total = 0;
    let mut parts = Vec::new();
    for k in pisama_brain::Kind::ALL {
        let n = std::fs::read_dir(dir.join(k.folder())).map_or(0, |rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
                .count()
        });
        if n > 0 {
            total += n;
            parts.push(format!("{n} {k}"));
        }
    }
    format!(
        "The project brain in {} holds {total} record file(s){}.",
        dir.display(),
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    )
}

/// One client connection's state.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub(crate) peer: OnceLock<Peer<RoleServer>>,
    /// Canonical folders from the client's `roots/list`.
    pub(crate) client_roots: RwLock<Vec<PathBuf>>,
    /// `resources/subscribe`d URIs and the hash of what was last sent for each.
    pub(crate) subscriptions: Mutex<HashMap<String, u64>>,
    /// Minimum level of `notifications/message` the client asked for (`LoggingLevel` as u8).
    pub(crate) log_level: AtomicU8,
    pub(crate) watching: AtomicBool,
    /// Wakes the watcher right after one of our own writes.
    pub(crate) poke: tokio::sync::Notify,
}

/// The pisama MCP server. Cheap to clone; one per connection (stdio, or an HTTP session).
#[derive(Clone)]
pub struct PisamaServer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) session: Arc<Session>,
}

impl std::fmt::Debug for PisamaServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PisamaServer")
            .field("root", &self.shared.options.root)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

const INSTRUCTIONS_TAIL: &str = "Detection: pisama_detect runs the detectors over a trace file, folder or inline trace JSON and returns a verdict, the decisive agent and step, and findings with evidence and fixes; pisama_detectors and pisama_explain describe the catalogue. Brain: search before writing (brain_search, brain_context); propose, don't overwrite (brain_propose, brain_revise); approved records are authoritative, proposed ones are not; only a human approves (brain_review).";

impl PisamaServer {
    pub fn new(options: ServerOptions) -> Self {
        Self::with_shared(Arc::new(Shared {
            options,
            tools: OnceLock::new(),
            brain_summary: OnceLock::new(),
        }))
    }

    pub(crate) fn with_shared(shared: Arc<Shared>) -> Self {
        PisamaServer {
            shared,
            session: Arc::new(Session {
                log_level: AtomicU8::new(level_rank(LoggingLevel::Info)),
                ..Session::default()
            }),
        }
    }

    /// A fresh connection on the same options (one per HTTP session).
    pub(crate) fn fork(&self) -> Self {
        Self::with_shared(self.shared.clone())
    }

    fn tools(&self) -> &ToolRouter<PisamaServer> {
        self.shared.tools.get_or_init(|| {
            let mut router = Self::detect_router() + Self::brain_router();
            // brain.toml `[mcp] tools = "core"` keeps only the core brain tools.
            let core = Brain::open(&self.shared.options.root)
                .is_ok_and(|b| b.config().mcp.tools == "core");
            if core {
                let names: Vec<String> = router.map.keys().map(ToString::to_string).collect();
                for name in names {
                    if name.starts_with("brain_")
                        && !pisama_brain::config::CORE_TOOLS.contains(&name.as_str())
                    {
                        router.remove_route(&name);
                    }
                }
            }
            for route in router.map.values_mut() {
                let mut input = serde_json::Value::Object((*route.attr.input_schema).clone());
                portable_schema(&mut input, false);
                if let serde_json::Value::Object(m) = input {
                    route.attr.input_schema = Arc::new(m);
                }
                if let Some(out) = &route.attr.output_schema {
                    let mut output = serde_json::Value::Object((**out).clone());
                    portable_schema(&mut output, true);
                    if let serde_json::Value::Object(m) = output {
                        route.attr.output_schema = Some(Arc::new(m));
                    }
                }
            }
            router
        })
    }

    pub(crate) fn options(&self) -> &ServerOptions {
        &self.shared.options
    }

    /// The roots a request may read under, including the client's.
    pub(crate) fn roots(&self) -> Roots {
        let client = self
            .session
            .client_roots
            .read()
            .map(|r| r.clone())
            .unwrap_or_default();
        Roots::new(
            self.shared.options.root.clone(),
            &self.shared.options.allow,
            &client,
        )
    }

    /// The brain of the workspace, or a message saying how to create one.
    pub(crate) fn open_brain(&self) -> Result<Brain, String> {
        Brain::open(&self.shared.options.root).map_err(|e| e.to_string())
    }

    /// The agent the client speaks for: `clientInfo.name` of the handshake, or of the request's
    /// `_meta` on 2026-07-28 connections.
    pub(crate) fn agent(ctx: &RequestContext<RoleServer>) -> Actor {
        let name = Self::client_name(ctx)
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "mcp-client".into());
        Actor::agent(name, "mcp")
    }

    pub(crate) fn client_name(ctx: &RequestContext<RoleServer>) -> Option<String> {
        ctx.client_info().map(|i| i.name)
    }

    /// Wakes the watcher so our own writes are announced at once.
    pub(crate) fn changed(&self) {
        self.session.poke.notify_one();
    }

    /// Sends a `notifications/message` if the client's level lets it through.
    pub(crate) async fn log(&self, level: LoggingLevel, data: serde_json::Value) {
        if level_rank(level) < self.session.log_level.load(Ordering::Relaxed) {
            return;
        }
        if let Some(peer) = self.session.peer.get() {
            let _ = peer
                .notify_logging_message(
                    LoggingMessageNotificationParam::new(level, data).with_logger("pisama"),
                )
                .await;
        }
    }

    async fn refresh_client_roots(&self, peer: Peer<RoleServer>) {
        let has_roots = peer
            .peer_info()
            .is_some_and(|i| i.capabilities.roots.is_some());
        if !has_roots {
            return;
        }
        let listed =
            tokio::time::timeout(std::time::Duration::from_secs(10), peer.list_roots()).await;
        match listed {
            Ok(Ok(list)) => {
                let roots: Vec<PathBuf> = list
                    .roots
                    .iter()
                    .filter_map(|r| root_from_uri(&r.uri))
                    .collect();
                tracing::debug!(count = roots.len(), "client roots");
                if let Ok(mut slot) = self.session.client_roots.write() {
                    *slot = roots;
                }
            }
            Ok(Err(e)) => tracing::debug!("roots/list failed: {e}"),
            Err(_) => tracing::debug!("roots/list timed out"),
        }
    }
}

/// Rewrites `"type": [T, "null"]` (what schemars writes for `Option<T>`), which clients that map
/// schemas onto a single-type dialect reject: in inputs to `"type": T` (an optional argument is
/// simply left out), in outputs to `"anyOf": [{"type": T, …}, {"type": "null"}]`.
fn portable_schema(v: &mut serde_json::Value, nullable: bool) {
    match v {
        serde_json::Value::Object(m) => {
            let single = match m.get("type") {
                Some(serde_json::Value::Array(types)) if types.len() == 2 => types
                    .iter()
                    .find(|t| t.as_str() != Some("null"))
                    .filter(|_| types.iter().any(|t| t.as_str() == Some("null")))
                    .cloned(),
                _ => None,
            };
            if let Some(t) = single {
                if nullable {
                    let mut branch = std::mem::take(m);
                    branch.insert("type".into(), t);
                    let description = branch.remove("description");
                    m.insert(
                        "anyOf".into(),
                        serde_json::json!([branch, {"type": "null"}]),
                    );
                    if let Some(d) = description {
                        m.insert("description".into(), d);
                    }
                } else {
                    m.insert("type".into(), t);
                }
            }
            for child in m.values_mut() {
                portable_schema(child, nullable);
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                portable_schema(child, nullable);
            }
        }
        _ => {}
    }
}

/// Runs blocking work (file I/O, tantivy, detection) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("internal error: {e}"))
}

/// A tool result: `structuredContent` plus a short text rendering.
pub(crate) fn reply<T: Serialize>(value: &T, text: String) -> Result<CallToolResult, ErrorData> {
    let json = serde_json::to_value(value)
        .map_err(|e| ErrorData::internal_error(format!("serialize result: {e}"), None))?;
    let mut result = CallToolResult::structured(json);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}

/// A tool error the model and the user can act on (`isError: true`).
pub(crate) fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

pub(crate) fn level_rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

#[tool_handler(router = self.tools())]
impl ServerHandler for PisamaServer {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_completions()
            .enable_logging()
            .build();
        let brain = self
            .shared
            .brain_summary
            .get_or_init(|| brain_summary(&self.shared.options.root));
        ServerConfig::new(caps)
            .with_server_info(
                Implementation::new("pisama", env!("CARGO_PKG_VERSION"))
                    .with_title("pisama: agent-trace detection and project brain"),
            )
            .with_instructions(format!("{brain} {INSTRUCTIONS_TAIL}"))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let peer = context.peer.clone();
        let _ = self.session.peer.set(peer.clone());
        let me = self.clone();
        tokio::spawn(async move { me.refresh_client_roots(peer).await });
        if !self.session.watching.swap(true, Ordering::SeqCst) {
            watch::spawn(self.clone());
        }
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        let me = self.clone();
        let peer = context.peer.clone();
        tokio::spawn(async move { me.refresh_client_roots(peer).await });
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.session
            .log_level
            .store(level_rank(request.level), Ordering::Relaxed);
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let me = self.clone();
        let list = blocking(move || resources::list(&me))
            .await
            .map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(ListResourcesResult::with_all_items(list))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let me = self.clone();
        let uri = request.uri.clone();
        let contents = blocking(move || resources::read(&me, &uri))
            .await
            .map_err(|e| ErrorData::internal_error(e, None))??;
        Ok(rmcp::model::ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let me = self.clone();
        let uri = request.uri.clone();
        // Remember what the subscriber has now, so only real changes are announced.
        let hash = blocking(move || resources::read(&me, &uri).map(|c| resources::hash_of(&c)))
            .await
            .map_err(|e| ErrorData::internal_error(e, None))??;
        if let Ok(mut subs) = self.session.subscriptions.lock() {
            subs.insert(request.uri, hash);
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut subs) = self.session.subscriptions.lock() {
            subs.remove(&request.uri);
        }
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let me = self.clone();
        let list = blocking(move || prompts::list(&me))
            .await
            .map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(ListPromptsResult::with_all_items(list))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        prompts::get(self, request).await.map(Into::into)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let me = self.clone();
        let values = blocking(move || resources::complete(&me, &request))
            .await
            .map_err(|e| ErrorData::internal_error(e, None))?;
        let total = values.len();
        let shown: Vec<String> = values
            .into_iter()
            .take(CompletionInfo::MAX_VALUES)
            .collect();
        let mut info = CompletionInfo::default();
        info.has_more = Some(total > shown.len());
        info.total = Some(u32::try_from(total).unwrap_or(u32::MAX));
        info.values = shown;
        Ok(CompleteResult::new(info))
    }
}
