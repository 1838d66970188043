//! A transport wrapper that answers requests for methods the server does not know with
//! `-32601 Method not found`, whatever the lifecycle state.
//!
//! rmcp answers an unknown method that arrives *before* `initialize` with `-32602` (it reads it
//! as a 2026-07-28 stateless request without its `_meta`). Clients probe with unknown methods
//! before the handshake and fall back only on a JSON-RPC error they recognise, and the
//! specification's answer is -32601, so unknown methods are answered here before rmcp sees them.

use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, ErrorCode, JsonRpcMessage, ServerJsonRpcMessage,
};
use rmcp::transport::Transport;
use rmcp::{ErrorData, RoleServer};

/// Wraps a server transport (see the module docs).
#[derive(Debug)]
pub(crate) struct AnswerUnknownMethods<T> {
    inner: T,
}

impl<T> AnswerUnknownMethods<T> {
    pub(crate) fn new(inner: T) -> Self {
        AnswerUnknownMethods { inner }
    }
}

impl<T: Transport<RoleServer>> Transport<RoleServer> for AnswerUnknownMethods<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            let message = self.inner.receive().await?;
            if let JsonRpcMessage::Request(request) = &message
                && let ClientRequest::CustomRequest(custom) = &request.request
            {
                tracing::debug!(method = %custom.method, "unknown method");
                let error = ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    format!("method not found: {}", custom.method),
                    None,
                );
                let reply = ServerJsonRpcMessage::error(error, Some(request.id.clone()));
                if self.inner.send(reply).await.is_err() {
                    return None;
                }
                continue;
            }
            return Some(message);
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
